"""Every documented limit is refused client-side, named by field, before any network call."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from runflow_nb.errors import ValidationError
from runflow_nb.request import INLINE_LIMIT_BYTES, VideoRequest, load_reference
from runflow_nb.simulator.engine import validate_input


def png(size: tuple[int, int] = (800, 600), fmt: str = "PNG", mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, (10, 120, 200) if mode == "RGB" else 128).save(buf, fmt)
    return buf.getvalue()


GOOD = png()


def fields_of(exc: pytest.ExceptionInfo[ValidationError]) -> list[str]:
    return exc.value.fields


def build(**kw: Any) -> VideoRequest:
    kw.setdefault("prompt", "character1 trots through a meadow")
    kw.setdefault("images", [GOOD])
    return VideoRequest.build(**kw)


def test_defaults_are_the_documented_ones() -> None:
    req = build()
    assert (req.aspect_ratio, req.duration, req.resolution, req.enable_safety_checker, req.seed) == \
        ("16:9", 5, "1080p", True, None)
    assert req.estimate_usd() == 1.40  # the default request costs $1.40
    assert build(resolution="720p", duration=5).estimate_usd() == 0.70


@pytest.mark.parametrize(("kwargs", "field", "needle"), [
    ({"prompt": "x" * 2501}, "prompt", "2500"),
    ({"prompt": None}, "prompt", "required"),
    ({"prompt": "   "}, "prompt", "empty"),
    ({"prompt": "bad \udc80 text"}, "prompt", "UTF-8"),
    ({"prompt": "character2 waves"}, "prompt", "character2"),
    ({"prompt": "character10 waves", "images": [GOOD] * 9}, "prompt", "character10"),
    ({"aspect_ratio": "21:9"}, "aspect_ratio", "16:9"),
    ({"duration": 2}, "duration", "3–15"),
    ({"duration": 16}, "duration", "3–15"),
    ({"duration": 5.5}, "duration", "whole number"),
    ({"duration": True}, "duration", "whole number"),
    ({"duration": "5"}, "duration", "whole number"),
    ({"resolution": "1080P"}, "resolution", "did you mean '1080p'"),
    ({"resolution": "4k"}, "resolution", "720p"),
    ({"seed": -1}, "seed", "0–2147483647"),
    ({"seed": 2147483648}, "seed", "0–2147483647"),
    ({"enable_safety_checker": "yes"}, "enable_safety_checker", "bool"),
    ({"images": []}, "images", "at least 1"),
    ({"images": [GOOD] * 10}, "images", "at most 9"),
    ({"images": [png((399, 800))]}, "images[0]", "400 px"),
    ({"images": [png((800, 600), "GIF", "L")]}, "images[0]", "GIF"),
    ({"images": [png((800, 600), "BMP")]}, "images[0]", "BMP"),
    ({"images": [b"not an image at all"]}, "images[0]", "not an image"),
    ({"images": [GOOD[: len(GOOD) // 2]]}, "images[0]", "truncated"),
    ({"images": ["ftp://host/a.png"]}, "images[0]", "ftp"),
    ({"images": [3.5]}, "images[0]", "float"),
])
def test_each_limit_is_refused_with_the_field_named(kwargs: dict[str, Any], field: str, needle: str) -> None:
    with pytest.raises(ValidationError) as exc:
        build(**kwargs)
    assert field in fields_of(exc)
    assert needle in str(exc.value)
    assert "nothing was sent" in str(exc.value)


def test_several_problems_are_reported_together() -> None:
    with pytest.raises(ValidationError) as exc:
        build(prompt="x" * 2600, duration=99, resolution="8k", aspect_ratio="2:1", seed=-5,
              images=[png((100, 100)), GOOD])
    assert set(fields_of(exc)) >= {"prompt", "duration", "resolution", "aspect_ratio", "seed", "images[0]"}
    assert len(exc.value.issues) >= 6
    # each issue says how to fix it
    assert all(i.fix for i in exc.value.issues)


def test_format_is_read_from_the_bytes_not_the_name(tmp_path: Path) -> None:
    lying = tmp_path / "really_a_png.jpg"
    lying.write_bytes(GOOD)
    ref = load_reference(lying)
    assert not isinstance(ref, list) and ref.format == "PNG"
    text = tmp_path / "notes.png"
    text.write_text("hello")
    with pytest.raises(ValidationError, match="not an image"):
        build(images=[text])


def test_paths_to_folders_devices_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as exc:
        build(images=[tmp_path, "/dev/zero", tmp_path / "missing.png"])
    text = str(exc.value)
    assert "is a folder" in text and "not a regular file" in text and "no file at" in text


def test_oversized_files_are_refused_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    with big.open("wb") as f:
        f.write(GOOD)
        f.truncate(11 * 1024 * 1024)
    with pytest.raises(ValidationError, match="10 MB"):
        build(images=[big])


def test_decompression_bombs_are_refused() -> None:
    # A tiny file whose header claims 30000x30000 pixels.
    import struct
    import zlib

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + \
        chunk(b"IEND", b"")
    with pytest.raises(ValidationError, match="too many pixels"):
        build(images=[bomb])


def test_all_reference_kinds(tmp_path: Path) -> None:
    p = tmp_path / "a.webp"
    Image.new("RGB", (640, 480), "red").save(p, "WEBP")
    req = build(prompt="character1 and character2 and character3 and character4",
                images=[p, Image.new("RGB", (500, 500), "blue"), GOOD, "https://cdn.example.org/x.png"])
    kinds = [r.kind for r in req.images]
    assert kinds == ["path", "pil", "bytes", "url"]
    wire = req.to_input()
    assert wire["image_urls"][0].startswith("data:image/webp;base64,")
    assert wire["image_urls"][3] == "https://cdn.example.org/x.png"
    # the image hashes enter the run key: other pixels, other key
    other = build(prompt=req.prompt, images=[p, Image.new("RGB", (500, 500), "green"), GOOD,
                                             "https://cdn.example.org/x.png"])
    assert other.run_key() != req.run_key()
    assert build(seed=1).run_key() == build(seed=1).run_key() != build(seed=2).run_key()


def test_large_local_images_are_marked_for_upload() -> None:
    import numpy as np

    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (1200, 1600, 3), dtype=np.uint8))
    req = build(images=[noise, GOOD])
    big, small = req.images
    assert big.size_bytes is not None and big.size_bytes > INLINE_LIMIT_BYTES
    assert req.needs_upload(big) and not req.needs_upload(small)


def test_to_code_round_trips(tmp_path: Path) -> None:
    p = tmp_path / "r.png"
    p.write_bytes(GOOD)
    req = build(images=[p], seed=11, duration=7, resolution="720p", aspect_ratio="9:16")
    ns: dict[str, Any] = {}
    code = req.to_code().replace("client = rf.Client()\n", "").replace("result = client.generate(",
                                                                         "req = rf.VideoRequest.build(")
    exec(code, ns)
    assert ns["req"].canonical() == req.canonical()


# -- the documented table is the oracle: client and emulator each agree with it ---------------------
#
# Written from the model's table in docs/runflow-api.md, not from runflow_nb.specs: a wrong limit in
# specs.py would pass a test that took its limits from specs.py on both sides.

DOC_PROMPT_MAX = 2500  # "≤ 2500 characters"
DOC_IMAGES = (1, 9)  # "1–9 images"
DOC_MIN_SIDE = 400  # "shortest side ≥ 400 px"
DOC_FORMATS = {"JPEG", "PNG", "WEBP"}  # "JPEG/JPG/PNG/WEBP"
DOC_ASPECT_RATIOS = {"16:9", "9:16", "1:1", "4:3", "3:4"}
DOC_DURATION = (3, 15)  # "int, 3–15 s"
DOC_RESOLUTIONS = {"720p", "1080p"}
DOC_SEED = (0, 2147483647)
DOC_PRICE_PER_S = {"720p": 0.14, "1080p": 0.28}

# name -> (bytes, size, format): the oracle reads the size and format from this table, not the bytes
IMAGES: dict[str, tuple[bytes, tuple[int, int], str]] = {
    "ok": (GOOD, (800, 600), "PNG"),
    "ok_jpeg": (png((1024, 576), "JPEG"), (1024, 576), "JPEG"),
    "edge": (png((400, 400), "WEBP"), (400, 400), "WEBP"),
    "small": (png((399, 800)), (399, 800), "PNG"),
    "tiny": (png((300, 500)), (300, 500), "PNG"),
    "gif": (png((800, 600), "GIF", "L"), (800, 600), "GIF"),
    "bmp": (png((800, 600), "BMP"), (800, 600), "BMP"),
}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def documented_refusals(v: dict[str, Any]) -> set[str]:
    """The fields the documented table refuses for these values (None = not sent: the default)."""
    bad: set[str] = set()
    images = v["images"]
    prompt = v["prompt"]
    if not isinstance(prompt, str) or not prompt.strip() or len(prompt) > DOC_PROMPT_MAX:
        bad.add("prompt")
    else:
        import re

        # character1…character9 name images in order: each tag needs an image at that position
        for n in (int(m) for m in re.findall(r"\bcharacter(\d+)\b", prompt)):
            if not (1 <= n <= min(len(images), DOC_IMAGES[1])):
                bad.add("prompt")
    if not DOC_IMAGES[0] <= len(images) <= DOC_IMAGES[1]:
        bad.add("image_urls")
    for i, name in enumerate(images[: DOC_IMAGES[1]]):  # each of the first nine is checked as well
        _data, size, fmt = IMAGES[name]
        if fmt not in DOC_FORMATS or min(size) < DOC_MIN_SIDE:
            bad.add(f"image_urls[{i}]")
    checks = {
        "duration": lambda x: _is_int(x) and DOC_DURATION[0] <= x <= DOC_DURATION[1],
        "resolution": lambda x: x in DOC_RESOLUTIONS,
        "aspect_ratio": lambda x: x in DOC_ASPECT_RATIOS,
        "seed": lambda x: _is_int(x) and DOC_SEED[0] <= x <= DOC_SEED[1],
        "enable_safety_checker": lambda x: isinstance(x, bool),
    }
    bad |= {f for f, ok in checks.items() if v[f] is not None and not ok(v[f])}
    return bad


def documented_price(v: dict[str, Any]) -> float:
    duration = 5 if v["duration"] is None else v["duration"]  # documented defaults: 5 s, 1080p
    return duration * DOC_PRICE_PER_S[v["resolution"] or "1080p"]


_tags = st.builds(lambda ns: " and ".join(f"character{n}" for n in ns) + " trot",
                  st.lists(st.integers(0, 12), min_size=1, max_size=3))
values = st.fixed_dictionaries({
    "prompt": st.one_of(st.text(min_size=0, max_size=40), st.just("x" * 2501), st.just("a" * 2500),
                        st.just("character9 " + "y" * 2489), st.just("character9 " + "y" * 2490),
                        _tags, st.none()),
    "images": st.lists(st.sampled_from(sorted(IMAGES)), min_size=0, max_size=10),
    "duration": st.one_of(st.integers(0, 20), st.floats(2, 16), st.booleans(), st.none(), st.just("5")),
    "resolution": st.sampled_from(["720p", "1080p", "1080P", "480p", None]),
    "aspect_ratio": st.sampled_from(["16:9", "9:16", "1:1", "4:3", "3:4", "2:1", "16:10", None]),
    "seed": st.one_of(st.integers(-3, 3), st.integers(2**31 - 3, 2**31 + 3), st.booleans(), st.none()),
    "enable_safety_checker": st.one_of(st.booleans(), st.none(), st.just(1), st.just("true")),
})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_client_validation_follows_the_documented_table(v: dict[str, Any]) -> None:
    expected = documented_refusals(v)
    try:
        req = build(**{**v, "images": [IMAGES[k][0] for k in v["images"]]})
    except ValidationError as exc:
        # the client names the caller's argument (images[0]); the documented table names the wire's
        assert {f.replace("images", "image_urls", 1) for f in exc.fields} == expected, (v, str(exc))
        return
    assert not expected, (v, "accepted, but the documented table refuses", expected)
    assert req.estimate_usd() == pytest.approx(documented_price(v))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_emulator_validation_follows_the_documented_table(v: dict[str, Any]) -> None:
    from runflow_nb.emulator.catalog import model_detail
    from runflow_nb.emulator.images import decode_image as _decode_image
    from runflow_nb.emulator.rules import page_rules
    from runflow_nb.specs import REFERENCE_TO_VIDEO as spec

    image_rules = page_rules(model_detail(spec.model)).images

    expected = documented_refusals(v)
    wire = {k: val for k, val in v.items() if k != "images" and val is not None}
    _clean, issues = validate_input(wire, n_images=len(v["images"]))
    refused = {i.field for i in issues}
    if not DOC_IMAGES[0] <= len(v["images"]) <= DOC_IMAGES[1]:
        refused.add("image_urls")  # the count is checked where the URLs are resolved
    refused |= {f"image_urls[{i}]" for i, k in enumerate(v["images"][: DOC_IMAGES[1]])
                if isinstance(_decode_image(IMAGES[k][0], f"image_urls[{i}]", image_rules), list)}
    assert refused == expected, (v, issues)


@pytest.mark.parametrize("n", range(1, 10))
def test_every_character_tag_up_to_nine_is_accepted_with_enough_images(n: int) -> None:
    """Each tag character1…character9 is accepted with n images, and refused with one image fewer."""
    prompt = f"character{n} leads the herd"
    req = build(prompt=prompt, images=[GOOD] * n)
    assert req.to_input()["prompt"] == prompt and len(req.to_input()["image_urls"]) == n
    _clean, issues = validate_input({"prompt": prompt}, n_images=n)
    assert not issues
    if n > 1:
        with pytest.raises(ValidationError) as exc:
            build(prompt=prompt, images=[GOOD] * (n - 1))
        assert fields_of(exc) == ["prompt"] and f"character{n}" in str(exc.value)
