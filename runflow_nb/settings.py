"""Every setting runflow_nb takes from the environment, in one place.

The library, the CLI, the notebooks, the emulator and reports all read their ``RUNFLOW_*``
variables through this module. Each function reads ``os.environ`` when it is called, never at
import, so a variable set after ``import runflow_nb`` (or in a notebook cell) counts, and nothing
caches the API key: it is read at the moment a request needs it and kept in no object.

Precedence is the same everywhere: an explicit argument (``Experiment(store=...)``, ``--store``),
then the environment variable, then the default below. :data:`VARIABLES` lists every variable with
its default and meaning (the README's configuration table is the same list), and
``runflow-nb config`` prints the values in force and where each came from.

>>> from runflow_nb import settings
>>> settings.store_url(environ={})
'runflow_data/runflow.sqlite'
>>> settings.store_url("team.sqlite", environ={"RUNFLOW_STORE": "other.sqlite"})
'team.sqlite'
>>> settings.artifacts_location(environ={"RUNFLOW_STORE": "/data/study/runs.sqlite"})
'/data/study/artifacts'
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigurationError, Issue, ValidationError

__all__ = [
    "BACKENDS",
    "DEFAULT_ARTIFACTS",
    "DEFAULT_BASE_URL",
    "DEFAULT_LEASE_S",
    "DEFAULT_SIMULATOR_LATENCY",
    "DEFAULT_STORE",
    "PROGRESS_MODES",
    "QA_DEFAULTS",
    "VARIABLES",
    "QAThresholds",
    "Secret",
    "Variable",
    "api_key",
    "artifacts_location",
    "backend",
    "base_url",
    "cache_dir",
    "callback_url",
    "check_callback_url",
    "describe",
    "find_default_store",
    "has_api_key",
    "lease_seconds",
    "local_artifacts_dir",
    "organization_id",
    "progress",
    "qa_thresholds",
    "redact_url",
    "simulator_latency",
    "store_url",
]

DEFAULT_BASE_URL = "https://api.runflow.io"
DEFAULT_STORE = "runflow_data/runflow.sqlite"
"""The one default store, relative to the working directory: notebooks, CLI and reports share it."""
DEFAULT_ARTIFACTS = "runflow_data/artifacts"
DEFAULT_SIMULATOR_LATENCY = 0.2
DEFAULT_LEASE_S = 60.0
BACKENDS = ("auto", "runflow", "simulator")
PROGRESS_MODES = ("auto", "widget", "text", "none")


@dataclass(frozen=True)
class Variable:
    """One environment variable runflow_nb reads: its name, default (as text) and meaning."""

    name: str
    default: str
    meaning: str
    secret: bool = False


VARIABLES: tuple[Variable, ...] = (
    Variable("RUNFLOW_API_KEY", "unset (offline simulator)",
             "Your Runflow key. Read when a request needs it, never at import; never written to the store, "
             "logs, reports, reprs or error messages. Unset: the offline simulator is used.", secret=True),
    Variable("RUNFLOW_BASE_URL", DEFAULT_BASE_URL,
             "The server to talk to; point it at `runflow-nb emulator` for local work."),
    Variable("RUNFLOW_BACKEND", "auto",
             "`auto` (the real API when a key is set, else the simulator), `runflow` or `simulator`."),
    Variable("RUNFLOW_ORGANIZATION_ID", "unset",
             "Sent as `X-Organization-Id` with authenticated requests, to bill an organization."),
    Variable("RUNFLOW_CALLBACK_URL", "unset",
             "A public URL the service POSTs each run's end to: sent as `callback_url` on every create of "
             "a sweep whose experiment was given no URL in this process (`exp.set_callback_url`). Never "
             "written to the store, logs, reports, reprs or error messages; they show it redacted "
             "(`https://hooks.example.org/***?token=***`).", secret=True),
    Variable("RUNFLOW_STORE", "the nearest `runflow_data/runflow.sqlite`",
             "Default run store for `Experiment`, the notebooks and every CLI command: a SQLite path "
             "(relative to the working directory) or a `postgresql://` URL. Unset: the nearest existing "
             "`runflow_data/runflow.sqlite` in the working directory or a folder above it (up to the top "
             "of the git checkout or the home folder), else a new one in the working directory."),
    Variable("RUNFLOW_ARTIFACTS", f"`artifacts/` beside a SQLite store, else `{DEFAULT_ARTIFACTS}`",
             "Default folder (or `s3://bucket/prefix`) for videos and poster frames."),
    Variable("RUNFLOW_SIMULATOR_LATENCY", f"{DEFAULT_SIMULATOR_LATENCY:g}",
             "Seconds each simulated run takes (offline simulator and in-process emulator)."),
    Variable("RUNFLOW_PROGRESS", "auto",
             "Sweep progress: `auto` (a widget in JupyterLab, text lines elsewhere), `widget`, `text` or `none`."),
    Variable("RUNFLOW_LEASE_S", f"{DEFAULT_LEASE_S:g}",
             "Seconds a sweep's claim on a run holds without renewal (renewed every third of it while the "
             "process drives the run); a crashed process's runs are taken over once it lapses."),
    Variable("RUNFLOW_CACHE_DIR", "`$XDG_CACHE_HOME/runflow_nb`, else `~/.cache/runflow_nb`",
             "Where the sample reference images are drawn and kept."),
    Variable("RUNFLOW_QA_BLACK_LUMA", "38",
             "Clip QA: a pixel at or below this 8-bit luma counts as black (FFmpeg blackdetect's 10%)."),
    Variable("RUNFLOW_QA_BLACK_SHARE", "0.98",
             "Clip QA: a frame is black when at least this share of its pixels is black."),
    Variable("RUNFLOW_QA_BLACK_MIN_S", "0.5", "Clip QA: the shortest run of black frames flagged, in seconds."),
    Variable("RUNFLOW_QA_FROZEN_CHANGE", "0.001",
             "Clip QA: a frame is unchanged when less than this share of its pixels moved by more than "
             "10 luma levels since the still stretch began."),
    Variable("RUNFLOW_QA_FROZEN_MIN_S", "1.0", "Clip QA: the shortest frozen stretch flagged, in seconds."),
    Variable("RUNFLOW_QA_SILENCE_DB", "-60",
             "Clip QA: audio quieter than this (dBFS, RMS of each decoded audio frame: ~21 ms of AAC) counts as silence."),
    Variable("RUNFLOW_QA_SILENCE_MIN_S", "2.0", "Clip QA: the shortest silent stretch flagged, in seconds."),
    Variable("RUNFLOW_QA_CLIPPED_SHARE", "0.01",
             "Clip QA: audio is flagged clipped when at least this share of its samples sit at full scale "
             "(-0.45 dBFS or more)."),
    Variable("RUNFLOW_QA_DURATION_TOLERANCE_S", "0.5",
             "Clip QA: how far the clip's decoded length may fall short of (or run past) the length asked."),
    Variable("RUNFLOW_QA_MIN_FPS", "15", "Clip QA: a frame rate below this is flagged."),
)
_NAMES = {v.name for v in VARIABLES}


def _env(name: str, environ: Mapping[str, str] | None) -> str | None:
    """The variable's value with surrounding whitespace removed; None when unset or blank."""
    assert name in _NAMES, name
    value = (os.environ if environ is None else environ).get(name)
    if value is None:
        return None
    value = value.strip()  # a pasted value's newline
    return value or None


