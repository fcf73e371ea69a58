"""Scrubbing a report before it is written: the API key redacted, base64 video removed, and
parameters that look like credentials refused before papermill records them in the notebook."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .. import settings
from ..errors import ConfigurationError

__all__ = ["DATA_VIDEO", "check_no_secrets", "redact", "redact_file", "strip_video_data"]

REDACTED = "[redacted]"
KEY_PATTERN = re.compile(r"rf_(?:live|test)_[A-Za-z0-9_\-]{4,}")
DATA_VIDEO = re.compile(r"data:video/[A-Za-z0-9.+\-]+;base64,[A-Za-z0-9+/=]*")
_SECRET_NAMES = re.compile(r"(api_?key|token|secret|password)", re.IGNORECASE)


def check_no_secrets(params: Mapping[str, Any]) -> None:
    """Refuse parameters that look like credentials (papermill writes parameters into the notebook)."""
    key = settings.api_key() or ""
    for name, value in params.items():
        text = json.dumps(value, default=str)
        if _SECRET_NAMES.search(name) or KEY_PATTERN.search(text) or (len(key) >= 8 and key in text):
            raise ConfigurationError(
                f"parameter {name!r} looks like a credential: papermill writes parameters into the notebook. "
                "Set RUNFLOW_API_KEY in the environment instead; the report's kernel reads it from there.")
        if isinstance(value, str) and "://" in value and urlsplit(value).password:
            raise ConfigurationError(
                f"parameter {name!r} holds a URL with a password, which papermill would write into the "
                "notebook: leave the password out (PostgreSQL reads PGPASSWORD or ~/.pgpass)")


def redact(text: str) -> str:
    """``text`` with the API key (and anything shaped like a Runflow key) replaced by ``[redacted]``."""
    key = settings.api_key() or ""
    if len(key) >= 8:
        text = text.replace(key, REDACTED)
    return KEY_PATTERN.sub(REDACTED, text)


def redact_file(path: Path) -> None:
    """Redact a written file in place, and drop any ``data:video`` URI from it."""
    text = path.read_text(encoding="utf-8")
    clean = DATA_VIDEO.sub("", redact(text))
    if clean != text:
        path.write_text(clean, encoding="utf-8")


def strip_video_data(nb: Any) -> None:
    """No base64 video in a report: video/* bundles become a note, data: video URIs are dropped."""
    for cell in nb.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = output.get("data")
            if not isinstance(data, dict):
                continue
            videos = [k for k in data if k.startswith("video/")]
            for k in videos:
                del data[k]
            if videos and not data:
                data["text/plain"] = "(a video embedded as data was removed from this report; show videos by reference)"
            if "text/html" in data:
                markup = "".join(data["text/html"]) if isinstance(data["text/html"], list) else data["text/html"]
                data["text/html"] = DATA_VIDEO.sub("", markup)
