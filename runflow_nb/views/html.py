"""Escaping for the HTML the toolkit shows: user text is untrusted, and money must survive MathJax.

JupyterLab (and nbconvert's HTML) typeset ``$…$`` in rendered outputs as math, so "$0.84 … $0.42"
turns into italic nonsense. MathJax works on the page's text, so an entity alone would not stop it;
what does is its ignore class on an enclosing element. :func:`text` escapes markup and writes ``$``
as ``&#36;``; :func:`block` wraps output in an element MathJax 2 and 3 both skip.
"""

from __future__ import annotations

import html
from typing import Any

__all__ = ["NO_MATH", "attr", "block", "money", "text"]

NO_MATH = "tex2jax_ignore mathjax_ignore"
"""Classes that MathJax 2 (``tex2jax_ignore``) and MathJax 3 (``mathjax_ignore``) leave alone."""


def text(value: Any) -> str:
    """``value`` as HTML text: markup escaped (quotes too), ``$`` as ``&#36;``."""
    return html.escape(str(value), quote=True).replace("$", "&#36;")


def attr(value: Any) -> str:
    """``value`` for a double-quoted attribute (the same escaping as :func:`text`)."""
    return text(value)


def money(usd: float | None, *, simulated: bool = False) -> str:
    """``&#36;1.23`` (``est. &#36;1.23`` when simulated); an empty string for None."""
    if usd is None:
        return ""
    return f"{'est. ' if simulated else ''}&#36;{usd:.2f}"


def block(markup: str, *, tag: str = "div", style: str = "", classes: str = "") -> str:
    """``markup`` inside a ``<tag>`` that MathJax does not typeset."""
    cls = f"{NO_MATH} {classes}".strip()
    st = f' style="{style}"' if style else ""
    return f'<{tag} class="{cls}"{st}>{markup}</{tag}>'
