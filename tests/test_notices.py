"""A reference the server cannot fetch: the run succeeds on a placeholder, and the researcher is told
(a RunNotice warning, the row's note in the table and the view, a ⚠ line under the clip)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from PIL import Image

import runflow_nb as rf
from runflow_nb.experiment import Experiment
from runflow_nb.notices import RunNotice
from runflow_nb.runs import Run
from runflow_nb.views import display
from runflow_nb.views.tableview import view_columns

URL = "https://example.invalid/horse.png"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RUNFLOW_API_KEY", raising=False)
    Image.new("RGB", (800, 600), "steelblue").save(tmp_path / "horse.png")
    return tmp_path


def _exp(workdir: Path) -> Experiment:
    return Experiment("notices", store=str(workdir / "s.sqlite"), artifacts=workdir / "a",
                      client=rf.Client(backend="simulator"))


def test_the_run_view_carries_the_placeholder_warning_and_the_client_reads_it(workdir: Path) -> None:
    result = rf.Client(backend="simulator").generate(prompt="character1 trots", images=[URL], duration=3, seed=1)
    assert result.run.raw["has_logs"] is True
    (notice,) = result.run.notices
    assert URL in notice and "could not be fetched" in notice and "placeholder" in notice
    markup = display.result_html(result)
    assert 'class="rf-notice' in markup and "placeholder" in markup
    with pytest.warns(RunNotice, match="placeholder"):
        display.show(result)


def test_notices_read_only_warning_and_error_items_of_any_spelling() -> None:
    view = {"id": "r1", "status_code": "succeeded", "logs": [
        {"level_code": "info", "message": "queued"},
        {"level_code": "WARN", "message": "a placeholder was used"},
        {"level": "error", "message": "late"},
        {"level_code": "warning", "message": 3},  # not text: ignored
        "noise"]}
    assert Run.parse(view).notices == ("a placeholder was used", "late")
    assert Run.parse({"id": "r2", "status_code": "succeeded"}).notices == ()
    assert Run.parse({"id": "r3", "status_code": "succeeded", "logs": "?"}).notices == ()


def test_a_sweep_with_an_unreachable_reference_warns_and_notes_the_row(workdir: Path) -> None:
    exp = _exp(workdir)
    plan = rf.grid(prompt="character1 trots", images=[[URL], ["horse.png"]], seed=[1, 2], duration=3)
    with pytest.warns(RunNotice) as seen:
        df = exp.run(plan, progress=None)
    seen = [w for w in seen if issubclass(w.category, RunNotice)]  # not a gc's ResourceWarning of another test
    assert len(seen) == 2 and all(URL in str(w.message) and "placeholder" in str(w.message) for w in seen)
    noted = df[df["note"].notna()]
    assert len(noted) == 2 and set(noted["seed"]) == {1, 2}
    assert all(URL in n and "placeholder" in n for n in noted["note"])
    assert df.loc[df["note"].isna(), "status"].eq("succeeded").all()  # the local image: no note
    assert "note" in view_columns(df)
    row = exp.store.get_run(noted["run_id"].iloc[0])
    assert row is not None and 'class="rf-notice' in display.row_html(row)
    # a second run of the plan reuses the clips and still says so (from the stored note)
    with pytest.warns(RunNotice) as again:
        exp.run(plan, progress=None)
    assert len([w for w in again if issubclass(w.category, RunNotice)]) == 2


def test_reachable_references_give_no_notice(workdir: Path) -> None:
    exp = _exp(workdir)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RunNotice)
        df = exp.run(rf.grid(prompt="character1 trots", images=["horse.png"], seed=[1], duration=3), progress=None)
    assert df["note"].isna().all() and "note" not in view_columns(df)
    result = rf.Client(backend="simulator").generate(prompt="character1 trots", images=["horse.png"], duration=3)
    assert result.run.notices == () and "rf-notice" not in display.result_html(result)


@pytest.mark.parametrize("with_experiment", [False, True])
def test_the_form_says_so_beside_the_result(workdir: Path, with_experiment: bool) -> None:
    from runflow_nb.widgets.form import GenerateForm

    form = (GenerateForm(experiment=_exp(workdir)) if with_experiment
            else GenerateForm(client=rf.Client(backend="simulator")))
    form.controls["prompt"].value = "character1 trots"
    form.controls["duration"].value = 3
    form.add_image(URL)
    assert form.request is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunNotice)  # the experiment's warning; the form shows it itself
        form.generate()
        form.wait(timeout=60)
    assert "succeeded" in form.status.value and "⚠" in form.status.value and "placeholder" in form.status.value
    markup = form.output.outputs[0]["data"]["text/html"]
    assert 'class="rf-notice' in markup and "example.invalid" in markup


def test_a_finished_run_is_asked_once(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Re-running a finished plan asks the server about no run again (their notes are stored)."""
    exp = _exp(workdir)
    plan = rf.grid(prompt="character1 trots", images=[[URL]], seed=[1], duration=3)
    with pytest.warns(RunNotice):
        exp.run(plan, progress=None)
    from runflow_nb.client import AsyncClient

    asked: list[str] = []
    real_get = AsyncClient.get

    async def counting_get(self: AsyncClient, run_id: str) -> Run:
        asked.append(run_id)
        return await real_get(self, run_id)

    monkeypatch.setattr(AsyncClient, "get", counting_get)
    with pytest.warns(RunNotice):
        exp.run(plan, progress=None)
    assert asked == []


def test_a_server_that_only_says_it_has_logs_is_asked_for_them(workdir: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The real service may answer ``has_logs: true`` without the items: the sweep reads
    ``GET /v1/runs/{id}/logs`` and still warns; a run without logs costs no extra request."""
    from runflow_nb.simulator.engine import Simulator

    shown = Simulator._view

    def without_logs(self: Simulator, run: object, base_url: str | None) -> dict[str, object]:
        view = shown(self, run, base_url)  # type: ignore[arg-type]
        view.pop("logs", None)
        return view

    monkeypatch.setattr(Simulator, "_view", without_logs)
    client = rf.Client(backend="simulator")
    exp = Experiment("notices", store=str(workdir / "s.sqlite"), artifacts=workdir / "a", client=client)
    plan = rf.grid(prompt="character1 trots", images=[[URL], ["horse.png"]], seed=[1], duration=3)
    with pytest.warns(RunNotice) as seen:
        df = exp.run(plan, progress=None)
    notices = [str(w.message) for w in seen if issubclass(w.category, RunNotice)]
    assert len(notices) == 1 and URL in notices[0] and "placeholder" in notices[0]
    noted = df[df["note"].fillna("") != ""]
    assert len(noted) == 1 and "placeholder" in noted["note"].iloc[0]
    run_id = noted["remote_id"].iloc[0]
    assert "logs" not in client.get(run_id).raw and client.get(run_id).logs_left_out
    assert any("placeholder" in str(item.get("message")) for item in client.logs(run_id))
