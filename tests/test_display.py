"""What a stored run, a result and a path look like inline: the facts a researcher reads, by reference.

Read back by parsing the HTML (the same parser as the escaping tests), so the checks are about
what is shown — which video, which poster, which parameters and money, which link — not about
the exact markup.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from test_escaping import Markup, assert_inert

from runflow_nb import display
from runflow_nb.client import Result
from runflow_nb.request import VideoRequest
from runflow_nb.runs import Output, Run


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
    for shown in ("seed 9", "wall 12.3 s", "cost $0.70", "Runflow run id run-abc", "character1 jumps"):
        assert shown in text, (shown, text)
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
    assert _video(result)["src"] == "out.mp4" and "Runflow run id run-abc" in _text(result)
    assert _video(row)["src"] == "clips/r1.mp4" and "640px" in str(_video(row)["style"])
    assert _video(path)["src"] == "clip.mp4" and "640px" in str(_video(path)["style"]) and not _text(path)


def test_a_row_names_its_model_and_the_run_it_edits() -> None:
    text = _text(display.row_html(_row(model="alibaba/happy-horse/text-to-video",
                                       parent_run_id="0192f3a4-b5c6-7d8e-9f00-112233445566")))
    assert "model text-to-video" in text and "edit of 0192f3a4-b5c" in text
    plain = _text(display.row_html(_row()))
    assert "model" not in plain and "edit of" not in plain


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
