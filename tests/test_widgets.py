"""The notebook widgets, tested without a browser by asserting on widget traits."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from html import unescape as html_unescape
from pathlib import Path
from typing import Any

import httpx
import ipywidgets as w
import nbformat
import pytest
from PIL import Image

import runflow_nb as rf
from runflow_nb.errors import RunflowError
from runflow_nb.experiment import Experiment
from runflow_nb.plan import Estimate
from runflow_nb.request import VideoRequest
from runflow_nb.samples import sample_images
from runflow_nb.specs import REFERENCE_TO_VIDEO
from runflow_nb.sweep.runner import SweepProgress
from runflow_nb.widgets.compare import CHOICES, compare, current_choice, synced_videos_html
from runflow_nb.widgets.form import GenerateForm
from runflow_nb.widgets.gallery import gallery, gallery_html, table_html
from runflow_nb.widgets.progress import ProgressWidget, progress_html

XSS = "<script>alert(1)</script>"


def _png(size: tuple[int, int], color: str = "steelblue") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A notebook-like folder: relative paths (images, artifacts) resolve here."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RUNFLOW_API_KEY", raising=False)
    (tmp_path / "horse.png").write_bytes(_png((800, 600)))
    (tmp_path / "zebra.png").write_bytes(_png((640, 480), "white"))
    return tmp_path


@pytest.fixture
def counting_client() -> tuple[rf.Client, list[httpx.Request]]:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(500, json={"error": {"code": "UNEXPECTED", "message": "the test sends nothing"}})

    client = rf.Client(api_key="rf_test_x", base_url="http://emu.test", transport=httpx.MockTransport(handler))
    return client, sent


def _upload_entry(name: str, data: bytes) -> dict[str, Any]:
    return {"name": name, "type": "image/png", "size": len(data), "content": memoryview(data),
            "last_modified": datetime.now(timezone.utc)}


def _fill_valid(form: GenerateForm, *, duration: int = 3) -> None:
    form.controls["prompt"].value = f"character1 trots along the beach {XSS}"
    form.controls["duration"].value = duration
    form.controls["resolution"].value = "720p"
    form.add_image("horse.png")


# -- the form -------------------------------------------------------------------------------------


def test_form_widgets_are_generated_from_the_spec(workdir: Path) -> None:
    form = GenerateForm(client=rf.Client(backend="simulator"))
    assert list(form.controls) == [f.name for f in REFERENCE_TO_VIDEO.fields]
    for f in REFERENCE_TO_VIDEO.fields:
        ctl = form.controls[f.name]
        assert f.name in form.errors and isinstance(form.errors[f.name], w.HTML)
        if f.choices is not None:
            assert isinstance(ctl.value_widget, (w.Dropdown, w.ToggleButtons))
            assert tuple(ctl.value_widget.options) == f.choices
            assert ctl.value == f.default
        elif f.type is bool:
            assert isinstance(ctl.value_widget, w.Checkbox) and ctl.value is f.default
        elif f.type is int:
            assert isinstance(ctl.value_widget, (w.IntSlider, w.BoundedIntText))
            assert (ctl.value_widget.min, ctl.value_widget.max) == (f.minimum, f.maximum)
            assert ctl.value == f.default  # the seed: None means random
        else:
            assert isinstance(ctl.value_widget, w.Textarea)
    assert isinstance(form.controls["seed"].value_widget, w.BoundedIntText)  # 2**31 values: no slider
    assert isinstance(form.controls["duration"].value_widget, w.IntSlider)
    assert form.generate_button.disabled and form.request is None


def test_invalid_inputs_are_explained_beside_their_fields_and_nothing_is_sent(
        workdir: Path, counting_client: tuple[rf.Client, list[httpx.Request]]) -> None:
    client, sent = counting_client
    form = GenerateForm(client=client)
    form.upload.value = (_upload_entry("tiny.png", _png((200, 200))),)
    assert len(form.upload.value) == 1 and len(form.images) == 1  # added; the button counts it: "Upload (1)"
    form.add_image("horse.png")
    form.controls["prompt"].value = "character3 " + "x" * 2490  # 2501 characters, a dangling tag

    images_error = form.errors["image_urls"].value
    assert "character1 (tiny.png)" in images_error and "200×200" in images_error and "400 px" in images_error
    prompt_error = form.errors["prompt"].value
    assert "2501 characters" in prompt_error and "character3" in prompt_error
    assert "2501 / 2500" in form.count.value and "#b91c1c" in form.count.value
    assert "character3</b> → no image" in form.hints.value
    for name in ("aspect_ratio", "duration", "resolution", "seed", "enable_safety_checker"):
        assert form.errors[name].value == ""
    assert form.request is None and form.generate_button.disabled

    form.generate_button.click()
    assert form.generate() is None
    assert sent == []


def test_each_image_is_decoded_once_not_on_every_keystroke(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runflow_nb import request as request_module

    calls = Counter[str]()
    real = request_module._decode_checked

    def counting(data: bytes, where: str, spec: Any) -> Any:
        calls["decode"] += 1
        return real(data, where, spec)

    monkeypatch.setattr(request_module, "_decode_checked", counting)
    form = GenerateForm(client=rf.Client(backend="simulator"))
    form.add_image("horse.png")
    (workdir / "small.png").write_bytes(_png((200, 200)))
    form.add_image("small.png")
    before = calls["decode"]
    for text in ("c", "ch", "character1 runs", "character2 runs"):
        form.controls["prompt"].value = text
    assert calls["decode"] == before == 2
    assert "200×200" in form.errors["image_urls"].value


def test_thumbnails_are_labelled_and_reordered(workdir: Path) -> None:
    form = GenerateForm(client=rf.Client(backend="simulator"))
    form.add_image("horse.png")
    form.add_image("zebra.png")
    form.controls["prompt"].value = "character1 chases character2"

    def captions() -> list[str]:
        return [card.children[1].value for card in form.thumbnails.children]

    assert "character1" in captions()[0] and "horse.png" in captions()[0]
    assert "character1</b> → horse.png" in form.hints.value
    right = form.thumbnails.children[0].children[2].children[2]
    right.click()  # horse moves right: it becomes character2
    assert [i.name for i in form.images] == ["zebra.png", "horse.png"]
    assert "horse.png" in captions()[1] and "character2" in captions()[1]
    assert "character2</b> → horse.png" in form.hints.value
    form.thumbnails.children[0].children[2].children[1].click()  # remove zebra
    assert [i.name for i in form.images] == ["horse.png"]
    assert "character2</b> → no image" in form.hints.value and form.generate_button.disabled


def test_seed_is_random_until_fixed_and_the_dice_draws_one(workdir: Path) -> None:
    form = GenerateForm(client=rf.Client(backend="simulator"))
    seed = form.controls["seed"]
    assert seed.value is None and seed.number.disabled
    seed.dice.click()
    assert isinstance(seed.value, int) and not seed.number.disabled
    seed.random.value = True
    assert seed.value is None
    seed.value = 42
    _fill_valid(form)
    assert form.request is not None and form.request.seed == 42


def test_cost_estimate_follows_duration_and_resolution(workdir: Path) -> None:
    form = GenerateForm(client=rf.Client(backend="simulator"))
    form.controls["duration"].value = 10
    form.controls["resolution"].value = "720p"
    assert "&#36;1.40" in form.cost.value and "simulator" in form.cost.value and "$" not in form.cost.value
    form.controls["resolution"].value = "1080p"
    assert "&#36;2.80" in form.cost.value


def test_to_code_rebuilds_an_equal_request(workdir: Path) -> None:
    form = GenerateForm(client=rf.Client(backend="simulator"))
    _fill_valid(form)
    form.upload.value = (_upload_entry("zebra upload.png", _png((500, 700))),)
    form.controls["prompt"].value = f"character1 and character2\nwith 'quotes' {XSS}"
    form.controls["seed"].value = 7
    form.controls["aspect_ratio"].value = "9:16"
    assert form.request is not None
    namespace: dict[str, Any] = {}
    exec(form.to_code(run=False), namespace)
    assert namespace["request"] == form.request
    code = form.to_code()
    assert "rf.Client().generate(request)" in code
    compile(code, "<form>", "exec")


def test_generate_in_the_simulator_shows_the_video_by_reference(workdir: Path) -> None:
    form = GenerateForm(client=rf.Client(backend="simulator"))
    _fill_valid(form)
    assert not form.generate_button.disabled
    phases: set[str] = set()
    form.status.observe(lambda ch: phases.add(re.sub(r"<[^>]+>", "", ch["new"]).split(" …")[0]), names="value")
    form.generate_button.click()
    result = form.wait(timeout=60)
    assert result is not None and result.simulated and result.video_path is not None
    assert "submitting" in phases and phases & {"queued", "dispatching", "running"}  # from the run's events
    assert "succeeded" in form.status.value
    (entry,) = form.output.outputs
    markup = entry["data"]["text/html"]
    src = re.search(r'<video [^>]*src="([^"]+)"', markup)
    assert src is not None
    assert not src.group(1).startswith(("/", "data:", "http")) and src.group(1).endswith(".mp4")
    assert (workdir / src.group(1)).is_file()
    assert "data:video" not in markup and "autoplay" not in markup and "controls" in markup
    assert re.search(r'poster="data:image/jpeg;base64,', markup)  # the still shows in JupyterLab too
    assert XSS not in markup and "&lt;script&gt;alert(1)&lt;/script&gt;" in markup
    assert "SIMULATED" in markup and f"{result.seed}" in markup and "&#36;0.42" in markup and "$" not in markup
    assert not form.generate_button.disabled


def test_a_run_from_the_form_lands_in_the_experiment_table(workdir: Path) -> None:
    exp = Experiment("form", store=str(workdir / "s.sqlite"), artifacts=workdir / "a",
                     client=rf.Client(backend="simulator"))
    form = GenerateForm(experiment=exp)
    _fill_valid(form)
    form.controls["seed"].value = 11
    form.generate()
    row = form.wait(timeout=60)
    assert isinstance(row, dict) and row["status"] == "succeeded"
    table = exp.table()
    assert list(table["seed"]) == [11] and table["prompt"][0].endswith(XSS)
    markup = form.output.outputs[0]["data"]["text/html"]
    assert "<video" in markup and "data:video" not in markup and XSS not in markup
    assert "exp.generate(request)" in form.to_code()


def test_importing_the_package_does_not_load_ipywidgets() -> None:
    code = ("import sys, runflow_nb, runflow_nb.widgets.gallery, runflow_nb.widgets.form; "
            "assert 'ipywidgets' not in sys.modules, 'ipywidgets imported eagerly'")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})


# -- progress -------------------------------------------------------------------------------------


def _progress(total: int = 10, **counts: int) -> SweepProgress:
    p = SweepProgress(total=total, budget_usd=5.0)
    p.counts.update(counts)
    return p


def test_progress_widget_shows_counts_money_and_eta() -> None:
    widget = ProgressWidget(estimate=Estimate(runs=10, video_seconds=50, usd=7.0, by_resolution={}),
                            budget_usd=5.0, display=False)
    p = _progress(succeeded=3, running=2, failed=1)
    p.spent_usd = 1.26
    p.messages.append(f"budget guard {XSS}")
    widget.update(p)
    assert widget.bar.value == 4 and widget.bar.max == 10
    line = widget.line.value
    assert "succeeded <b>3</b>" in line and "running <b>2</b>" in line and "failed <b>1</b>" in line
    assert "&#36;1.26</b> of &#36;5.00" in line and "$" not in line and "ETA" in line and XSS not in line
    p.finished = True
    p.counts.update(running=-2, succeeded=2)
    widget.update(p)
    assert widget.bar.bar_style == "danger" and "done in" in widget.line.value


def test_progress_widget_throttles_updates_from_many_threads() -> None:
    widget = ProgressWidget(estimate=Estimate(runs=400, video_seconds=0, usd=0, by_resolution={}),
                            budget_usd=None, display=False)
    p = _progress(total=400)
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(100):
            with lock:
                p.counts["succeeded"] += 1
            widget.update(p)

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    time.sleep(0.4)  # the trailing redraw shows the last state
    assert widget.renders <= 2 + elapsed * widget.max_rate + 1
    assert widget.bar.value == 400
    assert "succeeded <b>400</b>" in progress_html(p)


# -- gallery, table, compare -----------------------------------------------------------------------


def _stored_runs(exp: Experiment, n: int, *, prompts: list[str]) -> list[dict[str, Any]]:
    """Succeeded runs with a (stand-in) video file and a real JPEG poster under ./artifacts."""
    from PIL import Image

    folder = Path("artifacts") / exp.name
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        run_id = f"run{i:03d}"
        (folder / f"{run_id}.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
        Image.new("RGB", (640, 360), (10 * (i % 25), 80, 120)).save(folder / f"{run_id}.jpg")
        rows.append(exp.store.insert_run({
            "run_id": run_id, "experiment": exp.name, "run_key": f"k{i}", "status": "succeeded",
            "prompt": prompts[i % len(prompts)], "seed": i // len(prompts), "duration": 5, "resolution": "720p",
            "aspect_ratio": "16:9", "cost_usd": 0.7, "backend": "simulator",
            "video_path": f"artifacts/{exp.name}/{run_id}.mp4", "poster_path": f"artifacts/{exp.name}/{run_id}.jpg",
        }))
    return rows


def test_gallery_is_escaped_html_by_reference_and_small(workdir: Path) -> None:
    exp = Experiment("gal", store=str(workdir / "s.sqlite"), artifacts=workdir / "artifacts")
    prompts = [f"character1 gallops {XSS}", "character1 & friends", "plain"]
    _stored_runs(exp, 24, prompts=prompts)
    exp.store.insert_run({"experiment": "gal", "run_key": "failed", "status": "failed", "prompt": "x"})
    g = exp.gallery(rows="prompt", cols="seed")
    markup = g._repr_html_()
    assert not isinstance(g, w.Widget) and len(g) == 24
    assert XSS not in markup and "&lt;script&gt;alert(1)&lt;/script&gt;" in markup
    assert "data:video" not in markup and markup.count('src="artifacts/gal/run') == 24  # videos by reference
    assert markup.count('poster="data:image/jpeg;base64,') == 24  # stills inline: JupyterLab shows them
    assert markup.count("<tr>") == 1 + 4  # header + one row a prompt (the failed run's too)
    assert markup.count("rf-reason-failed") == 1 and markup.count("<i>not run</i>") == 4 * 9 - 25
    headers = re.findall(r"<thead>.*?</thead>", markup)[0]
    assert [int(x) for x in re.findall(r">(\d+)</span></th>", headers)] == list(range(8))  # seeds, numeric order
    assert "autoplay" not in markup and "SIMULATED" in markup and "est. &#36;" in markup and "$" not in markup
    assert "mathjax_ignore" in markup

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("exp.gallery()")
    cell.outputs = [nbformat.v4.new_output("execute_result", data={"text/html": markup, "text/plain": repr(g)},
                                           execution_count=1)]
    nb.cells.append(cell)
    path = workdir / "gallery.ipynb"
    nbformat.write(nb, path)
    assert path.stat().st_size < 24 * 20_000  # stills are small


def test_gallery_filters_and_reports_unknown_axes(workdir: Path) -> None:
    exp = Experiment("gal2", store=str(workdir / "s.sqlite"), artifacts=workdir / "artifacts")
    _stored_runs(exp, 4, prompts=["a", "b"])
    assert len(gallery(exp, rows="prompt", cols="seed", prompt="a")) == 2
    with pytest.raises(RunflowError, match="no column 'nope'"):  # a library error, naming the columns there are
        gallery(exp, rows="nope")
    assert "No runs" in gallery_html(exp.table(status="failed"), rows="prompt", cols="seed")


def test_table_html_escapes_prompts(workdir: Path) -> None:
    exp = Experiment("tab", store=str(workdir / "s.sqlite"), artifacts=workdir / "artifacts")
    _stored_runs(exp, 2, prompts=[XSS])
    markup = table_html(exp.table(), columns=["run_id", "prompt", "seed", "images", "tags"])
    assert XSS not in markup and "&lt;script&gt;" in markup and "<table" in markup


def test_compare_writes_choice_and_rating_to_the_store(workdir: Path) -> None:
    exp = Experiment("t", store=str(workdir / "s.sqlite"), artifacts=workdir / "a")
    a, b = (r["run_id"] for r in _stored_runs(exp, 2, prompts=[XSS]))
    view = exp.compare(a, b)
    markup = view.videos.outputs[0]["data"]["text/html"]
    assert markup.count("<video ") == 2 and "onplay=" in markup and "onpause=" in markup
    assert XSS not in markup and "data:video" not in markup
    for run_id in (a, b):  # the header names each run as its caption does; the full id is its tooltip
        assert f">run {run_id[:8]}<" in markup and f'title="run_id {run_id}"' in markup
        assert f">run_id {run_id}<" not in markup

    view.ratings["A"].value = 4
    view.choice.value = "A better"
    assert exp.store.get_run(a)["rating"] == 4
    assert exp.store.get_run(a)["tags"] == [f"preferred_over:{b}"]
    view.choice.value = "tie"
    assert exp.store.get_run(a)["tags"] == [f"tie_with:{b}"] and exp.store.get_run(b)["tags"] == [f"tie_with:{a}"]
    view.choice.value = "B better"
    assert exp.store.get_run(a)["tags"] == [] and exp.store.get_run(b)["tags"] == [f"preferred_over:{a}"]
    view.ratings["B"].value = 2
    assert list(exp.table().set_index("run_id")["rating"].loc[[a, b]]) == [4, 2]

    again = compare(exp, exp.store.get_run(a), exp.store.get_run(b))  # state is read back from the store
    assert again.choice.value == "B better" and again.ratings["A"].value == 4
    assert current_choice(exp.store.get_run(a), exp.store.get_run(b)) in CHOICES


def test_synced_videos_point_at_each_other(workdir: Path) -> None:
    (workdir / "a.mp4").write_bytes(b"stand-in")
    row = {"run_id": "r", "status": "succeeded", "video_path": "a.mp4", "prompt": "p"}
    markup = synced_videos_html(row, {**row, "run_id": "s"}, token="tok")
    a, b = re.findall(r"<video [^>]*>", markup)
    assert 'id="rf-cmp-tok-a"' in a and "rf-cmp-tok-b" in a.split('id="rf-cmp-tok-a"')[1]
    assert 'id="rf-cmp-tok-b"' in b and "rf-cmp-tok-a" in b


def test_form_result_html_is_request_consistent(workdir: Path) -> None:
    req = VideoRequest.build(prompt=XSS + " character1", images=["horse.png"], seed=3, resolution="720p")
    form = GenerateForm(client=rf.Client(backend="simulator"))
    form.controls["prompt"].value = req.prompt
    form.controls["resolution"].value = "720p"
    form.controls["seed"].value = 3
    form.add_image("horse.png")
    assert form.request == req


def test_generate_again_with_identical_inputs_says_it_reused_the_stored_clip(workdir: Path) -> None:
    exp = Experiment("again", store=str(workdir / "s.sqlite"), artifacts=workdir / "a",
                     client=rf.Client(backend="simulator"))
    form = GenerateForm(experiment=exp)
    _fill_valid(form)
    form.controls["seed"].value = 5
    form.generate()
    first = form.wait(timeout=60)
    assert isinstance(first, dict) and not form.reused and "succeeded" in form.status.value
    form.generate()
    again = form.wait(timeout=60)
    assert isinstance(again, dict) and again["run_id"] == first["run_id"] and form.reused
    assert "reused the stored clip" in form.status.value and "nothing was sent or paid" in form.status.value
    assert len(exp.table()) == 1


def test_cancel_stops_a_running_generate_and_says_what_happened(workdir: Path) -> None:
    client = rf.Client(backend="simulator")
    form = GenerateForm(client=client)
    _fill_valid(form)
    assert form.cancel_button.layout.display == "none"
    form.cancel()  # pressed while idle: does not cancel the next Generate
    thread = form.generate()
    assert thread is not None and form.cancel_button.layout.display != "none"
    form.cancel()  # before the submit, or while waiting: either way it says so
    form.wait(timeout=60)
    status = re.sub(r"<[^>]+>", "", form.status.value)
    assert status.startswith("canceled"), status
    assert form.cancel_button.layout.display == "none" and not form.generate_button.disabled


class _Shown:
    """Stands in for IPython's display(): records each output and its updates by display id."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import IPython.display

        self.outputs: list[dict[str, Any]] = []
        self.ids: list[str | None] = []
        monkeypatch.setattr(IPython.display, "display", self.display)

    def display(self, obj: Any, *, raw: bool = False, display_id: Any = None) -> Any:
        assert raw
        self.outputs.append(dict(obj))
        self.ids.append(None if display_id is None else str(len(self.outputs) - 1))
        if display_id is None:
            return None
        index = len(self.outputs) - 1
        owner = self

        class Handle:
            def update(self, new: Any, *, raw: bool = False) -> None:
                owner.outputs[index] = dict(new)

        return Handle()


