"""Word when a background sweep ends, even with its cell scrolled away.

:func:`install` (done by ``exp.run(..., background=True)`` in a kernel; idempotent) listens for the
end of every background sweep of this process (:func:`runflow_nb.sweep.background.on_sweep_end`).
Each end of a sweep that ran at least ten seconds (``install(min_s=...)``) is shown three ways,
each where it can be:

* in a live front end, a notice in the page: JupyterLab's own notification (its
  ``apputils:notify`` command, kept until dismissed) when the page exposes the application, else a
  small toast pinned to the corner of the page, with a close button;
* a line in the sweep's own cell output (text and HTML), so a saved notebook keeps it;
* a line printed at the start of the next cell the user runs, so a sweep that ended while they
  worked elsewhere is never missed (also in a terminal IPython).

A sweep left running over lunch can also report to a public URL: ``exp.set_callback_url(url)``
sends the documented ``callback_url`` on every create, and the service POSTs each run's end there
(``run.completed``/``run.failed``...; see the API's callback route). A notebook has no public URL of
its own, so that URL is the user's (a chat webhook, a small service); it is kept out of the store
(:mod:`.callbacks`).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from ..errors import Issue, ValidationError
from ..sweep.background import on_sweep_end
from ..sweep.status import SIMULATED_NOTE
from ..views import html as _html

if TYPE_CHECKING:
    from ..sweep.background import SweepHandle

__all__ = ["end_notice", "install", "notice_html", "pending", "take_pending"]

_pending: list[str] = []
_lock = threading.Lock()
_installed: dict[str, Any] = {}
_settings = {"min_s": 10.0}  # a sweep shorter than this ends in front of the user: nothing to announce


def end_notice(handle: SweepHandle) -> tuple[str, str]:
    """What to say when ``handle``'s sweep has ended, and how: (text, level), level one of
    ``success``, ``warning`` and ``error``."""
    name = handle.experiment.name
    error = handle.error
    if error is not None:
        return f"background sweep of {name!r} ended with an error: {error}", "error"
    summary = handle.summary
    if summary is None:  # pragma: no cover - a sweep that ends always has a summary or an error
        return f"background sweep of {name!r} ended", "warning"
    counts = ", ".join(f"{k} {v}" for k, v in sorted(summary.counts.items()) if v)
    money = (f"simulated spend ${summary.spent_usd:.2f} ({SIMULATED_NOTE})" if summary.simulated
             else f"spent ${summary.spent_usd:.2f}")
    text = f"background sweep of {name!r} ended: {counts}; {money} in {summary.wall_s:.0f} s"
    level = "success"
    if summary.stopped:
        text += f"; stopped: {summary.stopped}"
        level = "warning"
    if summary.still_running:
        text += (f"; {summary.still_running} run(s) still on the server may cost up to "
                 f"${summary.may_cost_usd:.2f} (run the plan again to collect them)")
        level = "warning"
    bad = sum(summary.counts.get(s, 0) for s in ("failed", "error", "download_failed", "unknown"))
    if bad and level == "success":
        level = "warning"
    return text, level


NOTICE_MAX_AGE_S = 600.0
"""A sweep-end notice older than this (by the page's clock) is not raised again in the page: a
notebook reopened later keeps the line in its output, not the pop-up."""


def notice_html(text: str, level: str, *, key: str | None = None, ended_at: float | None = None) -> str:
    """A line for the cell's output plus a script that pins the notice to the page (JupyterLab's
    notification when the page exposes the app, else a toast with a close button).

    The notice is raised once: ``key`` (one per sweep end) is remembered in the page's local
    storage, so a reload or a reopened notebook (whose saved output runs the script again) does not
    raise it a second time; a notice older than :data:`NOTICE_MAX_AGE_S` since ``ended_at`` (epoch
    seconds) is not raised in any page. The line records what the script did in its
    ``data-rf-notice`` attribute (``shown`` or ``skipped``)."""
    color = {"success": "#15803d", "warning": "#b45309", "error": "#b91c1c"}.get(level, "#374151")
    key = key or f"rf-sweep-end:{uuid.uuid4().hex}"
    ended_ms = int((ended_at if ended_at is not None else time.time()) * 1000)
    line = _html.block(f"runflow_nb: {_html.text(text)}", classes="rf-sweep-end",
                       style=f"color:{color};font-family:monospace;font-size:12px").replace(
        "<div ", f'<div data-rf-key="{_html.attr(key)}" ', 1)
    payload = json.dumps({"message": "runflow_nb: " + text, "type": level, "key": key, "ended": ended_ms,
                          "maxAge": NOTICE_MAX_AGE_S * 1000}).replace("</", "<\\/")
    script = ("<script>(function(){var n=" + payload + ";"
              "function mark(s){document.querySelectorAll('[data-rf-key=\"'+n.key+'\"]').forEach("
              "function(e){e.dataset.rfNotice=s;});}"
              "var seen=null;try{seen=window.localStorage.getItem(n.key);}catch(e){}"
              "if(seen||Date.now()-n.ended>n.maxAge){mark('skipped');return;}"
              "try{window.localStorage.setItem(n.key,String(Date.now()));}catch(e){}"
              "mark('shown');var app=window.jupyterapp;"
              "if(app&&app.commands&&app.commands.hasCommand('apputils:notify')){"
              "app.commands.execute('apputils:notify',{message:n.message,type:n.type,options:{autoClose:false}});"
              "return;}"
              "var box=document.getElementById('rf-sweep-toasts');if(!box){box=document.createElement('div');"
              "box.id='rf-sweep-toasts';box.style.cssText='position:fixed;right:16px;bottom:16px;z-index:10000;"
              "display:flex;flex-direction:column;gap:6px;max-width:420px';document.body.appendChild(box);}"
              "var t=document.createElement('div');t.className='rf-sweep-toast rf-sweep-toast-'+n.type;"
              "t.style.cssText='background:#fff;border-left:4px solid " + color + ";box-shadow:0 2px 8px rgba(0,0,0,.25);"
              "padding:8px 28px 8px 10px;font:13px sans-serif;position:relative';t.textContent=n.message;"
              "var x=document.createElement('button');x.textContent='\\u00d7';x.title='dismiss';"
              "x.style.cssText='position:absolute;top:2px;right:4px;border:0;background:none;cursor:pointer';"
              "x.onclick=function(){t.remove();};t.appendChild(x);box.appendChild(t);})();</script>")
    return line + script


def pending() -> list[str]:
    """Sweep-end lines not printed yet (shown at the start of the next cell)."""
    with _lock:
        return list(_pending)


def take_pending() -> list[str]:
    with _lock:
        out, _pending[:] = list(_pending), []
    return out


def _on_end(handle: SweepHandle) -> None:
    if time.time() - handle.started_at < _settings["min_s"]:
        return
    text, level = end_notice(handle)
    with _lock:
        _pending.append(text)
    try:
        from IPython.display import display

        from ..views.frontend import interactive_frontend

        if interactive_frontend():
            key = f"rf-sweep-end:{uuid.uuid4().hex}"  # one per sweep end: the page raises it once
            display({"text/html": notice_html(text, level, key=key, ended_at=time.time()),
                     "text/plain": f"runflow_nb: {text}"}, raw=True)
    except Exception:  # no front end to draw in: the next cell's line still says it
        pass


def _flush(*_args: Any) -> None:
    for text in take_pending():
        print(f"runflow_nb: {text}", flush=True)


def install(shell: Any = None, *, min_s: float | None = None) -> bool:
    """Listen for background sweep ends in this process and, in IPython, print each at the start of
    the next cell. Only sweeps that ran at least ``min_s`` seconds are announced (default 10 s; a
    given value stays until changed). Idempotent; True when a shell hook is in place."""
    if min_s is not None:
        if isinstance(min_s, bool) or not isinstance(min_s, (int, float)) or not min_s >= 0:
            raise ValidationError([Issue("min_s", f"is {min_s!r}", "use seconds (zero or more)")])
        _settings["min_s"] = float(min_s)
    on_sweep_end(_on_end)
    if shell is None:
        try:
            from IPython import get_ipython

            shell = get_ipython()
        except ImportError:
            shell = None
    if shell is None or getattr(shell, "events", None) is None:
        return False
    if _installed.get("shell") is not shell:
        shell.events.register("pre_run_cell", _flush)
        _installed["shell"] = shell
    return True
