"""What a stored run, a result and a path look like inline: the facts a researcher reads, by reference.

Read back by parsing the HTML (the same parser as the escaping tests), so the checks are about
what is shown — which video, which poster, which parameters and money, which link — not about
the exact markup.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from test_escaping import Markup, assert_inert

from runflow_nb.client import Result
from runflow_nb.request import VideoRequest
from runflow_nb.runs import Output, Run
from runflow_nb.views import display


def _video(markup: str) -> dict[str, str | None]:
    (video,) = [a for t, a in Markup(markup).elements if t == "video"]
    return video


def _text(markup: str) -> str:
    return " ".join("".join(Markup(markup).text).split())


def _links(markup: str) -> list[str]:
    return [str(a["href"]) for t, a in Markup(markup).elements if t == "a" and a.get("href")]


def _files(folder: Path) -> None:
    """The row's video (a stand-in) and a real JPEG poster, so the row has a clip to show."""
    from PIL import Image

    (folder / "clips").mkdir(exist_ok=True)
    (folder / "clips" / "r1.mp4").write_bytes(b"stand-in")
    Image.new("RGB", (720, 1280), (20, 90, 160)).save(folder / "clips" / "r1.jpg")


def _row(**over: Any) -> dict[str, Any]:
    row = {"run_id": "r1", "status": "succeeded", "prompt": "character1 gallops", "seed": 7, "duration": 5,
           "resolution": "720p", "aspect_ratio": "9:16", "cost_usd": 0.7, "rating": 4, "backend": "runflow",
           "video_path": "clips/r1.mp4", "poster_path": "clips/r1.jpg"}
    row.update(over)
    return row