def _visible_text(markup: str) -> str:
    return re.sub(r"<style>.*?</style>|<[^>]+>", "", markup)


def test_form_shows_a_saved_view_before_the_widget_and_keeps_its_last_clip(
        workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reopened notebook without its kernel shows the saved view (settings, then the last clip)
    where the form was; the widget's text fallback is one line, not its repr."""
    shown = _Shown(monkeypatch)
    form = GenerateForm(client=rf.Client(backend="simulator"))
    _fill_valid(form)
    form._ipython_display_()
    saved, live = shown.outputs
    assert "application/vnd.jupyter.widget-view+json" in live and "rf-live" in form.widget._dom_classes
    assert live["text/plain"] == "GenerateForm (live widget)"
    assert 'class="rf-saved' in saved["text/html"] and "<video" not in saved["text/html"]
    assert XSS not in saved["text/html"] and XSS in html_unescape(_visible_text(saved["text/html"]))
    assert "run the cell again" in saved["text/html"] and "horse.png" in saved["text/html"]
    # the style rules pair exactly this saved view with the widget output after it
    assert ".jp-OutputArea-child:has(.rf-saved):has(+ .jp-OutputArea-child .rf-live){display:none}" in saved["text/html"]
    assert ".jp-OutputArea-child:has(.rf-saved) + .jp-OutputArea-child:not(:has(.rf-live)){display:none}" in saved["text/html"]
    form.generate()
    result = form.wait(timeout=60)
    assert result is not None
    saved = shown.outputs[0]
    assert re.search(r'<video [^>]*poster="data:image/jpeg;base64,', saved["text/html"])
    assert f"{result.seed}" in saved["text/html"] and "$" not in saved["text/html"].split("</style>", 1)[1]
    assert len(shown.outputs) == 2  # updated in place, nothing appended


def test_progress_gallery_and_compare_show_saved_views(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shown = _Shown(monkeypatch)
    widget = ProgressWidget(estimate=Estimate(runs=2, video_seconds=6, usd=0.84, by_resolution={}),
                            budget_usd=None)
    assert len(shown.outputs) == 2 and "rf-saved" in shown.outputs[0]["text/html"]
    p = _progress(succeeded=2)
    p.finished = True
    widget.update(p)
    assert "succeeded <b>2</b>" in shown.outputs[0]["text/html"]  # the final counts are kept

    exp = Experiment("saved", store=str(workdir / "s.sqlite"), artifacts=workdir / "a",
                     client=rf.Client(backend="simulator"))
    exp.run(rf.grid(prompt=f"character1 {XSS}", images=["horse.png"], seed=[1, 2], duration=3), progress=None)
    monkeypatch.setattr("runflow_nb.views.frontend.interactive_frontend", lambda: True)
    shown.outputs.clear()
    exp.gallery(rows="prompt", cols="seed")._ipython_display_()
    saved, live = shown.outputs
    assert "application/vnd.jupyter.widget-view+json" in live and "rf-gallery" in saved["text/html"]
    assert saved["text/html"].count("<video") == 2 and XSS not in saved["text/html"]
    shown.outputs.clear()
    view = exp.compare()
    view._ipython_display_()
    saved, live = shown.outputs
    assert saved["text/html"].count("<video") == 2 and live["text/plain"] == "compare view (live widget)"
    live_ids = set(re.findall(r'<video id="([^"]+)"', view.videos.outputs[0]["data"]["text/html"]))
    saved_ids = set(re.findall(r'<video id="([^"]+)"', saved["text/html"]))
    assert len(live_ids) == len(saved_ids) == 2 and not live_ids & saved_ids  # each pair mirrors only itself
    monkeypatch.setattr("runflow_nb.views.frontend.interactive_frontend", lambda: False)
    shown.outputs.clear()
    exp.gallery(rows="prompt", cols="seed")._ipython_display_()
    (static,) = shown.outputs  # papermill, nbval, reports: the static grid alone
    assert "rf-saved" not in static["text/html"] and static["text/html"].count("<video") == 2


def test_misuse_of_the_study_helpers_raises_library_errors(workdir: Path) -> None:
    """The error tree's promise holds past the sweep: ratings, choices, comparisons and background
    handles refuse with a RunflowError (still a ValueError where one was raised before)."""
    from runflow_nb.errors import RunTimeoutError, UsageError, ValidationError
    from runflow_nb.widgets.compare import record_choice

    exp = Experiment("misuse", store=str(workdir / "m.sqlite"), artifacts=workdir / "artifacts")
    _stored_runs(exp, 2, prompts=["a"])
    a, b = list(exp.table()["run_id"])
    with pytest.raises(ValidationError, match="rating") as info:
        exp.rate(a, 4.5)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    with pytest.raises(ValidationError, match="choice"):
        record_choice(exp, a, b, "left")
    with pytest.raises(UsageError, match="'nope' is no run") as bad:
        exp.compare(a, "nope")
    assert isinstance(bad.value, ValueError)
    exp.compare()  # the one pair there is ...
    record_choice(exp, a, b, "tie")
    with pytest.raises(ValidationError, match="has been compared"):  # ... and once it is compared, none is left
        exp.compare()

    gate = threading.Event()
    handle = exp.run(rf.grid(prompt="character1 waits", images=[str(sample_images(1)[0])], seed=[1], duration=3,
                             resolution="720p"), background=True, progress=lambda p: gate.wait(5))
    try:
        with pytest.raises(RunTimeoutError, match="still running"):
            handle.wait(timeout=0.01)
    finally:
        gate.set()
        handle.wait(timeout=60)
