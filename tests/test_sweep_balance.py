"""A budget cut across models keeps the study balanced: money is reserved in the balanced order,
however long each run takes to get ready."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import runflow_nb as rf


def _variant(row: dict[str, Any]) -> str:
    return str(row["model"]).rsplit("/", 1)[-1]


def test_a_budget_cut_across_three_models_leaves_one_clip_per_model(sweeper: Any, ref_images: list[Path]) -> None:
    # 12 runs over t2v, i2v and r2v at $1.40 each (10 s at 720p); $4.50 pays for three of them.
    plan = rf.grid(model=["t2v", "i2v", "r2v"], prompt="character1 walks", images=ref_images, seed=[1, 2, 3, 4],
                   duration=10, resolution="720p")
    assert len(plan) == 12 and plan.estimate().usd == 16.8
    store = sweeper.store
    real_get, real_transition = store.get_run, store.transition
    second_t2v_sent, held = threading.Event(), []

    def get_run(run_id: str) -> Any:
        row = real_get(run_id)
        if row and _variant(row) == "image-to-video" and row["seed"] == 1 and not held:
            held.append(run_id)
            # the image-to-video run is slow to get ready (as while its reference is prepared): it is
            # held until the next run in the queue (text-to-video, seed 2) is sent, or for 3 s at most
            second_t2v_sent.wait(3.0)
        return row

    def transition(run_id: str, **kw: Any) -> Any:
        ok = real_transition(run_id, **kw)
        row = real_get(run_id)
        if ok and kw.get("status") == "submitting" and _variant(row) == "text-to-video" and row["seed"] == 2:
            second_t2v_sent.set()
        return ok

    store.get_run, store.transition = get_run, transition
    summary = sweeper.run(plan, concurrency=4, budget_usd=4.50)
    done = sorted(_variant(r) for r in sweeper.rows() if r["status"] == "succeeded")
    assert done == ["image-to-video", "reference-to-video", "text-to-video"]
    assert summary.skipped_budget == 9 and summary.spent_usd <= 4.50
    assert not second_t2v_sent.is_set()  # the run after it in the queue waited for its turn


def test_turns_hand_out_reservations_in_queue_order_whatever_order_runs_arrive() -> None:
    import asyncio

    from runflow_nb.sweep.turns import Turns

    async def go() -> list[int]:
        turns, seen = Turns(4), []

        async def take(i: int) -> None:
            await turns.wait(i)
            seen.append(i)
            await turns.done(i)

        async def skip(i: int) -> None:  # a run that needs no reservation passes its turn
            await turns.done(i)

        await asyncio.gather(take(3), take(1), skip(2), take(0))
        return seen

    assert asyncio.run(go()) == [0, 1, 3]
