"""The form's parts that are not widgets: reference items with thumbnails, saved uploads, and a
stored run rendered as the form's result."""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._files import write_whole
from ..errors import Issue
from ..request import Reference, load_reference
from ..specs import REFERENCE_TO_VIDEO, ModelSpec
from ..views import display

__all__ = ["THUMB_PX", "ImageItem", "refusal_html", "row_result_html", "save_upload", "short_repr"]

THUMB_PX = 96


@dataclass(frozen=True)
class ImageItem:
    """A reference image in the form: where it came from, what loading it gave, and a thumbnail."""

    source: str  # path or URL, as VideoRequest.build takes it (uploads are saved to a file first)
    loaded: Reference | tuple[Issue, ...]
    thumbnail: bytes | None = None  # small JPEG
    label: str | None = None  # what the user knows it as (an upload's original file name)

    @property
    def ok(self) -> bool:
        return isinstance(self.loaded, Reference)

    @property
    def name(self) -> str:
        if self.label:
            return self.label
        if self.source.lower().startswith(("http://", "https://")):
            return self.source.rsplit("/", 1)[-1] or self.source
        return Path(self.source).name

    @classmethod
    def load(cls, source: str, *, spec: ModelSpec = REFERENCE_TO_VIDEO, label: str | None = None) -> ImageItem:
        """Decode and check ``source`` once; the form reuses the result on every keystroke."""
        got = load_reference(source, index=0, spec=spec)
        if isinstance(got, list):
            return cls(source, tuple(got), label=label)
        return cls(source, got, _thumbnail(got.data) if got.data is not None else None, label=label)


def refusal_html(item: ImageItem | None) -> str:
    """Why ``item`` (an image named in the form's box) cannot be a reference, or "" when it can."""
    if item is None or isinstance(item.loaded, Reference):
        return ""
    from .fields import issues_html

    return issues_html([Issue("image", x.message, x.fix) for x in item.loaded], muted=False)


def _thumbnail(data: bytes) -> bytes | None:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.thumbnail((THUMB_PX * 2, THUMB_PX * 2))
            buf = io.BytesIO()
            img.convert("RGB").save(buf, format="JPEG", quality=80)
            return buf.getvalue()
    except (OSError, ValueError):  # pragma: no cover - the image was decoded once already
        return None


def save_upload(upload: Mapping[str, Any], folder: Path) -> Path:
    """Write one FileUpload entry to ``folder`` under a content-addressed name (so code can name it)."""
    data = bytes(upload["content"])
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(str(upload.get("name") or "image")).name)
    path = folder / f"{hashlib.sha256(data).hexdigest()[:12]}-{stem[-80:] or 'image'}"
    folder.mkdir(parents=True, exist_ok=True)
    if not path.exists():  # two kernels may save one upload: each writes its own temporary file
        write_whole(path, lambda tmp: tmp.write_bytes(data))
    return path


def row_result_html(row: Mapping[str, Any]) -> str:
    """A stored run as the form shows its result: the video plus seed, timing, cost and a link."""
    if row.get("status") != "succeeded" or not row.get("video_path"):
        return display.row_html(row, width="640px")
    src = display.media_src(str(row["video_path"]))
    poster = display.poster_uri(row.get("poster_path"))  # a still JupyterLab shows (data URI)
    simulated = row.get("backend") == "simulator"
    fields = {
        "seed": row.get("seed_returned") if row.get("seed_returned") is not None else row.get("seed"),
        "queue": _seconds(row.get("queue_s")),
        "wall": _seconds(row.get("wall_s")),
        ("est. cost" if simulated else "cost"): display.money(row.get("cost_usd")),
        "run_id": row.get("run_id"),
    }
    cap = display.caption_html(fields, prompt=str(row.get("prompt") or ""), simulated=simulated, link=src)
    cap += display.notice_html(row.get("note"))
    return display.video_html(src, poster=poster, caption=cap, width="640px", aspect=display.aspect_of(row),
                              max_height=480)


def _seconds(value: Any) -> str | None:
    """A stored duration as ``"1.5 s"``; None when missing, ``"unknown"`` when it is not a number."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        return f"{float(value):.1f} s"
    except (TypeError, ValueError, OverflowError):
        return "unknown"


def short_repr(value: Any) -> str:
    """``value``'s type and a one-line repr of at most 60 characters, for a message about a wrong argument."""
    text = " ".join(repr(value).split())
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"
