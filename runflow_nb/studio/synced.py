"""The synced compare's markup: 2–6 clips under one transport (play, pause, scrub, loop, 0.25×–1×,
a frame back or forward), one sound at a time (the focused clip), stills until played, and for two
clips a wipe and a difference view. Keys on the focused player: space plays or pauses, ←/→ step a
frame (with Shift a second), ↑/↓ move the focus, 1–5 rate the focused clip.

Synchronisation runs in the browser (:file:`assets/synced.js`, inlined once per view): clip 0
leads and the others follow its clock. Sources and stills come from :mod:`runflow_nb.views.display`
(``media_src``, ``poster_uri``), the same as every other player. A rating key clicks the rating
buttons of the widget around the view (class ``rf-sync-rating-<token>-<i>``), so the kernel writes
it to the store through the same call as a mouse click.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from ..errors import Issue, ValidationError
from ..study import PARAMETERS
from ..views import display
from ..views import html as _html

__all__ = ["MAX_CLIPS", "MIN_CLIPS", "SPEEDS", "synced_html"]

MIN_CLIPS, MAX_CLIPS = 2, 6
SPEEDS = (0.25, 0.5, 0.75, 1.0)


@functools.lru_cache(maxsize=1)
def _script() -> str:
    return resources.files("runflow_nb.studio").joinpath("assets/synced.js").read_text(encoding="utf-8")


def _css(dom_id: str) -> str:
    r = f"#{dom_id}"
    return (f"<style>{r}{{outline:none;--rf-wipe:50%}}{r}:focus{{box-shadow:0 0 0 2px #93c5fd}}"
            f"{r} .rf-sync-grid{{display:grid;gap:8px;position:relative}}"
            f"{r} .rf-sync-cell{{cursor:pointer;min-width:0;border:2px solid transparent;border-radius:4px}}"
            f"{r} .rf-sync-cell.rf-sync-focused{{border-color:#2563eb}}"
            f"{r} video.rf-sync-video{{width:100%;display:block;background:#000;max-height:420px}}"
            f"{r}.rf-mode-wipe .rf-sync-grid,{r}.rf-mode-diff .rf-sync-grid{{grid-template-columns:1fr !important}}"
            f"{r}.rf-mode-wipe .rf-sync-cell[data-index='1'],{r}.rf-mode-diff .rf-sync-cell[data-index='1']"
            f"{{position:absolute;top:0;left:0;right:0}}"
            f"{r}.rf-mode-wipe .rf-sync-cell[data-index='1'] video{{clip-path:inset(0 0 0 var(--rf-wipe))}}"
            f"{r}.rf-mode-diff .rf-sync-cell[data-index='1'] video{{mix-blend-mode:difference}}"
            f"{r}.rf-mode-wipe .rf-sync-label,{r}.rf-mode-diff .rf-sync-label{{visibility:hidden}}"
            f"{r} .rf-sync-wipe{{display:none}}{r}.rf-mode-wipe .rf-sync-wipe{{display:inline-block}}</style>")


def _label(i: int) -> str:
    return "ABCDEF"[i]


def _differing(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The request parameters (besides the seed, always shown) that differ between the compared runs."""
    out = []
    for name in PARAMETERS:
        values = {repr(r.get(name)) for r in rows if r.get(name) is not None}
        if name != "seed" and len(values) > 1:
            out.append(name)
    return out


def _value(name: str, value: Any) -> str:
    """A differing parameter as a label reads it: a model by its short name, files by their names."""
    if value is None:
        return f"no {name}"
    if name == "model":
        return str(value).rsplit("/", 1)[-1]
    if name == "images":
        items = value if isinstance(value, (list, tuple)) else [value]
        return ", ".join(str(v).split("?", 1)[0].rsplit("/", 1)[-1] for v in items) or "no images"
    if name == "duration":
        return f"{value} s"
    text = str(value)
    return text if len(text) <= 60 else text[:59] + "…"


