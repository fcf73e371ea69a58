"""``exp.reconcile()``: the experiment's side of :mod:`runflow_nb.sweep.reconcile` (a mixin of
:class:`runflow_nb.Experiment`; its imports stay lazy, so importing the experiment stays cheap)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..client import AsyncClient
    from ..store.runstore import Store
    from .reconcile import Reconciled

__all__ = ["Reconciling"]


class Reconciling:
    """Adds :meth:`reconcile` to an object with ``store``, ``name`` and ``_async_client()``."""

    store: Store
    name: str

    def _async_client(self) -> AsyncClient:
        raise NotImplementedError

    def reconcile(self) -> Reconciled:
        """Read the server's runs of this experiment back and record any the table lacks (status
        ``duplicate``, with its cost) or any unknown run it shows; returns what was found. Every
        sweep ends with one.

        >>> exp.reconcile().line()                                    # doctest: +SKIP
        'reconciled with the server: 12 run(s) of this experiment listed against 12 row(s) in the table; every listed run is in the table'
        """
        from .background import run_blocking
        from .reconcile import reconcile

        async def go() -> Reconciled:
            client = self._async_client()
            try:
                return await reconcile(store=self.store, experiment=self.name, client=client)
            finally:
                await client.aclose()

        return run_blocking(go)
