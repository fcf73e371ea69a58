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
from runflow_nb.simulator import validate_input


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
    ({"images": []}, "image_urls", "at least 1"),
    ({"images": [GOOD] * 10}, "image_urls", "at most 9"),
    ({"images": [png((399, 800))]}, "image_urls[0]", "400 px"),
    ({"images": [png((800, 600), "GIF", "L")]}, "image_urls[0]", "GIF"),
    ({"images": [png((800, 600), "BMP")]}, "image_urls[0]", "BMP"),
    ({"images": [b"not an image at all"]}, "image_urls[0]", "not an image"),
    ({"images": [GOOD[: len(GOOD) // 2]]}, "image_urls[0]", "truncated"),
    ({"images": ["ftp://host/a.png"]}, "image_urls[0]", "ftp"),
    ({"images": [3.5]}, "image_urls[0]", "float"),
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
    assert set(fields_of(exc)) >= {"prompt", "duration", "resolution", "aspect_ratio", "seed", "image_urls[0]"}
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


# -- the client's checks and the emulator's checks agree --------------------------------------------

IMAGES = {"ok": GOOD, "ok_jpeg": png((1024, 576), "JPEG"), "small": png((300, 500)), "gif": png((800, 600), "GIF", "L")}

values = st.fixed_dictionaries({
    "prompt": st.one_of(st.text(min_size=0, max_size=40), st.just("x" * 2501), st.just("a" * 2500),
                        st.sampled_from(["character1 runs", "character3 hides", "character9 and character1",
                                         "character12"]), st.none()),
    "images": st.lists(st.sampled_from(sorted(IMAGES)), min_size=0, max_size=10),
    "duration": st.one_of(st.integers(0, 20), st.floats(2, 16), st.booleans(), st.none(), st.just("5")),
    "resolution": st.sampled_from(["720p", "1080p", "1080P", "480p", None]),
    "aspect_ratio": st.sampled_from(["16:9", "9:16", "1:1", "4:3", "3:4", "2:1", None]),
    "seed": st.one_of(st.integers(-3, 2**31 + 3), st.none()),
    "enable_safety_checker": st.one_of(st.booleans(), st.none(), st.just(1)),
})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_client_and_emulator_validation_agree(v: dict[str, Any]) -> None:
    from runflow_nb.emulator.images import decode_image as _decode_image
    from runflow_nb.specs import REFERENCE_TO_VIDEO as spec

    try:
        req = build(**{**v, "images": [IMAGES[k] for k in v["images"]]})
        client_ok = True
    except ValidationError:
        client_ok = False
    # the same values on the wire, as the emulator sees them
    wire = {k: val for k, val in v.items() if k != "images" and val is not None}
    _clean, issues = validate_input(wire, n_images=len(v["images"]))
    count_ok = 1 <= len(v["images"]) <= 9
    images_ok = all(not isinstance(_decode_image(IMAGES[k], "x", spec), list) for k in v["images"])
    server_ok = not issues and count_ok and images_ok
    assert client_ok == server_ok, (v, issues)
    if client_ok:
        sent = req.to_input()
        _clean, issues = validate_input(sent, n_images=len(sent["image_urls"]))
        assert not issues
