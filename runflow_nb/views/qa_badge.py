"""The clip QA badge: a small ⚠ mark on a flagged clip's tile, the findings on hover.

One helper for every view (gallery, best, compare, the table view, a report), so a tile shows the
same badge wherever it is drawn. Everything in it is escaped (``qa`` text is ours, but may quote a
decoder's message).

>>> qa_badge({"qa": "black 0.0–4.0 s"})  # doctest: +ELLIPSIS
'<div class="rf-qa-badge tex2jax_ignore mathjax_ignore" ...'
>>> qa_badge({"qa": "ok"})
''
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import html as _html

__all__ = ["qa_badge"]

_STYLE = ("display:inline-block;font-size:11px;line-height:1.4;padding:0 6px;margin:0 0 3px 0;border-radius:9px;"
          "background:#fef3c7;color:#92400e;border:1px solid #f59e0b;cursor:help;max-width:100%;"
          "overflow:hidden;text-overflow:ellipsis;white-space:nowrap")


def qa_badge(row: Mapping[str, Any], *, inline: bool = False) -> str:
    """The badge for ``row`` when clip QA flagged its clip (``qa`` is set and not ``ok``), else ``""``.

    The badge names the first finding; its tooltip (``title``) lists them all.
    """
    qa = row.get("qa")
    if not isinstance(qa, str) or not qa.strip() or qa == "ok":
        return ""
    first = qa.split(";")[0].strip()
    short = first if len(first) <= 28 else first[:27] + "…"
    tag = "span" if inline else "div"
    return (f'<{tag} class="rf-qa-badge {_html.NO_MATH}" title="{_html.attr("clip QA: " + qa)}">'
            f'<span style="{_STYLE}">⚠ {_html.text(short)}</span></{tag}>')
