"""Clip QA: flawed clips are flagged with the right reason, hard-but-fine clips pass, and the verdict
travels with the run (table, filters, ranking, badges, the sweep's closing line, a re-check)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

import runflow_nb as rf
from runflow_nb import settings
from runflow_nb.emulator import serve
from runflow_nb.errors import ConfigurationError, UsageError
from runflow_nb.qa.check import check_clip
from runflow_nb.qa.measure import measure
from runflow_nb.qa.verdict import Expectation
from runflow_nb.simulator.flaws import render_flawed

KEY = "rf_test_qa_key"
SIZE = (640, 360)
ASKED = Expectation(duration_s=3, width=640, height=360)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each flawed kind and each near miss, 3 s at 640×360 (rendered once for the module)."""
    folder = tmp_path_factory.mktemp("flaws")
    kinds = ("black", "frozen", "silent", "noaudio", "short", "wrongsize", "clipped", "dark", "still", "quiet", "pan")
    return {k: render_flawed(k, duration=3, size=SIZE, seed=5, dest=folder / f"{k}.mp4") for k in kinds}


@pytest.mark.parametrize(("kind", "expected"), [
    ("black", "black 0.0–2.0 s"),
    ("frozen", "frozen 1.0–3.0 s"),
    ("silent", "silent"),
    ("noaudio", "no audio"),
    ("short", "1.5 s of 3 s"),
    ("wrongsize", "320×180, asked 640×360"),
])
def test_each_flawed_clip_is_flagged_with_its_reason(clips: dict[str, Path], kind: str, expected: str) -> None:
    verdict = check_clip(clips[kind], expect=ASKED)
    assert verdict.flagged and verdict.text == expected


def test_clipped_audio_is_flagged_with_the_share_at_full_scale(clips: dict[str, Path]) -> None:
    verdict = check_clip(clips["clipped"], expect=ASKED)
    assert verdict.text.startswith("clipped audio ") and verdict.columns["qa_clipped"] > 0.05
    assert verdict.columns["qa_peak_db"] > -0.5


@pytest.mark.parametrize("kind", ["dark", "still", "quiet", "pan"])
def test_hard_but_fine_clips_pass(clips: dict[str, Path], kind: str) -> None:
    """A night scene (all of the backdrop below 10% luma) with a dim subject moving, a locked-off shot
    where only a small subject moves, audio at about -48 dBFS RMS, and a slow pan over soft clouds
    (50 s to cross the frame) are not flaws."""
    verdict = check_clip(clips[kind], expect=ASKED)
    assert verdict.text == "ok", verdict.text
    c = verdict.columns
    assert c["qa_black_s"] == 0 and c["qa_frozen_s"] == 0 and c["qa_silent_s"] == 0
    if kind == "quiet":
        assert -60 < c["qa_rms_db"] < -40


def test_the_numbers_behind_a_verdict_are_measured(clips: dict[str, Path]) -> None:
    c = check_clip(clips["still"], expect=ASKED).columns
    assert c["qa_frames"] == 72 and c["qa_fps"] == 24 and c["qa_duration_s"] == pytest.approx(3.0)
    assert c["qa_decode_errors"] == 0 and -30 < c["qa_rms_db"] < -10 and c["qa_clipped"] == 0


def test_thresholds_decide_and_are_read_from_the_environment(clips: dict[str, Path]) -> None:
    frozen = clips["frozen"]
    assert check_clip(frozen, expect=ASKED).text.startswith("frozen")
    lenient = settings.qa_thresholds({"RUNFLOW_QA_FROZEN_MIN_S": "2.5"})
    assert lenient.frozen_min_s == 2.5 and check_clip(frozen, expect=ASKED, limits=lenient).text == "ok"
    assert settings.qa_thresholds(frozen_min_s=3).frozen_min_s == 3.0
    with pytest.raises(ConfigurationError, match="RUNFLOW_QA_BLACK_SHARE must be a number from 0 to 1"):
        settings.qa_thresholds({"RUNFLOW_QA_BLACK_SHARE": "2"})
    with pytest.raises(ConfigurationError, match="RUNFLOW_QA_SILENCE_DB must be a number"):
        settings.qa_thresholds({"RUNFLOW_QA_SILENCE_DB": "quiet"})
    with pytest.raises(ConfigurationError, match="no QA threshold"):
        settings.qa_thresholds(blackness=1)


