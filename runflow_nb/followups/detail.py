"""One run in full, as HTML: still and player, the prompt with its references, the request as
sent, timing, cost, seeds, lineage, QA notes and the code that rebuilds it.

The player and still come from :func:`runflow_nb.views.display.row_html` (the same ``<video>`` as
every other view); the references are small inline stills in character order. Every piece of
user text is escaped and money is written so MathJax leaves it alone. No key is ever shown: the
request is the stored record's inputs, never a header.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..specs import REFERENCE_TO_VIDEO, get_spec
from ..views import html as _html
from ..views.display import money, poster_uri, row_html
from .changes import describe
from .rebuild import stored_inputs

__all__ = ["detail_html", "sent_input"]

_THUMB = 96


def sent_input(row: Mapping[str, Any]) -> dict[str, Any]:
    """The request as sent, from the record: model and ``input`` with each file by name and sha256
    (local images went as data: URIs or uploaded assets, which are not kept)."""
    spec = get_spec(row.get("model") or REFERENCE_TO_VIDEO.model)
    body: dict[str, Any] = {}
    if row.get("prompt") is not None:
        body["prompt"] = row.get("prompt")
    images = [f"{d} (sha256 {str(s)[:12]}…)" for d, s in zip(row.get("images") or [], row.get("image_sha256") or [],
                                                            strict=False)]
    if spec.has_images and images:
        body[spec.images.field] = images[0] if spec.images.single else images
    if spec.video is not None and row.get("source_video"):
        body[spec.video.field] = f"{row.get('source_video')} (sha256 {str(row.get('source_video_sha256'))[:12]}…)"
    body.update({k: v for k, v in stored_inputs(row).items() if v is not None})
    return {"model": spec.model, "input": body}


def _present(value: Any) -> bool:
    return value is not None and str(value) not in ("<NA>", "nan", "NaN", "")


def _prompt_html(row: Mapping[str, Any], references: Sequence[str | None] | None) -> str:
    """The full prompt, each image tag followed by that reference's still (character order)."""
    prompt = str(row.get("prompt") or "")
    images = [str(r or "") for r in references] if references is not None else list(row.get("images") or [])
    spec = get_spec(row.get("model") or REFERENCE_TO_VIDEO.model)
    thumbs = [_thumb(str(d), i) for i, d in enumerate(images)]
    strip = "".join(thumbs)
    if spec.tags is None or not prompt:
        return f"<div>{_html.text(prompt) or '<i>no prompt</i>'}</div><div>{strip}</div>"
    pattern = re.compile(r"(character[1-9]|@Image[1-5])")
    parts: list[str] = []
    for piece in pattern.split(prompt):
        m = re.fullmatch(r"character([1-9])|@Image([1-5])", piece)
        if m:
            n = int(m.group(1) or m.group(2))
            parts.append(f"<b>{_html.text(piece)}</b>" + (thumbs[n - 1] if n <= len(thumbs) else ""))
        else:
            parts.append(_html.text(piece))
    named = {int(n) for n in re.findall(r"(?:character|@Image)([1-9])", prompt)}
    rest = "".join(t for i, t in enumerate(thumbs) if i + 1 not in named)  # references the prompt never names
    return f"<div style='line-height:1.9'>{''.join(parts)}</div>" + (f"<div>{rest}</div>" if rest else "")


def _thumb(display: str, index: int) -> str:
    src = poster_uri(display, width=_THUMB) if display and not display.startswith("<") else None
    label = f"image {index + 1}: {display}"
    if not src:
        return f"<span class='rf-ref-missing' title='{_html.attr(label)}'>[{index + 1}]</span>"
    return (f"<img class='rf-ref' src='{_html.attr(src)}' title='{_html.attr(label)}' alt='{_html.attr(label)}' "
            f"style='height:{_THUMB // 2}px;vertical-align:middle;margin:0 4px;border-radius:3px'>")


def _link(row: Mapping[str, Any] | None, run_id: str, parent: Mapping[str, Any] | None) -> str:
    if row is None:
        return f"<code>{_html.text(run_id[:12])}</code> (not stored)"
    what = describe(parent, row) if parent is not None else ""
    status = row.get("status")
    return (f"<code>{_html.text(str(row.get('run_id'))[:12])}</code> {_html.text(status)}"
            + (f" · {_html.text(what)}" if what else ""))


def _facts(row: Mapping[str, Any]) -> list[tuple[str, str]]:
    sim = row.get("backend") == "simulator"
    queue = row.get("queue_s")
    infer = row.get("inference_ms")
    facts = [
        ("status", str(row.get("status"))),
        ("model", str(row.get("model") or "")),
        ("seed requested / returned", f"{_show(row.get('seed'), 'random')} / {_show(row.get('seed_returned'))}"),
        ("queue / inference / wall", f"{_secs(queue)} / {_secs(float(infer) / 1000 if infer is not None and _present(infer) else None)} / "
                                     f"{_secs(row.get('wall_s'))}"),
        ("cost" + (" (simulated)" if sim else ""), f"{money(row.get('cost_usd')) or '—'} "
                                                   f"(estimate {money(row.get('cost_estimate_usd')) or '—'})"),
        ("run", f"{row.get('run_id')} · Runflow {_show(row.get('remote_id'))}"),
    ]
    if _present(row.get("error_message")):
        facts.append(("error", f"{row.get('error_code')}: {row.get('error_message')}"))
    if "qa" in row:
        facts.append(("QA", _show(row.get("qa"), "not checked")))
    return facts


def _show(value: Any, missing: str = "—") -> str:
    return str(value) if _present(value) else missing


def _secs(value: Any) -> str:
    return f"{float(value):.1f} s" if _present(value) else "—"


def detail_html(row: Mapping[str, Any], *, code: str | None, code_error: str | None = None,
                parent: Mapping[str, Any] | None = None, children: Sequence[Mapping[str, Any]] = (),
                references: Sequence[str | None] | None = None) -> str:
    """One run in full (see the module docstring); ``references`` are where the run's images are
    now (found by content), for their stills."""
    esc = _html.text
    facts = "".join(f"<tr><th style='text-align:left;padding-right:12px'>{esc(k)}</th><td>{esc(v)}</td></tr>"
                    for k, v in _facts(row))
    lineage = []
    if _present(row.get("parent_run_id")):
        lineage.append(f"<div class='rf-parent'>parent: {_link(parent, str(row.get('parent_run_id')), None)}</div>")
    for child in children:
        lineage.append(f"<div class='rf-child'>child: {_link(child, str(child.get('run_id')), row)}</div>")
    sent = json.dumps(sent_input(row), indent=2, ensure_ascii=False, default=str)
    snippet = (f"<pre class='rf-code' style='background:#f6f8fa;padding:6px;white-space:pre-wrap'>{esc(code)}</pre>" if code else
               f"<div class='rf-code-missing'>{esc(code_error or 'no code')}</div>")
    return (f"<div class='rf-detail {_html.NO_MATH}' style='font-size:13px;max-width:900px'>"
            f"<div style='max-width:640px'>{row_html(row)}</div>"
            f"<h4>prompt</h4>{_prompt_html(row, references)}"
            f"<h4>run</h4><table style='font-size:13px'>{facts}</table>"
            + (f"<h4>lineage</h4>{''.join(lineage)}" if lineage else "")
            + f"<h4>request as sent</h4><pre style='white-space:pre-wrap'>{esc(sent)}</pre>"
            f"<h4>code</h4>{snippet}</div>")
