"""A report's files: the media its HTML shows linked into the report folder, and the HTML export."""

from __future__ import annotations

import html
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

__all__ = ["connect_tables", "export_html", "html_outputs", "localize_media"]

_MEDIA_ATTR = re.compile(r'\b(src|poster|href)="([^"]*)"')
_MISSING_VIDEO = re.compile(r'\bdata-missing-video="([^"]*)"')
_MEDIA_SUFFIXES = {".mp4", ".webm", ".mov", ".m4v", ".jpg", ".jpeg", ".png", ".webp", ".gif"}


def html_outputs(nb: Any) -> Iterator[tuple[dict[str, Any], str]]:
    for cell in nb.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = output.get("data")
            if isinstance(data, dict) and "text/html" in data:
                yield data, "text/html"


def localize_media(nb: Any, folder: Path, warnings: list[str], missing_out: list[str]) -> int:
    """Link (or copy) every video/poster the HTML outputs point at outside ``folder`` into ``folder/media``.

    Reused runs keep their files where the first run put them; this makes every report folder whole.
    """
    root = folder.resolve()
    placed: dict[Path, str] = {}
    missing: set[str] = set()

    def rewrite(match: re.Match[str]) -> str:
        attr, value = match.group(1), html.unescape(match.group(2))
        if not value or value.startswith(("#", "/", "data:", "mailto:")) or re.match(r"^[a-z][a-z0-9+.\-]*:", value):
            return match.group(0)
        path = Path(unquote(value.split("#", 1)[0].split("?", 1)[0]))
        if path.suffix.lower() not in _MEDIA_SUFFIXES:
            return match.group(0)
        target = (root / path).resolve()
        if root in target.parents:
            if not target.is_file() and attr != "href":
                missing.add(value)
            return match.group(0)
        if not target.is_file():
            if attr != "href":
                missing.add(value)
            return match.group(0)
        if target not in placed:
            placed[target] = _place(target, root / "media")
        return f'{attr}="{html.escape(placed[target], quote=True)}"'

    for data, key in html_outputs(nb):
        markup = "".join(data[key]) if isinstance(data[key], list) else data[key]
        data[key] = _MEDIA_ATTR.sub(rewrite, markup)
        # A succeeded run whose file was gone when the notebook ran shows a note instead of a video.
        missing.update(html.unescape(m) for m in _MISSING_VIDEO.findall(markup))
    if missing:
        warnings.append(f"{len(missing)} video/poster file(s) shown by the notebook do not exist, e.g. "
                        f"{sorted(missing)[0]}")
        missing_out.extend(sorted(missing))
    return len(placed)


def _place(target: Path, media: Path) -> str:
    """Hard-link ``target`` into ``media/<its folder>/`` (a copy across file systems); the relative src."""
    dest = media / target.parent.name / target.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() and not _same(dest, target):
        for n in range(2, 10_000):
            alt = dest.with_name(f"{target.stem}-{n}{target.suffix}")
            if not alt.exists() or _same(alt, target):
                dest = alt
                break
    if not dest.exists():
        try:
            os.link(target, dest)
        except OSError:
            shutil.copy2(target, dest)
    return quote(dest.relative_to(media.parent).as_posix())


def _same(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b) or (a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes())
    except OSError:
        return False


def export_html(nb: Any, dest: Path, folder: Path) -> None:
    from nbconvert import HTMLExporter

    # Reports are for reading results: code cells are hidden (the executed .ipynb beside it has them).
    exporter = HTMLExporter(embed_images=True, exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": dest.stem, "path": str(folder)}})
    dest.write_text(body, encoding="utf-8")


def connect_tables(nb: Any) -> int:
    """Swap the embedded DataTables bundle (~0.9 MB, in the first table's output) for a loader from
    itables' CDN: for the executed notebook beside a report, whose HTML keeps the offline copy.
    Returns how many bundles were swapped."""
    from ..views.tableview import BUNDLE_END, BUNDLE_START, connected_loader

    pattern = re.compile(re.escape(BUNDLE_START) + ".*?" + re.escape(BUNDLE_END), re.S)
    swapped = 0
    for data, key in html_outputs(nb):
        markup = "".join(data[key]) if isinstance(data[key], list) else data[key]
        if BUNDLE_START in markup:
            new, n = pattern.subn(lambda _m: connected_loader(), markup)
            data[key], swapped = new, swapped + n
    return swapped
