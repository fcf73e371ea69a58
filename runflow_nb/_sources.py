"""Where an input file comes from: a local path or an http(s) URL, resolved and checked one way.

Reference images (:mod:`runflow_nb.request`) and input videos (:mod:`runflow_nb.media.video_input`)
both accept a path (``str``, ``os.PathLike``, ``file://``, ``~``) or an http(s) URL; this module
turns either into something to read, or into :class:`~runflow_nb.errors.Issue` objects that say
what is wrong with it, so both inputs answer the same mistake with the same message.

>>> local_file("/nonexistent/horse.png", where="images[0]", noun="image")[0].message
"no file at '/nonexistent/horse.png'"
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import Issue

__all__ = ["a_or_an", "is_http_url", "local_file", "unsupported_scheme", "url_issues"]


def a_or_an(word: str) -> str:
    """``word`` with its indefinite article: ``"an image"``, ``"a video"``, ``"an int"``."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def is_http_url(obj: Any) -> bool:
    return isinstance(obj, str) and obj.strip().lower().startswith(("http://", "https://"))


def url_issues(url: str, where: str) -> list[Issue]:
    """Why ``url`` (already stripped) cannot be sent; raises ValueError/UnicodeError on malformed hosts,
    ports or lone surrogates (the callers turn those into an issue)."""
    parts = urlsplit(url)
    if not parts.netloc:
        return [Issue(where, f"{url!r} is not a complete URL", "give a full http(s) URL with a host")]
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return [Issue(where, "the URL contains spaces or control characters", "percent-encode the URL")]
    url.encode("utf-8")  # lone surrogates cannot be sent
    _ = parts.hostname, parts.port  # malformed hosts and ports raise ValueError here
    return []


def unsupported_scheme(obj: Any, where: str) -> list[Issue]:
    """An ``s3://``-style string that is neither a local path nor an http(s) URL."""
    if isinstance(obj, str) and "://" in obj and not obj.lower().startswith("file://"):
        scheme = obj.split("://", 1)[0]
        return [Issue(where, f"the {scheme}:// scheme is not supported", "use a local path or an http(s) URL")]
    return []


def local_file(obj: str | os.PathLike[Any], *, where: str, noun: str) -> tuple[Path, int] | list[Issue]:
    """(path, size in bytes) of the regular file ``obj`` names, or why it cannot be read.

    ``noun`` names what the file should be (``"image"``, ``"video"``) in the messages.
    """
    text = os.fspath(obj)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if text.lower().startswith("file://"):
        text = urlsplit(text).path
    path = Path(text).expanduser()
    try:
        st = path.stat()
    except FileNotFoundError:
        return [Issue(where, f"no file at {str(path)!r}", "check the path (relative paths start at the "
                                                         "notebook's folder)")]
    except OSError as exc:
        return [Issue(where, f"cannot read {str(path)!r}: {exc.strerror or exc}", "check the path")]
    if stat.S_ISDIR(st.st_mode):
        return [Issue(where, f"{str(path)!r} is a folder, not {a_or_an(noun)}", f"name {a_or_an(noun)} file inside it")]
    if not stat.S_ISREG(st.st_mode):
        return [Issue(where, f"{str(path)!r} is not a regular file", f"name {a_or_an(noun)} file")]
    return path, st.st_size