def test_real_simulator_clips_pass_clean(ref_images: list[Path], tmp_path: Path) -> None:
    """Every model of the family, landscape and portrait, short and long, as the simulator films them."""
    from runflow_nb.simulator.render import render_clip
    from runflow_nb.simulator.render_edit import render_edit
    from runflow_nb.simulator.scenes import text_scene

    imgs = [Image.open(p) for p in ref_images]
    cases = [
        ("r2v", render_clip(imgs, duration=5, aspect_ratio="16:9", resolution="720p", seed=3,
                            dest=tmp_path / "r2v.mp4"), Expectation(duration_s=5, width=1280, height=720)),
        ("r2v long portrait", render_clip(imgs[:1], duration=15, aspect_ratio="9:16", resolution="720p", seed=8,
                                          dest=tmp_path / "long.mp4"),
         Expectation(duration_s=15, width=720, height=1280)),
        ("t2v", render_clip([text_scene("a horse on a beach at dusk", seed=2, size=(1472, 828))], duration=3,
                            aspect_ratio="16:9", resolution="720p", seed=2, dest=tmp_path / "t2v.mp4"),
         Expectation(duration_s=3, width=1280, height=720)),
    ]
    flat = Image.new("RGB", (800, 600), "steelblue")  # nothing to pan over: the playhead still moves
    cases.append(("flat reference", render_clip([flat], duration=15, aspect_ratio="16:9", resolution="720p", seed=1,
                                                dest=tmp_path / "flat.mp4"),
                  Expectation(duration_s=15, width=1280, height=720)))
    edited = render_edit(cases[0][1], references=imgs[1:], prompt="make it night", seed=4, resolution="720p",
                         audio_setting="origin", dest=tmp_path / "edit.mp4", label="SIMULATED")
    cases.append(("edit", edited, Expectation(duration_s=5, short_side=720, duration_slack_s=1)))
    for name, path, expect in cases:
        verdict = check_clip(path, expect=expect)
        assert verdict.text == "ok", (name, verdict.text)


@pytest.mark.parametrize("colour", [(230, 230, 230), (240, 240, 240), (250, 235, 190)])
def test_a_clip_of_a_pale_flat_reference_is_not_called_frozen(colour: Any, tmp_path: Path) -> None:
    """Nothing to pan over, and a picture as light as the playhead used to be: it still shows moving
    (seeds 1-3 take different grades; each of these was flagged frozen 0.0-3.0 s before)."""
    from runflow_nb.simulator.render import render_clip

    flat = Image.new("RGB", (800, 600), colour)
    for seed in (1, 2, 3):
        clip = render_clip([flat], duration=3, aspect_ratio="16:9", resolution="720p", seed=seed,
                           dest=tmp_path / f"pale{seed}.mp4", cache_dir=tmp_path / "cache")
        verdict = check_clip(clip, expect=Expectation(duration_s=3, width=1280, height=720))
        assert verdict.text == "ok", (colour, seed, verdict.text)


def test_a_slow_pan_stays_well_clear_of_the_frozen_threshold(clips: dict[str, Path]) -> None:
    m = measure(clips["pan"], limits=settings.qa_thresholds(frozen_min_s=0))
    longest = max(b - a for a, b in m.frozen_spans)
    assert 0 < longest < settings.QA_DEFAULTS.frozen_min_s / 2


def test_a_short_silent_track_is_silent(tmp_path: Path) -> None:
    clip = render_flawed("silent", duration=1, size=(320, 180), seed=1, dest=tmp_path / "s.mp4")
    assert check_clip(clip, expect=Expectation(duration_s=1)).text == "silent"


