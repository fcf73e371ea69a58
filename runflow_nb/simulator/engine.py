"""The offline job engine: Runflow's run lifecycle in-process, real MP4s, and a billing ledger.

No HTTP here (that is :mod:`runflow_nb.emulator`). A run is created ``queued``, turns ``running``
after a short part of the simulated latency, and ends ``succeeded`` once **both** the latency has
elapsed and the clip has been rendered (so the latency is a floor), or ``failed``. Status is worked
out from the clock whenever a run is read, so a fake ``clock`` makes expiry and timing testable.
Only succeeded runs are billed, exactly once each.

>>> from PIL import Image
>>> sim = Simulator(latency=0.1)                                               # doctest: +SKIP
>>> run = sim.submit({"prompt": "character1 trots", "duration": 3, "resolution": "720p"},
...                  images=[Image.new("RGB", (800, 600), "white")])           # doctest: +SKIP
>>> sim.wait(run["id"])["status_code"], sim.billed_total()                    # doctest: +SKIP
('succeeded', 0.42)
"""

from __future__ import annotations

import base64
import bisect
import concurrent.futures
import hashlib
import hmac
import logging
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import (
    AuthenticationError,
    ExpiredURLError,
    InsufficientCreditError,
    Issue,
    NotFoundError,
    RunTimeoutError,
    ValidationError,
)
from ..server_checks import media_issues, validate_input
from ..specs import REFERENCE_TO_VIDEO, TEXT_TO_VIDEO, VIDEO_EDIT, get_spec
from .runs import (
    ORG_ID,
    _as_list,
    _clip_shape,
    _describe_image,
    _model_uuid,
    _Run,
    _seed_for,
    iso_utc,
    uuid7,
)

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["MAX_PAGE_SIZE", "STATUSES", "TERMINAL", "Simulator", "iso_utc", "media_issues", "uuid7",
           "validate_input"]

log = logging.getLogger(__name__)

TERMINAL = frozenset({"succeeded", "failed", "canceled", "partial_succeeded"})
#: Every run status, in lifecycle order (``GET /v1/runs/statuses``).
STATUSES = ("queued", "dispatching", "running", "succeeded", "failed", "canceled", "partial_succeeded")
MAX_PAGE_SIZE = 500
_QUEUED_SHARE = 0.2  # the part of the latency a run spends queued

Renderer = Callable[..., Any]