# -- the Runflow API ----------------------------------------------------------------------------

class Secret:
    """A key held out of sight: not in ``vars()``, a repr, a pickle or a copy of the holder.

    >>> s = Secret("rf_live_abc")
    >>> s, str(s)
    (Secret('***'), '***')
    >>> s.reveal()
    'rf_live_abc'
    """

    __slots__ = ("_reveal",)
    _reveal: Callable[[], str]

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise ConfigurationError("an API key must be text")
        object.__setattr__(self, "_reveal", lambda: value)

    @classmethod
    def wrap(cls, value: str | Secret | None) -> Secret | None:
        """``value`` as a Secret (unchanged if it is one); None stays None."""
        return value if value is None or isinstance(value, Secret) else cls(value)

    def reveal(self) -> str:
        """The key itself: call it where a request header is built, and keep the result nowhere."""
        value: str = self._reveal()
        return value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __copy__(self) -> Secret:
        return self  # immutable

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self

    def __reduce__(self) -> Any:
        raise TypeError("an API key is not pickled: pass it again, or set RUNFLOW_API_KEY")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Secret is read-only")


def api_key(explicit: str | Secret | None = None, *, environ: Mapping[str, str] | None = None) -> str | None:
    """The API key: ``explicit``, else ``RUNFLOW_API_KEY``; None when neither is set.

    Call it at the moment a request is built and do not keep the result.
    """
    if isinstance(explicit, Secret):
        explicit = explicit.reveal()
    if explicit is not None and explicit.strip():
        return explicit.strip()
    return _env("RUNFLOW_API_KEY", environ)


