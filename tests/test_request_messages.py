"""What a refused input is told: the field, what is wrong, and how to fix it, word for word.

A researcher reads these messages instead of the API page, so each is part of the contract: the
field as the API names it, the value or the limit that was broken, and a fix that can be acted on.
Reference images and input videos share one path/URL check (:mod:`runflow_nb._sources`) and say
the same about the same mistake; the prompt's rules are one (:mod:`runflow_nb._prompt_rules`) for
the client and the service-side checks.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from runflow_nb.errors import Issue, ValidationError
from runflow_nb.media.video_input import load_video
from runflow_nb.request import VideoRequest, load_reference
from runflow_nb.server_checks import validate_input
from runflow_nb.specs import VIDEO_EDIT


def encoded(size: tuple[int, int] = (800, 600), fmt: str = "PNG", mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, 128 if mode == "L" else (1, 2, 3)).save(buf, fmt)
    return buf.getvalue()


GOOD = encoded()
ANY_SOURCE = "pass a plain file path, image bytes, a PIL image or an http(s) URL"
NO_FILE_FIX = "check the path (relative paths start at the notebook's folder)"


def issues_of(**kw: Any) -> list[str]:
    kw.setdefault("prompt", "character1 runs")
    kw.setdefault("images", [GOOD])
    with pytest.raises(ValidationError) as exc:
        VideoRequest.build(**kw)
    return [str(i) for i in exc.value.issues]


@pytest.mark.parametrize(("given", "message", "fix"), [
    ("/nonexistent/x.png", "no file at '/nonexistent/x.png'", NO_FILE_FIX),
    ("/dev/null", "'/dev/null' is not a regular file", "name an image file"),
    ("s3://b/x.png", "the s3:// scheme is not supported", "use a local path or an http(s) URL"),
    ("https://", "'https://' is not a complete URL", "give a full http(s) URL with a host"),
    ("https://x.com/a b.png", "the URL contains spaces or control characters", "percent-encode the URL"),
    ("https://x.com/a\x01b.png", "the URL contains spaces or control characters", "percent-encode the URL"),
    ("https://x.com/a\x1fb.png", "the URL contains spaces or control characters", "percent-encode the URL"),
    ("https://x.com/a\x7fb.png", "the URL contains spaces or control characters", "percent-encode the URL"),
    ("https://x.com:99999/a.png", "cannot be used as a reference (ValueError: Port out of range 0-65535)",
     ANY_SOURCE),
    ("https://[::1/a.png", "cannot be used as a reference (ValueError: Invalid IPv6 URL)", ANY_SOURCE),
    ("data:image/png;base64,AA", "data: URIs are built by the toolkit", "pass the image bytes or a file path instead"),
    (5, "an int is not a reference image", "pass a file path, a PIL image, image bytes or an http(s) URL"),
    (encoded(fmt="GIF", mode="L"), "is GIF; accepted formats are JPEG, PNG and WEBP",
     "convert it, e.g. PIL.Image.open(p).convert('RGB').save('x.png')"),
    (encoded((100, 100)), "is 100×100; the shortest side must be at least 400 px",
     "use a larger image (720 px or more is advised)"),
    (b"not an image at all", "is not an image Pillow can read", "use a JPEG/PNG/WEBP file"),
    (GOOD[:200], "is a damaged or truncated image (image file is truncated)", "re-export the image"),
])
def test_each_unusable_reference_is_explained(given: Any, message: str, fix: str) -> None:
    assert load_reference(given, index=1) == [Issue("images[1]", message, fix)]


def test_a_folder_is_named_as_a_folder_for_images_and_videos(tmp_path: Path) -> None:
    folder = str(tmp_path)
    assert load_reference(folder) == [Issue("images[0]", f"{folder!r} is a folder, not an image",
                                            "name an image file inside it")]
    assert load_video(folder, rules=VIDEO_EDIT.video) == [Issue("video_url", f"{folder!r} is a folder, not a video",
                                                               "name a video file inside it")]


@pytest.mark.parametrize(("given", "message", "fix"), [
    ("/nonexistent/c.mp4", "no file at '/nonexistent/c.mp4'", NO_FILE_FIX),
    ("/dev/null", "'/dev/null' is not a regular file", "name a video file"),
    ("s3://b/c.mp4", "the s3:// scheme is not supported", "use a local path or an http(s) URL"),
    ("https://", "'https://' is not a complete URL", "give a full http(s) URL with a host"),
    ("https://x.com/c d.mp4", "the URL contains spaces or control characters", "percent-encode the URL"),
    (3, "an int is not a video", "pass a file path or an http(s) URL"),
    (None, "is required: the clip to edit", "pass video='clip.mp4' or an http(s) URL"),
])
def test_each_unusable_input_video_is_explained_the_same_way(given: Any, message: str, fix: str) -> None:
    assert load_video(given, rules=VIDEO_EDIT.video) == [Issue("video_url", message, fix)]


def test_a_path_that_cannot_be_looked_at_says_why(tmp_path: Path) -> None:
    inside = tmp_path / ("x" * 300) / "a.png"  # a name too long for the file system
    (issue,) = load_reference(str(inside))  # type: ignore[misc]
    assert issue.field == "images[0]" and issue.message.startswith(f"cannot read {str(inside)!r}: ")
    assert issue.fix == "check the path"


@pytest.mark.parametrize(("kw", "text"), [
    ({"duration": 2}, "duration: 2 is out of range — use 3–15"),
    ({"duration": 3.5}, "duration: must be a whole number, got 3.5 — use an int between 3 and 15"),
    ({"seed": -1}, "seed: -1 is out of range — use 0–2147483647"),
    ({"resolution": "720P"}, "resolution: '720P' is not allowed (did you mean '720p'?) — use one of '720p', '1080p'"),
    ({"aspect_ratio": "2:1"}, "aspect_ratio: '2:1' is not allowed — use one of '16:9', '9:16', '1:1', '4:3', '3:4'"),
    ({"enable_safety_checker": "no"}, "enable_safety_checker: must be True or False, got 'no' — pass a bool"),
    ({"prompt": "x" * 2501}, "prompt: is 2501 characters; the limit is 2500 — shorten it by 1 characters"),
    ({"prompt": None}, "prompt: is required — pass prompt=..."),
    ({"prompt": " "}, "prompt: is empty — describe the clip"),
    ({"prompt": "a \ud800"}, "prompt: contains characters that are not valid UTF-8 (lone surrogates) — "
                             "remove or replace them"),
    ({"images": None}, "images: at least one reference image is required — pass images=[path, ...]"),
    ({"images": [GOOD] * 10, "prompt": "a"}, "images: got 10 images; at most 9 are allowed — drop 1 of them"),
    ({"prompt": "character01 x"}, "prompt: 'character01' is not an image tag: tags are character1 … character9 in "
                                  "plain digits, without a leading zero — write e.g. character1"),
    ({"prompt": "character12 x"}, "prompt: names character12; tags run from character1 to character9 — renumber "
                                  "the tag to match an image"),
    ({"prompt": "character2 x"}, "prompt: names character2 but only 1 image is given — add a 2nd reference image "
                                 "or change the tag"),
    ({"prompt": "character3 x", "images": [GOOD, GOOD]}, "prompt: names character3 but only 2 images are given — "
                                                         "add a 3rd reference image or change the tag"),
    ({"video": "c.mp4"}, "video: reference-to-video takes no input video — use model='video-edit'"),
    ({"image": GOOD, "images": [GOOD]}, "image: pass either image= or images=, not both — keep one of them"),
    ({"model": "t2v", "images": [GOOD], "prompt": "a"},
     "images: text-to-video takes no images — leave images out, or use image-to-video / reference-to-video"),
    ({"model": "t2v", "images": None, "prompt": "a", "enable_safety_checker": True},
     "enable_safety_checker: is not an input of text-to-video — leave it out (inputs of text-to-video: prompt, "
     "aspect_ratio, duration, resolution, seed)"),
    ({"model": "i2v", "images": [GOOD, GOOD], "prompt": "a"},
     "image: got 2 images; image-to-video animates exactly one — pass one image (e.g. image=images[0]), or use "
     "reference-to-video"),
    ({"model": "i2v", "images": None, "prompt": "a"}, "image: an image is required — pass image=path"),
])
def test_each_refused_request_says_what_and_how_to_fix_it(kw: dict[str, Any], text: str) -> None:
    assert issues_of(**kw) == [text]


def test_an_unknown_model_is_refused_by_name() -> None:
    (text,) = issues_of(model="nope")
    assert text.startswith("model: unknown model 'nope'") and text.endswith("— pick one of the known models")


@pytest.mark.parametrize("ordinal", [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (9, "9th")])
def test_the_missing_image_is_named_by_its_ordinal(ordinal: tuple[int, str]) -> None:
    n, word = ordinal
    _clean, issues = validate_input({"prompt": f"character{n} x"}, n_images=n - 1)
    assert [i.fix for i in issues] == [f"add a {word} reference image or change the tag"]


def test_the_server_side_prompt_checks_say_the_same_as_the_client() -> None:
    for prompt in ("", "a \ud800", "character01 x", "character12 x", "character2 x"):
        _clean, issues = validate_input({"prompt": prompt}, n_images=1)
        with pytest.raises(ValidationError) as exc:
            VideoRequest.build(prompt=prompt, images=[GOOD])
        assert [str(i) for i in issues] == [str(i) for i in exc.value.issues], prompt
