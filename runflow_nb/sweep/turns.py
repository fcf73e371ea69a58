"""Money handed out by queue position: the sweep's runs reserve in their balanced order.

The sweep queues its runs in :func:`runflow_nb.plan.balanced_order`, but a run reaches the budget only
after store reads, a lease and (on a resume) a look-up of its earlier attempt, which end in any order.
Without turns, a run that is slower to get ready loses its place to the next one in the queue, and a
budget cut across models can leave one model with no clip. Each run therefore waits for the runs
queued before it to decide (reserve, be skipped, or need no new reservation) before it reserves.
"""

from __future__ import annotations

import asyncio

__all__ = ["Turns"]


class Turns:
    """``n`` turns taken in order: :meth:`wait` for turn ``i`` returns once every earlier turn is done.

    >>> import asyncio
    >>> async def demo() -> list[int]:
    ...     turns, seen = Turns(2), []
    ...     async def take(i: int) -> None:
    ...         await turns.wait(i)
    ...         seen.append(i)
    ...         await turns.done(i)
    ...     await asyncio.gather(take(1), take(0))
    ...     return seen
    >>> asyncio.run(demo())
    [0, 1]
    """

    def __init__(self, n: int) -> None:
        self._done = [False] * n
        self._next = 0  # the first turn not yet done
        self._cond = asyncio.Condition()

    async def wait(self, i: int) -> None:
        """Until every turn before ``i`` is done."""
        async with self._cond:
            await self._cond.wait_for(lambda: self._next >= i)

    async def done(self, i: int) -> None:
        """Turn ``i`` is over (idempotent): later turns may go once the earlier ones are over too."""
        async with self._cond:
            if i >= len(self._done) or self._done[i]:
                return
            self._done[i] = True
            while self._next < len(self._done) and self._done[self._next]:
                self._next += 1
            self._cond.notify_all()
