"""The family (text-to-video, image-to-video, video-edit): every documented limit is refused
client-side, naming the field and the fix, before any request is sent.

Limits come from ``_family_doc`` (transcribed from the API page), not from ``runflow_nb.specs``.
"""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx
import pytest
from _family_doc import (
    ASPECTS,
    AUDIO_SETTINGS,
    DOC_PAGE,
    DURATIONS,
    EDIT_MAX_REFS,
    EDIT_SECONDS,
    I2V_ASPECT,
    I2V_FORMATS,
    I2V_MIN_SIDE,
    MODELS,
    PAGE_PHRASES,
    PRICES,
    PROMPT_MAX,
    UPLOAD_MAX_BYTES,
)
from PIL import Image

import runflow_nb as rf
from runflow_nb.errors import ValidationError


def image_bytes(size: tuple[int, int] = (800, 600), fmt: str = "PNG", mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, (10, 120, 200) if mode == "RGB" else 128).save(buf, fmt)
    return buf.getvalue()


def write_video(path: Path, seconds: float, *, fmt: str = "mp4", fps: int = 4, size: tuple[int, int] = (64, 48),
                audio: bool = False) -> Path:
    """A small real video of ``seconds`` (few frames, so long clips stay quick to make)."""
    import av
    import numpy as np

    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        astream = out.add_stream("aac", rate=48000, layout="stereo") if audio else None
        for i in range(round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(np.full((size[1], size[0], 3), (i * 9) % 255, np.uint8), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        if astream is not None:
            n = round(seconds * 48000)
            tone = (0.2 * np.sin(np.arange(n) * 2 * np.pi * 440 / 48000)).astype(np.float32)
            samples = np.stack([tone, tone])
            for start in range(0, n, 1024):
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, start:start + 1024]),
                                                format="fltp", layout="stereo")
                af.sample_rate, af.pts, af.time_base = 48000, start, Fraction(1, 48000)
                out.mux(astream.encode(af))
            out.mux(astream.encode(None))
    return path