def has_api_key(explicit: str | Secret | None = None, *, environ: Mapping[str, str] | None = None) -> bool:
    """Whether a key is available (without handing it out)."""
    return api_key(explicit, environ=environ) is not None


def base_url(explicit: str | None = None, *, environ: Mapping[str, str] | None = None) -> str:
    """The API's base URL: ``explicit``, else ``RUNFLOW_BASE_URL``, else :data:`DEFAULT_BASE_URL`."""
    url = (explicit.strip() if explicit else None) or _env("RUNFLOW_BASE_URL", environ) or DEFAULT_BASE_URL
    if not url.startswith(("http://", "https://")):
        source = "base_url" if explicit else "RUNFLOW_BASE_URL"
        raise ConfigurationError(f"{source} must start with http:// or https://")
    return url


def backend(explicit: str | None = None, *, api_key: str | Secret | None = None,
            environ: Mapping[str, str] | None = None) -> str:
    """``"runflow"`` or ``"simulator"``: ``explicit``/``RUNFLOW_BACKEND`` when not ``auto``, else by the key.

    ``auto`` means the real API when a key is given (``api_key``) or found in ``RUNFLOW_API_KEY``,
    the offline simulator otherwise.
    """
    chosen = (explicit or "auto").strip().lower()
    if chosen not in BACKENDS:
        raise ConfigurationError("backend must be 'auto', 'runflow' or 'simulator'")
    if chosen == "auto":
        chosen = (_env("RUNFLOW_BACKEND", environ) or "auto").lower()
        if chosen not in BACKENDS:
            raise ConfigurationError("RUNFLOW_BACKEND must be 'auto', 'runflow' or 'simulator'")
    if chosen == "auto":
        chosen = "runflow" if has_api_key(api_key, environ=environ) else "simulator"
    return chosen


def organization_id(*, environ: Mapping[str, str] | None = None) -> str | None:
    """``RUNFLOW_ORGANIZATION_ID``, sent as ``X-Organization-Id`` when set."""
    return _env("RUNFLOW_ORGANIZATION_ID", environ)


# -- the run-end webhook ----------------------------------------------------------------------------

# A path segment shown as it is: a plain lowercase word (``hooks``, ``runflow-ends``) or at most three
# characters (``v1``); anything else may be a token and is masked.
_PLAIN_SEGMENT = re.compile(r"[a-z][a-z_.-]{0,19}|[A-Za-z0-9_.-]{1,3}")


