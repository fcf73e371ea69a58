"""`Experiment`: a named study in a run store, its sweeps, its table and its artifacts.

>>> import runflow_nb as rf
>>> exp = rf.Experiment("horses")                       # runflow_data/ here  # doctest: +SKIP
>>> plan = rf.grid(prompt="character1 gallops", images=[["horse.png"]], seed=range(8),
...                duration=5, resolution="720p")       # doctest: +SKIP
>>> plan.estimate()                                     # doctest: +SKIP
>>> df = exp.run(plan, concurrency=4, budget_usd=10)    # doctest: +SKIP
>>> exp.rate(df.run_id[0], 4)                           # doctest: +SKIP

``exp.run`` blocks in a script and in a notebook cell alike (the sweep runs on a private event
loop thread, so Jupyter's own loop is never re-entered), or returns a handle at once with
``background=True``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._boundary import public
from .errors import (
    APIError,
    ConfigurationError,
    Issue,
    RunflowError,
    UsageError,
    ValidationError,
    library_error,
)
from .followups.api import FollowUps
from .sweep.background import SweepHandle, run_blocking
from .sweep.reconciling import Reconciling
from .views.sweep_progress import make_reporter as _make_reporter

if TYPE_CHECKING:
    import pandas as pd

    from .client import AsyncClient, Client
    from .media.artifacts import Artifacts
    from .plan import Plan
    from .request import VideoRequest
    from .store.runstore import Store
    from .sweep.runner import SweepProgress, SweepSummary

__all__ = ["Experiment", "SweepHandle", "queue", "run_blocking"]


class Experiment(FollowUps, Reconciling):
    """A named study: runs are logged to ``store`` and videos kept under ``artifacts``.

    ``store`` defaults to ``RUNFLOW_STORE``, else ``runflow_data/runflow.sqlite`` (the default the
    CLI and the bundled notebooks share; see :mod:`runflow_nb.settings`). ``artifacts`` is a local
    folder (default ``RUNFLOW_ARTIFACTS``, else ``artifacts/`` beside a SQLite store) or shared
    storage as an fsspec URL, e.g. ``"s3://bucket/prefix"`` with
    ``storage_options={"client_kwargs": {"endpoint_url": ...}}``. Close it with :meth:`close` or
    use it as a context manager.

    Money: ``Experiment(..., budget_usd=B)`` caps the whole experiment: what its runs in the
    store have cost, plus what runs still in flight or of unknown fate may cost, plus every new
    submit, never exceeds ``B`` — across any number of ``run()`` calls (and sessions sharing the
    store). ``exp.run(plan, budget_usd=b)`` caps one call: what that call commits (spent + in
    flight + unknown). With both, both hold. The progress line says which budget applies.
    From a run back to its request, re-runs and upscales: :class:`~runflow_nb.followups.api.FollowUps`.

    >>> exp = Experiment("demo", store=":memory:", budget_usd=20)   # doctest: +SKIP
    >>> exp.table().empty                                   # doctest: +SKIP
    True
    """

    def __init__(self, name: str, *, store: str | os.PathLike[str] | Store | None = None,
                 artifacts: str | os.PathLike[str] | Artifacts | None = None,
                 storage_options: Mapping[str, Any] | None = None, client: Client | AsyncClient | None = None,
                 budget_usd: float | None = None) -> None:
        from . import settings
        from .media.artifacts import Artifacts
        from .store.runstore import Store, remember_opened

        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError(f"an experiment needs a name (a non-empty string), got {name!r}")
        if store is not None and not isinstance(store, (str, os.PathLike, Store)):
            raise ConfigurationError(f"store is {type(store).__name__}: use a SQLite path, a postgresql:// URL, "
                                     "or None for the default")
        if artifacts is not None and not isinstance(artifacts, (str, os.PathLike, Artifacts)):
            raise ConfigurationError(f"artifacts is {type(artifacts).__name__}: use a folder or an fsspec URL such "
                                     "as s3://bucket/prefix")
        if storage_options is not None and not isinstance(storage_options, Mapping):
            raise ConfigurationError(f"storage_options is {type(storage_options).__name__}: use a dict")
        _check_budget("budget_usd", budget_usd)
        self.name = str(name)
        self.budget_usd = budget_usd
        self._owns_store = not isinstance(store, Store)
        if isinstance(store, Store):
            self.store = store
        else:
            self.store = Store(settings.store_url(store))
        remember_opened(self.store)  # rf.queue() with no store shows the store opened last
        target = artifacts if artifacts is not None else settings.artifacts_location(store=self.store.url)
        self.artifact_store = (target if isinstance(target, Artifacts)
                               else Artifacts(target, storage_options=storage_options))
        self.artifacts: Path | str = self.artifact_store.root  # a Path (local folder) or an s3://... URL
        self._client = client
        self._notices: list[tuple[str, str]] = []
        self.store.ensure_experiment(self.name)
        self.last_summary: SweepSummary | None = None

    def __repr__(self) -> str:
        return f"Experiment({self.name!r}, store={self.store!r}, artifacts={str(self.artifacts)!r})"

    def _repr_html_(self) -> str:
        """Where the experiment lives and how its last sweep went (escaped, money safe from MathJax)."""
        from .views import html as _html

        rows = [("store", _html.text(self.store.url)), ("artifacts", _html.text(self.artifacts))]
        if self.budget_usd is not None:
            rows.append(("budget (the whole experiment)", _html.money(self.budget_usd)))
        body = "".join(f"<tr><th style='text-align:left'>{k}</th><td>{v}</td></tr>" for k, v in rows)
        last = (f"<p>Last sweep:</p>{self.last_summary._repr_html_()}" if self.last_summary is not None
                else "<p>No sweep in this session yet: exp.run(plan) runs one; exp.table() and exp.view() "
                     "show the stored runs.</p>")
        return _html.block(f"<p><b>Experiment</b> {_html.text(self.name)}</p><table>{body}</table>{last}")

    def close(self) -> None:
        """Close the store's database connections (a store passed in by the caller is left open).

        The experiment reconnects if it is used again. ``with Experiment(...) as exp:`` closes on exit.
        """
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> Experiment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- clients ---------------------------------------------------------------------------------

    def _async_client(self) -> AsyncClient:
        from .client import AsyncClient

        client = self._client.to_async() if self._client is not None else AsyncClient()  # a pool for this loop
        client.callback_url = (self.store.experiment_metadata(self.name) or {}).get("callback_url")
        return client

    @public
    def set_callback_url(self, url: str | None) -> None:
        """Send ``callback_url`` on every create of this experiment (any process, any later kernel):
        the service POSTs each run's end to that public URL. None stops it."""
        from .studio.notify import check_callback_url

        self.store.ensure_experiment(self.name, metadata={"callback_url": check_callback_url(url)})

    # -- running -----------------------------------------------------------------------------

    @public
    def run(self, plan: Plan | Iterable[VideoRequest | Mapping[str, Any]], *, concurrency: int = 4,
            budget_usd: float | None = None, background: bool = False, progress: str | Any = "auto",
            timeout: float | None = None, batch: bool | str = False) -> Any:
        """Run every planned request (resuming: finished runs are reused, lost ones re-attached).

        ``budget_usd`` caps what this call commits (spent + in flight + unknown); the experiment's
        own ``budget_usd`` (if set) caps the experiment as a whole. Runs are submitted in a balanced
        order, so a budget cut leaves every prompt and parameter represented. ``timeout`` bounds
        the wait for each run (a run still going then stays ``unknown`` and keeps its reservation).

        Ctrl-C / Kernel ▸ Interrupt stops submitting at once and raises
        :class:`~runflow_nb.errors.SweepInterrupted` saying what still runs and may cost; a 401/403/402
        answer ends submitting and is raised once the runs in flight are recorded.

        ``batch="auto"`` sends runs that are ready together as batches of up to 100 (one create and
        one poll for many runs) and falls back to single runs when the model takes no batches;
        resume, the budget and never paying twice hold the same way. Use a ``concurrency`` of the
        batch size you want (runs in flight are still bounded by it).

        Returns the experiment's table, or a :class:`SweepHandle` when ``background=True``.
        """
        from .errors import SweepInterrupted
        from .plan import Plan

        _check_budget("budget_usd", budget_usd)
        if batch not in (False, True, "auto") or not isinstance(batch, (bool, str)):
            raise ValidationError([Issue("batch", f"is {batch!r}", "use False (single runs), 'auto' (batches where "
                                         "the model takes them) or True")])
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                    or not 0 < timeout < float("inf")):
            raise ValidationError([Issue("timeout", f"is {timeout!r}",
                                         "use the seconds to wait for each run (above zero), or None")])
        if not isinstance(plan, Plan):
            plan = Plan(plan)
        cancel = threading.Event()
        estimate = plan.estimate()
        scope = ("for this call" if budget_usd is not None else
                 "for the whole experiment (earlier runs included)" if self.budget_usd is not None else "")
        reporter = _make_reporter(progress, estimate, budget_usd if budget_usd is not None else self.budget_usd,
                                  on_stop=cancel.set if background else None, scope=scope)
        handle: SweepHandle | None = None

        def report(p: SweepProgress) -> None:
            if handle is not None:
                handle.progress = p
            if reporter is not None:
                reporter(p)

        def start(cancel: threading.Event) -> SweepSummary:
            try:
                summary = run_blocking(lambda: self._sweep(plan, concurrency=concurrency, budget_usd=budget_usd,
                                                           on_progress=report, cancel=cancel, timeout=timeout,
                                                           batch=batch),
                                       cancel=cancel)
            except RunflowError:
                raise
            except Exception as exc:  # only library errors leave the public API
                raise library_error(exc) from exc
            from .followups.rebuild import keep_references
            from .notices import warn

            keep_references(plan, self.artifacts, store=self.store, experiment=self.name)  # for exp.request()

            for run_id, note in self._notices:
                warn(run_id, [note], stacklevel=4)
            fatal = summary.fatal
            if isinstance(fatal, APIError):  # one clear message, raised once the runs in flight are recorded
                left = summary.counts.get("planned", 0)
                raise type(fatal)(f"{fatal.message} — stopped submitting at the first such answer; {left} run"
                                  f"{'s' if left != 1 else ''} left planned (nothing was sent for them), runs already "
                                  "on the server were recorded; fix the key or top up the credit, then run the "
                                  "plan again", status_code=fatal.status_code, code=fatal.code,
                                  request_id=fatal.request_id) from fatal
            return summary

        self.last_summary = None
        if background:
            from .studio.notify import install

            install()  # word in the notebook when it ends (runflow_nb.studio.notify)
            handle = SweepHandle(self, start, cancel, run_keys=[r.run_key() for r in plan])
            return handle
        try:
            start(cancel)
        except KeyboardInterrupt as exc:
            summary = self.last_summary
            text = next((m for m in reversed(summary.messages) if m.startswith("stopped:")), None) if summary else None
            raise SweepInterrupted(text or "stopped: nothing more is submitted; runs already sent may still be "
                                   "running on the server; run the same plan again to collect them",
                                   summary=summary) from exc
        return self.table()

    async def _sweep(self, plan: Plan, *, concurrency: int, budget_usd: float | None,
                     on_progress: Any, cancel: threading.Event, timeout: float | None,
                     batch: bool | str = False) -> SweepSummary:
        from .sweep.runner import run_plan

        self._notices = []
        client = self._async_client()
        try:
            summary = await run_plan(store=self.store, experiment=self.name, plan=plan, client=client,
                                     artifacts=self.artifact_store, concurrency=concurrency, budget_usd=budget_usd,
                                     experiment_budget_usd=self.budget_usd,
                                     on_progress=on_progress, cancel=cancel, timeout=timeout, batch=batch)
            self._notices = await self._collect_notices(plan, client)
        finally:
            await client.aclose()
        self.last_summary = summary
        return summary

    async def _collect_notices(self, plan: Plan, client: AsyncClient) -> list[tuple[str, str]]:
        """The server's warnings on this plan's finished runs that sent image URLs (the server
        fetches those; the simulator replaces one it cannot fetch with a placeholder), as
        ``(run_id, note)``; each is stored as the row's ``note`` the first time it is seen."""
        from .notices import note_text
        from .runs import notices_in

        found: list[tuple[str, str]] = []
        for req in plan:
            if not any(getattr(ref, "kind", None) == "url" for ref in getattr(req, "images", None) or ()):
                continue
            row = self.store.find_run(experiment=self.name, run_key=req.run_key())
            if not row or row.get("status") not in ("succeeded", "partial_succeeded"):
                continue
            note = row.get("note")
            if note is None and row.get("remote_id"):  # not asked yet ("" once asked: nothing to say)
                try:
                    run = await client.get(str(row["remote_id"]))
                    notices = run.notices
                    if not notices and run.logs_left_out:  # the view only says it has logs
                        notices = notices_in(await client.logs(str(row["remote_id"])))
                except RunflowError:
                    continue  # the row stays as it is; the next run of the plan asks again
                note = note_text(notices)
                self.store.update_run(row["run_id"], note=note)
            if note:
                found.append((str(row["run_id"]), str(note)))
        return found

    @public
    def generate(self, request: VideoRequest | None = None, /, **inputs: Any) -> dict[str, Any]:
        """One run, logged like a sweep of one; returns its stored row."""
        from .plan import Plan
        from .request import VideoRequest

        req = request if request is not None else VideoRequest.build(**inputs)
        plan = Plan([req])
        self.run(plan, concurrency=1, progress=None)
        row = self.store.find_run(experiment=self.name, run_key=plan[0].run_key())
        assert row is not None
        return row

    @public
    def edit(self, run: Any, /, *, prompt: str, references: Any = None, audio_setting: str | None = None,
             resolution: str | None = None, seed: int | None = None, budget_usd: float | None = None,
             progress: str | Any = None) -> dict[str, Any]:
        """Send a finished run's clip to video-edit; returns the new run's stored row.

        ``run`` is a run id, a row of :meth:`table` or a :class:`~runflow_nb.client.Result`.
        ``references`` are up to 5 images, named ``@Image1``… in the prompt; ``audio_setting``
        is ``"auto"`` (new sound) or ``"origin"`` (keep the clip's). Unset ``seed`` and
        ``resolution`` follow the parent run. The new row's ``parent_run_id`` names the parent;
        editing the same run the same way again reuses the stored edit (nothing is paid twice).

        >>> row = exp.edit(df.run_id[0], prompt="make it night, @Image1 in the sky",
        ...                references=["moon.png"], audio_setting="origin")   # doctest: +SKIP
        """
        from .followups.lineage import edit_request, parent_row
        from .plan import Plan

        parent = parent_row(run, self.store)
        req = edit_request(parent, prompt=prompt, references=references, audio_setting=audio_setting,
                           resolution=resolution, seed=seed)
        plan = Plan([req])
        self.run(plan, concurrency=1, budget_usd=budget_usd, progress=progress)
        row = self.store.find_run(experiment=self.name, run_key=plan[0].run_key())
        assert row is not None
        return row

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
        from .followups.changes import with_changes
        from .study import column_order

        df = self.store.table(self.name, status=status, tags=tags, where=where)
        if qa is not None:
            from .qa.check import filter_qa

            df = filter_qa(df, qa)
        return with_changes(df[column_order(df)], self.store)

    @public
    def view(self, *, columns: Iterable[str] | None = None, status: str | Iterable[str] | None = None,
             tags: Iterable[str] | None = None, **filters: Any) -> Any:
        """The table to read: a thumbnail per run, the parameters that varied, status, rating, cost
        and wall time; sortable and searchable (a :class:`~runflow_nb.views.tableview.TableView`)."""
        from .views.tableview import TableView

        df = self.table(status=status, tags=tags, where=filters or None)
        return TableView(df, columns=list(columns) if columns is not None else None)

    @public
    def ranking(self, *, flagged: bool = False) -> pd.DataFrame:
        """Succeeded runs best first: favourites, then rating, then A/B choices from :meth:`compare`
        (clips flagged by clip QA only with ``flagged=True``).

        A DataFrame with every column, shown like :meth:`view`: the still, what varied, rating,
        favourite, wins/losses/ties and cost (:class:`~runflow_nb.views.ranking.Ranking`)."""
        from .study import ranking
        from .views.ranking import Ranking

        return Ranking(ranking(self.table(), flagged=flagged))

    @public
    def qa(self, *, run_ids: Iterable[str] | None = None, **thresholds: float) -> pd.DataFrame:
        """Check this experiment's stored clips again (all finished runs, or ``run_ids``), e.g. after
        changing a clip QA threshold (``RUNFLOW_QA_FROZEN_MIN_S``, ...) or passing one here (``exp.qa(frozen_min_s=2)``);
        stores and returns each run's new ``qa`` beside the one it had (``was``)."""
        import pandas as pd

        from .qa.check import check_stored
        from .settings import qa_thresholds

        done = check_stored(self.store, self.name, artifacts=self.artifact_store, limits=qa_thresholds(**thresholds),
                            run_ids=None if run_ids is None else [self._own_run(r) for r in run_ids])
        return pd.DataFrame(done, columns=["run_id", "qa", "was"])

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
        from .widgets.gallery import gallery  # widgets depend on the library; imported only when drawn

        for name, value in (("rows", rows), ("cols", cols)):
            if not isinstance(value, str):
                raise UsageError(f"{name} is {value!r}: name one column, e.g. {name}='seed' (more go in facets=)")
        axes = facets if facets is None or isinstance(facets, str) else _names("facets", facets)
        return gallery(self, rows=rows, cols=cols, facets=axes, **filters)

    @public
    def best(self, *, by: str | Iterable[str] = "prompt", flagged: bool = False, **filters: Any) -> Any:
        """The best clip of each prompt (or each ``by`` value) by :meth:`ranking`, one compact row each;
        clips flagged by clip QA are passed over unless ``flagged=True``."""
        from IPython.display import HTML

        from .widgets.gallery import best_html

        df = self.table(where=filters or None)
        return HTML(best_html(df, by=_by(df, by), flagged=flagged))

    @public
    def next_pair(self, *, by: str | Iterable[str] = "prompt") -> tuple[str, str] | None:
        """Two finished runs of the same prompt (or ``by`` values) not compared yet, or None."""
        from .study import next_pair

        df = self.table()
        return next_pair(df, by=_by(df, by))

    @public
    def compare(self, run_a: str | Mapping[str, Any] | None = None, run_b: str | Mapping[str, Any] | None = None,
                *, by: str | Iterable[str] = "prompt") -> Any:
        """Two runs side by side, playing in step; the A/B choice and ratings are stored and feed
        :meth:`ranking`. Without runs, the next pair not compared yet (:meth:`next_pair`)."""
        from .widgets.compare import compare

        if run_a is None or run_b is None:
            pair = self.next_pair(by=by)
            if pair is None:
                raise ValidationError([Issue("compare", "every pair of finished runs with the same prompt has "
                                             "been compared", "pass two run ids to compare others")])
            run_a, run_b = pair
        return compare(self, run_a, run_b)

    @public
    def compare_many(self, runs: Iterable[str | Mapping[str, Any]]) -> Any:
        """2–6 runs in one synced player (one transport, one sound, keys: space, arrows, 1–5 rates
        the focused clip); for two, also a wipe and a difference view and the A/B choice."""
        from .widgets.synced import synced_compare

        return synced_compare(self, runs)

    @public
    def queue(self, **options: Any) -> Any:
        """The kernel's live queue and history panel, for this experiment (see :mod:`runflow_nb.widgets.queue`)."""
        from .widgets.queue import queue

        return queue(self.store, experiment=self.name, experiment_type=type(self), **options)


def queue(store: str | os.PathLike[str] | Store | None = None, **options: Any) -> Any:
    """``rf.queue()``: the kernel's live queue and history panel over every experiment of ``store``
    (default: the store of the experiment opened last, else ``RUNFLOW_STORE``); see :mod:`runflow_nb.widgets.queue`."""
    from .store.runstore import Store
    from .widgets.queue import queue as panel

    opened = store if store is None or isinstance(store, Store) else Store(store)
    return panel(opened, experiment_type=Experiment, **options)


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
    from ._files import write_whole

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


def _check_budget(name: str, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0):
        raise ValidationError([Issue(name, f"is {value!r}", "use a dollar amount of zero or more, or None")])
