"""Bad arguments to the experiment, the plan and the table get a library error that names them.

Each case here once escaped as a bare ValueError, TypeError, KeyError, OverflowError or
AttributeError (or was silently accepted). Now each is a :class:`~runflow_nb.errors.RunflowError`:
``UsageError`` for an argument a call cannot use, ``ValidationError`` for a request, and
``ConfigurationError`` for a setting or a path; and nothing is changed by the refused call.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import runflow_nb as rf
from runflow_nb import errors

PROMPT = "character1 gallops along the shore"


@pytest.fixture
def exp(tmp_path: Path, ref_images: list[Path]) -> Any:
    e = rf.Experiment("usage", store=str(tmp_path / "s.sqlite"), artifacts=tmp_path / "a",
                      client=rf.Client(backend="simulator", simulator_latency=0))
    e.run(rf.grid(prompt=PROMPT, images=[str(ref_images[0])], seed=[1, 2], duration=3, resolution="720p"),
          progress=None)
    yield e
    e.close()


@pytest.mark.parametrize(("call", "match"), [
    (lambda e: e.table(where={"nocol": 1}), "nocol"),
    (lambda e: e.table(where={"seed": "1"}), "seed"),
    (lambda e: e.table(where={"seed": 10**30}), "too large"),
    (lambda e: e.table(status=5), "status"),
    (lambda e: e.table(tags=5), "tags"),
    (lambda e: e.gallery(seed="1"), "seed"),
    (lambda e: e.gallery(rows=["prompt"]), "rows"),
    (lambda e: e.gallery(facets=5), "facets"),
    (lambda e: e.best(by="nocol"), "nocol"),
    (lambda e: e.best(by=None), "by"),
    (lambda e: e.next_pair(by="nocol"), "nocol"),
    (lambda e: e.compare(by="nocol"), "nocol"),
    (lambda e: e.compare({"a": 1}, "x"), "run id"),
])
def test_table_and_study_arguments_that_name_nothing_are_refused(exp: Any, call: Any, match: str) -> None:
    with pytest.raises(errors.UsageError, match=match) as info:
        call(exp)
    assert isinstance(info.value, ValueError)  # still what a caller catching ValueError expected


def test_tags_ratings_and_comparisons_change_only_this_experiments_runs(exp: Any, tmp_path: Path,
                                                                        ref_images: list[Path]) -> None:
    other = rf.Experiment("other", store=exp.store, artifacts=tmp_path / "a",
                          client=rf.Client(backend="simulator", simulator_latency=0))
    other.run(rf.grid(prompt=PROMPT, images=[str(ref_images[0])], seed=[9], duration=3, resolution="720p"),
              progress=None)
    theirs = other.table()["run_id"].iloc[0]
    mine, second = exp.table()["run_id"].tolist()
    for call in (lambda: exp.rate(theirs, 5), lambda: exp.tag(theirs, "good"), lambda: exp.untag(theirs, "x"),
                 lambda: exp.compare(mine, theirs), lambda: exp.rate("nope", 3)):
        with pytest.raises(errors.UsageError, match="not a run of 'usage'"):
            call()
    row = other.table().iloc[0]
    assert pd.isna(row["rating"])  # the other experiment's run is untouched
    assert list(row["tags"]) == []
    with pytest.raises(errors.UsageError, match="itself"):
        exp.compare(mine, mine)
    with pytest.raises(errors.UsageError, match="own argument"):
        exp.tag(mine, ["good", "fav"])  # type: ignore[arg-type]
    for bad in (0, 6, -1, 2**63, 4.5, True):
        with pytest.raises(errors.ValidationError, match="1 to 5"):
            exp.rate(mine, bad)
    exp.rate(mine, 5)
    exp.tag(second, "good")
    table = exp.table().set_index("run_id")
    assert table.loc[mine, "rating"] == 5 and list(table.loc[second, "tags"]) == ["good"]


def test_an_export_that_cannot_be_written_says_where_and_leaves_no_partial_file(exp: Any, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(errors.ConfigurationError, match="is a folder"):
        exp.to_csv(folder)
    with pytest.raises(errors.ConfigurationError, match="cannot write"):
        exp.to_csv(tmp_path / "missing" / "runs.csv")
    for bad in (None, "", 5):
        with pytest.raises(errors.UsageError, match="path"):
            exp.to_parquet(bad)
    assert list(folder.iterdir()) == [] and not (tmp_path / "missing").exists()
    written = exp.to_csv(tmp_path / "runs.csv")
    assert written.read_text().count("\n") == 3  # the header and two runs
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


@pytest.mark.parametrize(("plan", "field"), [
    (None, "plan"), ({"prompt": PROMPT}, "wrap it in a list"), ("abc", "plan"), ([5], r"plan\[0\]"),
    ([None], r"plan\[0\]"), ([{"prompt": PROMPT, "durations": 5}], "did you mean 'duration'"),
])
def test_a_plan_of_the_wrong_shape_or_with_a_misspelt_input_is_refused_before_anything_runs(
        exp: Any, plan: Any, field: str) -> None:
    before = len(exp.table())
    with pytest.raises(errors.ValidationError, match=field):
        exp.run(plan, progress=None)
    assert len(exp.table()) == before


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"seed": range(10**9)}, "more than 10,000"), ({"model": 5}, "model"), ({"spec": "t2v"}, "spec"),
    ({"prompt": {"a": 1}}, "prompt"),
    ({"seed": range(400), "duration": list(range(3, 16)), "resolution": ["720p", "1080p"]}, "10,400 runs"),
])
def test_grid_refuses_arguments_it_cannot_sweep(ref_images: list[Path], kwargs: dict[str, Any], field: str) -> None:
    values = {"prompt": PROMPT, "images": [str(ref_images[0])], **kwargs}
    with pytest.raises(errors.ValidationError, match=field):
        rf.grid(**values)


def test_request_inputs_that_cannot_be_used_are_named(ref_images: list[Path]) -> None:
    from PIL import Image

    with pytest.raises(errors.ValidationError, match="no pixels"):
        rf.grid(prompt=PROMPT, images=[Image.new("RGB", (0, 0))])
    for bad in (math.nan, "x"):
        with pytest.raises(errors.ValidationError, match="video_duration_s"):
            rf.VideoRequest.build(model="edit", prompt="make it night", video="https://example.com/v.mp4",
                                  video_duration_s=bad)
    with pytest.raises(errors.ValidationError, match="did you mean 'duration'"):
        rf.Client(backend="simulator").generate(prompt=PROMPT, images=[str(ref_images[0])], durations=5)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"store": 5}, "store"), ({"store": "a\x00b"}, "NUL"), ({"artifacts": 5}, "artifacts"),
    ({"storage_options": 5}, "storage_options"),
])
def test_experiment_settings_that_cannot_work_are_refused(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(errors.ConfigurationError, match=match):
        rf.Experiment("x", **kwargs)


def test_waiting_on_a_background_sweep_takes_seconds_only(exp: Any, ref_images: list[Path]) -> None:
    handle = exp.run(rf.grid(prompt=PROMPT, images=[str(ref_images[0])], seed=[3], duration=3, resolution="720p"),
                     background=True, progress=None)
    for bad in ("10", math.nan, -1):
        with pytest.raises(errors.UsageError, match="timeout"):
            handle.wait(timeout=bad)
    assert len(handle.wait(timeout=60)) == 3


def test_the_cli_and_the_library_refuse_plans_past_one_limit() -> None:
    from runflow_nb import cli, plan

    assert cli.MAX_CLI_RUNS == plan.MAX_PLAN_RUNS == 10_000


def test_more_arguments_that_once_escaped_are_named(exp: Any, ref_images: list[Path], tmp_path: Path) -> None:
    assert [r["seed"] for r in exp.runs(seed=1)] == [1]  # column filters, as table() takes them
    assert len(exp.runs(status="succeeded")) == 2
    with pytest.raises(errors.UsageError, match="nocol"):
        exp.runs(nocol=1)
    with pytest.raises(errors.UsageError, match="client"):
        rf.doctor(client=5)
    plan = rf.grid(prompt=PROMPT, images=[str(ref_images[0])], seed=[7], duration=3, resolution="720p")
    with pytest.raises(errors.ValidationError, match="batch"):
        exp.run(plan, batch="yes", progress=None)
    assert len(exp.table()) == 2


def test_downloading_a_run_that_has_not_finished_says_to_wait(emulator_server: Any, ref_images: list[Path],
                                                               tmp_path: Path) -> None:
    client = rf.Client(api_key="rf_test_usage", base_url=emulator_server.url, poll_interval=0.05)
    run = client.submit(prompt=PROMPT, images=[str(ref_images[0])], duration=3, resolution="720p")
    assert not run.done
    with pytest.raises(errors.DownloadError, match="wait for it first"):
        client.download(run, tmp_path / "early.mp4")
    assert not (tmp_path / "early.mp4").exists()
    done = client.wait(run.id, timeout=60)
    client.download(done, tmp_path / "clip.mp4")
    assert (tmp_path / "clip.mp4").stat().st_size > 0


def test_the_cli_refuses_an_unwritable_out_before_submitting(emulator_server: Any, ref_images: list[Path],
                                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from runflow_nb.cli import main

    blocker = tmp_path / "t.txt"
    blocker.write_text("a file")
    monkeypatch.setenv("RUNFLOW_API_KEY", "rf_test_usage")
    monkeypatch.setenv("RUNFLOW_BASE_URL", emulator_server.url)
    code = main(["generate", "--prompt", PROMPT, "--image", str(ref_images[0]), "--duration", "3",
                 "--out", str(blocker)])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err and "nothing was submitted" in err, err
    assert int(emulator_server.emulator.simulator.counts()["runs"]) == 0
