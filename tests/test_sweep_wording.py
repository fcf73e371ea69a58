"""What a sweep says when it ends, on the offline simulator: one wording for simulated money, each
line said once (the progress end, the interrupt's stop note), and a reconcile line that is true."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest

import runflow_nb as rf
from runflow_nb.experiment import Experiment
from runflow_nb.studio import notify
from runflow_nb.sweep.reconcile import Reconciled
from runflow_nb.views.sweep_progress import TextProgress
from runflow_nb.widgets.progress import progress_html

SIMULATED = re.compile(r"simulated spend \$\d+\.\d\d \(nothing charged\)")


def _plan(ref_images: list[Path], seeds: range) -> rf.Plan:
    return rf.grid(prompt="character1 trots", images=[[str(ref_images[0])]], seed=seeds, duration=3,
                   resolution="720p")


def _simulator_experiment(tmp_path: Path, name: str) -> Experiment:
    exp = Experiment(name, store=str(tmp_path / "s.sqlite"), artifacts=tmp_path / "a",
                     client=rf.Client(simulator_latency=0.05))
    assert exp._client is not None and exp._client.backend == "simulator"
    return exp


def test_every_closing_and_progress_line_on_the_simulator_says_simulated_spend_nothing_charged(
        tmp_path: Path, ref_images: list[Path]) -> None:
    exp = _simulator_experiment(tmp_path, "words")
    seen: list[Any] = []
    handle = exp.run(_plan(ref_images, range(2)), background=True, progress=seen.append)
    handle.wait(120)
    summary, progress = handle.summary, seen[-1]
    assert summary is not None and summary.simulated and progress.finished
    text, _level = notify.end_notice(handle)
    lines = {"progress line": progress.line(), "progress money": progress.money(), "summary": str(summary),
             "end notice": text, "handle": repr(handle),
             "widget line": re.sub(r"<[^>]+>", "", progress_html(progress)).replace("&#36;", "$")}
    for where, line in lines.items():
        assert SIMULATED.search(line), (where, line)
        assert "spent $" not in line and "offline simulator:" not in line, (where, line)
    assert "finished: succeeded 2" in repr(handle)  # the handle says how it ended, not "running"


def test_the_text_progress_prints_its_end_line_once_when_every_run_is_reused(
        tmp_path: Path, ref_images: list[Path]) -> None:
    exp = _simulator_experiment(tmp_path, "reused")
    plan = _plan(ref_images, range(3))
    exp.run(plan, progress=None)
    out = io.StringIO()
    exp.run(plan, progress=TextProgress(stream=out).update)  # every run reused: the start is already the end
    lines = [line for line in out.getvalue().splitlines() if line.startswith("runflow_nb: [3/3]")]
    assert len(lines) == 1, out.getvalue()


def test_the_reconcile_line_says_what_was_listed_against_what_the_table_holds_or_nothing() -> None:
    assert Reconciled().line() == ""  # nothing read back: nothing claimed
    line = Reconciled(listed=11, held=152).line()
    assert line.startswith("reconciled with the server: 11 run(s) of this experiment listed") and "152" in line
    assert "the table shows every one" not in line
    assert "could not read" in Reconciled(error="timeout").line()


def test_a_sweep_whose_runs_the_server_no_longer_lists_says_nothing_about_reconciling(
        tmp_path: Path, ref_images: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from runflow_nb import _client_base

    plan = _plan(ref_images, range(2))
    _simulator_experiment(tmp_path, "fresh").run(plan, progress=None)
    monkeypatch.setattr(_client_base, "_shared_emulator", None)  # a new process: its simulator lists no run
    again = _simulator_experiment(tmp_path, "fresh")
    again.run(plan, progress=None)  # every run reused from the store
    messages = again.last_summary.messages if again.last_summary else []
    assert not any("reconcile" in m for m in messages), messages


@pytest.mark.usefixtures("default_sigint")
def test_an_interrupted_sweep_says_its_stop_note_once_in_the_error_not_again_in_the_progress(
        tmp_path: Path, ref_images: list[Path]) -> None:
    import _thread
    import threading

    exp = Experiment("stop", store=str(tmp_path / "s.sqlite"), artifacts=tmp_path / "a",
                     client=rf.Client(simulator_latency=3))
    said: list[list[str]] = []
    fired = threading.Event()

    def progress(p: Any) -> None:
        said.append(list(p.messages))
        if p.counts.get("running", 0) + p.counts.get("queued", 0) and not fired.is_set():
            fired.set()
            _thread.interrupt_main()  # Kernel ▸ Interrupt, once a run is on the server

    with pytest.raises(rf.errors.SweepInterrupted) as info:
        exp.run(_plan(ref_images, range(3)), concurrency=1, progress=progress)
    note = str(info.value)
    assert fired.is_set() and note.startswith("stopped: nothing more was submitted"), note
    assert not any(m.startswith("stopped:") for messages in said for m in messages), said