def _url_parts(url: object) -> Any:
    """``urlsplit(url)`` when ``url`` is a full http(s) URL with a host and no whitespace, else None."""
    from urllib.parse import urlsplit

    if not isinstance(url, str) or any(c.isspace() for c in url):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a bad port raises here)
    except ValueError:
        return None
    return parts if parts.scheme in ("http", "https") and parts.hostname else None


def redact_url(url: object) -> str:
    """``url`` as it may be shown anywhere: scheme, host and port kept; user and password, every query
    value, the fragment and the path from its first segment that is not a plain word masked (a webhook
    URL carries its token in any of them, often after an id).

    >>> redact_url("https://bot:pw@hooks.example.org/services/T0AB12/B9CD34/Xy7Qk2mNp4?token=s3cret&v=2#x")
    'https://***@hooks.example.org/services/***/***/***?token=***&v=***#***'
    >>> redact_url("hooks.example.org/hook?token=s3cret")
    '<not an http(s) URL>'
    """
    from urllib.parse import parse_qsl

    parts = _url_parts(url)
    if parts is None:
        return "<not an http(s) URL>"
    _user, at, host = parts.netloc.rpartition("@")
    segments = parts.path.split("/")
    for i, seg in enumerate(segments):
        if seg and not _PLAIN_SEGMENT.fullmatch(seg):  # a token, and whatever follows it (an id, then its key)
            segments[i:] = ["***" if s else s for s in segments[i:]]
            break
    path = "/".join(segments)
    keys = [k if _PLAIN_SEGMENT.fullmatch(k) else "***" for k, _ in parse_qsl(parts.query, keep_blank_values=True)]
    query = "&".join(f"{k}=***" for k in keys) if keys else ("***" if parts.query else "")
    return (f"{parts.scheme}://{'***@' if at else ''}{host}{path}{'?' + query if query else ''}"
            f"{'#***' if parts.fragment else ''}")


def check_callback_url(url: object, *, name: str = "callback_url") -> str | None:
    """``url`` if it is a full http(s) URL with a host (what the API takes), None for None; else a
    :class:`ValidationError` naming the fix that never repeats the URL (it may hold a token)."""
    if url is None:
        return None
    if _url_parts(url) is None:
        seen = f"a {type(url).__name__}" if not isinstance(url, str) else f"{redact_url(url)} ({len(url)} characters)"
        raise ValidationError([Issue(name, f"is {seen}, not a full http(s) URL",
                                     "give a full public http(s) URL such as https://hooks.example.org/runflow, "
                                     "or None to stop sending one")])
    assert isinstance(url, str)
    return url


def callback_url(*, environ: Mapping[str, str] | None = None) -> Secret | None:
    """``RUNFLOW_CALLBACK_URL`` held as a :class:`Secret` (it may carry a token), None when unset."""
    text = _env("RUNFLOW_CALLBACK_URL", environ)
    if text is None:
        return None
    if _url_parts(text) is None:
        raise ConfigurationError("RUNFLOW_CALLBACK_URL must be a full http(s) URL such as "
                                 "https://hooks.example.org/runflow (its value is not shown: it may hold a token)")
    return Secret(text)


# -- where things live --------------------------------------------------------------------------

def store_url(explicit: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] | None = None,
              cwd: str | os.PathLike[str] | None = None) -> str:
    """The run store: ``explicit``, else ``RUNFLOW_STORE``, else the default store found from ``cwd``.

    The default is found the way git finds its repository: the nearest ``runflow_data/runflow.sqlite``
    that exists in the working directory or a folder above it (stopping at the top of a git checkout
    or at the home folder), so a notebook in ``notebooks/`` and the CLI at the project's root use the
    same store. Where none exists yet it is created at the top of the git checkout, else as
    :data:`DEFAULT_STORE` in the working directory.
    """
    if explicit is not None and os.fspath(explicit).strip():
        return os.fspath(explicit).strip()
    return _env("RUNFLOW_STORE", environ) or find_default_store(cwd)


