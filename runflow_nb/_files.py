"""Files written whole or not at all, and folders proved writable before anything is paid.

:func:`write_whole` writes through a temporary file of its own beside the destination and renames
it into place, so a reader (another process, another sweep of the same experiment) never sees a
partial file and a failure leaves none behind. :func:`prove_writable` creates a folder if needed and
writes and removes a probe file of its own in it; concurrent checks never trip over each other.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["prove_writable", "write_whole"]


def write_whole(dest: Path, write: Callable[[Path], object]) -> None:
    """Call ``write`` with a temporary path beside ``dest``, then rename it to ``dest``; on any
    failure the temporary file is removed and the error raised."""
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def prove_writable(folder: Path) -> None:
    """Create ``folder`` (and its parents) if needed and write a probe file in it; raises OSError."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
        pass