def synced_html(rows: Sequence[Mapping[str, Any]], *, token: str | None = None) -> str:
    """The view for 2–6 stored runs (each with a playable video); ``token`` names its elements."""
    if not MIN_CLIPS <= len(rows) <= MAX_CLIPS:
        raise ValidationError([Issue("runs", f"are {len(rows)}", f"pass {MIN_CLIPS} to {MAX_CLIPS} runs")])
    missing = [str(r.get("run_id")) for r in rows if not display.has_video(r)]
    if missing:
        raise ValidationError([Issue("runs", f"{', '.join(missing)} has no video here",
                                     "compare succeeded runs whose clips are stored (see exp.table().status)")])
    token = token or uuid.uuid4().hex[:12]
    dom_id = f"rf-sync-{token}"
    fps = 24
    cells = []
    differing = _differing(rows)
    for i, row in enumerate(rows):
        src = display.media_src(str(row["video_path"]))
        poster = display.poster_uri(row.get("poster_path"))
        # controls until the script runs (a static page without it still plays each clip)
        attrs = [f'src="{_html.attr(display.safe_url(src))}"', 'preload="metadata"', "playsinline", "controls",
                 'class="rf-sync-video"', f'data-run="{_html.attr(row["run_id"])}"']
        if poster and display.safe_url(poster):
            attrs.append(f'poster="{_html.attr(display.safe_url(poster))}"')
        # what tells the clips apart (model, prompt, ...) and the seed, on one line (all of it on hover)
        what = "".join(f"{_html.text(_value(n, row.get(n)))} · " for n in differing)
        full = " · ".join(f"{n}: {row.get(n)}" for n in [*differing, "seed", "run_id"])
        label = (f'<div class="rf-sync-label {_html.NO_MATH}" title="{_html.attr(full)}" style="font-size:12px;'
                 f'font-weight:bold;white-space:nowrap;overflow:hidden;text-overflow:ellipsis">{_label(i)} · {what}'
                 f'seed {_html.text(row.get("seed"))} · <span style="font-weight:normal;color:#6b7280">run '
                 f'{_html.text(str(row["run_id"])[:8])}</span></div>')
        cells.append(f'<div class="rf-sync-cell" data-index="{i}">{label}<video {" ".join(attrs)}></video></div>')
    columns = 2 if len(rows) in (2, 4) else 3  # four as a 2×2 square, three/five/six in rows of three
    modes = ('<select class="rf-sync-mode" title="two clips: side by side, a wipe or their difference">'
             '<option value="side">side by side</option><option value="wipe">wipe</option>'
             '<option value="diff">difference</option></select>'
             '<input type="range" class="rf-sync-wipe" min="0" max="100" value="50" title="wipe position">'
             ) if len(rows) == 2 else ""
    speeds = "".join(f'<option value="{s}"{" selected" if s == 1.0 else ""}>{s:g}×</option>' for s in SPEEDS)
    bar = (f'<div class="rf-sync-bar" style="display:flex;gap:6px;align-items:center;margin-bottom:6px;font-size:12px">'
           '<button class="rf-sync-play" title="play / pause (space)">▶ play</button>'
           '<button class="rf-sync-back" title="a frame back (←; Shift: a second)">◀|</button>'
           '<button class="rf-sync-fwd" title="a frame forward (→; Shift: a second)">|▶</button>'
           '<input type="range" class="rf-sync-scrub" min="0" max="1000" value="0" style="flex:1" title="scrub">'
           '<span class="rf-sync-time" style="font-family:monospace;min-width:110px"></span>'
           '<label title="play again from the start"><input type="checkbox" class="rf-sync-loop" checked> loop</label>'
           f'<select class="rf-sync-speed" title="speed">{speeds}</select>{modes}</div>')
    hint = ('<div style="font-size:11px;color:#6b7280;margin-top:4px">click a clip to hear it · space play/pause · '
            '←/→ a frame · ↑/↓ next clip · 1–5 rate the focused clip</div>')
    script = _script().replace("__ID__", dom_id)
    return (f'{_css(dom_id)}<div id="{dom_id}" class="rf-sync rf-mode-side" tabindex="0" data-token="{token}" '
            f'data-fps="{fps}" data-clips="{len(rows)}">{bar}'
            f'<div class="rf-sync-grid" style="grid-template-columns:repeat({columns},minmax(0,1fr))">'
            f'{"".join(cells)}</div>{hint}</div><script>{script}</script>')