class _NoNetwork:
    """A transport that records every request (and answers 500): the tests assert it saw none."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(500, json={"code": "INTERNAL_ERROR", "message": "should not be called"})


@pytest.fixture
def guarded() -> tuple[rf.Client, _NoNetwork]:
    seen = _NoNetwork()
    client = rf.Client(api_key="rf_test_family", base_url="http://api.runflow.invalid", backend="runflow",
                       transport=httpx.MockTransport(seen), max_retries=0)
    return client, seen


def refused(client: rf.Client, seen: _NoNetwork, **inputs: Any) -> ValidationError:
    with pytest.raises(ValidationError) as exc:
        client.generate(**inputs)
    assert seen.requests == [], "a refused request reached the network"
    for issue in exc.value.issues:
        assert issue.fix, f"no fix given for {issue}"
    return exc.value


# -- the oracle still matches the page -----------------------------------------------------------

def test_the_transcribed_limits_are_what_the_page_says() -> None:
    if not DOC_PAGE.exists():
        pytest.skip(f"{DOC_PAGE} is not beside the checkout")
    page = DOC_PAGE.read_text(encoding="utf-8")
    for phrase in PAGE_PHRASES:
        assert phrase in page, phrase


def test_every_model_of_the_family_is_known_by_id_and_alias() -> None:
    from runflow_nb.specs import get_spec

    for alias, model in MODELS.items():
        assert get_spec(alias).model == model
        assert get_spec(model).model == model
        assert get_spec(model.split("/", 1)[1]).model == model  # the model page's short path


@pytest.mark.parametrize("alias", sorted(PRICES))
@pytest.mark.parametrize("resolution", ["720p", "1080p"])
def test_each_model_is_priced_from_its_own_row(alias: str, resolution: str, tmp_path: Path) -> None:
    per_s = PRICES[alias][0 if resolution == "720p" else 1]
    if alias == "edit":
        clip = write_video(tmp_path / "c.mp4", 7)
        req = rf.VideoRequest.build(model=alias, prompt="make it night", video=clip, resolution=resolution)
        assert req.estimate_usd() == pytest.approx(round(per_s * 7, 2))
        return
    kw: dict[str, Any] = {"images": [image_bytes()]} if alias in ("r2v", "i2v") else {}
    req = rf.VideoRequest.build(model=alias, prompt="a horse trots", duration=6, resolution=resolution, **kw)
    assert req.estimate_usd() == pytest.approx(round(per_s * 6, 2))


# -- text-to-video --------------------------------------------------------------------------------

@pytest.mark.parametrize(("inputs", "field", "needle"), [
    ({"images": [image_bytes()]}, "images", "takes no images"),
    ({"duration": DURATIONS[0] - 1}, "duration", "out of range"),
    ({"duration": DURATIONS[1] + 1}, "duration", "out of range"),
    ({"aspect_ratio": "2:1"}, "aspect_ratio", "not allowed"),
    ({"resolution": "480p"}, "resolution", "not allowed"),
    ({"prompt": None}, "prompt", "required"),
    ({"prompt": "x" * (PROMPT_MAX + 1)}, "prompt", f"limit is {PROMPT_MAX}"),
    ({"enable_safety_checker": False}, "enable_safety_checker", "not an input"),
])
def test_text_to_video_limits_are_refused_before_sending(guarded: Any, inputs: dict[str, Any], field: str,
                                                          needle: str) -> None:
    client, seen = guarded
    err = refused(client, seen, **{"model": "text-to-video", "prompt": "a horse on a beach", **inputs})
    assert field in err.fields
    assert any(needle in i.message for i in err.issues if i.field == field), err


def test_each_spec_lists_the_documented_inputs() -> None:
    from _family_doc import EDIT_INPUTS, I2V_INPUTS, T2V_INPUTS

    from runflow_nb.specs import get_spec

    assert set(get_spec("t2v").input_names) == set(T2V_INPUTS)
    assert set(get_spec("i2v").input_names) == set(I2V_INPUTS)
    assert set(EDIT_INPUTS) <= set(get_spec("edit").input_names) <= {*EDIT_INPUTS, "resolution", "seed"}


def test_text_to_video_sends_only_its_documented_inputs() -> None:
    from _family_doc import T2V_INPUTS

    req = rf.VideoRequest.build(model="t2v", prompt="a horse", seed=3, aspect_ratio=ASPECTS[1], duration=3,
                                resolution="720p")
    assert set(req.to_input()) == set(T2V_INPUTS)


# -- image-to-video -------------------------------------------------------------------------------

@pytest.mark.parametrize(("inputs", "field", "needle"), [
    ({"images": None}, "image", "required"),
    ({"images": [image_bytes(), image_bytes()]}, "image", "exactly one"),
    ({"images": [image_bytes((I2V_MIN_SIDE - 1, 600))]}, "image", f"at least {I2V_MIN_SIDE} px"),
    ({"images": [image_bytes((800, I2V_MIN_SIDE - 1))]}, "image", f"at least {I2V_MIN_SIDE} px"),
    ({"images": [image_bytes((400, 1040))]}, "image", "aspect ratio"),  # 1:2.6
    ({"images": [image_bytes((1040, 400))]}, "image", "aspect ratio"),  # 2.6:1
    ({"images": [image_bytes((800, 600), "GIF", "L")]}, "image", "accepted formats"),
    ({"aspect_ratio": "16:9"}, "aspect_ratio", "not an input"),
    ({"duration": DURATIONS[1] + 1}, "duration", "out of range"),
])
def test_image_to_video_limits_are_refused_before_sending(guarded: Any, inputs: dict[str, Any], field: str,
                                                           needle: str) -> None:
    client, seen = guarded
    err = refused(client, seen, **{"model": "i2v", "prompt": "it comes alive", "images": [image_bytes()], **inputs})
    assert field in err.fields, err
    assert any(needle in i.message for i in err.issues if i.field == field), err


@pytest.mark.parametrize("size", [(I2V_MIN_SIDE, I2V_MIN_SIDE), (I2V_MIN_SIDE, round(I2V_MIN_SIDE / I2V_ASPECT[0])),
                                  (round(I2V_MIN_SIDE * I2V_ASPECT[1]), I2V_MIN_SIDE)])
@pytest.mark.parametrize("fmt", I2V_FORMATS)
def test_image_to_video_takes_the_documented_edges(size: tuple[int, int], fmt: str) -> None:
    req = rf.VideoRequest.build(model="i2v", image=image_bytes(size, fmt), duration=3, resolution="720p", seed=1)
    body = req.to_input()
    assert isinstance(body["image_url"], str) and body["image_url"].startswith("data:image/")
    assert "image_urls" not in body and "aspect_ratio" not in body and "prompt" not in body


# -- video-edit -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    lo, hi = EDIT_SECONDS
    return {
        "ok": write_video(d / "ok.mp4", lo + 1, audio=True),
        "mov": write_video(d / "ok.mov", lo, fmt="mov"),
        "short": write_video(d / "short.mp4", lo - 1),
        "long": write_video(d / "long.mp4", hi + 2, fps=1),
        "longest": write_video(d / "longest.mp4", hi, fps=1),
        "mkv": write_video(d / "clip.mkv", lo + 1, fmt="matroska"),
    }


def sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as fh:
        fh.truncate(size)
    return path


@pytest.mark.parametrize(("inputs", "field", "needle"), [
    ({"video": None}, "video_url", "required"),
    ({"video": "short"}, "video_url", f"must be {EDIT_SECONDS[0]}–{EDIT_SECONDS[1]} s"),
    ({"video": "long"}, "video_url", f"must be {EDIT_SECONDS[0]}–{EDIT_SECONDS[1]} s"),
    ({"video": "mkv"}, "video_url", "not an MP4 or MOV"),
    ({"images": [image_bytes()] * (EDIT_MAX_REFS + 1)}, "images", f"at most {EDIT_MAX_REFS}"),
    ({"prompt": "@Image3 waves", "images": [image_bytes()] * 2}, "prompt", "only 2 images"),
    ({"prompt": "@Image6 waves", "images": [image_bytes()] * 5}, "prompt", "tags run from @Image1 to @Image5"),
    ({"audio_setting": "keep"}, "audio_setting", "not allowed"),
    ({"duration": 5}, "duration", "not an input"),
    ({"prompt": None}, "prompt", "required"),
])
def test_video_edit_limits_are_refused_before_sending(guarded: Any, clips: dict[str, Path], inputs: dict[str, Any],
                                                      field: str, needle: str) -> None:
    client, seen = guarded
    values = {"model": "video-edit", "prompt": "make it night", "video": clips["ok"], **inputs}
    if isinstance(values["video"], str):
        values["video"] = clips[values["video"]]
    err = refused(client, seen, **values)
    assert field in err.fields, err
    assert any(needle in i.message for i in err.issues if i.field == field), err


def test_a_local_clip_above_the_upload_cap_must_be_passed_by_url(guarded: Any, tmp_path: Path) -> None:
    client, seen = guarded
    big = sparse(tmp_path / "big.mp4", UPLOAD_MAX_BYTES + 1)
    err = refused(client, seen, model="edit", prompt="make it night", video=big)
    (issue,) = err.issues
    assert issue.field == "video_url" and "50 MiB" in issue.message and "URL" in issue.fix
    huge = sparse(tmp_path / "huge.mp4", 105 * 2**20)  # above 100 MB by either reading
    (issue,) = refused(client, seen, model="edit", prompt="make it night", video=huge).issues
    assert issue.field == "video_url" and "100 MB" in issue.message


def test_video_edit_takes_the_documented_edges(clips: dict[str, Path]) -> None:
    for name in ("ok", "mov", "longest"):
        for audio in AUDIO_SETTINGS:
            req = rf.VideoRequest.build(model="edit", prompt="@Image1 and @Image5 dance", video=clips[name],
                                        images=[image_bytes()] * EDIT_MAX_REFS, audio_setting=audio, seed=2)
            body = req.to_input(video_url="https://cdn.example/clip.mp4")
            assert body["video_url"] == "https://cdn.example/clip.mp4"
            assert len(body["reference_image_urls"]) == EDIT_MAX_REFS and body["audio_setting"] == audio
    assert rf.VideoRequest.build(model="edit", prompt="x", video=clips["longest"]).duration == EDIT_SECONDS[1]


def test_a_video_url_is_passed_as_given_and_priced_at_its_known_length() -> None:
    url = "https://cdn.example/clip.mp4"
    req = rf.VideoRequest.build(model="edit", prompt="make it night", video=url, resolution="720p")
    assert req.to_input()["video_url"] == url
    assert req.estimate_usd() == pytest.approx(PRICES["edit"][0] * EDIT_SECONDS[1])  # unknown: the longest
    known = rf.VideoRequest.build(model="edit", prompt="make it night", video=url, resolution="720p",
                                  video_duration_s=4.0)
    assert known.estimate_usd() == pytest.approx(PRICES["edit"][0] * 4)


# -- studies across models -------------------------------------------------------------------------

def test_a_cross_model_grid_sends_each_model_only_what_it_takes(tmp_path: Path) -> None:
    refs = [image_bytes(), image_bytes((640, 640))]
    plan = rf.grid(model=["t2v", "i2v", "r2v"], prompt="character1 trots", references=refs, seed=[1, 2],
                   duration=3, resolution="720p", aspect_ratio="9:16")
    by_model: dict[str, list[dict[str, Any]]] = {}
    for req in plan:
        by_model.setdefault(req.model, []).append(req.to_input())
    assert sorted(by_model) == sorted(MODELS[k] for k in ("t2v", "i2v", "r2v"))
    assert all(len(v) == 2 for v in by_model.values())
    for body in by_model[MODELS["t2v"]]:
        assert "image_urls" not in body and "image_url" not in body and body["aspect_ratio"] == "9:16"
    for body in by_model[MODELS["i2v"]]:
        assert body["image_url"] == rf.VideoRequest.build(model="i2v", image=refs[0]).to_input()["image_url"]
        assert "aspect_ratio" not in body and "image_urls" not in body
    for body in by_model[MODELS["r2v"]]:
        assert len(body["image_urls"]) == 2 and body["aspect_ratio"] == "9:16"
    est = plan.estimate()
    assert est.usd == pytest.approx(6 * 3 * PRICES["t2v"][0])
    assert set(est.by_model) == {"text-to-video", "image-to-video", "reference-to-video"}
    assert len(set(plan.keys())) == 6  # the model is part of every run key


def test_image_sets_that_start_alike_give_image_to_video_one_run_compared_by_content() -> None:
    first, second, third = image_bytes(), image_bytes((640, 640)), image_bytes((700, 500))
    # two reference sets with the same first picture, as two distinct (equal) objects each time
    plan = rf.grid(model=["i2v", "r2v"], prompt="character1 trots", seed=[1],
                   references=[[bytes(first), second], [bytearray(first), third]], duration=3, resolution="720p")
    counts: dict[str, int] = {}
    for req in plan:
        counts[req.model] = counts.get(req.model, 0) + 1
    assert counts == {MODELS["i2v"]: 1, MODELS["r2v"]: 2}
    assert plan.estimate().runs == 3


def test_a_grid_prices_each_model_at_its_own_rate(tmp_path: Path) -> None:
    clip = write_video(tmp_path / "c.mp4", 4)
    plan = rf.grid(model=["t2v", "edit"], prompt="make it night", video=clip, duration=5, resolution="1080p",
                   seed=1)
    assert plan.estimate().by_model == {"text-to-video": round(PRICES["t2v"][1] * 5, 2),
                                        "video-edit": round(PRICES["edit"][1] * 4, 2)}


def test_a_parameter_no_listed_model_takes_is_refused() -> None:
    with pytest.raises(ValidationError) as exc:
        rf.grid(model="i2v", prompt="x", references=[image_bytes()], aspect_ratio="16:9")
    assert exc.value.fields == ["aspect_ratio"]
    with pytest.raises(ValidationError) as exc:
        rf.grid(model="t2v", prompt="x", references=[image_bytes()])
    assert exc.value.fields == ["images"]


# -- the form's model picker ------------------------------------------------------------------------

def test_the_form_re_shapes_itself_for_each_model(tmp_path: Path) -> None:
    pytest.importorskip("ipywidgets")
    small = tmp_path / "small.png"
    small.write_bytes(image_bytes((350, 350)))  # under reference-to-video's 400 px, fine for image-to-video
    form = rf.GenerateForm(model="r2v")
    form.controls["prompt"].value = "character1 trots"
    form.controls["resolution"].value = "720p"
    form.add_image(small)
    assert form.request is None and "400 px" in form.errors["image_urls"].value

    form.model_picker.value = MODELS["t2v"]  # what choosing in the dropdown does
    assert form.spec.model == MODELS["t2v"]
    assert "enable_safety_checker" not in form.controls and form.controls["prompt"].value == "character1 trots"
    assert form.request is not None and form.request.to_input().keys() == {"prompt", "aspect_ratio", "duration",
                                                                           "resolution"}
    assert f"&#36;{PRICES['t2v'][0]:.2f}/s" in form.cost.value  # MathJax-safe money

    form.set_model("i2v")
    assert "aspect_ratio" not in form.controls
    assert form.request is not None and form.request.images[0].width == 350  # re-checked: fine here
    assert "image_url" in form.request.to_input()

    clip = write_video(tmp_path / "clip.mp4", 4)
    form.set_model("video-edit")
    assert "duration" not in form.controls and "audio_setting" in form.controls
    assert form.request is None and "required" in form.errors["video_url"].value
    form.controls["prompt"].value = "@Image1 waves at night"
    form.video_box.value = str(clip)
    assert form.request is not None, form.issues
    assert form.request.estimate_usd() == pytest.approx(4 * PRICES["edit"][0])
    assert "@Image1" in form.hints.value and "video=" in form.to_code()


# -- the CLI ------------------------------------------------------------------------------------------

def test_the_cli_sweeps_across_models_and_refuses_what_a_model_does_not_take(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from runflow_nb.cli import main

    ref = tmp_path / "ref.png"
    ref.write_bytes(image_bytes())
    code = main(["sweep", "--experiment", "cli-family", "--model", "t2v,i2v", "--prompt", "a horse trots",
                 "--image", str(ref), "--seeds", "1,2", "--duration", "3", "--resolution", "720p", "--dry-run",
                 "--store", str(tmp_path / "s.sqlite")])
    out = capsys.readouterr().out
    assert code == 0 and "4 runs" in out and "text-to-video: $0.84" in out and "image-to-video: $0.84" in out
    assert main(["generate", "--model", "t2v", "--prompt", "a horse", "--image", str(ref)]) == 2
    err = capsys.readouterr().err
    assert "images: text-to-video takes no images" in err and "nothing was sent" in err


def test_a_cross_model_plan_is_ordered_for_a_balanced_budget_cut() -> None:
    from runflow_nb.plan import balanced_order

    plan = rf.grid(model=["t2v", "i2v", "r2v"], prompt="character1 trots", references=[image_bytes()],
                   seed=[1, 2, 3], duration=3, resolution="720p")
    order = balanced_order(list(plan))
    assert sorted(order) == list(range(9))
    first_round = {plan[i].model for i in order[:3]}
    assert first_round == {MODELS["t2v"], MODELS["i2v"], MODELS["r2v"]}  # a cut after 3 runs keeps every model
