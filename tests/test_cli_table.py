"""``runflow-nb table`` prints what people read (short ids, rounded times and costs, blanks for missing
values) and, without a name, lists the store's experiments."""

from __future__ import annotations

from pathlib import Path

import pytest

from runflow_nb.cli import main
from runflow_nb.store.runstore import Store

RUN_ID = "0190f3c2-7b1a-7d4e-9f00-aabbccddeeff"


@pytest.fixture
def store(tmp_path: Path) -> str:
    path = tmp_path / "rf.sqlite"
    with Store(str(path)) as st:
        st.insert_run({"run_id": RUN_ID, "experiment": "horses", "run_key": "k1", "status": "succeeded",
                       "prompt": "a horse", "seed": 3, "duration": 5, "wall_s": 19.123456, "cost_usd": 0.7000001})
        st.insert_run({"run_id": "0190f3c2-0000-7000-8000-000000000002", "experiment": "horses", "run_key": "k2",
                       "status": "skipped_budget", "prompt": "a horse", "seed": 4, "duration": 5})
        st.insert_run({"run_id": "0190f3c2-0000-7000-8000-000000000003", "experiment": "zebras", "run_key": "k3",
                       "status": "succeeded", "prompt": "a zebra", "seed": 1, "duration": 3, "cost_usd": 0.42})
    return str(path)


def test_table_prints_short_ids_rounded_values_and_blanks(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["table", "horses", "--store", store]) == 0
    out = capsys.readouterr().out
    assert "nan" not in out.lower() and "<NA>" not in out and "None" not in out
    assert "| 0190f3c2 |" in out and RUN_ID not in out
    assert "| 19.1 |" in out and "| 0.7 |" in out and "19.123456" not in out
    skipped = next(line for line in out.splitlines() if "skipped_budget" in line)
    assert "|  |" in skipped  # its wall time and cost are blank


def test_csv_keeps_every_value_as_stored(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["table", "horses", "--store", store, "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert RUN_ID in out and "19.123456" in out


def test_table_without_a_name_lists_the_experiments(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["table", "--store", store]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split("|")[1:5] == [" experiment ", " runs ", " succeeded ", " cost_usd "]
    assert "| horses | 2 | 1 | 0.7 |" in out and "| zebras | 1 | 1 | 0.42 |" in out
    assert "runflow-nb table EXPERIMENT" in out