def test_a_succeeded_row_shows_its_video_poster_parameters_cost_and_link(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _files(tmp_path)
    markup = display.row_html(_row(), width=320)
    assert_inert(markup, titles=["character1 gallops"])
    video = _video(markup)
    assert video["src"] == "clips/r1.mp4" and str(video["poster"]).startswith("data:image/jpeg;base64,")
    assert "controls" in video and "autoplay" not in video and "320px" in str(video["style"])
    assert "min(320px,202px)" in str(video["style"])  # a 9:16 clip narrows rather than growing tall
    text = _text(markup)
    for shown in ("character1 gallops", "seed 7", "dur 5 s", "res 720p", "ar 9:16", "cost $0.70", "rating 4"):
        assert shown in text, (shown, text)
    assert "est." not in text and "SIMULATED" not in text
    assert _links(markup) == ["clips/r1.mp4"]


def test_a_simulated_row_says_its_cost_is_an_estimate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _files(tmp_path)
    markup = display.row_html(_row(backend="simulator"))
    text = _text(markup)
    assert "SIMULATED" in text and "est. cost $0.70" in text and "$" not in markup  # &#36;: MathJax-safe


@pytest.mark.parametrize("missing", [None, math.nan, "nan", "NaN", "<NA>", ""])
def test_missing_values_are_left_out_not_shown_as_nan(missing: Any, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _files(tmp_path)
    markup = display.row_html(_row(rating=missing, cost_usd=missing, poster_path=missing, duration=None))
    text = _text(markup)
    assert "rating" not in text and "$" not in text and "dur" not in text and "nan" not in text.lower()
    assert "poster" not in _video(markup)
    assert "seed 7" in text


@pytest.mark.parametrize("video", [None, math.nan, ""])
def test_a_row_without_a_video_shows_its_status_and_reason_not_a_player(video: Any) -> None:
    for row in (_row(video_path=video), _row(status="failed", error_message="GENERATION_FAILED: no clip")):
        if row["status"] == "failed":
            row["video_path"] = "clips/r1.mp4"  # a failed run shows no player even with a path
        markup = display.row_html(row)
        assert not [t for t, _ in Markup(markup).elements if t == "video"]
        text = _text(markup)
        why = "video file missing" if row["status"] == "succeeded" else row["status"]
        assert why in text and "seed 7" in text and "character1 gallops" in text
    assert "GENERATION_FAILED: no clip" in _text(display.row_html(_row(status="failed",
                                                                       error_message="GENERATION_FAILED: no clip")))


def test_a_long_prompt_is_shortened_on_screen_and_whole_on_hover() -> None:
    prompt = "character1 " + "walks and " * 20
    markup = display.caption_html({}, prompt=prompt)
    (span,) = [a for t, a in Markup(markup).elements if t == "span" and "title" in a]
    assert span["title"] == prompt
    shown = _text(markup)
    assert shown.endswith("…") and len(shown) == 88 and prompt.startswith(shown[:-1])
    exact = "x" * 90  # at the limit: shown whole
    assert _text(display.caption_html({}, prompt=exact)) == exact


def test_caption_fields_keep_their_order_and_format_floats_as_money() -> None:
    markup = display.caption_html({"seed": 3, "cost": 1.4, "skip": None, "wall": "2.0 s"})
    assert _text(markup) == "seed 3 cost 1.40 wall 2.0 s"
    assert [t for t, _ in Markup(markup).elements] == ["b", "b", "b"]
    assert not _links(markup)


def test_video_html_sizes_and_ids() -> None:
    video = _video(display.video_html("a.mp4", width=200, element_id="v1"))
    assert video["src"] == "a.mp4" and video["id"] == "v1" and "200px" in str(video["style"])
    assert video["preload"] == "metadata" and "playsinline" in video and "poster" not in video
    assert "width:50%" in str(_video(display.video_html("a.mp4", width="50%"))["style"])
    markup = display.video_html("a.mp4", caption="<b>x</b>")
    assert [t for t, _ in Markup(markup).elements] == ["figure", "video", "figcaption", "b"]
    assert [t for t, _ in Markup(display.video_html("a.mp4")).elements] == ["figure", "video"]


def test_media_src_keeps_urls_and_makes_files_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for url in ("https://cdn.example.org/a.mp4?x=1", "http://h/a.mp4", "/files/a.mp4"):
        assert display.media_src(url) == url
    (tmp_path / "sub").mkdir()
    clip = tmp_path / "sub" / "my clip.mp4"
    assert display.media_src(clip, base=tmp_path) == "sub/my%20clip.mp4"
    monkeypatch.chdir(tmp_path / "sub")
    assert display.media_src(clip) == "my%20clip.mp4"
    assert unquote(display.media_src(clip, base=tmp_path / "sub" / "deeper")) == "../my clip.mp4"


def _result(tmp_path: Path, *, backend: str = "runflow", video: bool = True, cost: float | None = 0.7) -> Result:
    req = VideoRequest.build(prompt="character1 jumps", images=["https://cdn.example.org/h.png"], seed=9,
                             duration=5, resolution="720p")
    now = datetime.now(timezone.utc)
    path = tmp_path / "out.mp4" if video else None
    run = Run(id="run-abc", status="succeeded", output=Output(video_url="https://cdn.example.org/out.mp4"))
    return Result(run=run, request=req, video_path=path, video_sha256=None, size_bytes=None, seed=9,
                  submitted_at=now, completed_at=now, wall_s=12.34, queue_s=None, inference_ms=None, cost_usd=cost,
                  cost_estimate_usd=0.7, backend=backend, poster_path=tmp_path / "out.jpg" if video else None)


def test_a_result_shows_its_own_video_seed_wall_time_cost_and_run(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    from PIL import Image

    Image.new("RGB", (1280, 720)).save(tmp_path / "out.jpg")
    markup = display.result_html(_result(tmp_path))
    assert_inert(markup, titles=["character1 jumps"])
    video = _video(markup)
    assert video["src"] == "out.mp4" and str(video["poster"]).startswith("data:image/jpeg;base64,")
    assert "640px" in str(video["style"])
    text = _text(markup)
    for shown in ("seed 9", "wall 12.3 s", "cost $0.70", "run run-abc", "character1 jumps"):
        assert shown in text, (shown, text)
    assert 'title="Runflow run id run-abc"' in markup  # the id shown the way every view shows one
    assert "est." not in text and _links(markup) == ["out.mp4"]
    sim = _text(display.result_html(_result(tmp_path, backend="simulator")))
    assert "SIMULATED" in sim and "est. cost $0.70" in sim
    assert "cost" not in _text(display.result_html(_result(tmp_path, cost=None)))


def test_a_result_without_a_local_file_plays_from_its_output_url(tmp_path: Path) -> None:
    markup = display.result_html(_result(tmp_path, video=False))
    video = _video(markup)
    assert video["src"] == "https://cdn.example.org/out.mp4" and "poster" not in video
    assert _links(markup) == ["https://cdn.example.org/out.mp4"]


def test_show_renders_each_kind_by_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import IPython.display

    shown: list[Any] = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append(obj))
    monkeypatch.chdir(tmp_path)
    _files(tmp_path)
    display.show(_result(tmp_path))
    display.show(_row())
    display.show("clip.mp4")
    result, row, path = (x.data for x in shown)
    assert _video(result)["src"] == "out.mp4" and "run run-abc" in _text(result)
    assert _video(row)["src"] == "clips/r1.mp4" and "640px" in str(_video(row)["style"])
    # a stored run shows its local id in the same place and form as a result shows its one id
    assert re.search(r"\brun r1\b", _text(row)) and "Runflow run id" not in _text(result)
    assert _video(path)["src"] == "clip.mp4" and "640px" in str(_video(path)["style"]) and not _text(path)


def test_a_row_names_its_model_and_the_run_it_comes_from() -> None:
    text = _text(display.row_html(_row(model="alibaba/happy-horse/video-edit",
                                       parent_run_id="0192f3a4-b5c6-7d8e-9f00-112233445566")))
    assert "model video-edit" in text and "edit of 0192f3a4" in text and "0192f3a4-" not in text
    rerun = _text(display.row_html(_row(model="alibaba/happy-horse/text-to-video",
                                        parent_run_id="0192f3a4-b5c6-7d8e-9f00-112233445566")))
    assert "re-run of 0192f3a4" in rerun and "edit of" not in rerun  # a re-run or upscale is no edit
    plain = _text(display.row_html(_row()))
    assert "model" not in plain and "edit of" not in plain and "re-run of" not in plain


def test_a_row_without_a_message_or_prompt_shows_only_what_it_has(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    markup = display.row_html({"run_id": "r", "status": "error", "seed": 1})
    assert _text(markup) == "refused seed 1"  # status "error": the request was refused, not billed
    assert all(a["title"] == "" for t, a in Markup(markup).elements if "title" in a)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.mp4").write_bytes(b"stand-in")
    video = display.row_html({"run_id": "r", "status": "succeeded", "video_path": "a.mp4"})
    assert _text(video) == "file run r"


def test_the_caption_shortens_prompts_longer_than_ninety_characters() -> None:
    assert _text(display.caption_html({}, prompt="y" * 91)) == "y" * 87 + "…"


def test_a_result_with_neither_file_nor_url_shows_an_empty_player(tmp_path: Path) -> None:
    result = _result(tmp_path, video=False)
    result.run = Run(id="run-abc", status="succeeded", output=Output(video_url=None))
    assert _video(display.result_html(result))["src"] == ""


# -- the details a reader relies on (each of these failed to be checked once) ------------------------

def _words(markup: str) -> str:
    """The text of ``markup``, each text node a word group (as a reader sees separate elements)."""
    return " ".join(" ".join(Markup(markup).text).split())


def _reason(markup: str) -> dict[str, str | None]:
    (div,) = [a for t, a in Markup(markup).elements if t == "div" and "rf-reason" in str(a.get("class"))]
    return div


def test_an_empty_cell_says_why_with_its_status_as_a_class() -> None:
    assert _words(display.reason_html(None)) == "not run"
    assert _words(display.reason_html(None, missing="over the budget")) == "over the budget"
    none = display.reason_html({})
    assert _words(none) == "no clip" and "rf-reason-none" in str(_reason(none)["class"])
    assert _words(display.reason_html({"status": "weird"})) == "weird"
    failed = display.reason_html({"status": "failed", "error_message": "GENERATION_FAILED"})
    div = _reason(failed)
    assert "rf-reason-failed" in str(div["class"]) and set(div) == {"class", "style"}  # no missing-video mark
    assert str(div["style"]).startswith("padding:8px;")
    (span,) = [a for t, a in Markup(failed).elements if t == "span"]
    assert span["title"] == "GENERATION_FAILED" and _words(failed) == "failed GENERATION_FAILED"
    assert [t for t, _ in Markup(display.reason_html({"status": "failed"})).elements] == ["div", "b"]  # no message


def test_a_long_message_is_cut_at_160_characters_and_whole_on_hover() -> None:
    exact, longer = "m" * 160, "m" * 161
    assert _words(display.reason_html({"status": "failed", "error_message": exact})) == f"failed {exact}"
    markup = display.reason_html({"status": "failed", "error_message": longer})
    assert _words(markup) == f"failed {'m' * 157}…"
    (span,) = [a for t, a in Markup(markup).elements if t == "span"]
    assert span["title"] == longer


@pytest.mark.parametrize(("path", "shown"), [
    ("clips/gone.mp4", "clips/gone.mp4"),
    ("javascript:alert(1)", "its stored location is not a file or URL"),
    ("data:video/mp4;base64,AAAA", "its stored location is not a file or URL"),  # never a data: link
])
def test_a_succeeded_run_without_its_file_names_where_it_was(path: str, shown: str) -> None:
    markup = display.reason_html({"status": "succeeded", "video_path": path})
    assert _words(markup) == f"video file missing {shown}"
    assert _reason(markup)["data-missing-video"] == shown  # what the report counts as missing
    assert _words(display.reason_html({"status": "succeeded"})) == "video file missing"


def test_aspect_comes_from_the_probed_size_before_the_requested_ratio() -> None:
    assert display.aspect_of({"width": 720, "height": 1280, "aspect_ratio": "16:9"}) == pytest.approx(0.5625)
    assert display.aspect_of({"width": 720, "aspect_ratio": "16:9"}) == pytest.approx(16 / 9)
    assert display.aspect_of({"width": 0, "height": 0, "aspect_ratio": "1:1"}) == 1.0
    assert display.aspect_of({"width": 0, "height": 720, "aspect_ratio": "1:1"}) == 1.0  # a size needs both sides
    assert display.aspect_of({"width": 720, "height": 0, "aspect_ratio": "1:1"}) == 1.0
    assert display.aspect_of({"width": 1, "height": 2, "aspect_ratio": "1:1"}) == 0.5
    assert display.aspect_of({"width": 2, "height": 1, "aspect_ratio": "1:1"}) == 2.0
    assert display.aspect_of({"aspect_ratio": "9:0"}) is None and display.aspect_of({}) is None


def test_has_video_needs_success_and_a_file_or_url(tmp_path: Path) -> None:
    clip = tmp_path / "c.mp4"
    clip.write_bytes(b"x")
    assert display.has_video({"status": "succeeded", "video_path": str(clip)})
    assert not display.has_video({"status": "failed", "video_path": str(clip)})
    assert not display.has_video({"status": "succeeded", "video_path": str(tmp_path / "gone.mp4")})
    for url in ("https://cdn.example.org/c.mp4", "http://h/c.mp4"):
        assert display.has_video({"status": "succeeded", "video_path": url})


def test_posters_by_url_stay_urls_and_a_changed_file_gives_a_new_still(tmp_path: Path) -> None:
    import os

    from PIL import Image

    for url in ("https://cdn.example.org/p.jpg", "http://h/p.jpg", "data:image/jpeg;base64,AAAA"):
        assert display.poster_uri(url) == url
    path = tmp_path / "p.bmp"  # BMP: the same dimensions give the same file size
    Image.new("RGB", (64, 36), (200, 0, 0)).save(path)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    red = display.poster_uri(path)
    Image.new("RGB", (64, 36), (0, 0, 200)).save(path)  # the same size on disk, another picture
    assert path.stat().st_size == 64 * 36 * 3 + 54
    os.utime(path, ns=(2_000_000_000, 2_000_000_000))
    blue = display.poster_uri(path)
    Image.new("RGB", (64, 37), (0, 200, 0)).save(path)  # another size, the same time
    os.utime(path, ns=(2_000_000_000, 2_000_000_000))
    green = display.poster_uri(path)
    assert red and blue and green and len({red, blue, green}) == 3


def test_a_file_link_never_takes_a_data_uri() -> None:
    assert _links(display.caption_html({}, link="data:video/mp4;base64,AAAA")) == []
    assert _links(display.caption_html({}, link="clips/a.mp4")) == ["clips/a.mp4"]


def test_video_html_defaults_width_and_hover() -> None:
    video = _video(display.video_html("a.mp4"))
    assert str(video["style"]).startswith("width:100%;") and video["onmouseenter"] and video["onplay"]
    assert "onmouseenter" not in _video(display.video_html("a.mp4", hover=False))
    assert "width:50%;" in str(_video(display.video_html("a.mp4", width="50%"))["style"])
    odd = _video(display.video_html("a.mp4", width='1px" onfocus="alert(1)', hover=False))
    assert "onfocus" not in odd and 'onfocus="alert(1)' in str(odd["style"])  # quotes stay inside style


def _plain_result(*, notices: Any = None, poster: bool = True, aspect: str | None = "9:16") -> Any:
    from types import SimpleNamespace

    run = SimpleNamespace(id="run-x", output=None, **({"notices": notices} if notices is not None else {}))
    request = SimpleNamespace(prompt="character1 trots", **({"aspect_ratio": aspect} if aspect else {}))
    extra = {"poster_path": None} if poster else {}
    return SimpleNamespace(run=run, request=request, video_path="clips/x.mp4", seed=3, wall_s=1.0, cost_usd=0.42,
                           simulated=True, **extra)


def test_a_result_without_output_notices_or_poster_attributes_still_renders() -> None:
    markup = display.result_html(_plain_result(poster=False, aspect=None))  # duck-typed, minimal
    assert _video(markup)["src"] == "clips/x.mp4" and "rf-notice" not in markup


def test_a_portrait_result_is_narrowed_to_480_px_high_and_shows_each_notice() -> None:
    markup = display.result_html(_plain_result(notices=("first", "second")))
    style = str(_video(markup)["style"])
    assert "min(640px,270px)" in style and "aspect-ratio:0.5625" in style
    assert "⚠ first · second" in _words(markup)


def test_a_result_with_a_data_url_output_and_no_file_plays_nothing(tmp_path: Path) -> None:
    result = _result(tmp_path, video=False)
    object.__setattr__(result.run, "output", Output(video_url="data:video/mp4;base64,AAAA"))
    assert not _video(display.result_html(result)).get("src")


def test_show_warns_about_a_results_notices_and_tolerates_a_run_without_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import warnings

    import IPython.display

    from runflow_nb.notices import RunNotice

    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: None)
    with pytest.warns(RunNotice, match="run run-x: first · second"):
        display.show(_plain_result(notices=("first", "second")))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        display.show(_plain_result())


def test_a_row_caption_names_its_run_the_remote_id_and_its_note(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _files(tmp_path)
    markup = display.row_html(_row(run_id="0123456789abcdef", remote_id="remote-1", note="a placeholder was used"))
    (span,) = [a for t, a in Markup(markup).elements if t == "span" and a.get("title", "").startswith("run_id")]
    assert span["title"] == "run_id 0123456789abcdef · Runflow run id remote-1"
    assert "run 01234567 " in _words(markup) + " " and "run 012345678" not in _words(markup)
    assert "⚠ a placeholder was used" in _words(markup)
    (span,) = [a for t, a in Markup(display.row_html(_row(run_id="r2"))).elements
               if t == "span" and a.get("title", "").startswith("run_id")]
    assert span["title"] == "run_id r2"
    no_id = display.row_html(_row(run_id=None))
    assert not [a for t, a in Markup(no_id).elements if t == "span" and a.get("title", "").startswith("run_id")]
    video = _video(display.row_html(_row()))
    assert "width:min(100%" in str(video["style"]) and video["onmouseenter"]
    assert "onmouseenter" not in _video(display.row_html(_row(), hover=False))
    bare = display.row_html(_row(), caption=False)
    assert not [t for t, _ in Markup(bare).elements if t == "figcaption"] and "XXXX" not in bare


def test_a_row_without_a_clip_keeps_its_badge_and_drops_the_caption_when_asked() -> None:
    row = _row(status="failed", backend="simulator", error_message="boom")
    assert "SIMULATED" in _words(display.row_html(row))
    bare = display.row_html(row, caption=False)
    assert _words(bare) == "failed boom" and len([t for t, _ in Markup(bare).elements if t == "div"]) == 1


def test_row_fields_model_without_a_slash_parent_id_and_nan_resolution() -> None:
    fields = display.row_fields(_row(model="r2v", parent_run_id="0123456789abcdef", resolution=math.nan,
                                     aspect_ratio=math.nan))
    assert fields["model"] == "r2v" and fields["re-run of"] == "01234567"  # the short id every caption uses
    assert fields["res"] is None and fields["ar"] is None
    assert display.row_fields(_row(model="alibaba/happy-horse/text-to-video"))["model"] == "text-to-video"
