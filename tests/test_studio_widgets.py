"""The studio's widgets, tested without a browser by asserting on their traits: the queue panel,
the synced compare of 2–6 clips and the form's N seeds row."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from _wait import until
from PIL import Image

import runflow_nb as rf
from runflow_nb.errors import UsageError, ValidationError
from runflow_nb.experiment import Experiment
from runflow_nb.store.runstore import Store
from runflow_nb.widgets.form import GenerateForm
from runflow_nb.widgets.queue import QueuePanel
from runflow_nb.widgets.synced import synced_compare

XSS = "<script>alert(1)</script>"
PROMPT = "character1 gallops along the shore"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RUNFLOW_API_KEY", raising=False)
    Image.new("RGB", (800, 600), "steelblue").save(tmp_path / "horse.png")
    return tmp_path


def _stored(exp: Experiment, n: int, *, prompt: str = "p") -> list[str]:
    """Succeeded runs with a stand-in video file and a real JPEG poster under ./artifacts."""
    folder = Path("artifacts") / exp.name
    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    for i in range(n):
        run_id = f"{exp.name}{i:03d}"
        (folder / f"{run_id}.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
        Image.new("RGB", (640, 360), (20 * i, 80, 120)).save(folder / f"{run_id}.jpg")
        exp.store.insert_run({"run_id": run_id, "experiment": exp.name, "run_key": f"k{i}", "status": "succeeded",
                              "prompt": prompt, "seed": i, "duration": 3, "resolution": "720p", "cost_usd": 0.42,
                              "backend": "simulator", "video_path": f"artifacts/{exp.name}/{run_id}.mp4",
                              "poster_path": f"artifacts/{exp.name}/{run_id}.jpg", "wall_s": 4.0})
        ids.append(run_id)
    return ids


# -- the queue panel ------------------------------------------------------------------------------------


def test_queue_panel_lists_the_store_refreshes_live_and_stops(workdir: Path) -> None:
    exp = Experiment("q", store=str(workdir / "s.sqlite"), artifacts=workdir / "artifacts")
    done = _stored(exp, 2, prompt=XSS)
    exp.store.insert_run({"run_id": "waiting", "experiment": "q", "run_key": "w", "status": "planned", "prompt": "x"})
    panel = exp.queue(interval=0.2)
    try:
        assert rf.queue(exp.store) is panel  # one panel per kernel
        panel.stop()
        panel.experiment = "q"
        panel.refresh()
        assert panel.rows[0].run_id == "waiting" and {q.run_id for q in panel.rows[1:]} == set(done)
        assert len(panel.table.children) == 3 and XSS not in panel.views[done[0]].info.value
        assert "waiting #1" in panel.views["waiting"].info.value
        assert all(v.stop_button.layout.display == "none" for v in panel.views.values())  # no sweep drives them
        assert "in flight or waiting" in panel.header.value

        panel.show_detail(done[0])  # no exp.detail yet: the stored clip
        shown = panel.detail.outputs[0]["data"]["text/html"]
        assert "<video " in shown and f"artifacts/q/{done[0]}.mp4" in shown

        panel.start()
        other = Store(str(workdir / "s.sqlite"))  # another process writing to the same store
        other.insert_run({"run_id": "late", "experiment": "q", "run_key": "late", "status": "queued", "prompt": "y"})
        until(lambda: "late" in panel.views, what="the panel's next refresh")
        assert panel.running
    finally:
        panel.stop()
    assert not panel.running
    count = panel.refreshes
    time.sleep(0.5)
    assert panel.refreshes == count  # stopped means stopped


def test_queue_panel_is_a_bounded_scrolling_list_open_runs_first_then_n_more_ended(workdir: Path) -> None:
    long_prompt = "character1 leaps over a log at dusk while the camera tracks left and the sun sets behind " * 2
    exp = Experiment("many", store=str(workdir / "s.sqlite"), artifacts=workdir / "artifacts")
    _stored(exp, 30, prompt=long_prompt)
    for i in range(2):
        exp.store.insert_run({"run_id": f"wait{i}", "experiment": "many", "run_key": f"w{i}", "status": "planned",
                              "prompt": "x", "seed": 100 + i})
    panel = QueuePanel(exp.store, start=False)
    try:
        shown = [c for c in panel.table.children]
        assert len(shown) == 22 and len(panel.rows) == 32  # every open run, the latest 20 ended
        assert [panel.views["wait0"].box, panel.views["wait1"].box] == shown[:2]  # waiting first
        assert "10 more ended" in panel.more.value
        assert panel.table.layout.max_height == "420px" and panel.table.layout.overflow == "hidden auto"
        row = panel.views["many000"].info.value if "many000" in panel.views else panel.views[
            next(k for k in panel.views if k.startswith("many"))].info.value
        seed_at, prompt_at = row.index('class="rf-queue-seed"'), row.index('class="rf-queue-prompt"')
        assert seed_at < prompt_at  # the seed has its own column, never clipped with the prompt
        title = re.search(r'class="rf-queue-prompt"[^>]*title="([^"]*)"', row)
        assert title is not None and title.group(1) == long_prompt.replace("$", "&#36;")  # the full text on hover
        assert re.search(r'class="rf-queue-id"[^>]*title="run_id many0\d\d"', row)
    finally:
        panel.stop()


def test_queue_panel_stop_button_stops_the_background_sweep(workdir: Path, service: Any,
                                                            ref_images: list[Path]) -> None:
    service.freeze()
    exp = Experiment("qs", store=str(workdir / "s.sqlite"), artifacts=workdir / "a", client=service.client())
    plan = [rf.VideoRequest.build(prompt=PROMPT, images=[ref_images[0]], duration=3, resolution="720p", seed=s)
            for s in range(3)]
    handle = exp.run(plan, concurrency=1, background=True, progress=None)
    panel = QueuePanel(exp.store, experiment="qs", start=False)
    try:
        until(lambda: [q for q in panel.refresh() if q.status in ("queued", "running")], what="a run on the server")
        waiting = [q.run_id for q in panel.rows if q.status == "planned"]
        view = panel.views[waiting[0]]
        assert view.stop_button.layout.display is None
        view.stop_button.click()
        assert "stopped the background sweep" in panel.message.value
        handle.wait(timeout=120)
    finally:
        handle.cancel()
        panel.close()
    assert service.created() == 1 and [r["status"] for r in exp.runs(status="planned")] == ["planned"] * 2


# -- synced compare ------------------------------------------------------------------------------------


def test_synced_compare_of_four_is_one_transport_and_rates_into_the_store(workdir: Path) -> None:
    exp = Experiment("sync", store=str(workdir / "s.sqlite"), artifacts=workdir / "artifacts")
    ids = _stored(exp, 4, prompt=XSS)
    view = exp.compare_many(ids)
    markup = view.videos.outputs[0]["data"]["text/html"]
    videos = re.findall(r"<video [^>]*>", markup)
    assert len(videos) == 4 and all('class="rf-sync-video"' in v and 'poster="data:image/jpeg' in v for v in videos)
    assert [re.search(r'src="([^"]+)"', v).group(1) for v in videos] == [f"artifacts/sync/{i}.mp4" for i in ids]  # type: ignore[union-attr]
    assert "autoplay" not in markup and "data:video" not in markup and XSS not in markup
    for part in ("rf-sync-play", "rf-sync-scrub", "rf-sync-loop", "rf-sync-back", "rf-sync-fwd", "keydown"):
        assert part in markup
    assert re.findall(r'<option value="([\d.]+)"', markup) == ["0.25", "0.5", "0.75", "1.0"]
    assert '<select class="rf-sync-mode"' not in markup and view.choice is None  # wipe, difference and the A/B choice: two only
    assert f'id="rf-sync-{view.token}"' in markup and f'getElementById("rf-sync-{view.token}")' in markup
    assert all(f"rf-sync-rating-{view.token}-{i}" in t._dom_classes for i, t in enumerate(view.ratings))

    view.ratings[2].value = 5
    view.ratings[0].value = 2
    assert exp.store.get_run(ids[2])["rating"] == 5 and exp.store.get_run(ids[0])["rating"] == 2
    assert list(exp.ranking().run_id[:1]) == [ids[2]]
    assert exp.compare_many(ids).ratings[2].value == 5  # read back from the store


def test_synced_compare_of_two_has_wipe_difference_and_the_choice(workdir: Path) -> None:
    exp = Experiment("two", store=str(workdir / "s.sqlite"), artifacts=workdir / "artifacts")
    a, b = _stored(exp, 2)
    view = exp.compare_many([exp.store.get_run(a), b])
    markup = view.videos.outputs[0]["data"]["text/html"]
    assert re.findall(r'<option value="(\w+)">', markup) == ["side", "wipe", "diff"]
    assert "mix-blend-mode:difference" in markup and "clip-path:inset" in markup
    view.choice.value = "B better"
    assert exp.store.get_run(b)["tags"] == [f"preferred_over:{a}"]
    assert exp.ranking().run_id.iloc[0] == b


def test_synced_compare_refuses_wrong_counts_and_foreign_runs(workdir: Path) -> None:
    exp = Experiment("bad", store=str(workdir / "s.sqlite"), artifacts=workdir / "artifacts")
    ids = _stored(exp, 7)
    with pytest.raises(ValidationError, match="2 to 6"):
        exp.compare_many(ids)
    with pytest.raises(ValidationError, match="2 to 6"):
        exp.compare_many(ids[:1])
    with pytest.raises(UsageError, match="twice"):
        synced_compare(exp, [ids[0], ids[0]])
    with pytest.raises(UsageError, match="list"):
        exp.compare_many(ids[0])
    other = Experiment("other", store=exp.store)
    with pytest.raises(UsageError, match="not a run of 'other'"):
        other.compare_many(ids[:2])
    exp.store.insert_run({"run_id": "nofile", "experiment": "bad", "run_key": "nf", "status": "failed"})
    with pytest.raises(ValidationError, match="no video"):
        exp.compare_many([ids[0], "nofile"])


# -- N seeds from the form -------------------------------------------------------------------------------


def test_form_sends_n_seeds_as_one_sweep_and_shows_the_strip(workdir: Path, service: Any) -> None:
    exp = Experiment("form", store=str(workdir / "s.sqlite"), artifacts=workdir / "a", client=service.client())
    form = GenerateForm(experiment=exp)
    form.controls["prompt"].value = PROMPT
    form.controls["duration"].value = 3
    form.controls["resolution"].value = "720p"
    form.add_image("horse.png")
    seeds = form.seeds
    assert seeds.widget in form.widget.children
    seeds.n.value = 3
    seeds.start.value = "10"
    assert seeds.budget.value == pytest.approx(1.26) and "seeds 10…12" in seeds.estimate.value
    seeds.budget.value = -1.0  # no amount: refused, nothing sent
    assert seeds.run() is None and "budget" in seeds.status.value and service.created() == 0
    seeds.budget.value = 1.26
    handle = seeds.run()
    assert handle is not None and seeds.wait(120)
    rows = exp.runs()
    assert sorted(r["seed"] for r in rows) == [10, 11, 12] and {r["status"] for r in rows} == {"succeeded"}
    assert service.created() == 3 and service.billed() <= 1.26
    strip = seeds.strip.value
    assert strip.count("<video ") == 3 and all(f"seed {s}" in strip for s in (10, 11, 12))
    assert "succeeded" in seeds.status.value and not seeds.button.disabled

    seeds.start.value = ""  # random seeds
    assert "random seeds" in seeds.estimate.value
    seeds.n.value = 2
    assert seeds.budget.value == pytest.approx(1.26)  # the user set the budget: it stays


def test_form_seeds_under_a_budget_below_the_estimate_run_what_fits_in_order_and_say_what_was_skipped(
        workdir: Path, service: Any) -> None:
    exp = Experiment("form", store=str(workdir / "s.sqlite"), artifacts=workdir / "a", client=service.client())
    seeds = _seeds_form(exp, n=4, start=20)
    assert seeds.budget.value == pytest.approx(1.68)
    seeds.budget.value = 0.9  # two of four fit, as exp.run(plan, budget_usd=0.9) would run them
    handle = seeds.run()
    assert handle is not None, seeds.status.value
    assert seeds.wait(120)
    status = {r["seed"]: r["status"] for r in exp.runs()}
    assert status == {20: "succeeded", 21: "succeeded", 22: "skipped_budget", 23: "skipped_budget"}, status
    assert service.created() == 2 and service.billed() <= 0.9
    assert "2 seeds skipped for the budget" in seeds.status.value, seeds.status.value
    assert seeds.strip.value.count("<video ") == 2


def _seeds_form(exp: Experiment, *, n: int, start: int) -> Any:
    form = GenerateForm(experiment=exp)
    form.controls["prompt"].value = PROMPT
    form.controls["duration"].value = 3
    form.controls["resolution"].value = "720p"
    form.add_image("horse.png")
    form.seeds.n.value = n
    form.seeds.start.value = str(start)
    return form.seeds


def _stop_state(seeds: Any) -> tuple[bool, str, str]:
    button = seeds.stop_button
    return button.disabled, button.button_style, button.description


IDLE = (True, "", "Stop")  # disabled and plain: nothing to stop
LIVE = (False, "warning", "Stop")


@pytest.mark.parametrize("ending", ["finished", "budget cut", "error"])
def test_seeds_stop_is_live_while_the_sweep_runs_and_plain_once_it_ends(workdir: Path, service: Any,
                                                                        ending: str) -> None:
    import asyncio
    import threading

    import httpx
    from _scripted import answer, is_create

    gate = threading.Event()  # an answer of no credit held back until the test has seen the live row

    async def no_credit(request: httpx.Request) -> httpx.Response | None:
        if not is_create(request):
            return None
        while not gate.is_set():
            await asyncio.sleep(0.01)
        return answer(402, {"code": "INSUFFICIENT_CREDIT", "message": "top up"})

    service.freeze()  # the runs stay on the server until the test lets them end
    if ending == "error":
        service.async_before.append(no_credit)
    exp = Experiment("form", store=str(workdir / "s.sqlite"), artifacts=workdir / "a", client=service.client(),
                     budget_usd=0.84 if ending == "budget cut" else None)  # the experiment's cap: two of three
    seeds = _seeds_form(exp, n=3, start=30)
    assert _stop_state(seeds) == IDLE
    assert seeds.run() is not None
    assert _stop_state(seeds) == LIVE and seeds.button.disabled and seeds.running
    if ending == "error":
        gate.set()
    service.thaw()
    assert seeds.wait(120)
    assert _stop_state(seeds) == IDLE and not seeds.button.disabled and not seeds.running
    counts = {r["status"] for r in exp.runs()}
    if ending == "finished":
        assert counts == {"succeeded"} and "succeeded" in seeds.status.value and seeds.error is None
    elif ending == "budget cut":
        assert sorted(r["status"] for r in exp.runs()) == ["skipped_budget", "succeeded", "succeeded"]
        assert service.billed() <= 0.84 and seeds.error is None
    else:
        assert isinstance(seeds.error, rf.errors.InsufficientCreditError) and "failed" in seeds.status.value
        assert service.created() == 0
    assert seeds.stop_button.click() is None and _stop_state(seeds) == IDLE  # a click after the end does nothing


def test_seeds_stop_ends_submitting_and_comes_back_plain(workdir: Path, service: Any) -> None:
    service.freeze()
    exp = Experiment("form", store=str(workdir / "s.sqlite"), artifacts=workdir / "a", client=service.client())
    seeds = _seeds_form(exp, n=6, start=40)  # four at a time: two wait their turn
    handle = seeds.run()
    assert handle is not None and _stop_state(seeds) == LIVE
    until(lambda: service.created() == 4, what="four seeds on the server")
    seeds.stop_button.click()
    assert seeds.stop_button.disabled and handle.stopping
    assert seeds.wait(120)
    assert _stop_state(seeds) == IDLE and not seeds.button.disabled
    assert service.created() == 4 and len(exp.runs(status="planned")) == 2  # the two never sent
    assert sorted(r["seed"] for r in exp.runs()) == list(range(40, 46))
    assert "stopped" in seeds.status.value


def test_seed_captions_keep_to_one_line_with_the_full_text_on_hover() -> None:
    from runflow_nb.widgets.form_seeds import strip_html

    row = {"run_id": "r1", "status": "download_failed", "cost_usd": 0.42, "seed": 2147483000}
    markup = strip_html([row, None], [2147483000, 7])
    captions = re.findall(r'<div class="[^"]*rf-seed-caption"[^>]*>', markup)
    assert len(captions) == 2
    for tag in captions:
        assert all(rule in tag for rule in ("white-space:nowrap", "overflow:hidden", "text-overflow:ellipsis"))
    assert 'title="seed 2147483000 · download_failed · &#36;0.42"' in captions[0]
    assert 'title="seed 7"' in captions[1]


def test_a_live_queue_panel_lets_the_interpreter_exit_at_once(workdir: Path) -> None:
    """Kernel shutdown: the refresh thread is stopped at exit, nothing hangs or prints a traceback."""
    import subprocess
    import sys

    code = ("from runflow_nb.store.runstore import Store\n"
            "from runflow_nb.widgets.queue import QueuePanel\n"
            "panel = QueuePanel(Store('s.sqlite'), interval=0.05)\n"
            "import time\n"
            "while panel.refreshes < 3: time.sleep(0.01)\n"
            "print('refreshing', panel.running)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "refreshing True" and done.stderr == "", done


def test_synced_compare_labels_each_clip_by_what_differs_between_them() -> None:
    from runflow_nb.studio.synced import synced_html

    def row(i: int, model: str, prompt: str, seed: int) -> dict[str, Any]:
        return {"run_id": f"run{i:05d}", "status": "succeeded", "video_path": f"https://cdn.example/{i}.mp4",
                "model": f"alibaba/happy-horse/{model}", "prompt": prompt, "seed": seed, "duration": 3}

    rows = [row(0, "text-to-video", "character1 trots", 1), row(1, "text-to-video", "character1 trots", 2),
            row(2, "image-to-video", "character1 rears up", 1), row(3, "image-to-video", XSS, 2)]
    labels = [re.sub(r"<[^>]+>", "", m) for m in re.findall(r'<div class="rf-sync-label[^>]*>(.*?)</div>',
                                                             synced_html(rows, token="t"))]
    assert labels[0].startswith("A · text-to-video · character1 trots · seed 1 · run run00000")
    assert labels[2].startswith("C · image-to-video · character1 rears up · seed 1")
    assert XSS not in "".join(labels) and "duration" not in "".join(labels)  # what did not vary stays out
    same_prompt = synced_html(rows[:2], token="u")
    assert "character1 trots" not in same_prompt and "seed 2 · " in same_prompt


def test_rf_queue_with_no_store_shows_the_store_of_the_experiments_this_kernel_opened(
        workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exp = Experiment("mine", store="study/runs.sqlite", artifacts=workdir / "artifacts")
    exp.store.insert_run({"run_id": "waiting", "experiment": "mine", "run_key": "w", "status": "planned",
                          "prompt": "x"})
    panel = rf.queue(interval=0.2)
    try:
        panel.stop()
        panel.refresh()
        assert "waiting" in panel.views and panel.store.url == exp.store.url
        monkeypatch.chdir(workdir / "study")  # the kernel moved: the relative store path still names that store
        again = rf.queue(interval=0.2)
        again.stop()
        again.views.clear()
        again.refresh()
        assert "waiting" in again.views and not (workdir / "study" / "study").exists()
        assert not (workdir / "runflow_data").exists()  # no empty default store made beside it
    finally:
        panel.stop()
