"""The run list's ``q`` expressions: every documented operator, grouping, and a clear 422 for each
kind of bad expression (checked here on the parser; over HTTP in tests/contract/test_list_query.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from runflow_nb.emulator.query import parse_query
from runflow_nb.errors import ValidationError


def at(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc).timestamp()


RUNS: dict[str, dict[str, Any]] = {
    "a": {"id": "a", "client_ref": "ref-a", "status_code": "succeeded", "created_at": at("2026-03-31T23:59:59"),
          "cost": "0.70", "batch_id": None, "metadata": {"experiment": "e1"}},
    "b": {"id": "b", "client_ref": "ref-b", "status_code": "succeeded", "created_at": at("2026-04-01T00:00:00"),
          "cost": "1.40", "batch_id": "batch-1", "metadata": {"experiment": "e2"}},
    "c": {"id": "c", "client_ref": "ref c", "status_code": "failed", "created_at": at("2026-04-02T10:00:00"),
          "cost": "0.00", "batch_id": "batch-1", "metadata": None},
    "d": {"id": "d", "client_ref": None, "status_code": "canceled", "created_at": at("2026-04-03T00:00:00"),
          "cost": None, "batch_id": None, "metadata": {}},
}


def matching(q: str) -> str:
    predicate = parse_query(q)
    assert predicate is not None
    return "".join(k for k, row in RUNS.items() if predicate(row))


@pytest.mark.parametrize("q, expected", [
    ("status_code:succeeded AND created_at>2026-04-01", ""),  # the docs' example: b is at midnight, not after
    ("status_code:succeeded AND created_at>=2026-04-01", "b"),
    ("status_code:succeeded", "ab"),
    ("status_code=succeeded", "ab"),
    ("client_ref:ref-a", "a"),
    ('client_ref:"ref c"', "c"),
    ("created_at<2026-04-01", "a"),
    ("created_at<=2026-04-01T00:00:00Z", "ab"),
    ("created_at:2026-04-02", "c"),
    ("created_at>2026-04-02T09:59:59+00:00", "cd"),
    ("cost>=0.70", "ab"),
    ("cost<1", "ac"),
    ("status_code:succeeded OR status_code:failed", "abc"),
    ("NOT status_code:succeeded", "cd"),
    ("not status_code:succeeded and batch_id:batch-1", "c"),
    ("status_code:succeeded client_ref:ref-b", "b"),  # side by side means AND
    ("status_code:failed OR status_code:succeeded AND cost>1", "bc"),  # AND binds tighter than OR
    ("(status_code:failed OR status_code:succeeded) AND cost>1", "b"),
    ("NOT (status_code:failed OR status_code:succeeded)", "d"),
    ("(client_ref:ref-a)", "a"),
    ("status_code:cancelled", "d"),  # either spelling finds a canceled run
    ("status_code:succeeded|failed", "abc"),
    ("batch_id:null", "ad"),
    ("metadata.experiment:e2", "b"),
    ("id:b OR id:d", "bd"),
])
def test_documented_operators_select_the_runs_they_name(q: str, expected: str) -> None:
    assert matching(q) == expected


def test_an_empty_q_filters_nothing() -> None:
    assert parse_query("") is None and parse_query("   ") is None


@pytest.mark.parametrize("q, says", [
    ("status_code:succeeded AND", "ends where a term was expected"),
    ("(status_code:succeeded", "'(' is not closed"),
    ("status_code:succeeded )", "closes nothing"),
    ("AND status_code:succeeded", "'AND' where a term was expected"),
    ("colour:red", "cannot filter on 'colour'"),
    ("client_ref>abc", "cannot be compared"),
    ("created_at>yesterday", "not an ISO date"),
    ("cost>cheap", "not a number"),
    ('client_ref:"open', "not closed"),
    ("client_ref:", "has no value"),
    ("just words", "cannot read the filter"),
])
def test_a_bad_expression_is_a_422_on_q_naming_the_problem_and_the_fix(q: str, says: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_query(q)
    (issue,) = caught.value.issues
    assert issue.field == "q" and says in issue.message and issue.fix


def test_a_bare_value_keeps_a_closing_paren_that_closes_no_group() -> None:
    predicate = parse_query("client_ref:take(2)")
    assert predicate is not None and predicate({"client_ref": "take(2)"})
