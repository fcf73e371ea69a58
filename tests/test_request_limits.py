"""Each documented limit at its edges: the last accepted value, the first refused one, the field named.

The limits come from the reference-to-video table of the API page (``../shared/docs/runflow-api.md``),
transcribed in :mod:`_family_doc` (checked against the page by ``test_family.py``), never from
``runflow_nb.specs``: a wrong limit in the specs fails here. Every refused value must be refused
by the client (before anything is sent) *and* by the service-side checks the simulator and the
emulator apply (:mod:`runflow_nb.server_checks`), each naming the field and nothing else.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from _family_doc import (
    ASPECTS,
    DURATIONS,
    PROMPT_MAX,
    R2V_FORMATS,
    R2V_IMAGES,
    R2V_MAX_BYTES,
    R2V_MIN_SIDE,
    RESOLUTIONS,
    SEED_MAX,
)
from PIL import Image

from runflow_nb.errors import ValidationError
from runflow_nb.request import VideoRequest, load_reference
from runflow_nb.server_checks import validate_input


def encoded(size: tuple[int, int] = (800, 600), fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buf, fmt)
    return buf.getvalue()


GOOD = encoded()
FIELD_OF = {"duration": "duration", "seed": "seed", "resolution": "resolution", "aspect_ratio": "aspect_ratio",
            "enable_safety_checker": "enable_safety_checker", "prompt": "prompt"}


def build(**kw: Any) -> VideoRequest:
    kw.setdefault("prompt", "character1 trots through a meadow")
    kw.setdefault("images", [GOOD])
    return VideoRequest.build(**kw)


def refused_fields(**kw: Any) -> list[str]:
    with pytest.raises(ValidationError) as exc:
        build(**kw)
    assert str(exc.value).startswith("1 problem with the request (nothing was sent)") or len(exc.value.issues) > 1
    return exc.value.fields


def server_fields(wire: dict[str, Any], n_images: int = 1) -> list[str]:
    _clean, issues = validate_input({"prompt": "character1 trots", **wire}, n_images=n_images)
    return [i.field for i in issues]


# --- scalars: accepted at the edge, refused one step past it, by the client and the server -----------

EDGES = [
    ("duration", DURATIONS[0], DURATIONS[0] - 1),
    ("duration", DURATIONS[1], DURATIONS[1] + 1),
    ("seed", 0, -1),
    ("seed", SEED_MAX, SEED_MAX + 1),
]


@pytest.mark.parametrize(("name", "ok", "bad"), EDGES)
def test_numeric_limits_at_their_edges(name: str, ok: int, bad: int) -> None:
    req = build(**{name: ok})
    assert getattr(req, name) == ok and req.to_input()[name] == ok
    assert server_fields({name: ok}) == []
    assert refused_fields(**{name: bad}) == [name]
    assert server_fields({name: bad}) == [name]


def test_every_duration_in_the_documented_range_is_priced_per_second() -> None:
    for seconds in range(DURATIONS[0], DURATIONS[1] + 1):
        assert build(duration=seconds, resolution="720p").estimate_usd() == pytest.approx(0.14 * seconds)
        assert build(duration=seconds, resolution="1080p").estimate_usd() == pytest.approx(0.28 * seconds)


@pytest.mark.parametrize(("name", "allowed", "refused"), [
    ("resolution", RESOLUTIONS, ["480p", "4k", "720P", "1080", ""]),
    ("aspect_ratio", ASPECTS, ["21:9", "16:10", "2:1", "16/9", "1:1 "]),
])
def test_enums_take_exactly_the_documented_values(name: str, allowed: tuple[str, ...], refused: list[str]) -> None:
    for value in allowed:
        assert getattr(build(**{name: value}), name) == value
        assert server_fields({name: value}) == []
    for value in refused:
        assert refused_fields(**{name: value}) == [name], value
        assert server_fields({name: value}) == [name], value


@pytest.mark.parametrize("bad", [3.5, "5", True, None.__class__])
def test_a_duration_must_be_a_whole_number(bad: Any) -> None:
    assert refused_fields(duration=bad) == ["duration"]


def test_the_safety_checker_takes_booleans_only() -> None:
    assert build(enable_safety_checker=False).enable_safety_checker is False
    assert refused_fields(enable_safety_checker="no") == ["enable_safety_checker"]
    assert server_fields({"enable_safety_checker": 1}) == ["enable_safety_checker"]


def test_the_documented_defaults_apply_when_a_field_is_left_out() -> None:
    req = build()
    assert (req.duration, req.resolution, req.aspect_ratio, req.enable_safety_checker) == (5, "1080p", "16:9", True)
    clean, issues = validate_input({"prompt": "character1"}, n_images=1)
    assert not issues and (clean["duration"], clean["resolution"], clean["aspect_ratio"]) == (5, "1080p", "16:9")


# --- the prompt -----------------------------------------------------------------------------------------

def test_the_prompt_length_limit_at_its_edge() -> None:
    edge = "character1 " + "y" * (PROMPT_MAX - len("character1 "))
    assert len(build(prompt=edge).prompt or "") == PROMPT_MAX
    assert server_fields({"prompt": edge}) == []
    assert refused_fields(prompt=edge + "y") == ["prompt"]
    assert server_fields({"prompt": edge + "y"}) == ["prompt"]


@pytest.mark.parametrize("prompt", ["", "   ", "\n\t"])
def test_an_empty_prompt_is_refused_on_both_sides(prompt: str) -> None:
    assert refused_fields(prompt=prompt) == ["prompt"]
    assert server_fields({"prompt": prompt}) == ["prompt"]


def test_a_prompt_that_is_not_utf8_is_refused_on_both_sides() -> None:
    bad = "character1 \ud800 trots"
    assert refused_fields(prompt=bad) == ["prompt"]
    assert server_fields({"prompt": bad}) == ["prompt"]


def test_a_required_prompt_is_required() -> None:
    assert refused_fields(prompt=None) == ["prompt"]
    _clean, issues = validate_input({}, n_images=1)
    assert [i.field for i in issues] == ["prompt"]


# --- images: count, tags, size, formats -------------------------------------------------------------------

def test_nine_references_with_character9_are_accepted_and_ten_are_refused() -> None:
    lo, hi = R2V_IMAGES
    tags = " ".join(f"character{n}" for n in range(1, hi + 1))
    req = build(prompt=f"{tags} gather", images=[GOOD] * hi)
    assert len(req.images) == hi and len(req.to_input()["image_urls"]) == hi
    assert server_fields({"prompt": f"{tags} gather"}, n_images=hi) == []
    fields = refused_fields(prompt="character9 leads", images=[GOOD] * (hi + 1))
    assert fields == ["images"]
    with pytest.raises(ValidationError, match=f"at most {hi}"):
        build(images=[GOOD] * (hi + 1))
    assert refused_fields(prompt="a horse trots", images=[]) == ["images"]  # at least one
    assert lo == 1 and len(build(images=[GOOD] * lo).images) == lo


@pytest.mark.parametrize("n", [1, 5, 9])
def test_character_n_needs_n_images(n: int) -> None:
    prompt = f"character{n} leads the herd"
    assert len(build(prompt=prompt, images=[GOOD] * n).images) == n
    assert server_fields({"prompt": prompt}, n_images=n) == []
    if n > 1:
        assert refused_fields(prompt=prompt, images=[GOOD] * (n - 1)) == ["prompt"]
        assert server_fields({"prompt": prompt}, n_images=n - 1) == ["prompt"]


@pytest.mark.parametrize("tag", ["character10", "character0", "character01", "character\u0663"])
def test_tags_outside_character1_to_character9_are_refused_on_both_sides(tag: str) -> None:
    assert refused_fields(prompt=f"{tag} waves", images=[GOOD] * 9) == ["prompt"]
    assert server_fields({"prompt": f"{tag} waves"}, n_images=9) == ["prompt"]


def test_the_error_names_the_tag_and_says_how_many_images_are_given() -> None:
    with pytest.raises(ValidationError) as exc:
        build(prompt="character1 and character3", images=[GOOD, GOOD])
    (issue,) = exc.value.issues
    assert issue.field == "prompt" and "character3" in issue.message and "2 images are given" in issue.message
    assert "3rd" in issue.fix


def test_the_shortest_side_limit_at_its_edge() -> None:
    for size in ((R2V_MIN_SIDE, R2V_MIN_SIDE), (R2V_MIN_SIDE, 3 * R2V_MIN_SIDE)):
        assert build(images=[encoded(size)]).images[0].width == size[0]
    for size in ((R2V_MIN_SIDE - 1, 800), (800, R2V_MIN_SIDE - 1)):
        assert refused_fields(images=[GOOD, encoded(size)]) == ["images[1]"]


@pytest.mark.parametrize("fmt", R2V_FORMATS)
def test_every_documented_format_is_accepted(fmt: str) -> None:
    ref = load_reference(encoded(fmt=fmt))
    assert not isinstance(ref, list) and ref.format == fmt


@pytest.mark.parametrize("fmt", ["BMP", "GIF", "TIFF"])
def test_other_formats_are_refused_with_the_image_named(fmt: str) -> None:
    assert refused_fields(images=[GOOD, GOOD, encoded(fmt=fmt)]) == ["images[2]"]


def test_the_size_limit_at_its_edge(tmp_path: Path) -> None:
    """"Max 10 MB each": exactly 10 MB is sent; a byte more is refused, from bytes and from a file."""
    padded = GOOD + b"\0" * (R2V_MAX_BYTES - len(GOOD))  # trailing bytes after the image's end
    assert len(padded) == R2V_MAX_BYTES
    ref = load_reference(padded)
    assert not isinstance(ref, list) and ref.size_bytes == R2V_MAX_BYTES
    over = padded + b"\0"
    issues = load_reference(over, index=3)
    assert isinstance(issues, list) and [i.field for i in issues] == ["images[3]"]
    assert "10 MB" in issues[0].message
    path = tmp_path / "big.png"
    path.write_bytes(over)
    assert refused_fields(images=[path]) == ["images[0]"]
    path.write_bytes(padded)
    assert build(images=[path]).images[0].size_bytes == R2V_MAX_BYTES


def test_several_problems_are_named_together_each_with_its_field() -> None:
    with pytest.raises(ValidationError) as exc:
        build(prompt="character2 " + "z" * PROMPT_MAX, images=[GOOD, encoded((100, 100))], duration=DURATIONS[1] + 1,
              resolution="4k", aspect_ratio="2:1", seed=-1)
    assert sorted(set(exc.value.fields)) == sorted(
        ["prompt", "images[1]", "duration", "resolution", "aspect_ratio", "seed"])
    assert all(i.fix for i in exc.value.issues)  # every problem says how to fix it


# --- where a reference comes from ---------------------------------------------------------------------------

def test_paths_that_cannot_be_references_are_named(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    cases = {str(tmp_path / "missing.png"): "no file at", str(tmp_path / "folder"): "is a folder, not an image",
             "/dev/null": "is not a regular file", "s3://bucket/a.png": "s3:// scheme is not supported",
             "https://": "is not a complete URL", "https://example.com/a b.png": "spaces or control",
             "data:image/png;base64,AAAA": "data: URIs are built by the toolkit"}
    for given, words in cases.items():
        issues = load_reference(given, index=2)
        assert isinstance(issues, list) and [i.field for i in issues] == ["images[2]"], given
        assert words in issues[0].message + issues[0].fix, (given, issues)


def test_a_file_url_and_a_home_relative_path_are_local_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ref.png").write_bytes(GOOD)
    monkeypatch.setenv("HOME", str(tmp_path))
    for given in (f"file://{tmp_path / 'ref.png'}", "~/ref.png", tmp_path / "ref.png"):
        ref = load_reference(given)
        assert not isinstance(ref, list) and ref.kind == "path" and ref.display == str(tmp_path / "ref.png")
    url = load_reference("  https://example.com/ref.png ")
    assert not isinstance(url, list) and url.kind == "url" and url.url == "https://example.com/ref.png"
