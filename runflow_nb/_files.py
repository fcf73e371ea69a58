"""Files written whole or not at all, and folders proved writable before anything is paid.

:func:`write_whole` writes through a temporary file of its own beside the destination and renames
it into place, so a reader (another process, another sweep of the same experiment) never sees a
partial file and a failure leaves none behind. Writers that stream (a download hashed as it
arrives) use the same two halves, :func:`temp_beside` and :func:`publish`. Every file published
this way gets the mode a plain ``open()`` would give it (``0o666`` less the umask: ``0o644`` under
the usual umask 022), not the ``0o600`` of a temporary file. :func:`prove_writable` creates a
folder if needed and writes and removes a probe file of its own in it; concurrent checks never trip
over each other.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["file_mode", "prove_writable", "publish", "temp_beside", "write_whole"]


def file_mode() -> int:
    """The permission bits ``open()`` gives a new file here: ``0o666`` less the process umask.

    The umask is read from ``/proc/self/status`` where there is one (Linux), since setting it to read
    it back would race with other threads creating files; elsewhere the usual ``0o644``.
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o644


def temp_beside(dest: Path) -> tuple[int, Path]:
    """A new hidden temporary file in ``dest``'s folder: ``(open descriptor, path)``."""
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    return fd, Path(name)


def publish(tmp: Path, dest: Path) -> None:
    """Give ``tmp`` the mode of a plainly created file and rename it to ``dest``."""
    os.chmod(tmp, file_mode())
    os.replace(tmp, dest)


def write_whole(dest: Path, write: Callable[[Path], object]) -> None:
    """Call ``write`` with a temporary path beside ``dest``, then rename it to ``dest``; on any
    failure the temporary file is removed and the error raised."""
    fd, tmp = temp_beside(dest)
    os.close(fd)
    try:
        write(tmp)
        publish(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def prove_writable(folder: Path) -> None:
    """Create ``folder`` (and its parents) if needed and write a probe file in it; raises OSError."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
        pass
