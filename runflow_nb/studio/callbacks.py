"""An experiment's run-end webhook: the ``callback_url`` its sweeps send, held in memory, never stored.

``exp.set_callback_url(url)`` makes every create of the experiment's sweeps in this process carry the
documented ``callback_url``, so the service POSTs each run's end there. Webhook URLs usually carry a
token (``?token=``, a path segment, ``user:password@``), so the URL itself lives only in this
process, held as a :class:`~runflow_nb.settings.Secret`. The store keeps just its redacted form
(``https://hooks.example.org/***?token=***``, experiment metadata ``callback``) to say that one was
set, and ``None`` there once it was stopped.

A later kernel (or another process) resuming the sweep therefore has no URL of its own. It takes
``RUNFLOW_CALLBACK_URL`` when that is set (the safe way to give every process the URL: it is read
from the environment when a sweep starts and written nowhere), unless the experiment's callbacks were
stopped with ``exp.set_callback_url(None)``. Without either, its runs go out without a callback and
:func:`for_sweep` says so once in that process, naming both fixes: a callback is never dropped
silently.

A store written by an earlier version, which kept the full URL under ``callback_url``, has it moved
out on first use: this process keeps sending it, the store keeps only the redacted form.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from .. import settings
from ..settings import Secret, check_callback_url, redact_url

if TYPE_CHECKING:
    from ..store.runstore import Store

__all__ = ["STORE_KEY", "for_sweep", "set_for"]

log = logging.getLogger("runflow_nb")

#: The experiment metadata key: the redacted URL while callbacks are on, None once stopped, absent
#: when none was ever set.
STORE_KEY = "callback"
_LEGACY_KEY = "callback_url"  # earlier versions stored the URL itself here

_held: dict[tuple[str, str], Secret | None] = {}  # (store URL, experiment) -> the URL set in this process
_lock = threading.Lock()


def set_for(store: Store, experiment: str, url: str | None) -> None:
    """Hold ``url`` for ``experiment``'s sweeps in this process and record its redacted form (None:
    stop sending one, here and in later processes, RUNFLOW_CALLBACK_URL included)."""
    checked = check_callback_url(url)
    with _lock:
        _held[(store.url, experiment)] = Secret.wrap(checked)
    metadata: dict[str, object] = {STORE_KEY: None if checked is None else redact_url(checked)}
    if _LEGACY_KEY in (store.experiment_metadata(experiment) or {}):
        metadata[_LEGACY_KEY] = None
    store.ensure_experiment(experiment, metadata=metadata)


def for_sweep(store: Store, experiment: str, *, notice: bool = True) -> Secret | None:
    """The webhook URL ``experiment``'s creates carry in this process: the one set here, else
    ``RUNFLOW_CALLBACK_URL`` (unless stopped), else None — said once (``notice``) when the store
    shows a URL was set in an earlier process, so the callbacks it expects will not come."""
    key = (store.url, experiment)
    with _lock:
        if key in _held:
            return _held[key]
    stored = store.experiment_metadata(experiment) or {}
    legacy = stored.get(_LEGACY_KEY)
    if isinstance(legacy, str) and legacy:  # the full URL, from an earlier version: move it out
        set_for(store, experiment, legacy)
        return for_sweep(store, experiment, notice=notice)
    if STORE_KEY in stored and stored[STORE_KEY] is None:
        return None  # stopped with set_callback_url(None)
    from_env = settings.callback_url()
    if from_env is not None or not stored.get(STORE_KEY):
        return from_env
    if notice:
        from ..notices import show_once

        text = (f"runflow_nb: experiment {experiment!r} was set to report run ends to {stored[STORE_KEY]}, but "
                "that URL is never stored (it may hold a token), so this process has none: runs go out WITHOUT "
                "a callback until exp.set_callback_url(url) or RUNFLOW_CALLBACK_URL gives it again "
                "(exp.set_callback_url(None) stops them for good)")
        if show_once(f"callback-missing:{store.url}:{experiment}", text):
            log.warning(text)
    return None