def find_default_store(cwd: str | os.PathLike[str] | None = None) -> str:
    """The nearest existing ``runflow_data/runflow.sqlite`` at or above ``cwd`` (default: the working
    directory), as a path relative to ``cwd`` when it is there and absolute when it is above it.

    The walk stops after a folder holding ``.git`` (the project's top) and after the home folder, so
    an unrelated store higher up is never picked. Where there is none yet, the new store goes to the
    project's top (the folder holding ``.git``, below the home folder), so a kernel started in
    ``notebooks/`` and the CLI at the project's root create and use the same one; outside a checkout
    it is :data:`DEFAULT_STORE` in ``cwd``.
    """
    start = Path(os.path.abspath(cwd if cwd is not None else os.getcwd()))
    if (start / DEFAULT_STORE).is_file():
        return DEFAULT_STORE
    home = Path(os.path.abspath(os.path.expanduser("~")))
    here = start
    while not (here / ".git").exists() and here != home and here.parent != here:
        here = here.parent
        if (here / DEFAULT_STORE).is_file():
            return os.fspath(here / DEFAULT_STORE)
    if here != start and (here / ".git").exists() and here != home:
        return os.fspath(here / DEFAULT_STORE)  # none yet: the project's top, as every folder in it finds it
    return DEFAULT_STORE


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite store URL or path; None for PostgreSQL or in-memory stores."""
    if url in ("", ":memory:"):
        return None
    if "://" not in url:
        return Path(url).expanduser()
    if url.startswith("sqlite:///") and url[len("sqlite:///"):] not in ("", ":memory:"):
        return Path(url[len("sqlite:///"):].split("?", 1)[0]).expanduser()
    return None


def artifacts_location(explicit: str | os.PathLike[str] | None = None, *, store: str | os.PathLike[str] | None = None,
                       environ: Mapping[str, str] | None = None) -> str:
    """The artifacts folder (or fsspec URL): ``explicit``, else ``RUNFLOW_ARTIFACTS``, else beside the store.

    Beside the store means ``artifacts/`` in a SQLite store's folder (so the default store
    ``runflow_data/runflow.sqlite`` keeps its videos in ``runflow_data/artifacts``); for a
    PostgreSQL or in-memory store it is :data:`DEFAULT_ARTIFACTS`. ``store`` defaults to
    :func:`store_url`.
    """
    if explicit is not None and os.fspath(explicit).strip():
        return os.fspath(explicit).strip()
    env = _env("RUNFLOW_ARTIFACTS", environ)
    if env:
        return env
    file = _sqlite_file(store_url(store, environ=environ))
    if file is None:
        return DEFAULT_ARTIFACTS
    return os.fspath(file.parent / "artifacts")


def local_artifacts_dir(*, environ: Mapping[str, str] | None = None) -> str:
    """:func:`artifacts_location` when it is a local folder, else :data:`DEFAULT_ARTIFACTS` (for
    callers that write files themselves, such as ``Client.generate``)."""
    where = artifacts_location(environ=environ)
    return DEFAULT_ARTIFACTS if "://" in where else where


def cache_dir(*, environ: Mapping[str, str] | None = None) -> Path:
    """``RUNFLOW_CACHE_DIR``, else ``$XDG_CACHE_HOME/runflow_nb``, else ``~/.cache/runflow_nb``."""
    root = _env("RUNFLOW_CACHE_DIR", environ)
    if root:
        return Path(root).expanduser()
    xdg = (os.environ if environ is None else environ).get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "runflow_nb"


# -- behaviour ----------------------------------------------------------------------------------

def simulator_latency(explicit: float | None = None, *, environ: Mapping[str, str] | None = None) -> float:
    """Seconds per simulated run: ``explicit``, else ``RUNFLOW_SIMULATOR_LATENCY``, else 0.2."""
    if explicit is not None:
        return float(explicit)
    text = _env("RUNFLOW_SIMULATOR_LATENCY", environ)
    if text is None:
        return DEFAULT_SIMULATOR_LATENCY
    try:
        value = float(text)
    except ValueError:
        raise ConfigurationError(f"RUNFLOW_SIMULATOR_LATENCY must be a number of seconds, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise ConfigurationError(f"RUNFLOW_SIMULATOR_LATENCY must be zero or more seconds, got {text!r}")
    return value


def lease_seconds(explicit: float | None = None, *, environ: Mapping[str, str] | None = None) -> float:
    """How long a run lease holds unless renewed: ``explicit``, else ``RUNFLOW_LEASE_S``, else 60."""
    if explicit is not None:
        value, text = float(explicit), str(explicit)
    else:
        text = _env("RUNFLOW_LEASE_S", environ) or ""
        if not text:
            return DEFAULT_LEASE_S
        try:
            value = float(text)
        except ValueError:
            raise ConfigurationError(f"RUNFLOW_LEASE_S must be a number of seconds, got {text!r}") from None
    if not 0.5 <= value < float("inf"):
        raise ConfigurationError(f"RUNFLOW_LEASE_S must be at least 0.5 seconds, got {text!r}")
    return value


def progress(explicit: str = "auto", *, environ: Mapping[str, str] | None = None) -> str:
    """``auto``, ``widget``, ``text`` or ``none``: ``explicit`` unless ``auto``, else ``RUNFLOW_PROGRESS``."""
    mode = explicit.strip().lower()
    if mode == "auto":
        mode = (_env("RUNFLOW_PROGRESS", environ) or "auto").lower()
        if mode not in PROGRESS_MODES:
            raise ConfigurationError("RUNFLOW_PROGRESS must be one of " + ", ".join(PROGRESS_MODES))
    elif mode not in PROGRESS_MODES:
        raise ConfigurationError("progress must be one of " + ", ".join(PROGRESS_MODES))
    return mode


# -- clip QA ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class QAThresholds:
    """What :mod:`runflow_nb.qa` flags. Each field has its variable, e.g. ``RUNFLOW_QA_BLACK_MIN_S`` (see
    :data:`VARIABLES`); :func:`qa_thresholds` reads them.

    The defaults start from FFmpeg's own detectors (blackdetect: 10% luma, 98% of the picture;
    freezedetect: each frame against the stretch's first; silencedetect: -60 dB) and were checked
    against clips that must pass (:mod:`runflow_nb.simulator.flaws`): a night scene (the whole
    backdrop below 10% luma, a dim subject moving), a locked-off shot where only a small subject
    moves, a slow pan over soft clouds (50 s to cross the frame: its longest still stretch is under
    0.4 s against the 1 s threshold) and audio at -48 dBFS RMS. They pass; black, frozen, silent,
    clipped, short and wrong-size clips are flagged (``tests/test_qa.py``).
    """

    black_luma: float = 38.0
    black_share: float = 0.98
    black_min_s: float = 0.5
    frozen_change: float = 0.001
    frozen_min_s: float = 1.0
    silence_db: float = -60.0
    silence_min_s: float = 2.0
    clipped_share: float = 0.01
    duration_tolerance_s: float = 0.5
    min_fps: float = 15.0


QA_DEFAULTS = QAThresholds()

#: field → (variable, lowest, highest) allowed
_QA_FIELDS: dict[str, tuple[str, float, float]] = {
    "black_luma": ("RUNFLOW_QA_BLACK_LUMA", 0.0, 255.0),
    "black_share": ("RUNFLOW_QA_BLACK_SHARE", 0.0, 1.0),
    "black_min_s": ("RUNFLOW_QA_BLACK_MIN_S", 0.0, 3600.0),
    "frozen_change": ("RUNFLOW_QA_FROZEN_CHANGE", 0.0, 1.0),
    "frozen_min_s": ("RUNFLOW_QA_FROZEN_MIN_S", 0.0, 3600.0),
    "silence_db": ("RUNFLOW_QA_SILENCE_DB", -200.0, 0.0),
    "silence_min_s": ("RUNFLOW_QA_SILENCE_MIN_S", 0.0, 3600.0),
    "clipped_share": ("RUNFLOW_QA_CLIPPED_SHARE", 0.0, 1.0),
    "duration_tolerance_s": ("RUNFLOW_QA_DURATION_TOLERANCE_S", 0.0, 3600.0),
    "min_fps": ("RUNFLOW_QA_MIN_FPS", 0.0, 1000.0),
}


def qa_thresholds(environ: Mapping[str, str] | None = None, /, **overrides: float) -> QAThresholds:
    """Clip QA thresholds: each ``overrides`` field, else its variable (``RUNFLOW_QA_FROZEN_MIN_S``, ...), else the default.

    >>> qa_thresholds({"RUNFLOW_QA_FROZEN_MIN_S": "2"}).frozen_min_s
    2.0
    """
    values: dict[str, float] = {}
    for name in overrides:
        if name not in _QA_FIELDS:
            raise ConfigurationError(f"{name!r} is no QA threshold; use one of {', '.join(_QA_FIELDS)}")
    for name, (var, lo, hi) in _QA_FIELDS.items():
        given = overrides.get(name)
        text = str(given) if given is not None else _env(var, environ)
        if text is None:
            continue
        source = name if given is not None else var
        try:
            value = float(text)
        except (TypeError, ValueError):
            raise ConfigurationError(f"{source} must be a number, got {text!r}") from None
        if isinstance(given, bool) or not lo <= value <= hi:
            raise ConfigurationError(f"{source} must be a number from {lo:g} to {hi:g}, got {text!r}")
        values[name] = value
    return QAThresholds(**values)


# -- a readable summary -------------------------------------------------------------------------

def _shown_callback(environ: Mapping[str, str] | None) -> str:
    try:
        url = callback_url(environ=environ)
    except ConfigurationError:
        return "set, but not a full http(s) URL"
    return "unset" if url is None else redact_url(url.reveal())


def describe(*, environ: Mapping[str, str] | None = None) -> str:
    """The settings in force, one line each, with where each value came from (the key only as set/unset).

    >>> print(describe(environ={}).splitlines()[0])  # doctest: +ELLIPSIS
    RUNFLOW_API_KEY ... unset: the offline simulator is used  (default)
    """
    env = os.environ if environ is None else environ
    values: dict[str, str] = {
        "RUNFLOW_API_KEY": "set" if has_api_key(environ=environ) else "unset: the offline simulator is used",
        "RUNFLOW_BASE_URL": base_url(environ=environ),
        "RUNFLOW_BACKEND": backend(environ=environ),
        "RUNFLOW_ORGANIZATION_ID": organization_id(environ=environ) or "unset",
        "RUNFLOW_CALLBACK_URL": _shown_callback(environ),
        "RUNFLOW_STORE": store_url(environ=environ),
        "RUNFLOW_ARTIFACTS": artifacts_location(environ=environ),
        "RUNFLOW_SIMULATOR_LATENCY": f"{simulator_latency(environ=environ):g} s",
        "RUNFLOW_PROGRESS": progress(environ=environ),
        "RUNFLOW_LEASE_S": f"{lease_seconds(environ=environ):g} s",
        "RUNFLOW_CACHE_DIR": os.fspath(cache_dir(environ=environ)),
    }
    qa = qa_thresholds(environ)
    values.update({var: f"{getattr(qa, name):g}" for name, (var, _, _) in _QA_FIELDS.items()})
    width = max(len(n) for n in values)
    lines = []
    for var in VARIABLES:
        source = "environment" if (env.get(var.name) or "").strip() else "default"
        lines.append(f"{var.name:<{width}}  {values[var.name]}  ({source})")
    return "\n".join(lines)
