"""The experiment's table and what is drawn from it: ``exp.table``, ``exp.view``, ``exp.ranking``,
``exp.qa``, ``exp.runs``, ratings and tags, exports, ``exp.gallery``, ``exp.best``, ``exp.compare``,
``exp.compare_many`` and ``exp.queue``. :class:`~runflow_nb.experiment.Experiment` inherits them from
:class:`ExperimentTable` (so its own module keeps to running sweeps).

This module sits at the experiment's level, not below it (like :mod:`runflow_nb.followups.api`): its
methods read the study (:mod:`runflow_nb.study`), clip QA and the follow-ups' lineage, and draw the
widgets, each imported only when called. Nothing else in :mod:`runflow_nb.views` imports it.

>>> exp.table(status="succeeded")           # doctest: +SKIP
>>> exp.gallery(rows="prompt", cols="seed")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._boundary import public
from ..errors import ConfigurationError, Issue, UsageError, ValidationError

if TYPE_CHECKING:
    import pandas as pd

    from ..experiment import Experiment
    from ..media.artifacts import Artifacts
    from ..store.runstore import Store

__all__ = ["ExperimentTable"]


def _exp(obj: Any) -> Experiment:
    """``self`` as the experiment it is (ExperimentTable is only ever mixed into Experiment)."""
    return obj


class ExperimentTable:
    """The runs of an experiment as a table, marked, exported and drawn (mixed into ``Experiment``)."""

    name: str
    store: Store
    artifact_store: Artifacts

    # -- the table ---------------------------------------------------------------------------------

    @public
    def table(self, *, status: str | Iterable[str] | None = None, tags: Iterable[str] | None = None,
              where: Mapping[str, Any] | None = None, qa: str | None = None) -> pd.DataFrame:
        """Every run of this experiment as a tidy DataFrame (one row a run, one column a field).

        Column order (:func:`runflow_nb.study.column_order`): the parameters that varied first, then
        the other parameters, the outcome (status, rating, tags, video and poster paths, errors),
        timing, cost; ids and bookkeeping (run_id, remote_id, run_key, ...) last. Paths are
        absolute, whichever folder the runs were made in. For reading, :meth:`view` is compact.
        ``qa="flagged"`` / ``"ok"`` / ``"unchecked"`` keeps the runs whose clip QA says so (:meth:`qa`).
        """
        from ..followups.changes import with_changes
        from ..study import column_order

        df = self.store.table(self.name, status=status, tags=tags, where=where)
        if qa is not None:
            from ..qa.check import filter_qa

            df = filter_qa(df, qa)
        return with_changes(df[column_order(df)], self.store)

    @public
    def view(self, *, columns: Iterable[str] | None = None, status: str | Iterable[str] | None = None,
             tags: Iterable[str] | None = None, **filters: Any) -> Any:
        """The table to read: a thumbnail per run, the parameters that varied, status, rating, cost
        and wall time; sortable and searchable (a :class:`~runflow_nb.views.tableview.TableView`)."""
        from .tableview import TableView

        df = self.table(status=status, tags=tags, where=filters or None)
        return TableView(df, columns=list(columns) if columns is not None else None)

    @public
    def ranking(self, *, flagged: bool = False) -> pd.DataFrame:
        """Succeeded runs best first: favourites, then rating, then A/B choices from :meth:`compare`
        (clips flagged by clip QA only with ``flagged=True``).

        A DataFrame with every column, shown like :meth:`view`: the still, what varied, rating,
        favourite, wins/losses/ties and cost (:class:`~runflow_nb.views.ranking.Ranking`)."""
        from ..study import ranking
        from .ranking import Ranking

        return Ranking(ranking(self.table(), flagged=flagged))

    @public
    def qa(self, *, run_ids: Iterable[str] | None = None, **thresholds: float) -> pd.DataFrame:
        """Check this experiment's stored clips again (all finished runs, or ``run_ids``), e.g. after
        changing a clip QA threshold (``RUNFLOW_QA_FROZEN_MIN_S``, ...) or passing one here (``exp.qa(frozen_min_s=2)``);
        stores and returns each run's new ``qa`` beside the one it had (``was``).

        Prints one line first (also in the table's ``attrs["summary"]``): how many clips were
        checked, how many are flagged and how many changed since the last check."""
        import pandas as pd

        from ..qa.check import check_stored, qa_summary
        from ..settings import qa_thresholds

        done = check_stored(self.store, self.name, artifacts=self.artifact_store, limits=qa_thresholds(**thresholds),
                            run_ids=None if run_ids is None else [self._own_run(r) for r in run_ids])
        df = pd.DataFrame(done, columns=["run_id", "qa", "was"])
        df.attrs["summary"] = qa_summary(done)
        print(f"runflow_nb: {df.attrs['summary']}", flush=True)
        return df

    @public
    def runs(self, *, status: str | Iterable[str] | None = None, **filters: Any) -> list[dict[str, Any]]:
        """This experiment's runs as dicts, oldest first (``status`` and column ``filters`` as in :meth:`table`)."""
        return self.store.runs(self.name, status=status, where=filters or None)

    @public
    def rate(self, run_id: str, rating: int | None) -> None:
        """Rate one of this experiment's runs from 1 to 5 (what the gallery and compare offer); None clears it."""
        if rating is not None and (isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5):
            raise ValidationError([Issue("rating", f"{rating!r} is not a rating from 1 to 5",
                                         "give a whole number from 1 to 5, or None to clear the rating")])
        self.store.set_rating(self._own_run(run_id), rating)

    @public
    def tag(self, run_id: str, *tags: str) -> None:
        """Add tags to one of this experiment's runs (``exp.tag(run_id, "good", "night")``)."""
        self.store.add_tags(self._own_run(run_id), *tags)

    @public
    def untag(self, run_id: str, *tags: str) -> None:
        self.store.remove_tags(self._own_run(run_id), *tags)

    def _own_run(self, run_id: Any) -> str:
        """``run_id`` when it names a run of this experiment, else UsageError (another experiment's run in
        the same store is not changed by mistake)."""
        if not isinstance(run_id, str) or not run_id:
            raise UsageError(f"run_id is {run_id!r}: use a run id from exp.table().run_id")
        row = self.store.get_run(run_id)
        if row is None or row.get("experiment") != self.name:
            where = "no run" if row is None else f"run of experiment {row.get('experiment')!r}"
            raise UsageError(f"{run_id!r} is {where}, not a run of {self.name!r}: use a run id from "
                             "exp.table().run_id")
        return run_id

    @public
    def to_parquet(self, path: str | os.PathLike[str]) -> Path:
        """Write the table to a Parquet file (replaced whole: a failed write leaves no partial file)."""
        return _export(self.table(), path, lambda df, tmp: df.to_parquet(tmp, index=False))

    @public
    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write the table to a CSV file (replaced whole: a failed write leaves no partial file)."""
        return _export(self.table(), path, lambda df, tmp: df.to_csv(tmp, index=False))

    # -- display -----------------------------------------------------------------------------------

    @public
    def gallery(self, *, rows: str = "prompt", cols: str = "seed", facets: str | Iterable[str] | None = None,
                **filters: Any) -> Any:
        """Clips as ``rows`` × ``cols`` (any columns), other varied parameters as aligned facets;
        an empty cell says why (skipped over the budget, failed, not run). In JupyterLab each clip
        can be rated and marked favourite. ``filters`` as in :meth:`table` (``status=``, ``tags=``,
        column values)."""
        from ..widgets.gallery import gallery  # widgets depend on the library; imported only when drawn

        for name, value in (("rows", rows), ("cols", cols)):
            if not isinstance(value, str):
                raise UsageError(f"{name} is {value!r}: name one column, e.g. {name}='seed' (more go in facets=)")
        axes = facets if facets is None or isinstance(facets, str) else _names("facets", facets)
        return gallery(_exp(self), rows=rows, cols=cols, facets=axes, **filters)

    @public
    def best(self, *, by: str | Iterable[str] = "prompt", flagged: bool = False, **filters: Any) -> Any:
        """The best clip of each prompt (or each ``by`` value) by :meth:`ranking`, one compact row each;
        clips flagged by clip QA are passed over unless ``flagged=True``."""
        from IPython.display import HTML

        from ..widgets.gallery import best_html

        df = self.table(where=filters or None)
        return HTML(best_html(df, by=_by(df, by), flagged=flagged))

    @public
    def next_pair(self, *, by: str | Iterable[str] = "prompt") -> tuple[str, str] | None:
        """Two finished runs of the same prompt (or ``by`` values) not compared yet, or None."""
        from ..study import next_pair

        df = self.table()
        return next_pair(df, by=_by(df, by))

    @public
    def compare(self, run_a: str | Mapping[str, Any] | None = None, run_b: str | Mapping[str, Any] | None = None,
                *, by: str | Iterable[str] = "prompt") -> Any:
        """Two runs side by side, playing in step; the A/B choice and ratings are stored and feed
        :meth:`ranking`. Without runs, the next pair not compared yet (:meth:`next_pair`)."""
        from ..widgets.compare import compare

        if run_a is None or run_b is None:
            pair = self.next_pair(by=by)
            if pair is None:
                raise ValidationError([Issue("compare", "every pair of finished runs with the same prompt has "
                                             "been compared", "pass two run ids to compare others")])
            run_a, run_b = pair
        return compare(_exp(self), run_a, run_b)

    @public
    def compare_many(self, runs: Iterable[str | Mapping[str, Any]]) -> Any:
        """2–6 runs in one synced player (one transport, one sound, keys: space, arrows, 1–5 rates
        the focused clip); for two, also a wipe and a difference view and the A/B choice."""
        from ..widgets.synced import synced_compare

        return synced_compare(_exp(self), runs)

    @public
    def queue(self, **options: Any) -> Any:
        """The kernel's live queue and history panel, for this experiment (see :mod:`runflow_nb.widgets.queue`)."""
        from ..widgets.queue import queue

        return queue(self.store, experiment=self.name, experiment_type=type(self), **options)



# -- helpers --------------------------------------------------------------------------------------

def _names(what: str, value: Any) -> list[str]:
    """``value`` as a list of column names (strings), or UsageError."""
    names = [value] if isinstance(value, str) else list(value) if isinstance(value, Iterable) else None
    if not names or not all(isinstance(n, str) and n for n in names):
        raise UsageError(f"{what} is {value!r}: name a column, or a list of columns")
    return names


def _by(df: pd.DataFrame, by: Any) -> str | list[str]:
    """``by`` checked against the table's columns: one name, or a list of them."""
    names = _names("by", by)
    unknown = [n for n in names if n not in df.columns]
    if unknown:
        raise UsageError(f"by names no column of the table: {', '.join(map(repr, unknown))}; use columns such as "
                         "'prompt', 'seed', 'model', 'duration' (see exp.table().columns)")
    return by if isinstance(by, str) else names


def _export(df: pd.DataFrame, path: Any, write: Callable[[pd.DataFrame, Path], None]) -> Path:
    """Write ``df`` with ``write`` to a temporary file beside ``path``, then move it into place."""
    from .._files import write_whole

    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise UsageError(f"path is {path!r}: use a file path such as 'runs.csv'")
    dest = Path(path).expanduser()
    if dest.is_dir():
        raise ConfigurationError(f"{dest} is a folder: give a file name inside it, e.g. {dest / 'runs.csv'}")
    try:
        write_whole(dest, lambda tmp: write(df, tmp))
    except OSError as exc:
        raise ConfigurationError(f"cannot write {dest} ({exc.strerror or exc}): choose a writable file path") from None
    return dest
