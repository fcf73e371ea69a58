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

import dataclasses
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._boundary import public
from .errors import (
    APIError,
    ConfigurationError,
    Issue,
    RunflowError,
    ValidationError,
    library_error,
)
from .followups.api import FollowUps
from .sweep.background import SweepHandle, run_blocking
from .sweep.reconciling import Reconciling
from .views.experiment_table import ExperimentTable
from .views.sweep_progress import make_reporter as _make_reporter

if TYPE_CHECKING:
    from .client import AsyncClient, Client
    from .media.artifacts import Artifacts
    from .plan import Plan
    from .request import VideoRequest
    from .store.runstore import Store
    from .sweep.runner import SweepProgress, SweepSummary
    from .views.record import RunRecord

__all__ = ["Experiment", "SweepHandle", "queue", "run_blocking"]


class Experiment(FollowUps, Reconciling, ExperimentTable):
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
    From a run back to its request, re-runs and upscales: :class:`~runflow_nb.followups.api.FollowUps`;
    the table, ratings, exports and the views drawn from them: :class:`~runflow_nb.views.experiment_table.ExperimentTable`.

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

    def _async_client(self, *, notice: bool = False) -> AsyncClient:
        from .client import AsyncClient
        from .studio.callbacks import for_sweep

        client = self._client.to_async() if self._client is not None else AsyncClient()  # a pool for this loop
        client.callback_url = for_sweep(self.store, self.name, notice=notice)
        return client

    @public
    def set_callback_url(self, url: str | None) -> None:
        """Send ``callback_url`` on every create of this experiment's sweeps: the service POSTs each
        run's end to that public URL. None stops it (in later processes too).

        The URL usually carries a token, so it stays in this process only: the store, reprs, logs
        and errors show it redacted (``https://hooks.example.org/***?token=***``). A later kernel
        resuming the sweep sets it again, or takes ``RUNFLOW_CALLBACK_URL``; without either, its
        sweep says once that its runs go out without a callback.
        """
        from .studio.callbacks import set_for

        set_for(self.store, self.name, url)

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
                if not background and p.finished and cancel.is_set():
                    # An interrupted cell raises SweepInterrupted with the stop note as its message:
                    # the display leaves it out, so the note reads once (the error says it).
                    p = dataclasses.replace(p, messages=[m for m in p.messages if not m.startswith("stopped:")])
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
        client = self._async_client(notice=True)
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
    def generate(self, request: VideoRequest | None = None, /, **inputs: Any) -> RunRecord:
        """One run, logged like a sweep of one; returns its stored row (a
        :class:`~runflow_nb.views.record.RunRecord`: a dict of every column, shown as its clip)."""
        from .plan import Plan
        from .request import VideoRequest
        from .views.record import RunRecord

        req = request if request is not None else VideoRequest.build(**inputs)
        plan = Plan([req])
        self.run(plan, concurrency=1, progress=None)
        row = self.store.find_run(experiment=self.name, run_key=plan[0].run_key())
        assert row is not None
        return RunRecord(row)

    @public
    def edit(self, run: Any, /, *, prompt: str, references: Any = None, audio_setting: str | None = None,
             resolution: str | None = None, seed: int | None = None, budget_usd: float | None = None,
             progress: str | Any = None) -> RunRecord:
        """Send a finished run's clip to video-edit; returns the new run's stored row (a
        :class:`~runflow_nb.views.record.RunRecord`).

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
        from .views.record import RunRecord

        parent = parent_row(run, self.store)
        req = edit_request(parent, prompt=prompt, references=references, audio_setting=audio_setting,
                           resolution=resolution, seed=seed)
        plan = Plan([req])
        self.run(plan, concurrency=1, budget_usd=budget_usd, progress=progress)
        row = self.store.find_run(experiment=self.name, run_key=plan[0].run_key())
        assert row is not None
        return RunRecord(row)


def queue(store: str | os.PathLike[str] | Store | None = None, **options: Any) -> Any:
    """``rf.queue()``: the kernel's live queue and history panel over every experiment of ``store``
    (default: the store of the experiment opened last, else ``RUNFLOW_STORE``); see :mod:`runflow_nb.widgets.queue`."""
    from .store.runstore import Store
    from .widgets.queue import queue as panel

    opened = store if store is None or isinstance(store, Store) else Store(store)
    return panel(opened, experiment_type=Experiment, **options)


def _check_budget(name: str, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0):
        raise ValidationError([Issue(name, f"is {value!r}", "use a dollar amount of zero or more, or None")])
