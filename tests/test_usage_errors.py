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
