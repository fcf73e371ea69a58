"""Inline video by reference, every clip with its still: ``<video>`` tags that point at files or URLs.

Videos go by reference: in a live JupyterLab kernel ``src`` is the notebook server's own
``/files/`` URL for the file (it plays in HTML outputs and in widgets alike, see :mod:`.served`);
in a report it is a path relative to the working folder, so the HTML opened beside its artifacts
plays it. Only a file that no server can serve (outside the Jupyter root; VS Code, Colab) is sent
as its bytes. The poster frame is different: JupyterLab rewrites a relative ``src`` to its
``/files/`` route but not ``poster``, so a relative poster would fetch the Lab page instead of the
still. Posters are therefore small JPEG ``data:`` URIs (a few kilobytes, made once per
file), which every front end (JupyterLab, VS Code, Colab, static HTML) shows without a request.

Hovering a clip plays a silent preview, clicking plays it with sound, and only one clip plays
sound at a time. Every piece of user text is HTML-escaped (prompts are untrusted) and money is
written so MathJax leaves it alone.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import math
import os
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..media.artifacts import is_remote_uri, url_for
from . import html as _html
from . import served
from .qa_badge import qa_badge

__all__ = ["caption_html", "media_src", "notice_html", "poster_uri", "result_html", "row_html", "safe_url", "show", "video_html"]

SIM_BADGE = ('<span style="background:#b45309;color:#fff;border-radius:3px;padding:0 4px;font-size:11px" '
             'title="offline simulator: a synthetic clip, not model output">SIMULATED</span>')
POSTER_WIDTH = 400
"""Width in pixels of the inline poster stills (JPEG data URIs)."""

# Only one clip plays sound at a time: a clip that starts (or is unmuted) pauses the others.
ONE_SOUND_JS = ("var me=this;if(!me.muted&&!me.paused){document.querySelectorAll('video').forEach("
                "function(v){if(v!==me&&!v.paused&&!v.muted){v.pause();}});}")
# Hover: a silent preview from the start; leaving stops it. A click during the preview keeps
# playing with sound instead of pausing.
_HOVER_ATTRS = {
    "onmouseenter": "if(this.paused){this.dataset.rfPreview='1';this.muted=true;this.play().catch(function(){});}",
    "onmouseleave": "if(this.dataset.rfPreview){delete this.dataset.rfPreview;this.pause();this.currentTime=0;"
                    "this.muted=false;}",
    "onclick": "if(this.dataset.rfPreview){delete this.dataset.rfPreview;this.muted=false;event.preventDefault();}",
}


_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):")
_URL_NOISE = re.compile(r"[\x00-\x20\x7f]")  # browsers drop tabs/newlines inside URLs and trim spaces


def safe_url(url: str | None, *, data: bool = True) -> str:
    """``url`` if it is safe in ``src``/``href``: http(s), a local (relative or absolute) path, or
    (``data=True``) a ``data:image/…`` / ``data:video/…`` URI. Anything else — ``javascript:``,
    ``vbscript:``, ``file:``, ``data:text/html`` and their obfuscated spellings — becomes ``""``."""
    if not url:
        return ""
    probe = _URL_NOISE.sub("", str(url))
    m = _SCHEME.match(probe)
    if m is None:
        return str(url)  # a path (a relative URL): served by Jupyter or beside a report
    scheme = m.group(1).lower()
    if len(scheme) == 1 and os.name == "nt":  # C:\... is a drive, not a scheme
        return str(url)
    if scheme in ("http", "https"):
        return str(url)
    if data and scheme == "data" and probe[5:].lower().startswith(("image/", "video/")):
        return str(url)
    return ""


def media_src(path_or_url: str | os.PathLike[str], *, base: str | os.PathLike[str] | None = None) -> str:
    """A URL for a ``src`` attribute: http(s) URLs as they are, shared storage (``s3://...``, see
    :mod:`runflow_nb.media.artifacts`) as a presigned URL, a local file in a live front end as
    :func:`.served.local_src` says (the notebook server's ``/files/`` URL, or its bytes), else
    relative to ``base`` (cwd; reports). Any other scheme (``javascript:`` ...) gives ``""``: a
    server-supplied URL never becomes script."""
    text = os.fspath(path_or_url)
    if text.startswith(("http://", "https://", "/files/", "data:")) or _SCHEME.match(_URL_NOISE.sub("", text)):
        if is_remote_uri(text):
            return safe_url(url_for(text))
        return safe_url(text)
    path = Path(text)
    if base is None:
        live = served.local_src(path)  # a live front end: its server's /files/ URL, or the bytes
        if live is not None:
            return live
    base_dir = Path(base) if base is not None else Path.cwd()
    try:
        rel = os.path.relpath(path.resolve(), base_dir.resolve())
    except ValueError:  # another drive on Windows
        rel = str(path.resolve())
    return quote(Path(rel).as_posix())


def poster_uri(path_or_url: str | os.PathLike[str] | None, *, width: int = POSTER_WIDTH) -> str | None:
    """The still for a ``poster`` attribute: a local JPEG/PNG as a small ``data:image/jpeg`` URI
    (at most ``width`` px wide), an http(s) or shared-storage poster as its URL; None when there is
    no poster or its file is missing (the video then shows its first frame once loaded)."""
    if path_or_url is None or not _present(path_or_url):
        return None
    text = os.fspath(path_or_url)
    if text.startswith(("http://", "https://", "data:")):
        return text
    if is_remote_uri(text):
        return url_for(text)
    try:
        st = os.stat(text)
    except OSError:
        return None
    return _poster_data_uri(str(Path(text).resolve()), st.st_mtime_ns, st.st_size, width)


@functools.lru_cache(maxsize=4096)
def _poster_data_uri(path: str, mtime_ns: int, size: int, width: int) -> str | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as src:
            img = src.convert("RGB")
        if img.width > width:
            img = img.resize((width, max(1, round(img.height * width / img.width))), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=70, optimize=True)
    except (OSError, UnidentifiedImageError, ValueError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def video_html(src: str, *, poster: str | None = None, caption: str = "", width: int | str = "100%",
               element_id: str | None = None, aspect: float | None = None, max_height: int | None = None,
               hover: bool = True) -> str:
    """A ``<figure>`` with a playable video: controls on, autoplay off, sound on, loads metadata only.

    ``aspect`` (width / height) with ``max_height`` keeps portrait clips from growing taller than
    ``max_height`` pixels: the player narrows instead.
    """
    css_width = f"{width}px" if isinstance(width, int) else str(width)
    src, poster = safe_url(src), safe_url(poster) or None
    if aspect and max_height:
        css_width = f"min({css_width},{round(max_height * aspect)}px)"
    style = f"width:{css_width};max-width:100%;background:#000;display:block"
    if aspect:
        style += f";aspect-ratio:{aspect:.4f}"
    attrs = [f'src="{html.escape(src, quote=True)}"', "controls", 'preload="metadata"', "playsinline",
             f'style="{html.escape(style, quote=True)}"']
    if poster:
        attrs.append(f'poster="{html.escape(poster, quote=True)}"')
    if element_id:
        attrs.append(f'id="{html.escape(element_id, quote=True)}"')
    handlers = {"onplay": ONE_SOUND_JS, "onvolumechange": ONE_SOUND_JS, **(_HOVER_ATTRS if hover else {})}
    attrs += [f'{k}="{html.escape(v, quote=True)}"' for k, v in handlers.items()]
    cap = (f'<figcaption class="{_html.NO_MATH}" style="font-size:12px;line-height:1.35">{caption}</figcaption>'
           if caption else "")
    return f'<figure class="rf-clip" style="margin:0"><video {" ".join(attrs)}></video>{cap}</figure>'


def caption_html(fields: Mapping[str, Any], *, prompt: str | None = None, simulated: bool = False,
                 link: str | None = None) -> str:
    """Parameters and cost as an escaped caption; the prompt is shortened with the full text on hover.

    Values are escaped with ``$`` written as ``&#36;``; pass money already formatted (``"$0.42"``).
    """
    parts: list[str] = []
    if simulated:
        parts.append(SIM_BADGE)
    if prompt is not None:
        short = prompt if len(prompt) <= 90 else prompt[:87] + "…"
        parts.append(f'<span title="{_html.attr(prompt)}">{_html.text(short)}</span><br>')
    for key, value in fields.items():
        if value is None:
            continue
        if isinstance(value, float):
            value = f"{value:.2f}"
        parts.append(f"<b>{_html.text(key)}</b> {_html.text(value)}")
    link = safe_url(link, data=False)
    if link:
        parts.append(f'<a href="{html.escape(link, quote=True)}" target="_blank" download>file</a>')
    return " ".join(parts)


def run_id_html(run_id: Any, remote_id: Any = None) -> str:
    """``run 0190abcd``: the short local run id every view shows (the full ids on hover); the
    provider's id stands in only where there is no local record (a bare ``Client.generate``)."""
    local = str(run_id) if _present(run_id) else ""
    remote = str(remote_id) if _present(remote_id) else ""
    shown = local or remote
    if not shown:
        return ""
    title = (f"run_id {local}" if local else "") + (" · " if local and remote else "") + (
        f"Runflow run id {remote}" if remote else "")
    return f'<span style="color:#6b7280" title="{_html.attr(title)}">run {_html.text(shown[:8])}</span>'


def aspect_of(row: Mapping[str, Any]) -> float | None:
    """Width / height of a stored run: from its probed size, else its aspect_ratio ("9:16")."""
    w: Any = row.get("width")
    h: Any = row.get("height")
    if _present(w) and _present(h):
        try:
            if float(w) > 0 and float(h) > 0:
                return float(w) / float(h)
        except (TypeError, ValueError):
            pass
    ar = row.get("aspect_ratio")
    if isinstance(ar, str) and ":" in ar:
        a, _, b = ar.partition(":")
        try:
            return float(a) / float(b)
        except (ValueError, ZeroDivisionError):
            return None
    return None


def notice_html(note: Any) -> str:
    """The server's warning on a run (e.g. a reference replaced by a placeholder) as a ⚠ line."""
    if not _present(note):
        return ""
    return (f'<div class="rf-notice {_html.NO_MATH}" style="font-size:12px;color:#b45309;line-height:1.35">'
            f"⚠ {_html.text(note)}</div>")


def result_html(result: Any) -> str:
    """HTML for a :class:`runflow_nb.client.Result`: the video and its seed, timing and cost (and the
    server's warnings on the run, if any)."""
    url = result.run.output.video_url if result.run.output else None
    src = media_src(result.video_path) if result.video_path else safe_url(url, data=False)
    poster = poster_uri(getattr(result, "poster_path", None))
    cost = result.cost_usd
    fields = {"seed": result.seed, "wall": f"{result.wall_s:.1f} s",
              ("est. cost" if result.simulated else "cost"): f"${cost:.2f}" if cost is not None else None}
    cap = caption_html(fields, prompt=result.request.prompt, simulated=result.simulated, link=src)
    cap += " " + run_id_html((getattr(result, "extra", None) or {}).get("run_id"), result.run.id)
    cap += notice_html(" · ".join(getattr(result.run, "notices", ())))
    req = getattr(result, "request", None)
    aspect = aspect_of({"aspect_ratio": getattr(req, "aspect_ratio", None)})
    return qa_badge({"qa": getattr(result, "qa", None)}) + video_html(src, poster=poster, caption=cap, width=640,
                                                                      aspect=aspect, max_height=480)


STATUS_REASONS = {
    "skipped_budget": "skipped: over the budget",
    "failed": "failed",
    "error": "refused",
    "download_failed": "download failed",
    "unknown": "fate unknown (still billed until resolved)",
    "planned": "not run yet",
    "submitting": "submitting",
    "queued": "queued",
    "running": "running",
    "canceled": "canceled",
    "cancelled": "canceled",
}


def reason_html(row: Mapping[str, Any] | None, *, missing: str = "not run") -> str:
    """Why a cell has no clip: the run's status and message, or ``missing`` when there is no run."""
    style = ("padding:8px;background:#f3f4f6;color:#374151;font-size:12px;border-radius:4px;"
             "min-height:48px;box-sizing:border-box")
    if row is None:
        return f'<div class="rf-reason rf-reason-none {_html.NO_MATH}" style="{style}"><i>{_html.text(missing)}</i></div>'
    status = str(row.get("status") or "")
    what = STATUS_REASONS.get(status, status or "no clip")
    if status == "succeeded":
        what = "video file missing"
    detail = row.get("error_message")
    detail_text = str(detail) if _present(detail) else ""
    if status == "succeeded" and _present(row.get("video_path")):
        detail_text = safe_url(str(row.get("video_path")), data=False) or "its stored location is not a file or URL"
    head = what.split(":", 1)[0] + ": "
    if ":" in what and detail_text.startswith(head):  # "skipped: over the budget" + "skipped: the next run ..."
        detail_text = detail_text[len(head):]
    short = detail_text if len(detail_text) <= 160 else detail_text[:157] + "…"
    body = f"<b>{_html.text(what)}</b>" + (f'<br><span title="{_html.attr(detail_text)}">{_html.text(short)}</span>'
                                          if short else "")
    missing_attr = f' data-missing-video="{_html.attr(detail_text)}"' if status == "succeeded" else ""
    return (f'<div class="rf-reason rf-reason-{_html.attr(status or "none")} {_html.NO_MATH}"{missing_attr} '
            f'style="{style}">{body}</div>')


def lineage_label(row: Mapping[str, Any]) -> str:
    """How a run with a parent names it: a video-edit clip is an "edit of" its parent; a re-run or an
    upscale (the same model, some inputs changed) is a "re-run of" it."""
    return "edit of" if str(row.get("model") or "").endswith("video-edit") else "re-run of"


def row_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """The caption fields of a stored run: parameters, cost, rating and a short run id."""
    simulated = row.get("backend") == "simulator"
    cost: Any = row.get("cost_usd")
    model, parent = row.get("model"), row.get("parent_run_id")
    fields = {
        "model": str(model).rsplit("/", 1)[-1] if _present(model) else None,  # e.g. text-to-video
        lineage_label(row): str(parent)[:8] if _present(parent) else None,
        "seed": row.get("seed"),
        "dur": f"{row.get('duration')} s" if _present(row.get("duration")) else None,
        "res": row.get("resolution") if _present(row.get("resolution")) else None,
        "ar": row.get("aspect_ratio") if _present(row.get("aspect_ratio")) else None,
        ("est. cost" if simulated else "cost"): money(cost),
        "rating": row.get("rating") if _present(row.get("rating")) else None,
    }
    return fields


def money(value: Any) -> str | None:
    """A stored cost as ``"$0.42"``: None when there is none, ``"unknown"`` when it is not a number
    (a row edited by hand or read from another tool must not stop its clip from showing)."""
    if not _present(value):
        return None
    try:
        usd = float(value)
    except (TypeError, ValueError, OverflowError):
        return "unknown"
    return f"${usd:.2f}" if math.isfinite(usd) else "unknown"


def has_video(row: Mapping[str, Any]) -> bool:
    """True when the run succeeded and its video is at hand (a local file that exists, or a URL)."""
    video = row.get("video_path")
    if row.get("status") != "succeeded" or not _present(video):
        return False
    text = str(video)
    if text.startswith(("http://", "https://")) or is_remote_uri(text):
        return True
    return os.path.isfile(text)


_NEVER_SENT = ("skipped_budget", "planned")
_CAPTION_NAMES = {"model": "model", "seed": "seed", "duration": "dur", "resolution": "res", "aspect_ratio": "ar"}


def row_html(row: Mapping[str, Any], *, width: int | str = "100%", max_height: int | None = 360,
             hover: bool = True, caption: bool = True, hide: Collection[str] = ()) -> str:
    """HTML for one stored run (a row of the experiment table): its clip, or why there is none.

    ``hide`` names parameters (table columns) the caption leaves out: what a gallery's headers say."""
    simulated = row.get("backend") == "simulator"
    fields = {k: v for k, v in row_fields(row).items()
              if not any(_CAPTION_NAMES.get(name) == k for name in hide)}
    run_id = str(row.get("run_id") or "")
    prompt: str | None = None if "prompt" in hide else str(row.get("prompt") or "")
    if not has_video(row):  # a run never sent (skipped, planned) was not simulated either: no badge
        sent = simulated and row.get("status") not in _NEVER_SENT
        cap = caption_html(fields, prompt=prompt, simulated=sent) if caption else ""
        return (reason_html(row) + (f'<div class="{_html.NO_MATH}" style="font-size:12px;line-height:1.35">'
                                    f"{cap}</div>" if cap else ""))
    src = media_src(str(row["video_path"]))
    poster = poster_uri(row.get("poster_path"))
    cap = ""
    if caption:
        cap = caption_html(fields, prompt=prompt, simulated=simulated, link=src)
        if run_id:
            cap += " " + run_id_html(run_id, row.get("remote_id"))
        cap += notice_html(row.get("note"))
    return qa_badge(row) + video_html(src, poster=poster, caption=cap, width=width, aspect=aspect_of(row),
                                      max_height=max_height, hover=hover)


def _present(value: Any) -> bool:
    """False for None, NaN, pandas' NA and empty text (table rows carry all of them)."""
    return value is not None and str(value) not in ("<NA>", "nan", "NaN", "")


_SHOW_TAKES = ("show() takes a Result (from generate), a stored run (a row of exp.table(), e.g. df.iloc[0], "
               "or a mapping of its columns) or a video path or URL")


def show(obj: Any) -> Any:
    """Display a result, a stored run (a row of ``exp.table()``/``exp.ranking()``, e.g. ``df.iloc[0]``,
    or a mapping of its columns), or a video path/URL inline, by reference.

    Anything else raises :class:`~runflow_nb.errors.UsageError` saying what it takes.
    """
    from IPython.display import HTML, display

    from ..errors import UsageError

    if hasattr(obj, "run") and hasattr(obj, "video_path"):
        markup = result_html(obj)
        notices = getattr(obj.run, "notices", ())
        if notices:
            from ..notices import warn

            warn(obj.run.id, notices)
    elif isinstance(obj, Mapping):
        markup = row_html(obj, width=640)
    elif _is_table_row(obj):  # a row of exp.table() / exp.ranking(): df.iloc[40]
        markup = row_html(obj.to_dict(), width=640)
    elif isinstance(obj, (str, os.PathLike)):
        text = os.fspath(obj)
        if not isinstance(text, str) or not text.strip() or "\x00" in text:
            raise UsageError(f"{_SHOW_TAKES}; got {_short_repr(obj)}, which is not a usable path or URL")
        markup = video_html(media_src(text), width=640)
    else:
        hint = ""
        if type(obj).__name__ == "DataFrame":
            hint = ("; for a table's clips use exp.gallery(), or show one run: "
                    "rf.show(df.iloc[0].to_dict())")
        elif type(obj).__name__ == "Series":
            hint = "; a table row needs the run's columns (run_id, status, video_path): use a row of exp.table()"
        raise UsageError(f"{_SHOW_TAKES}; got a {type(obj).__name__} ({_short_repr(obj)}){hint}")
    handle = HTML(markup)
    display(handle)
    return None


def _is_table_row(obj: Any) -> bool:
    """True for a pandas Series that is a stored run: a row of an experiment's table (by its columns)."""
    if type(obj).__name__ != "Series" or not type(obj).__module__.startswith("pandas"):
        return False
    index = getattr(obj, "index", ())
    return "run_id" in index and "status" in index


def _short_repr(obj: Any) -> str:
    try:
        text = repr(obj)
    except Exception:
        text = f"<{type(obj).__name__}>"
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:57] + "..."