class Simulator:
    """Runs of one or more models, simulated in-process. Thread-safe.

    ``latency`` (seconds, settable) is the floor of each run's duration; ``url_ttl_s`` is how long
    an output URL works after completion; ``clock`` gives epoch seconds (inject a fake one to test
    expiry). ``renderer`` defaults to :func:`runflow_nb.simulator.render.render_clip`.

    >>> with Simulator(latency=0.05) as sim:                                   # doctest: +SKIP
    ...     run = sim.submit({"prompt": "a horse", "image_urls": [img]})
    ...     done = sim.wait(run["id"], base_url="http://127.0.0.1:8787")
    """

    def __init__(
        self,
        *,
        latency: float = 0.3,
        workdir: str | Path | None = None,
        max_workers: int = 2,
        url_ttl_s: float = 3 * 86400,
        clock: Callable[[], float] = time.time,
        balance_usd: float = 10_000.0,
        renderer: Renderer | None = None,
        label: str = "SIMULATED",
    ) -> None:
        self.latency = float(latency)
        self.url_ttl_s = float(url_ttl_s)
        self.label = label
        self._clock = clock
        self._initial_balance = float(balance_usd)
        self._renderer = renderer
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="runflow-sim-")
            workdir = self._tmp.name
        self.workdir = Path(workdir)
        (self.workdir / "runs").mkdir(parents=True, exist_ok=True)
        self._cache_dir = self.workdir / "render-cache"
        self._secret = secrets.token_bytes(32)
        self._lock = threading.RLock()
        self._runs: dict[str, _Run] = {}
        self._seq = 0
        self._ledger: list[dict[str, Any]] = []
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=max_workers,
                                                           thread_name_prefix="runflow-sim-render")
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop rendering (queued renders are dropped) and remove a temporary workdir."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Simulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def now(self) -> float:
        return self._clock()

    # -- submit ----------------------------------------------------------------------------------

    def submit(
        self,
        input: Mapping[str, Any],
        *,
        images: Sequence[Image.Image] | None = None,
        model: str = REFERENCE_TO_VIDEO.model,
        client_ref: str | None = None,
        metadata: dict[str, Any] | None = None,
        callback_url: str | None = None,
        request_id: str | None = None,
        force_failure: bool = False,
        force_nsfw: bool = False,
        outcome: str = "succeeded",
        batch_id: str | None = None,
        notes: Sequence[str] = (),
        video: str | Path | None = None,
        flaw: str | None = None,
        latency: float | None = None,
    ) -> dict[str, Any]:
        """Create a run and start rendering it; returns the run as the API shows it (``queued``).

        ``input`` is the wire input; its image field (``image_urls``, ``image_url``,
        ``reference_image_urls``) may hold decoded PIL images, or pass them as ``images`` (then the
        field stays as given, e.g. URLs, for the run's echo). ``video`` is video-edit's input clip
        as a local file (the emulator fetches and checks ``video_url``).
        ``force_failure`` / ``force_nsfw`` script the outcome, as does ``outcome``
        (``partial_succeeded``: billed, with its outputs; ``canceled``: not billed, no output);
        ``batch_id`` names the batch the run belongs to; ``notes`` become warning log lines.
        ``flaw`` renders a clip with that one flaw instead (:mod:`.flaws`: ``black``, ``frozen``,
        ``silent``, ``noaudio``, ``short``, ``wrongsize``, ``clipped``), for clip QA.
        ``latency`` (seconds) is this run's own floor instead of :attr:`latency` (one caller's setting
        on a simulator shared by several).
        Raises :class:`ValidationError` for bad inputs, :class:`InsufficientCreditError` when the
        balance cannot pay the run's price.
        """
        spec = get_spec(model)
        if outcome not in ("succeeded", "partial_succeeded", "canceled"):
            raise ValueError(f"outcome must be succeeded, partial_succeeded or canceled, not {outcome!r}")
        if images is None:
            given = input.get(spec.images.field) if spec.has_images else None
            images = list(given) if isinstance(given, (list, tuple)) else [] if given is None else [given]
        images = list(images)
        clean, issues = validate_input(input, spec=spec, n_images=len(images))
        issues += media_issues(spec, images, video)
        if issues:
            raise ValidationError(issues)
        if flaw is not None:
            from .flaws import FLAWS, NEAR_MISSES

            if flaw not in FLAWS + NEAR_MISSES:
                raise ValueError(f"flaw must be one of {', '.join(FLAWS + NEAR_MISSES)}, not {flaw!r}")
        clip = _clip_shape(spec, clean, images, video)
        price = spec.price_usd(duration=clip.billed_s, resolution=clean["resolution"])
        with self._lock:
            if self._closed:
                raise RuntimeError("the simulator is closed")
            if price > self.balance() + 1e-9:
                raise InsufficientCreditError(
                    f"this run costs ${price:.2f} but the balance is ${self.balance():.2f}",
                    status_code=402, code="INSUFFICIENT_CREDIT")
            self._seq += 1
            run_id = uuid7(self._clock())
            seed = clean["seed"] if clean["seed"] is not None else _seed_for(run_id)
            echo = dict(input)
            if spec.has_images and (input.get(spec.images.field) or images):
                shown = [_describe_image(x) for x in (
                    _as_list(input.get(spec.images.field)) or images)]
                echo[spec.images.field] = shown[0] if spec.images.single else shown
            now = self._clock()
            floor = self.latency if latency is None else float(latency)
            run = _Run(id=run_id, seq=self._seq, model=spec.model, input=echo, params=clean, seed=seed,
                       created=now, latency=max(0.0, floor), request_id=request_id, client_ref=client_ref,
                       metadata=metadata, callback_url=callback_url, force_failure=force_failure,
                       force_nsfw=force_nsfw, price=price, clip=clip, outcome=outcome,
                       batch_id=batch_id, flaw=flaw)
            self._runs[run_id] = run
            media = (f"{len(images)} image{'s' if len(images) != 1 else ''}" if spec.has_images
                     else "prompt only") + (f", input video {clip.seconds:.1f} s" if video is not None else "")
            self._log(run, "info", f"queued: {spec.variant}, {clip.seconds:g} s {clean['resolution']} "
                                   f"{clip.aspect_ratio}, {media}, seed {seed}")
            for note in notes:
                self._log(run, "warning", note)
            if flaw is not None:
                self._log(run, "info", f"clip flaw on request: {flaw}")
            if not force_failure and outcome != "canceled":
                dest = self.workdir / "runs" / f"{run_id}.mp4"
                run.future = self._pool.submit(self._render, run, images, dest, video)
            return self._view(run, None)

    def _render(self, run: _Run, images: list[Image.Image], dest: Path, video: str | Path | None = None) -> None:
        p = run.params
        error = path = digest = size = None
        try:
            render: Renderer
            if run.flaw is not None:
                from .flaws import render_flawed

                def render(images: Any, **kw: Any) -> Any:
                    size = get_spec(run.model).output_size(kw["aspect_ratio"], kw["resolution"])
                    return render_flawed(str(run.flaw), duration=run.clip.seconds, size=size, seed=kw["seed"],
                                         dest=kw["dest"])
            elif self._renderer is not None:
                render = self._renderer
            elif run.model == VIDEO_EDIT.model:
                from .render_edit import render_edit

                def render(images: Any, **kw: Any) -> Any:
                    assert video is not None
                    return render_edit(video, references=images, prompt=str(p.get("prompt") or ""), seed=kw["seed"],
                                       resolution=kw["resolution"], audio_setting=str(p.get("audio_setting")),
                                       dest=kw["dest"], label=kw["label"])
            else:
                from .render import render_clip as render
            if run.model == TEXT_TO_VIDEO.model and self._renderer is None and run.flaw is None:
                from .scenes import text_scene

                ow, oh = get_spec(run.model).output_size(run.clip.aspect_ratio, p["resolution"])
                scene = text_scene(str(p.get("prompt") or ""), seed=run.seed, size=(round(ow * 1.15), round(oh * 1.15)))
                images = [scene]
            shaped = {}  # the prompt shapes a clip made from references (a text scene already carries it)
            if self._renderer is None and run.model not in (TEXT_TO_VIDEO.model, VIDEO_EDIT.model):
                shaped["prompt"] = str(p.get("prompt") or "")
            path = Path(render(images, duration=round(run.clip.seconds), aspect_ratio=run.clip.aspect_ratio,
                               resolution=p["resolution"], seed=run.seed, dest=dest, label=self.label,
                               cache_dir=self._cache_dir, **shaped))
            h = hashlib.sha256()
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            digest, size = h.hexdigest(), path.stat().st_size
        except Exception as exc:  # a broken render fails the run, it never kills the pool
            log.exception("simulator: rendering %s failed", run.id)
            error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            run.render_done_at = self._clock()
            run.render_error, run.path, run.sha256, run.size = error, path, digest, size

    # -- state -----------------------------------------------------------------------------------

    def _log(self, run: _Run, level: str, message: str, at: float | None = None) -> None:
        run.logs.append({"timestamp": iso_utc(self._clock() if at is None else at), "level": level,
                         "message": message})

    def _advance(self, run: _Run, now: float) -> None:
        """Move ``run`` along by the clock. Called under the lock."""
        if run.status in TERMINAL:
            return
        start = run.created + run.latency * _QUEUED_SHARE
        if now >= start and run.status == "queued":
            run.status, run.started = "running", start
            self._log(run, "info", "running on a simulated worker", at=start)
        due = run.created + run.latency
        if now < due:
            return
        if run.force_failure:
            self._finish(run, due, failure=("GENERATION_FAILED", "the model could not generate this clip "
                                                                 "(simulated failure)", "inference"))
        elif run.outcome == "canceled":
            self._finish(run, due)
        elif run.render_done_at is None:
            return
        elif run.render_error or run.path is None:
            self._finish(run, max(due, run.render_done_at),
                         failure=("INTERNAL_ERROR", run.render_error or "no output", "inference"))
        else:
            self._finish(run, max(due, run.render_done_at))

    def _finish(self, run: _Run, at: float, *, failure: tuple[str, str, str] | None = None) -> None:
        run.started = run.started if run.started is not None else min(at, run.created + run.latency * _QUEUED_SHARE)
        run.completed = at
        if failure is not None:
            run.status, run.failure = "failed", failure
            self._log(run, "error", f"failed: {failure[0]}: {failure[1]} (not billed)", at=at)
            return
        if run.outcome == "canceled":
            run.status = "canceled"
            run.failure = ("CANCELED", "canceled by an administrator before it ran (not billed)", "dispatch")
            self._log(run, "warning", "canceled by an administrator (not billed)", at=at)
            return
        run.status = run.outcome
        expires = int(at + self.url_ttl_s)
        run.token = f"{expires}-{self._sign(run.id, expires)}"
        if not run.billed:  # one ledger entry per run, ever
            run.billed = True
            self._ledger.append({
                "run_id": run.id, "model": run.model, "cost": f"{run.price:.2f}", "cost_usd": run.price,
                "duration": run.clip.billed_s, "resolution": run.params["resolution"],
                "client_ref": run.client_ref, "billed_at": iso_utc(at)})
        self._log(run, "info", f"{run.status}: billed ${run.price:.2f}", at=at)

    def _sign(self, run_id: str, expires: int) -> str:
        return hmac.new(self._secret, f"{run_id}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]

    def _get(self, run_id: str) -> _Run:
        run = self._runs.get(run_id)
        if run is None:
            raise NotFoundError(f"no run with id {run_id!r}", status_code=404, code="RUN_NOT_FOUND")
        return run

    def _view(self, run: _Run, base_url: str | None) -> dict[str, Any]:
        output = None
        cost = None
        if run.status in ("succeeded", "partial_succeeded"):
            assert run.path is not None and run.completed is not None and run.started is not None
            width, height = get_spec(run.model).output_size(run.clip.aspect_ratio, run.params["resolution"])
            url = (f"{base_url.rstrip('/')}/files/{run.token}/{run.id}.mp4" if base_url else run.path.as_uri())
            output = {
                "outputs": [{"url": url, "type": "video", "width": width, "height": height,
                             "duration": float(run.clip.seconds), "content_type": "video/mp4",
                             "size": run.size, "sha256": run.sha256}],
                "seed": run.seed,
                "timing": {"inference_ms": round((run.completed - run.started) * 1000)},
                "nsfw_detected": run.force_nsfw if run.params.get("enable_safety_checker", True) else None,
            }
            cost = f"{run.price:.2f}"
        elif run.status in ("failed", "canceled"):
            cost = "0.00"
        code, message, stage = run.failure or (None, None, None)
        return {
            "id": run.id, "status_code": run.status, "target_type": "model", "model_id": _model_uuid(run.model),
            "org_id": ORG_ID, "input": run.input, "output": output, "cost": cost,
            "cost_breakdown": {"usd_per_second": f"{run.price / max(run.clip.billed_s, 1e-9):.2f}",
                               "seconds": run.clip.billed_s, "resolution": run.params["resolution"]}
            if cost not in (None, "0.00") else None,
            "duration_ms": round((run.completed - run.created) * 1000) if run.completed is not None else None,
            "failure_code": code, "failure_message": message, "failure_stage_code": stage,
            "request_id": run.request_id, "client_ref": run.client_ref, "metadata": run.metadata,
            "callback_url": run.callback_url, "batch_id": run.batch_id, "created_at": iso_utc(run.created),
            "started_at": iso_utc(run.started), "completed_at": iso_utc(run.completed),
            "has_logs": bool(run.logs), "has_node_runs": False,
            # Warnings ride along in the run's documented ``logs`` field (the shape of GET .../logs items),
            # so a client learns from the run itself that, e.g., a reference was replaced by a placeholder.
            "logs": [{"id": f"{run.id}-{i}", "run_id": run.id, "level_code": e["level"], "message": e["message"],
                      "timestamp": e["timestamp"], "meta": {}}
                     for i, e in enumerate(run.logs) if e["level"] in ("warning", "error")],
            "links": {"self": f"/v1/runs/{run.id}", "logs": f"/v1/runs/{run.id}/logs"},
        }

    # -- reading -----------------------------------------------------------------------------------

    def get(self, run_id: str, *, base_url: str | None = None) -> dict[str, Any]:
        """The run as ``GET /v1/runs/{id}`` shows it. Output URLs start with ``base_url`` (a
        ``file://`` URI of the local MP4 when None). Raises NotFoundError (404 RUN_NOT_FOUND)."""
        with self._lock:
            run = self._get(run_id)
            self._advance(run, self._clock())
            return self._view(run, base_url)

    def wait(self, run_id: str, *, timeout: float | None = None, base_url: str | None = None) -> dict[str, Any]:
        """Block until the run ends and return it; RunTimeoutError after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                run = self._get(run_id)
                self._advance(run, self._clock())
                if run.status in TERMINAL:
                    return self._view(run, base_url)
                left = run.created + run.latency - self._clock()
                future = run.future
            if deadline is not None and time.monotonic() >= deadline:
                raise RunTimeoutError(f"run {run_id} still {run.status} after {timeout} s")
            step = 0.1 if deadline is None else max(0.0, min(0.1, deadline - time.monotonic()))
            if left > 0:
                time.sleep(min(left, step))
            elif future is not None and not future.done():
                concurrent.futures.wait([future], timeout=step)
            else:
                time.sleep(min(0.01, step))

    #: Fields :meth:`list_runs` can filter on, and how to read them from a run.
    FILTERS: Mapping[str, Callable[[_Run], Any]] = {
        "id": lambda r: r.id, "client_ref": lambda r: r.client_ref, "status_code": lambda r: r.status,
        "batch_id": lambda r: r.batch_id, "model": lambda r: r.model,
        "model_id": lambda r: _model_uuid(r.model),
    }

    @staticmethod
    def _row(run: _Run) -> dict[str, Any]:
        """The fields a ``where`` predicate of :meth:`list_runs` reads (times in epoch seconds)."""
        cost = f"{run.price:.2f}" if run.status in ("succeeded", "partial_succeeded") else (
            "0.00" if run.status in ("failed", "canceled") else None)
        return {"id": run.id, "client_ref": run.client_ref, "status_code": run.status, "batch_id": run.batch_id,
                "model": run.model, "model_id": _model_uuid(run.model), "created_at": run.created,
                "started_at": run.started, "completed_at": run.completed, "cost": cost, "metadata": run.metadata}

    def list_runs(self, *, client_ref: str | None = None, limit: int = 100, cursor: str | None = None,
                  base_url: str | None = None, filters: Mapping[str, Sequence[str]] | None = None,
                  ascending: bool = False, where: Callable[[Mapping[str, Any]], bool] | None = None,
                  ) -> tuple[list[dict[str, Any]], str | None, str | None]:
        """Runs newest first (oldest first when ``ascending``), only those matching every filter
        (field → accepted values, fields in :data:`FILTERS`; ``client_ref`` is a shorthand) and
        ``where`` (a predicate over the run's fields: id, client_ref, status_code, batch_id, model,
        model_id, created_at/started_at/completed_at as epoch seconds, cost, metadata);
        returns ``(page, next_cursor, prev_cursor)``.

        Cursors are opaque and stable while runs are being added. ``limit`` is 1–500.
        """
        issues = []
        if type(limit) is not int or not 1 <= limit <= MAX_PAGE_SIZE:
            issues.append(Issue("limit", f"{limit!r} is not allowed", f"use 1–{MAX_PAGE_SIZE}"))
        wanted = {k: set(v) for k, v in (filters or {}).items()}
        if client_ref is not None:
            wanted.setdefault("client_ref", set()).add(client_ref)
        for key in wanted:
            if key not in self.FILTERS:
                issues.append(Issue("q", f"cannot filter on {key!r}", f"filter on {', '.join(self.FILTERS)}"))
        bound: tuple[str, int] | None = None
        if cursor:
            try:
                kind, _, num = base64.urlsafe_b64decode(cursor.encode() + b"==").decode().partition(":")
                if kind not in ("next", "prev"):
                    raise ValueError(kind)
                bound = (kind, int(num))
            except (ValueError, UnicodeDecodeError):
                issues.append(Issue("pq", "is not a cursor this server issued",
                                    "pass the next_pq of a previous page, or none"))
        if issues:
            raise ValidationError(issues)
        with self._lock:
            now = self._clock()
            if wanted.get("status_code") or where is not None:
                for r in self._runs.values():
                    self._advance(r, now)
            ordered = sorted((r for r in self._runs.values()
                              if all(self.FILTERS[k](r) in v for k, v in wanted.items())
                              and (where is None or where(self._row(r)))),
                             key=lambda r: r.seq if ascending else -r.seq)
            seqs = [r.seq if ascending else -r.seq for r in ordered]  # increasing
            lo, hi = 0, min(limit, len(ordered))
            if bound is not None:
                edge = bound[1] if ascending else -bound[1]
                if bound[0] == "next":
                    lo = bisect.bisect_right(seqs, edge)
                    hi = min(lo + limit, len(ordered))
                else:
                    hi = bisect.bisect_left(seqs, edge)
                    lo = max(0, hi - limit)
            page = ordered[lo:hi]
            for r in page:
                self._advance(r, now)
            views = [self._view(r, base_url) for r in page]

        def token(kind: str, seq: int) -> str:
            return base64.urlsafe_b64encode(f"{kind}:{seq}".encode()).decode().rstrip("=")

        next_cursor = token("next", page[-1].seq) if page and hi < len(ordered) else None
        prev_cursor = token("prev", page[0].seq) if page and lo > 0 else None
        return views, next_cursor, prev_cursor

    def logs(self, run_id: str) -> list[dict[str, Any]]:
        """The run's log lines: ``{timestamp, level, message}``."""
        with self._lock:
            run = self._get(run_id)
            self._advance(run, self._clock())
            return [dict(entry) for entry in run.logs]

    def video_path(self, run_id: str) -> Path | None:
        """The local MP4 of a succeeded run (None before)."""
        with self._lock:
            run = self._get(run_id)
            self._advance(run, self._clock())
            return run.path if run.status in ("succeeded", "partial_succeeded") else None

    def resolve_file(self, token: str, name: str) -> Path:
        """The MP4 a signed ``/files/{token}/{name}`` URL points at.

        Raises NotFoundError (unknown file), AuthenticationError (403, bad signature) or
        ExpiredURLError (the URL's time is up).
        """
        run_id = name[:-4] if name.endswith(".mp4") else name
        expires_text, _, sig = token.partition("-")
        with self._lock:
            run = self._runs.get(run_id)
            if run is None or run.path is None or run.status not in ("succeeded", "partial_succeeded"):
                raise NotFoundError("no such file", status_code=404, code="NOT_FOUND")
            try:
                expires = int(expires_text)
            except ValueError:
                expires = -1
            if expires < 0 or not hmac.compare_digest(sig, self._sign(run_id, expires)):
                raise AuthenticationError("the URL signature does not match", status_code=403,
                                          code="SIGNATURE_MISMATCH")
            if self._clock() >= expires:
                raise ExpiredURLError(f"the URL expired at {iso_utc(expires)}")
            return run.path

    def counts(self) -> dict[str, int]:
        """How many runs are in each status (after advancing them by the clock)."""
        with self._lock:
            now = self._clock()
            out = {"runs": len(self._runs)}
            for r in self._runs.values():
                self._advance(r, now)
                out[r.status] = out.get(r.status, 0) + 1
            return out

    # -- billing -----------------------------------------------------------------------------------

    def ledger(self) -> list[dict[str, Any]]:
        """Billed runs (succeeded ones only), one entry per run, oldest first."""
        with self._lock:
            now = self._clock()
            for r in self._runs.values():
                self._advance(r, now)
            return [dict(e) for e in self._ledger]

    def billed_total(self) -> float:
        """Dollars billed so far."""
        return round(sum(e["cost_usd"] for e in self.ledger()), 2)

    def balance(self) -> float:
        """Credit left: the starting balance minus what has been billed."""
        with self._lock:
            return round(self._initial_balance - sum(e["cost_usd"] for e in self._ledger), 2)
