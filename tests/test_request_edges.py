"""Request building across the family, at the edges where one model's rule must not leak into another's.

The limits are the API page's (``_family_doc``): image-to-video takes one image of ≥ 300 px in
JPEG/PNG/BMP/WEBP, video-edit's references are optional and named ``@Image1``…``@Image5``,
``audio_setting`` belongs to video-edit only, ``aspect_ratio`` is not an input of image-to-video.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from _family_doc import AUDIO_SETTINGS, I2V_MIN_SIDE
from PIL import Image

from runflow_nb.errors import Issue, ValidationError
from runflow_nb.request import VideoRequest, load_reference

EDIT_URL = "https://example.com/clip.mp4"


def encoded(size: tuple[int, int] = (800, 600), fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (1, 2, 3)).save(buf, fmt)
    return buf.getvalue()


GOOD = encoded()


def issues(**kw: object) -> list[str]:
    with pytest.raises(ValidationError) as exc:
        VideoRequest.build(**kw)  # type: ignore[arg-type]
    return [str(i) for i in exc.value.issues]


def test_plain_http_urls_are_references_too() -> None:
    ref = load_reference("http://example.com/horse.png")
    assert not isinstance(ref, list) and ref.kind == "url" and ref.url == "http://example.com/horse.png"
    ref = load_reference("HTTP://Example.com/horse.png")
    assert not isinstance(ref, list) and ref.kind == "url"


def test_an_unsupported_scheme_is_named_by_its_first_part() -> None:
    assert load_reference("s3://bucket/a://b.png") == [
        Issue("images[0]", "the s3:// scheme is not supported", "use a local path or an http(s) URL")]


def test_a_path_too_long_to_look_at_says_the_system_s_reason(tmp_path: Path) -> None:
    inside = tmp_path / ("x" * 300) / "a.png"
    assert load_reference(str(inside)) == [
        Issue("images[0]", f"cannot read {str(inside)!r}: File name too long", "check the path")]


def test_too_few_references_say_how_to_pass_them() -> None:
    assert issues(prompt="a horse", images=[]) == [
        "images: got 0 images; at least 1 is required — pass images=[path, ...]"]


def test_one_reference_given_alone_is_one_image_for_the_tags() -> None:
    assert len(VideoRequest.build(prompt="character1 x", images=GOOD).images) == 1
    assert issues(prompt="character2 x", images=GOOD) == [
        "prompt: names character2 but only 1 image is given — add a 2nd reference image or change the tag"]


def test_image_to_video_takes_its_image_by_image_and_by_its_own_rules() -> None:
    req = VideoRequest.build(model="i2v", image=GOOD, prompt="it gallops")
    assert len(req.images) == 1 and "image_url" in req.to_input()
    # its own limits, not reference-to-video's: 300 px is enough, BMP is accepted
    small = encoded((I2V_MIN_SIDE, I2V_MIN_SIDE))
    assert VideoRequest.build(model="i2v", image=small).images[0].width == I2V_MIN_SIDE
    assert VideoRequest.build(model="i2v", image=encoded(fmt="BMP")).images[0].format == "BMP"
    assert issues(model="i2v", image=GOOD, aspect_ratio="1:1") == [
        "aspect_ratio: is not an input of image-to-video — leave it out: the clip keeps the image's aspect ratio"]


@pytest.mark.parametrize("setting", AUDIO_SETTINGS)
def test_video_edit_takes_its_audio_setting(setting: str) -> None:
    req = VideoRequest.build(model="edit", prompt="make it night", video=EDIT_URL, video_duration_s=5,
                             audio_setting=setting)
    assert req.audio_setting == setting and req.to_input()["audio_setting"] == setting


def test_audio_setting_and_duration_are_refused_where_they_are_not_inputs() -> None:
    assert issues(prompt="character1 x", images=[GOOD], audio_setting="auto") == [
        "audio_setting: is not an input of reference-to-video — leave it out (inputs of reference-to-video: "
        "prompt, aspect_ratio, duration, resolution, seed, enable_safety_checker)"]
    assert issues(model="edit", prompt="make it night", video=EDIT_URL, video_duration_s=5, duration=5) == [
        "duration: is not an input of video-edit — leave it out: the edited clip is as long as the input video"]


def test_video_edit_tags_need_references_even_though_references_are_optional() -> None:
    assert VideoRequest.build(model="edit", prompt="make it night", video=EDIT_URL, video_duration_s=5).images == ()
    assert issues(model="edit", prompt="@Image1 waves", video=EDIT_URL, video_duration_s=5) == [
        "prompt: names @Image1 but only 0 images are given — add a 1st reference image or change the tag"]


@pytest.mark.parametrize(("n", "word"), [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (10, "10th"), (11, "11th"),
                                         (12, "12th"), (13, "13th"), (20, "20th"), (21, "21st"), (22, "22nd"),
                                         (101, "101st"), (111, "111th"), (112, "112th")])
def test_ordinals_in_messages(n: int, word: str) -> None:
    from runflow_nb._prompt_rules import _ordinal

    assert _ordinal(n) == word


def test_each_kind_of_reference_carries_its_pixels_hash_and_size(tmp_path: Path) -> None:
    import hashlib

    path = tmp_path / "ref.png"
    path.write_bytes(GOOD)
    by_bytes, by_path = load_reference(GOOD), load_reference(path)
    by_pil = load_reference(Image.new("RGB", (900, 700), (5, 6, 7)))
    by_url = load_reference("https://example.com/r.png")
    digest = hashlib.sha256(GOOD).hexdigest()
    assert not isinstance(by_bytes, list) and (by_bytes.sha256, by_bytes.width, by_bytes.height) == (digest, 800, 600)
    assert by_bytes.display == f"<PNG bytes 800x600 {digest[:12]}>" and by_bytes.data == GOOD
    assert not isinstance(by_path, list) and (by_path.sha256, by_path.width, by_path.height) == (digest, 800, 600)
    assert not isinstance(by_pil, list) and (by_pil.width, by_pil.height, by_pil.format) == (900, 700, "PNG")
    assert by_pil.data is not None and by_pil.sha256 == hashlib.sha256(by_pil.data).hexdigest()
    assert by_pil.display == f"<PIL image 900x700 {by_pil.sha256[:12]}>"
    assert not isinstance(by_url, list) and by_url.sha256 == hashlib.sha256(b"https://example.com/r.png").hexdigest()


def test_a_pil_image_below_the_limits_is_refused_before_it_is_encoded() -> None:
    assert load_reference(Image.new("RGB", (399, 800)), index=2) == [
        Issue("images[2]", "is 399×800; the shortest side must be at least 400 px",
              "use a larger image (720 px or more is advised)")]
    (issue,) = load_reference(Image.new("RGB", (300, 2000)), index=0, spec=__import__(
        "runflow_nb.specs", fromlist=["IMAGE_TO_VIDEO"]).IMAGE_TO_VIDEO)  # type: ignore[misc]
    assert issue.field == "image" and "aspect" in issue.message + issue.fix


def test_too_big_references_say_how_to_shrink_them(tmp_path: Path) -> None:
    over = GOOD + b"\0" * (10 * 10**6 + 1 - len(GOOD))
    (issue,) = load_reference(over)  # type: ignore[misc]
    assert issue == Issue("images[0]", "is 10,000,001 bytes; the limit is 10 MB (10,000,000 bytes)",
                          "re-encode it as JPEG or scale it down")
    path = tmp_path / "big.png"
    path.write_bytes(over)
    assert load_reference(path) == [issue]


def test_a_picture_with_too_many_pixels_is_refused_by_its_header(tmp_path: Path) -> None:
    from runflow_nb.specs import REFERENCE_TO_VIDEO

    cap = REFERENCE_TO_VIDEO.images.max_pixels
    side = int(cap ** 0.5) + 1
    buf = io.BytesIO()
    Image.new("1", (side, side)).save(buf, "PNG")  # tiny on disk, huge in memory
    (issue,) = load_reference(buf.getvalue(), index=4)  # type: ignore[misc]
    assert issue.field == "images[4]" and issue.message.startswith("has too many pixels to be a reference image")
    assert issue.message.endswith(f"the limit is {cap:,} pixels") and issue.fix == "scale it down to a normal photo size"


def test_a_built_request_keeps_every_input_it_was_given() -> None:
    req = VideoRequest.build(model="edit", prompt="make it night", video=EDIT_URL, video_duration_s=5,
                             audio_setting="origin", parent_run_id="run-parent-1")
    assert (req.model, req.video is not None, req.audio_setting, req.parent_run_id) == (
        "alibaba/happy-horse/video-edit", True, "origin", "run-parent-1")
    assert req.video is not None and req.video.url == EDIT_URL and req.duration == 5
    t2v = VideoRequest.build(model="t2v", prompt="a horse", duration=7, resolution="720p", seed=3)
    assert (t2v.model, t2v.duration, t2v.seed, t2v.images) == ("alibaba/happy-horse/text-to-video", 7, 3, ())
    blank = VideoRequest.build(model="i2v", image=GOOD, prompt="   ")
    assert blank.prompt is None  # an optional prompt left blank is no prompt
    kept = VideoRequest.build(model="i2v", image=GOOD, prompt=" it gallops ")
    assert kept.prompt == " it gallops "


def test_whole_number_inputs_given_as_numpy_or_float_integers_are_ints() -> None:
    import numpy as np

    req = VideoRequest.build(prompt="character1 x", images=[GOOD], duration=np.int64(4), seed=np.int32(9))
    assert type(req.duration) is int and type(req.seed) is int and (req.duration, req.seed) == (4, 9)
    assert VideoRequest.build(prompt="character1 x", images=[GOOD], resolution="720p").resolution == "720p"


def test_references_given_as_a_generator_are_read_once_and_all_counted() -> None:
    req = VideoRequest.build(prompt="character1 and character2", images=(b for b in [GOOD, encoded((900, 900))]))
    assert [r.width for r in req.images] == [800, 900]
