"""The live counts and the summary agree with the store, and a damaged video is a charged download failure.

Same zero-latency harness as ``test_sweep_money.py``: the progress display and ``exp.last_summary``
are read by researchers as the state of their money, so they must say what the store says.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from _fast_sweep import RUN, Service, Sweeper, plan


def test_the_counts_shown_are_the_counts_stored(fast_clip: Path, no_fsync: None, tmp_path: Path,
                                                ref_images: list[Path]) -> None:
    service = Service(fast_clip, faults="fail=1x")
    try:
        sweeper = Sweeper(service, tmp_path)
        s = sweeper.run(plan(ref_images, range(4)), budget_usd=2 * RUN)
        stored = Counter(r["status"] for r in sweeper.rows())
        assert stored == Counter({"failed": 1, "succeeded": 2, "skipped_budget": 1})
        assert s.counts == dict(stored)
        shown = {k: v for k, v in sweeper.progress[-1].counts.items() if v}
        assert shown == dict(stored) and sweeper.progress[-1].done == 3 and sweeper.progress[-1].skipped == 1
        assert "[3/4]" in sweeper.progress[-1].line()
    finally:
        service.close()


def test_a_truncated_video_is_a_charged_download_failure_fetched_again_later(
        fast_clip: Path, no_fsync: None, tmp_path: Path, ref_images: list[Path]) -> None:
    service = Service(fast_clip, faults="truncate=1x")
    try:
        sweeper = Sweeper(service, tmp_path)
        s = sweeper.run(plan(ref_images, range(1)), budget_usd=RUN)
        (row,) = sweeper.rows()
        assert row["status"] == "download_failed" and row["cost_usd"] == pytest.approx(RUN)
        assert row["error_code"] and row["error_code"].endswith("Error") and row["error_message"]
        assert s.counts == {"download_failed": 1} and s.spent_usd == pytest.approx(RUN)
        assert not list((tmp_path / "artifacts").rglob("*.part"))  # no partial file is left
        s = sweeper.run(plan(ref_images, range(1)), budget_usd=0)
        (row,) = sweeper.rows()
        assert row["status"] == "succeeded" and s.submitted == 0 and service.created() == 1
    finally:
        service.close()


def test_a_succeeded_run_records_what_the_server_said_about_it(service: Service, sweeper: Sweeper,
                                                               ref_images: list[Path]) -> None:
    sweeper.run(plan(ref_images, range(1)))
    (row,) = sweeper.rows()
    assert row["status"] == "succeeded" and row["started_at"] is not None and row["completed_at"] is not None
    assert row["nsfw_detected"] is not None and row["queue_s"] is not None and row["inference_ms"] is not None
    assert row["seed_returned"] == 0 and row["output_url"]


def test_an_experiment_cap_counts_only_its_own_experiment(service: Service, sweeper: Sweeper, tmp_path: Path,
                                                         ref_images: list[Path]) -> None:
    other = Sweeper(service, tmp_path / "other", experiment="another study")
    other.store = sweeper.store
    other.run(plan(ref_images, range(3)))  # spending of another experiment in the same store
    s = sweeper.run(plan(ref_images, range(2)), experiment_budget_usd=2 * RUN)
    assert s.submitted == 2 and service.created() == 5
