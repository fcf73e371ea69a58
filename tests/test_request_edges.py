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
        Issue("image_urls[0]", "the s3:// scheme is not supported", "use a local path or an http(s) URL")]


def test_a_path_too_long_to_look_at_says_the_system_s_reason(tmp_path: Path) -> None:
    inside = tmp_path / ("x" * 300) / "a.png"
    assert load_reference(str(inside)) == [
        Issue("image_urls[0]", f"cannot read {str(inside)!r}: File name too long", "check the path")]


def test_too_few_references_say_how_to_pass_them() -> None:
    assert issues(prompt="a horse", images=[]) == [
        "image_urls: got 0 images; at least 1 is required — pass images=[path, ...]"]


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
