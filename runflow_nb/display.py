"""Inline video by reference: ``<video>`` tags that point at files or URLs, never base64.

Relative paths are kept relative to the kernel's working folder (the notebook's folder in
Jupyter), so JupyterLab serves them and an exported HTML report opened beside its artifacts plays
them. Every piece of user text is HTML-escaped: prompts are untrusted.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .artifacts import is_remote_uri, url_for

__all__ = ["caption_html", "media_src", "result_html", "safe_url", "show", "video_html"]

SIM_BADGE = ('<span style="background:#b45309;color:#fff;border-radius:3px;padding:0 4px;font-size:11px" '
             'title="offline simulator: a synthetic clip, not model output">SIMULATED</span>')


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
    """A URL for a ``src`` attribute: http(s) URLs as they are, files relative to ``base`` (cwd),
    shared storage (``s3://...``, see :mod:`runflow_nb.artifacts`) as a presigned URL. Any other
    scheme (``javascript:`` ...) gives ``""``: a server-supplied URL never becomes script."""
    text = os.fspath(path_or_url)
    if text.startswith(("http://", "https://", "/files/", "data:")) or _SCHEME.match(_URL_NOISE.sub("", text)):
        if is_remote_uri(text):
            return safe_url(url_for(text))
        return safe_url(text)
    path = Path(text)
    base_dir = Path(base) if base is not None else Path.cwd()
    try:
        rel = os.path.relpath(path.resolve(), base_dir.resolve())
    except ValueError:  # another drive on Windows
        rel = str(path.resolve())
    return quote(Path(rel).as_posix())


def video_html(src: str, *, poster: str | None = None, caption: str = "", width: int | str = "100%",
               element_id: str | None = None) -> str:
    """A ``<figure>`` with a playable video: controls on, autoplay off, sound on, loads metadata only."""
    css_width = f"{width}px" if isinstance(width, int) else str(width)
    src, poster = safe_url(src), safe_url(poster) or None
    attrs = [f'src="{html.escape(src, quote=True)}"', "controls", 'preload="metadata"', "playsinline",
             f'style="width:{html.escape(css_width)};max-width:100%;background:#000"']
    if poster:
        attrs.append(f'poster="{html.escape(poster, quote=True)}"')
    if element_id:
        attrs.append(f'id="{html.escape(element_id, quote=True)}"')
    cap = f'<figcaption style="font-size:12px;line-height:1.35">{caption}</figcaption>' if caption else ""
    return f'<figure style="margin:0"><video {" ".join(attrs)}></video>{cap}</figure>'


def caption_html(fields: Mapping[str, Any], *, prompt: str | None = None, simulated: bool = False,
                 link: str | None = None) -> str:
    """Parameters and cost as an escaped caption; the prompt is shortened with the full text on hover."""
    parts: list[str] = []
    if simulated:
        parts.append(SIM_BADGE)
    if prompt is not None:
        short = prompt if len(prompt) <= 90 else prompt[:87] + "…"
        parts.append(f'<span title="{html.escape(prompt, quote=True)}">{html.escape(short)}</span><br>')
    for key, value in fields.items():
        if value is None:
            continue
        if isinstance(value, float):
            value = f"{value:.2f}"
        parts.append(f"<b>{html.escape(str(key))}</b> {html.escape(str(value))}")
    link = safe_url(link, data=False)
    if link:
        parts.append(f'<a href="{html.escape(link, quote=True)}" target="_blank" download>file</a>')
    return " ".join(parts)


def result_html(result: Any) -> str:
    """HTML for a :class:`runflow_nb.client.Result`: the video and its seed, timing and cost."""
    url = result.run.output.video_url if result.run.output else None
    src = media_src(result.video_path) if result.video_path else safe_url(url, data=False)
    poster = media_src(result.poster_path) if getattr(result, "poster_path", None) else None
    cost = result.cost_usd
    fields = {"seed": result.seed, "wall": f"{result.wall_s:.1f} s",
              ("est. cost" if result.simulated else "cost"): f"${cost:.2f}" if cost is not None else None,
              "run": result.run.id}
    cap = caption_html(fields, prompt=result.request.prompt, simulated=result.simulated, link=src)
    return video_html(src, poster=poster, caption=cap, width=640)


def row_html(row: Mapping[str, Any], *, width: int | str = "100%") -> str:
    """HTML for one stored run (a row of the experiment table)."""
    status = row.get("status")
    simulated = row.get("backend") == "simulator"
    cost = row.get("cost_usd")
    model, parent = row.get("model"), row.get("parent_run_id")
    fields = {
        "model": str(model).rsplit("/", 1)[-1] if _present(model) else None,  # e.g. text-to-video
        "edit of": str(parent)[:12] if _present(parent) else None,
        "seed": row.get("seed"),
        "dur": f"{row.get('duration')} s" if row.get("duration") is not None else None,
        "res": row.get("resolution"),
        "ar": row.get("aspect_ratio") if _present(row.get("aspect_ratio")) else None,  # i2v/edit keep the input's
        ("est. $" if simulated else "$"): f"{cost:.2f}" if _present(cost) else None,
        "rating": row.get("rating") if _present(row.get("rating")) else None,
    }
    video = row.get("video_path")
    if status != "succeeded" or not _present(video):
        reason = row.get("error_message") or ""
        body = (f'<div style="padding:8px;background:#f3f4f6">{html.escape(str(status))} '
                f'{html.escape(str(reason))}</div>')
        return body + caption_html(fields, prompt=str(row.get("prompt") or ""), simulated=simulated)
    src = media_src(str(video))
    poster = media_src(str(row["poster_path"])) if _present(row.get("poster_path")) else None
    cap = caption_html(fields, prompt=str(row.get("prompt") or ""), simulated=simulated, link=src)
    return video_html(src, poster=poster, caption=cap, width=width)


def _present(value: Any) -> bool:
    """False for None, NaN, pandas' NA and empty text (table rows carry all of them)."""
    return value is not None and str(value) not in ("<NA>", "nan", "NaN", "")


def show(obj: Any) -> Any:
    """Display a result, a stored run (mapping), or a video path/URL inline, by reference."""
    from IPython.display import HTML, display

    if hasattr(obj, "run") and hasattr(obj, "video_path"):
        markup = result_html(obj)
    elif isinstance(obj, Mapping):
        markup = row_html(obj, width=640)
    else:
        markup = video_html(media_src(obj), width=640)
    handle = HTML(markup)
    display(handle)
    return None
