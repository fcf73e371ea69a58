"""The sweep's money ledger on its own: spent + in flight + unknown never exceeds the cap.

No network, no store: each test drives :class:`runflow_nb.sweep.budget.Budget` on a fresh event loop
and reads its three sums, so every rule (when a reservation fits, who may wait for room, what a
stop does, how an ending is booked) is checked in microseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from runflow_nb.sweep.budget import Budget, Reservation

T = TypeVar("T")
RUN = 0.42  # one 3 s clip at 720p


def run(fn: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(fn())  # type: ignore[arg-type]


def sums(b: Budget) -> tuple[float, float, float]:
    return round(b.spent, 6), round(b.in_flight, 6), round(b.unknown, 6)


async def pending(coro: Awaitable[Any]) -> asyncio.Task[Any]:
    """Start ``coro`` and let it run until it blocks."""
    task = asyncio.ensure_future(coro)
    for _ in range(5):
        await asyncio.sleep(0)
    return task


def test_reservations_up_to_the_cap_and_not_a_cent_beyond() -> None:
    async def go() -> None:
        b = Budget(3 * RUN)
        held = [await b.reserve(RUN) for _ in range(3)]
        assert all(r is not None and (r.usd, r.kind) == (RUN, "in_flight") for r in held)
        assert sums(b) == (0.0, 3 * RUN, 0.0) and b.committed == pytest.approx(3 * RUN)
        for r in held:
            assert r is not None
            await b.settle(r, spent=RUN)  # all three billed: nothing can come back
        assert sums(b) == (round(3 * RUN, 6), 0.0, 0.0)
        assert await b.reserve(0.01) is None and b.exhausted

    run(go)


def test_a_reservation_that_exactly_fills_the_cap_is_allowed() -> None:
    async def go() -> None:
        b = Budget(0.84)
        assert await b.reserve(0.42) is not None
        assert await b.reserve(0.42) is not None  # 0.84 <= 0.84 (float sums within a rounding epsilon)
        assert not b.exhausted
        c = Budget(0.1 + 0.2)  # 0.30000000000000004
        assert await c.reserve(0.3) is not None

    run(go)


def test_no_cap_reserves_everything() -> None:
    async def go() -> None:
        b = Budget(None)
        for _ in range(50):
            assert await b.reserve(100.0) is not None
        assert b.in_flight == pytest.approx(5000.0) and not b.exhausted

    run(go)


def test_a_run_that_does_not_fit_with_nothing_in_flight_ends_the_budget_for_cheaper_ones_too() -> None:
    async def go() -> None:
        b = Budget(1.0)
        first = await b.reserve(0.7)
        assert first is not None
        await b.settle(first, spent=0.7)
        assert await b.reserve(0.42) is None and b.exhausted
        # a cheaper run later in the plan must not jump the queue past the cut
        assert await b.reserve(0.1) is None
        assert sums(b) == (0.7, 0.0, 0.0)

    run(go)


def test_once_exhausted_no_submit_waits_even_with_runs_in_flight() -> None:
    async def go() -> None:
        b = Budget(1.0)
        assert await b.reserve(0.5) is not None  # in flight
        await b.hold(0.4, "unknown")
        assert await b.reserve(0.7) is None and b.exhausted  # 0.4 unknown + 0.7 > 1.0 whatever happens
        # a cheaper run later in the plan is refused at once, not left waiting for the run in flight
        assert await asyncio.wait_for(b.reserve(0.1), 1) is None

    run(go)


def test_a_submit_waits_for_a_run_in_flight_and_takes_the_room_a_failure_frees() -> None:
    async def go() -> None:
        b = Budget(2 * RUN)
        a, c = await b.reserve(RUN), await b.reserve(RUN)
        assert a is not None and c is not None
        waiter = await pending(b.reserve(RUN))
        assert not waiter.done()  # full, but a run in flight may still fail unbilled
        await b.settle(a)  # failed: not billed, its share is free again
        got = await asyncio.wait_for(waiter, 1)
        assert got is not None and got.kind == "in_flight"
        assert sums(b) == (0.0, round(2 * RUN, 6), 0.0)

    run(go)


def test_a_waiting_submit_gives_up_when_the_run_in_flight_is_billed() -> None:
    async def go() -> None:
        b = Budget(RUN)
        a = await b.reserve(RUN)
        assert a is not None
        waiter = await pending(b.reserve(RUN))
        assert not waiter.done()
        await b.settle(a, spent=RUN)
        assert await asyncio.wait_for(waiter, 1) is None
        assert b.exhausted and sums(b) == (RUN, 0.0, 0.0)

    run(go)


def test_a_waiting_submit_gives_up_when_the_run_in_flight_becomes_unknown() -> None:
    async def go() -> None:
        b = Budget(RUN)
        a = await b.reserve(RUN)
        assert a is not None
        waiter = await pending(b.reserve(RUN))
        await b.move(a, "unknown")  # the server may bill it: its share stays taken
        assert await asyncio.wait_for(waiter, 1) is None
        assert b.exhausted and sums(b) == (0.0, 0.0, RUN) and a.kind == "unknown"

    run(go)


def test_no_waiting_when_even_a_freed_run_could_not_make_room() -> None:
    async def go() -> None:
        b = Budget(1.0)
        await b.hold(0.7, "unknown")
        small = await b.reserve(0.2)
        assert small is not None
        # 0.7 unknown + 0.5 > 1.0 whatever the 0.2 in flight does: refused at once, not awaited
        got = await asyncio.wait_for(b.reserve(0.5), 1)
        assert got is None and b.exhausted

    run(go)


def test_unknown_and_re_attached_runs_count_before_any_new_submit() -> None:
    async def go() -> None:
        b = Budget(3 * RUN)
        u = await b.hold(RUN, "unknown")  # a run left unknown by an earlier sweep
        f = await b.hold(RUN, "in_flight")  # a run re-attached on the server
        assert (u.kind, f.kind) == ("unknown", "in_flight")
        assert sums(b) == (0.0, RUN, RUN)
        assert await b.reserve(RUN) is not None
        waiter = await pending(b.reserve(RUN))  # full; the in-flight ones may still fail
        await b.settle(u)  # the unknown one turned out never to have been created
        assert await asyncio.wait_for(waiter, 1) is not None

    run(go)


def test_hold_never_checks_the_cap() -> None:
    async def go() -> None:
        b = Budget(0.1)
        r = await b.hold(RUN, "unknown")
        assert r.usd == RUN and b.unknown == RUN and b.committed > b.cap  # type: ignore[operator]
        assert await b.reserve(0.01) is None

    run(go)


def test_settle_books_the_real_cost_once_and_clears_the_reservation() -> None:
    async def go() -> None:
        b = Budget(None)
        r = await b.reserve(0.7)
        assert r is not None
        await b.settle(r, spent=0.56)  # the real cost replaces the estimate
        assert (r.usd, r.kind) == (0.0, "")
        assert sums(b) == (0.56, 0.0, 0.0)
        await b.settle(r)  # settling again frees nothing more and books nothing
        assert sums(b) == (0.56, 0.0, 0.0)
        u = await b.hold(0.42, "unknown")
        await b.settle(u, spent=0.42)
        assert sums(b) == (0.98, 0.0, 0.0)

    run(go)


def test_move_files_a_reservation_under_its_new_kind() -> None:
    async def go() -> None:
        b = Budget(None)
        u = await b.hold(0.42, "unknown")
        other = await b.hold(0.7, "unknown")
        await b.move(u, "in_flight")  # re-attached: running again
        assert sums(b) == (0.0, 0.42, 0.7) and u.kind == "in_flight"
        await b.move(u, "unknown")
        assert sums(b) == (0.0, 0.0, 1.12)
        await b.settle(other)
        assert sums(b) == (0.0, 0.0, 0.42)

    run(go)


def test_a_reservation_without_a_kind_moves_no_money() -> None:
    async def go() -> None:
        b = Budget(1.0)
        empty = Reservation()
        await b.settle(empty)
        await b.move(Reservation(0.5, ""), "")
        assert sums(b) == (0.0, 0.0, 0.0)

    run(go)


def test_sums_never_go_negative() -> None:
    async def go() -> None:
        b = Budget(None)
        r = Reservation(0.42, "in_flight")  # never added: removing it must not push the sum below zero
        await b.settle(r)
        u = Reservation(0.42, "unknown")
        await b.settle(u)
        assert sums(b) == (0.0, 0.0, 0.0)

    run(go)


def test_close_wakes_every_waiting_submit_and_refuses_new_ones() -> None:
    async def go() -> None:
        b = Budget(RUN)
        a = await b.reserve(RUN)
        assert a is not None
        waiters = [await pending(b.reserve(RUN)) for _ in range(3)]
        assert not any(w.done() for w in waiters)
        await b.close()
        assert [await asyncio.wait_for(w, 1) for w in waiters] == [None, None, None]
        assert await b.reserve(0.0) is None
        assert not b.exhausted  # a stop is not a budget cut
        unlimited = Budget(None)
        await unlimited.close()
        assert await unlimited.reserve(RUN) is None
        await b.settle(a, spent=RUN)  # a run in flight at the stop is still booked
        assert sums(b) == (RUN, 0.0, 0.0)

    run(go)


def test_committed_is_spent_plus_in_flight_plus_unknown() -> None:
    async def go() -> None:
        b = Budget(None)
        s = await b.reserve(0.28)
        assert s is not None
        await b.settle(s, spent=0.28)
        await b.reserve(0.42)
        await b.hold(0.7, "unknown")
        assert b.committed == pytest.approx(0.28 + 0.42 + 0.7)

    run(go)