def test_a_damaged_file_is_flagged_not_raised(clips: dict[str, Path], tmp_path: Path) -> None:
    data = bytearray(clips["still"].read_bytes())
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(bytes(data[: len(data) * 2 // 3]))
    assert check_clip(truncated, expect=ASKED).flagged
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video at all" * 100)
    verdict = check_clip(garbage, expect=ASKED)
    assert verdict.text.startswith("unreadable")


def test_a_long_clip_is_measured_in_bounded_memory(tmp_path: Path) -> None:
    """Twelve times the length costs no more memory: frames are reduced and dropped as they come."""
    short = render_flawed("still", duration=2, size=SIZE, seed=1, dest=tmp_path / "short.mp4")
    long = render_flawed("still", duration=24, size=SIZE, seed=1, dest=tmp_path / "long.mp4")
    limits = settings.qa_thresholds()
    peaks = []
    for path in (short, long):
        tracemalloc.start()
        m = measure(path, limits=limits)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert m.frames > 0 and m.error is None
    whole_clip = 24 * 24 * SIZE[0] * SIZE[1]  # one byte of luma a pixel, every frame
    assert peaks[1] < 2 * peaks[0] + 1_000_000 and peaks[1] < whole_clip / 20


# -- through the library ----------------------------------------------------------------------------


def _flaw_of(url: str, remote_id: str) -> str | None:
    """The flaw the emulator rendered into a run's clip, from the run's own log."""
    logs = httpx.get(f"{url}/v1/runs/{remote_id}/logs", headers={"Authorization": f"Bearer {KEY}"}).json()
    for line in logs["items"]:
        if line["message"].startswith("clip flaw on request: "):
            return str(line["message"].rsplit(" ", 1)[1])
    return None


EXPECTED_START = {"black": "black 0.0–2.0 s", "frozen": "frozen 1.0–3.0 s", "silent": "silent",
                  "noaudio": "no audio", "short": "1.5 s of 3 s", "wrongsize": "640×360, asked 1280×720",
                  "clipped": "clipped audio", None: "ok"}


def test_a_sweep_with_mixed_faults_shows_the_right_qa_per_row(ref_images: list[Path], tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    faults = "black=1x,frozen=1x,silent=1x,noaudio=1x,short=1x,wrongsize=1x,clipped=1x,nsfw=1x"
    with serve(port=0, latency=0.1, faults=faults) as server:
        client = rf.Client(api_key=KEY, base_url=server.url, poll_interval=0.05)
        exp = rf.Experiment("qa", store=str(tmp_path / "s.sqlite"), artifacts=tmp_path / "a", client=client)
        plan = rf.grid(prompt="character1 trots", images=[ref_images[:1]], seed=range(10), duration=3,
                       resolution="720p")
        df = exp.run(plan, concurrency=3, progress="text")
        flaws = {row.run_id: _flaw_of(server.url, row.remote_id) for row in df.itertuples()}
    assert set(df.status) == {"succeeded"}
    assert sorted(f for f in flaws.values() if f) == sorted(k for k in EXPECTED_START if k)
    for row in df.itertuples():
        want = EXPECTED_START[flaws[row.run_id]]
        got = str(row.qa)
        if row.nsfw_detected:
            assert got.endswith("nsfw"), got
            got = got.removesuffix("; nsfw").removesuffix("nsfw") or "ok"
        assert got.startswith(want), (flaws[row.run_id], row.qa)
    n_flagged = int((df.qa != "ok").sum())
    assert n_flagged == 7 + int(df[[f is None for f in flaws.values()]].nsfw_detected.fillna(False).sum())
    assert len(exp.table(qa="flagged")) == n_flagged and len(exp.table(qa="ok")) == 10 - n_flagged
    assert exp.last_summary is not None and exp.last_summary.flagged == n_flagged
    assert f"{n_flagged} flagged by QA" in capsys.readouterr().err  # text progress goes to stderr
    assert f"{n_flagged} clips flagged by QA" in str(exp.last_summary)
    # the ranking and the best clip pass over flagged clips unless asked
    assert set(exp.ranking().qa) == {"ok"} and len(exp.ranking(flagged=True)) == 10
    flagged_id = exp.table(qa="flagged").run_id.iloc[0]
    exp.rate(flagged_id, 5)
    assert flagged_id not in exp.best().data and flagged_id[:8] in exp.best(flagged=True).data
    # every flagged tile carries the badge with its reason on hover; ok tiles carry none
    from runflow_nb.widgets.gallery import gallery_html

    page = gallery_html(exp.table(), rows="prompt", cols="seed")
    assert page.count('class="rf-qa-badge') == n_flagged
    assert 'title="clip QA: black 0.0–2.0 s' in page
    view = exp.view().static_html()
    assert view.count('class="rf-qa-badge') == n_flagged
    from runflow_nb.widgets.compare import synced_videos_html

    rows = {r["run_id"]: r for r in exp.runs()}
    ok_id = exp.table(qa="ok").run_id.iloc[0]
    pair = synced_videos_html(rows[flagged_id], rows[ok_id])
    assert pair.count('class="rf-qa-badge') == 1 and f'title="clip QA: {rows[flagged_id]["qa"]}"' in pair
    assert 'class="rf-qa-badge' in exp.best(flagged=True).data
    with pytest.raises(UsageError, match="'flagged', 'ok' or 'unchecked'"):
        exp.table(qa="bad")


def test_exp_qa_checks_stored_clips_again_after_thresholds_change(ref_images: list[Path], tmp_path: Path) -> None:
    with serve(port=0, latency=0.05, faults="frozen=1x") as server:
        client = rf.Client(api_key=KEY, base_url=server.url, poll_interval=0.05)
        exp = rf.Experiment("again", store=str(tmp_path / "s.sqlite"), artifacts=tmp_path / "a", client=client)
        df = exp.run(rf.grid(prompt="character1", images=[ref_images[:1]], seed=[1], duration=3,
                             resolution="720p"), progress=None)
    assert df.qa.iloc[0].startswith("frozen 1.0–3.0 s")
    done = exp.qa(frozen_min_s=2.5)
    assert done.to_dict("records") == [{"run_id": df.run_id.iloc[0], "qa": "ok", "was": df.qa.iloc[0]}]
    assert exp.table().qa.iloc[0] == "ok"
    assert exp.qa().qa.iloc[0].startswith("frozen")  # the defaults again
    Path(df.video_path.iloc[0]).unlink()
    assert exp.qa().qa.iloc[0] == "missing file"
    with pytest.raises(UsageError):
        exp.qa(run_ids=["not-a-run"])


def test_generate_checks_its_clip(ref_images: list[Path], tmp_path: Path) -> None:
    result = rf.Client(backend="simulator").generate(prompt="character1 waves", images=ref_images[:1], duration=3,
                                                     resolution="720p", seed=3, out_dir=tmp_path)
    assert result.qa == "ok"


def test_a_store_from_before_clip_qa_gains_the_columns(ref_images: list[Path], tmp_path: Path) -> None:
    from runflow_nb.store.runstore import Store, migrate

    url = str(tmp_path / "old.sqlite")
    assert migrate(url, target=5) == (0, 5)
    exp = rf.Experiment("old", store=url, artifacts=tmp_path / "a", client=rf.Client(backend="simulator"))
    assert exp.store.schema_version >= 6 and isinstance(exp.store, Store)
    df = exp.run(rf.grid(prompt="character1", images=[ref_images[:1]], seed=[1], duration=3, resolution="720p"),
                 progress=None)
    assert df.qa.tolist() == ["ok"] and df.qa_frames.tolist() == [72]
    exp.store.update_run(df.run_id.iloc[0], qa=None)  # as a clip stored before clip QA
    assert len(exp.table(qa="unchecked")) == 1 and exp.qa().qa.tolist() == ["ok"]


def test_the_badge_escapes_what_it_shows() -> None:
    from runflow_nb.views.qa_badge import qa_badge

    markup = qa_badge({"qa": 'unreadable (<script>alert(1)</script> "$5")'})
    assert "<script>" not in markup and "&lt;script&gt;" in markup and "$" not in markup
    assert qa_badge({"qa": "ok"}) == qa_badge({"qa": None}) == qa_badge({}) == ""


def test_the_progress_widget_counts_flagged_clips() -> None:
    from runflow_nb.sweep.status import SweepProgress
    from runflow_nb.widgets.progress import progress_html

    p = SweepProgress(total=3)
    p.counts["succeeded"] = 3
    assert "flagged" not in progress_html(p) and "flagged" not in p.line()
    p.flagged, p.finished = 2, True
    assert "⚠ flagged by QA <b>2</b>" in progress_html(p) and p.line().endswith("| 2 flagged by QA")


def _clip_elsewhere(path: Path, *, container: str, vcodec: str, pix_fmt: str, acodec: str, afmt: str,
                    picture: Any, level: float, seconds: float = 3.0, fps: int = 25, size: tuple[int, int] = (320, 240),
                    rate: int = 44_100) -> Path:
    """A clip as another tool would make it: other codecs, pixel formats, rates and a mono track."""
    import av
    import numpy as np

    w, h = size
    with av.open(str(path), "w", format=container) as out:
        vs = out.add_stream(vcodec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
        aus = out.add_stream(acodec, rate=rate, layout="mono")
        for i in range(round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(picture(i, w, h), format="rgb24").reformat(format=pix_fmt)
            frame.pts = i
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
        n, step = round(seconds * rate), 1024
        t = np.arange(n) / rate
        wave = level * np.sin(2 * np.pi * 330 * t)
        for start in range(0, n, step):
            chunk = wave[start:start + step]
            data = (chunk * 32767).astype(np.int16)[None, :] if afmt == "s16" else chunk.astype(np.float32)[None, :]
            a = av.AudioFrame.from_ndarray(data, format=afmt, layout="mono")
            a.sample_rate, a.pts = rate, start
            out.mux(aus.encode(a))
        out.mux(aus.encode(None))
    return path


def _moving(i: int, w: int, h: int) -> Any:
    import numpy as np

    img = np.zeros((h, w, 3), np.uint8)
    img[:, :] = (60, 110, 160)
    x = (i * 6) % (w - 40)
    img[h // 3:h // 3 + 40, x:x + 40] = (250, 240, 200)
    return img


@pytest.mark.parametrize(("fmt", "picture", "level", "expected"), [
    (("webm", "libvpx-vp9", "yuv420p", "libopus", "flt"), lambda i, w, h: _moving(0, w, h) * 0, 0.0,
     "black 0.0–3.0 s; silent"),
    (("mov", "mjpeg", "yuvj420p", "pcm_s16le", "s16"), lambda i, w, h: _moving(min(i, 25), w, h), 0.3,
     "frozen 1.0–3.0 s"),
    (("mov", "png", "rgb24", "pcm_s16le", "s16"), _moving, 0.01, "ok"),
])
def test_clips_from_other_encoders_get_the_same_verdicts(tmp_path: Path, fmt: tuple[str, ...], picture: Any,
                                                         level: float, expected: str) -> None:
    container, vcodec, pix_fmt, acodec, afmt = fmt
    rate = 48_000 if acodec == "libopus" else 44_100
    path = _clip_elsewhere(tmp_path / f"clip.{container}", container=container, vcodec=vcodec, pix_fmt=pix_fmt,
                           acodec=acodec, afmt=afmt, picture=picture, level=level, rate=rate)
    verdict = check_clip(path, expect=Expectation(duration_s=3, width=320, height=240))
    assert verdict.text == expected
    assert verdict.columns["qa_fps"] == 25


def test_generate_and_edit_rows_carry_their_verdicts(ref_images: list[Path], tmp_path: Path) -> None:
    exp = rf.Experiment("rows", store=str(tmp_path / "s.sqlite"), artifacts=tmp_path / "a",
                        client=rf.Client(backend="simulator"))
    row = exp.generate(prompt="character1 waves", images=ref_images[:1], duration=3, resolution="720p", seed=2)
    assert row["qa"] == "ok" and row["qa_duration_s"] == pytest.approx(3.0)
    edited = exp.edit(row["run_id"], prompt="make it night")
    assert edited["qa"] == "ok" and edited["parent_run_id"] == row["run_id"]


def test_a_bad_threshold_setting_stops_a_sweep_before_anything_is_sent(ref_images: list[Path], tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNFLOW_QA_BLACK_SHARE", "98%")
    with serve(port=0, latency=0.05) as server:
        client = rf.Client(api_key=KEY, base_url=server.url, poll_interval=0.05)
        exp = rf.Experiment("bad", store=str(tmp_path / "s.sqlite"), artifacts=tmp_path / "a", client=client)
        with pytest.raises(ConfigurationError, match="RUNFLOW_QA_BLACK_SHARE must be a number"):
            exp.run(rf.grid(prompt="character1", images=[ref_images[:1]], seed=[1], duration=3, resolution="720p"),
                    progress=None)
        assert httpx.get(f"{server.url}/_emulator/ledger").json()["billed"] == []
