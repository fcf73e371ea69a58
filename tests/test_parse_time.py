"""Run timestamps parse the same on every supported Python (3.10's fromisoformat reads far fewer forms)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from runflow_nb.runs import Run, parse_time

UTC = timezone.utc
NOON = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("value", "expected"), [
    ("2024-05-01T12:00:00Z", NOON),
    ("2024-05-01T12:00:00z", NOON),
    ("2024-05-01t12:00:00Z", NOON),
    ("2024-05-01T12:00:00+00:00", NOON),
    ("2024-05-01T14:00:00+02:00", NOON),
    ("2024-05-01T14:00:00+0200", NOON),
    ("2024-05-01T07:00:00-05:00", NOON),
    ("2024-05-01 12:00:00Z", NOON),
    ("2024-05-01T12:00Z", NOON),
    ("2024-05-01T12:00:00", NOON),  # naive: taken as UTC
    ("  2024-05-01T12:00:00Z\n", NOON),
    ("2024-05-01T12:00:00.5Z", NOON + timedelta(milliseconds=500)),
    ("2024-05-01T12:00:00.123Z", NOON + timedelta(milliseconds=123)),  # 3.10: fromisoformat refuses
    ("2024-05-01T12:00:00.123456Z", NOON + timedelta(microseconds=123456)),
    ("2024-05-01T12:00:00.123456789Z", NOON + timedelta(microseconds=123456)),  # nanoseconds: truncated
    ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
    (1714564800, NOON),
    (1714564800.25, NOON + timedelta(milliseconds=250)),
    (1714564800123, NOON + timedelta(milliseconds=123)),  # epoch milliseconds
    ("1714564800", NOON),
    (datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))), NOON),
    (datetime(2024, 5, 1, 12, 0), NOON),
])
def test_every_form_parses_to_aware_utc(value: object, expected: datetime) -> None:
    got = parse_time(value)
    assert got == expected
    assert got is not None and got.utcoffset() == timedelta(0)


@pytest.mark.parametrize("value", [None, "", "   ", "garbage", "2024-13-01T00:00:00Z", "2024-05-01T25:00:00Z",
                                   True, False, float("nan"), float("inf"), [], {}, b"2024-05-01"])
def test_absent_or_garbled_is_none(value: object) -> None:
    assert parse_time(value) is None


def test_run_records_carry_parsed_times() -> None:
    run = Run.parse({"id": "r1", "status": "succeeded", "created_at": "2024-05-01T12:00:00.123Z",
                        "started_at": 1714564800, "completed_at": "not a time"})
    assert run.created_at == NOON + timedelta(milliseconds=123)
    assert run.started_at == NOON and run.completed_at is None
