"""Client and emulator agree with the documented table, model by model.

For drawn inputs, three verdicts are compared: the client's (``VideoRequest.build``), the
emulator's (a real ``POST /v1/models/{model}/runs`` through its handler: 201 or 422) and an
oracle written here from the page (``_family_doc``). Each side must match the oracle, so a wrong
limit in ``runflow_nb.specs`` fails even though both sides read it.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _family_doc import (
    ASPECTS,
    AUDIO_SETTINGS,
    DURATIONS,
    EDIT_MAX_REFS,
    EDIT_TAGS,
    I2V_ASPECT,
    I2V_FORMATS,
    I2V_MIN_SIDE,
    MODELS,
    PROMPT_MAX,
    RESOLUTIONS,
    SEED_MAX,
)
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image
from test_family import write_video

from runflow_nb.emulator import Emulator
from runflow_nb.errors import ValidationError
from runflow_nb.request import VideoRequest
from runflow_nb.simulator.engine import Simulator

MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "BMP": "image/bmp", "WEBP": "image/webp", "GIF": "image/gif"}


def encoded(size: tuple[int, int], fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("L" if fmt == "GIF" else "RGB", size, 90).save(buf, fmt)
    return buf.getvalue()


# (width, height, format): edges of the i2v rules and plainly good/bad ones
IMAGES = {f"{w}x{h}.{f}": (w, h, f) for w, h, f in [
    (800, 600, "PNG"), (300, 300, "JPEG"), (299, 500, "PNG"), (500, 299, "WEBP"), (300, 750, "BMP"),
    (750, 300, "PNG"), (300, 760, "PNG"), (760, 300, "JPEG"), (640, 360, "GIF"), (1200, 900, "WEBP")]}
_BYTES: dict[str, bytes] = {}


def image(name: str) -> bytes:
    if name not in _BYTES:
        w, h, f = IMAGES[name]
        _BYTES[name] = encoded((w, h), f)
    return _BYTES[name]


def data_uri(name: str) -> str:
    return f"data:{MIME[IMAGES[name][2]]};base64,{base64.b64encode(image(name)).decode()}"


# -- the oracle, from the page -------------------------------------------------------------------

def _int_ok(v: Any, lo: int, hi: int) -> bool:
    return v is None or (type(v) is int and lo <= v <= hi)


def _common_ok(v: dict[str, Any]) -> bool:
    return (v["resolution"] in (None, *RESOLUTIONS) and _int_ok(v["seed"], 0, SEED_MAX))


def _prompt_ok(p: Any, *, required: bool) -> bool:
    if p is None:
        return not required
    return isinstance(p, str) and len(p) <= PROMPT_MAX and (bool(p.strip()) or not required)


def oracle_t2v(v: dict[str, Any]) -> bool:
    return (_prompt_ok(v["prompt"], required=True) and v["aspect_ratio"] in (None, *ASPECTS)
            and _int_ok(v["duration"], *DURATIONS) and _common_ok(v))


def i2v_image_ok(name: str) -> bool:
    w, h, f = IMAGES[name]
    return f in I2V_FORMATS and min(w, h) >= I2V_MIN_SIDE and I2V_ASPECT[0] - 1e-9 <= w / h <= I2V_ASPECT[1] + 1e-9


def oracle_i2v(v: dict[str, Any]) -> bool:
    return (len(v["images"]) == 1 and i2v_image_ok(v["images"][0]) and _prompt_ok(v["prompt"], required=False)
            and _int_ok(v["duration"], *DURATIONS) and _common_ok(v))


def oracle_edit(v: dict[str, Any]) -> bool:
    refs = v["images"]
    tags = [int(n) for n in re.findall(r"@Image([0-9]+)\b", v["prompt"] or "", flags=re.I)]
    # Reference formats are not restated for video-edit: the sibling's JPEG/PNG/WEBP are assumed.
    refs_ok = len(refs) <= EDIT_MAX_REFS and all(IMAGES[r][2] in ("JPEG", "PNG", "WEBP") for r in refs)
    tags_ok = all(EDIT_TAGS[0] <= n <= min(EDIT_TAGS[1], len(refs)) for n in tags)
    return (_prompt_ok(v["prompt"], required=True) and refs_ok and tags_ok
            and v["audio_setting"] in (None, *AUDIO_SETTINGS) and _common_ok(v))


# -- the three verdicts ------------------------------------------------------------------------------

def fake_renderer(images: Any, *, dest: Any, seed: int, **kw: Any) -> Path:
    Path(dest).write_bytes(b"not a video" * 50)
    return Path(dest)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, str]]:
    with Simulator(latency=0.0, renderer=fake_renderer) as sim:
        emu = Emulator(simulator=sim, base_url="http://emu.test")
        with httpx.Client(transport=httpx.MockTransport(emu.handle), base_url="http://emu.test",
                          headers={"Authorization": "Bearer rf_test_agree"}) as client:
            clip = write_video(tmp_path_factory.mktemp("agree") / "clip.mp4", 4)
            data = clip.read_bytes()
            up = client.post("/v1/asset-uploads", json={"filename": "clip.mp4", "content_type": "video/mp4",
                                                        "size": len(data), "mime_type": "video/mp4",
                                                        "size_bytes": len(data)}).json()
            client.put(up["upload_url"], content=data, headers={"Content-Type": "video/mp4"})
            asset_id = up.get("asset_id") or up.get("id")
            url = client.post(f"/v1/asset-uploads/{asset_id}/confirmations", json={}).json()["url"]
            yield client, url


def server_ok(client: httpx.Client, model: str, wire: dict[str, Any]) -> bool:
    resp = client.post(f"/v1/models/{MODELS[model]}/runs", json={"input": wire})
    assert resp.status_code in (201, 422), resp.text
    return resp.status_code == 201


def client_ok(model: str, v: dict[str, Any], video: Any = None) -> bool:
    kw = {k: v[k] for k in ("prompt", "duration", "resolution", "seed", "aspect_ratio", "audio_setting") if k in v}
    if "images" in v:
        kw["images"] = [image(n) for n in v["images"]]
    if video is not None:
        kw["video"] = video
    try:
        VideoRequest.build(model=model, **kw)
    except ValidationError:
        return False
    return True


def wire_of(v: dict[str, Any], *, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    return {k: val for k, val in v.items() if val is not None and k not in ("images", *drop)}


_PROMPTS = st.one_of(st.none(), st.text(max_size=30), st.just("x" * PROMPT_MAX), st.just("x" * (PROMPT_MAX + 1)),
                     st.just("   "))
_INTS = st.one_of(st.none(), st.integers(0, 20), st.floats(2, 16), st.booleans(), st.just("5"))
_SEEDS = st.one_of(st.none(), st.integers(-2, SEED_MAX + 2))
_RES = st.sampled_from([None, "720p", "1080p", "1080P", "480p"])
SLOW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.function_scoped_fixture])


@SLOW
@given(st.fixed_dictionaries({"prompt": _PROMPTS, "duration": _INTS, "resolution": _RES, "seed": _SEEDS,
                              "aspect_ratio": st.sampled_from([None, *ASPECTS, "2:1", "16:10"])}))
def test_text_to_video_client_emulator_and_page_agree(emulator: Any, v: dict[str, Any]) -> None:
    client, _ = emulator
    expected = oracle_t2v(v)
    assert client_ok("t2v", v) == expected, v
    assert server_ok(client, "t2v", wire_of(v)) == expected, v


def _with_examples(base: dict[str, Any], cases: list[list[str]]) -> Any:
    """Every edge case of the page as an explicit example, on top of the drawn ones."""
    def decorate(fn: Any) -> Any:
        for images in cases:
            fn = example({**base, "images": images})(fn)
        return fn
    return decorate


_I2V_BASE = {"prompt": "it comes alive", "duration": 3, "resolution": "720p", "seed": 1}
_EDIT_BASE = {"prompt": "@Image1 waves", "resolution": "720p", "seed": 1, "audio_setting": "origin"}


@SLOW
@given(st.fixed_dictionaries({"prompt": _PROMPTS, "duration": _INTS, "resolution": _RES, "seed": _SEEDS,
                              "images": st.lists(st.sampled_from(sorted(IMAGES)), min_size=0, max_size=2)}))
@_with_examples(_I2V_BASE, [[name] for name in sorted(IMAGES)] + [[], ["800x600.PNG"] * 2])
def test_image_to_video_client_emulator_and_page_agree(emulator: Any, v: dict[str, Any]) -> None:
    client, _ = emulator
    expected = oracle_i2v(v)
    assert client_ok("i2v", v) == expected, v
    wire = wire_of(v)
    if len(v["images"]) == 1:
        wire["image_url"] = data_uri(v["images"][0])
    elif v["images"]:
        wire["image_url"] = [data_uri(n) for n in v["images"]]  # what a careless client sends: a list
    assert server_ok(client, "i2v", wire) == expected, v


_EDIT_PROMPTS = st.one_of(_PROMPTS, st.sampled_from(["@Image1 waves", "@Image5 and @Image1", "@Image6 hides",
                                                     "@image2 at night", "@Image0"]))


@SLOW
@given(st.fixed_dictionaries({"prompt": _EDIT_PROMPTS, "resolution": _RES, "seed": _SEEDS,
                              "audio_setting": st.sampled_from([None, *AUDIO_SETTINGS, "keep", "Origin"]),
                              "images": st.lists(st.sampled_from(sorted(IMAGES)), min_size=0, max_size=6)}))
@_with_examples(_EDIT_BASE, [["800x600.PNG"] * n for n in range(EDIT_MAX_REFS + 2)] + [["640x360.GIF"]])
def test_video_edit_client_emulator_and_page_agree(emulator: Any, v: dict[str, Any]) -> None:
    client, video_url = emulator
    expected = oracle_edit(v)
    assert client_ok("edit", v, video=video_url) == expected, v
    wire = {**wire_of(v), "video_url": video_url}
    if v["images"]:
        wire["reference_image_urls"] = [data_uri(n) for n in v["images"]]
    assert server_ok(client, "edit", wire) == expected, v


@pytest.mark.parametrize(("seconds", "ok"), [(2, False), (3, True), (60, True), (62, False)])
def test_the_emulator_checks_the_clip_length_from_the_page(emulator: Any, tmp_path: Path, seconds: int,
                                                           ok: bool) -> None:
    client, _ = emulator
    data = write_video(tmp_path / "c.mp4", seconds, fps=1).read_bytes()
    up = client.post("/v1/asset-uploads", json={"filename": "c.mp4", "content_type": "video/mp4",
                                                "size": len(data), "mime_type": "video/mp4",
                                                "size_bytes": len(data)}).json()
    client.put(up["upload_url"], content=data, headers={"Content-Type": "video/mp4"})
    url = client.post(f"/v1/asset-uploads/{up.get('asset_id') or up.get('id')}/confirmations", json={}).json()["url"]
    resp = client.post(f"/v1/models/{MODELS['edit']}/runs", json={"input": {"prompt": "make it night",
                                                                            "video_url": url}})
    assert (resp.status_code == 201) == ok, resp.text
    if not ok:
        assert [e["field"] for e in resp.json()["errors"]] == ["video_url"]
