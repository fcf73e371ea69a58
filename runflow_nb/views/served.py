"""Where the browser fetches a local clip: the notebook server's ``/files/`` route, or the bytes.

A relative ``src`` only works where something resolves it: nbconvert's HTML (beside the report's
files) and JupyterLab's HTML *outputs*, which rewrite it to ``/files/...``. Inside an ipywidgets
HTML widget nothing does, so the browser resolves it against the Lab page and gets the Lab page
back (``text/html``: a dead player); and nothing serves a file outside the server's root at all.

So in a live kernel the source is decided here, once per file:

1. The kernel asks which Jupyter server started it (the ``jpserver-<pid>.json`` runtime file whose
   ``pid`` is the kernel's parent) and, when that server's root holds the file, uses the server's
   own URL for it: ``{base_url}files/{path from the root}``. An absolute path needs no rewriting,
   so it plays the same in widgets and outputs, with the notebook at the root or in a sub-folder,
   in JupyterLab, Notebook 7 and JupyterHub (the runtime file carries the hub's base URL).
2. A file that server cannot serve (outside its root, or hidden), or a front end with no file
   server (VS Code, Colab), gets the bytes: a ``data:`` URI, up to :data:`EMBED_MAX_BYTES`.
3. Without a live front end (papermill, nbconvert, scripts: reports) :func:`local_src` returns
   None and the caller keeps its path relative to the working folder, which is what a report
   opened beside its artifacts needs.

Shared storage (S3) never comes here: presigned https URLs play everywhere.
"""

from __future__ import annotations

import base64
import functools
import json
import mimetypes
import os
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from .frontend import interactive_frontend

__all__ = ["EMBED_MAX_BYTES", "FileServer", "embedded", "kernel_file_server", "live_frontend", "local_src"]

EMBED_MAX_BYTES = 64 * 1024 * 1024
"""The largest file embedded as a ``data:`` URI where no server can serve it; bigger ones keep their
path (put the artifacts under the Jupyter root, or on shared storage, to play them)."""


@dataclass(frozen=True)
class FileServer:
    """A running Jupyter server that serves the files under ``root`` at ``{base_url}files/``."""

    root: Path
    base_url: str = "/"

    def url(self, path: str | os.PathLike[str]) -> str | None:
        """The server's URL for ``path``; None when it is not under the root or is hidden (the
        server refuses hidden files)."""
        where = Path(os.path.abspath(path))
        for candidate, root in ((where, Path(os.path.abspath(self.root))), (where.resolve(), self.root.resolve())):
            try:
                rel = PurePosixPath(candidate.relative_to(root).as_posix())
            except ValueError:
                continue
            if not rel.parts or any(part.startswith(".") for part in rel.parts):
                return None
            base = self.base_url if self.base_url.endswith("/") else self.base_url + "/"
            return f"{base}files/{quote(str(rel))}"
        return None


def _ancestors(limit: int = 4) -> list[int]:
    """The kernel's parent process id and (on Linux) a few of its ancestors'."""
    pids = [os.getppid()]
    for _ in range(limit - 1):
        try:
            stat = Path(f"/proc/{pids[-1]}/stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
        if parent <= 1:
            break
        pids.append(parent)
    return pids


def _runtime_dir() -> Path | None:
    try:
        from jupyter_core.paths import jupyter_runtime_dir
    except ImportError:
        return None
    return Path(jupyter_runtime_dir())


@functools.lru_cache(maxsize=1)
def kernel_file_server() -> FileServer | None:
    """The Jupyter server that started this kernel, from its runtime file; None when there is none
    (papermill, VS Code, Colab, a script) or it cannot be told."""
    runtime = _runtime_dir()
    if runtime is None or not runtime.is_dir():
        return None
    servers: dict[int, dict[str, object]] = {}
    for info_file in runtime.glob("jpserver-*.json"):
        try:
            info = json.loads(info_file.read_text())
            servers[int(info["pid"])] = info
        except (OSError, ValueError, KeyError, TypeError):
            continue
    for pid in _ancestors():
        info = servers.get(pid)
        if info and info.get("root_dir"):
            return FileServer(root=Path(str(info["root_dir"])), base_url=str(info.get("base_url") or "/"))
    return None


def live_frontend() -> bool:
    """A kernel a person looks at: JupyterLab or Notebook (the server's session variable), VS Code
    (which puts ``__vsc_ipynb_file__`` in the user's namespace) or Colab (``google.colab`` loaded)."""
    if interactive_frontend() or "google.colab" in sys.modules:
        return True
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return (shell is not None and type(shell).__name__ == "ZMQInteractiveShell"
            and "__vsc_ipynb_file__" in getattr(shell, "user_ns", {}))


def embedded(path: str | os.PathLike[str]) -> str | None:
    """``path``'s bytes as a ``data:`` URI (a video or image type by its suffix); None when the
    file is missing, too big (:data:`EMBED_MAX_BYTES`) or not a video or image."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if st.st_size > EMBED_MAX_BYTES:
        return None
    return _data_uri(os.path.abspath(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=64)
def _data_uri(path: str, mtime_ns: int, size: int) -> str | None:
    kind = mimetypes.guess_type(path)[0] or ""
    if not kind.startswith(("video/", "image/")):
        return None
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    return f"data:{kind};base64," + base64.b64encode(data).decode("ascii")


def local_src(path: str | os.PathLike[str]) -> str | None:
    """The source a live front end plays a local file from (see the module text); None outside a
    live front end, and for a file too big to embed, so the caller keeps its relative path."""
    if not live_frontend():
        return None
    server = kernel_file_server()
    if server is not None:
        url = server.url(path)
        if url is not None:
            return url
    return embedded(path)
