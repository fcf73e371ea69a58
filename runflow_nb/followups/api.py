"""The experiment's follow-up methods: ``exp.request``, ``exp.code``, ``exp.rerun``, ``exp.upscale``
and ``exp.detail``. :class:`~runflow_nb.experiment.Experiment` inherits them from :class:`FollowUps`
(so its own module stays small); each only delegates to :mod:`.steps`.

This module sits at the experiment's level, not below it: like ``experiment.py`` it draws the
detail view's widget (:mod:`runflow_nb.widgets.actions`) when a live front end shows it, imported
only then. Nothing else in :mod:`runflow_nb.followups` imports widgets or the experiment.

>>> keeper = exp.upscale(exp.ranking().iloc[0])      # doctest: +SKIP
>>> exp.rerun(keeper, seed=range(8))                 # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._boundary import public

if TYPE_CHECKING:
    from ..experiment import Experiment
    from ..request import VideoRequest
    from ..views.record import RunRecord

__all__ = ["FollowUps"]


def _exp(obj: Any) -> Experiment:
    """``self`` as the experiment it is (FollowUps is only ever mixed into Experiment)."""
    return obj


class FollowUps:
    """From a row back to a request, and the runs that grow from it (mixed into ``Experiment``)."""

    @public
    def request(self, run: Any, /) -> VideoRequest:
        """The request that made ``run`` (a run id, a table row or a Result): same ``run_key()``; its
        references found by content (a file that is gone is an error saying how to bring it back)."""
        from .steps import request_of

        return request_of(_exp(self), run)

    @public
    def code(self, run: Any, /) -> str:
        """Python that rebuilds ``run``'s request in a fresh kernel (binds ``request``; no key)."""
        from .steps import code_of

        return code_of(_exp(self), run)

    @public
    def rerun(self, run: Any, /, *, budget_usd: float | None = None, progress: Any = "auto",
              force: bool = False, **changes: Any) -> Any:
        """``run``'s request again with ``changes`` (seed, duration, prompt, aspect_ratio, resolution,
        references, model, audio_setting), recorded with ``parent_run_id`` = ``run``; returns the new
        run (a :class:`~runflow_nb.views.record.RunRecord`: its stored row, shown as its clip).
        ``seed=range(8)`` (or a list) is a sweep around one clip: returns its table.

        Never pays twice: the same re-run again, or a request the experiment already holds (the same
        model, prompt, references by content, seed and every input, made by a sweep or another
        follow-up: succeeded, or in flight with its money held) is that run, reused with nothing
        charged ("already in the experiment: run …, nothing charged"; its own parent unchanged).
        ``force=True`` pays again for a fresh sample of such a request.

        >>> row = exp.rerun(df.run_id[0], seed=11)                          # doctest: +SKIP
        """
        from .steps import rerun_of

        return rerun_of(_exp(self), run, changes, budget_usd=budget_usd, progress=progress, force=force)

    @public
    def upscale(self, run: Any, /, *, budget_usd: float | None = None, progress: Any = "auto",
                force: bool = False) -> RunRecord:
        """``run`` again with the same seed and inputs at the model's highest resolution (1080p); the
        estimate and the budget apply; the same upscale again, or a 1080p run of the same request the
        experiment already holds, pays nothing (``force=True`` pays for a fresh sample)."""
        from .steps import upscale_of

        record: RunRecord = upscale_of(_exp(self), run, budget_usd=budget_usd, progress=progress, force=force)
        return record

    @public
    def detail(self, run: Any, /) -> Any:
        """One run in full: player, prompt with references, request as sent, timing, cost, seeds,
        lineage, QA notes and code; in JupyterLab with buttons (re-run, upscale, edit, form, code)."""
        from ..widgets.actions import detail  # widgets depend on the library; imported only when drawn

        return detail(_exp(self), run)
