"""Artifact helpers: atomic hashed downloads, sha256 of files, probing videos and poster frames.

PyAV and Pillow are imported inside the functions that need them, so importing this module is
cheap. No PyAV exception escapes: a file that cannot be played raises
:class:`~runflow_nb.errors.DownloadError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pathlib
import shutil
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from runflow_nb._files import publish, temp_beside, write_whole
from runflow_nb.errors import DownloadError

if TYPE_CHECKING:
    from av.container import InputContainer

__all__ = ["HashingWriter", "VideoProbe", "open_input", "poster_frame", "probe", "sha256_file"]

# A 15 s 1080p clip is tens of MB; no video of this family comes near 2 GiB. A server declaring (or
# streaming) more is broken or hostile, and would fill the disk.
MAX_DOWNLOAD_BYTES = 2 * 1024**3
_DURATION_SLACK_S = 0.1  # packets may end this much before the declared duration


@dataclass(frozen=True)
class VideoProbe:
    """What a video file holds, as read from its container and packets."""

    duration: float  # of the video stream, in seconds
    width: int
    height: int
    fps: float | None
    video_codec: str
    audio_codec: str | None
    has_audio: bool
    audio_duration: float | None
    size_bytes: int


def sha256_file(path: str | os.PathLike[str], *, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()


_TAKES_METADATA_ERRORS: bool | None = None  # does av.open() take metadata_errors=? (None: not yet known)


def open_input(path: str | os.PathLike[str]) -> InputContainer:
    """``av.open(path)`` for reading, so that undecodable metadata never makes a video unreadable.

    PyAV before 19 decodes metadata strictly unless asked for ``metadata_errors="replace"``;
    PyAV 19 removed that argument (it decodes with ``surrogateescape`` and never raises). Which
    one is installed is found out on the first call, by the argument being refused, not by
    version number, and remembered.
    """
    global _TAKES_METADATA_ERRORS
    import av

    if _TAKES_METADATA_ERRORS is not False:
        try:
            container = av.open(os.fspath(path), metadata_errors="replace")
        except TypeError as exc:
            if "metadata_errors" not in str(exc):
                raise
            _TAKES_METADATA_ERRORS = False
        else:
            _TAKES_METADATA_ERRORS = True
            return container
    return av.open(os.fspath(path))


def probe(path: str | os.PathLike[str]) -> VideoProbe:
    """Describe the video at ``path``; every packet is read and the first frame decoded.

    Raises :class:`DownloadError` if the file is not a complete, playable video (truncated,
    corrupt, or without a video stream); ``FileNotFoundError`` if there is no file.
    """
    import av

    path = pathlib.Path(path)
    size = path.stat().st_size
    _check_iso_boxes(path, size)
    try:
        with open_input(path) as container:
            return _probe_container(container, path, size)
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise DownloadError(f"{path} is not a playable video: {exc}") from exc


def poster_frame(
    video_path: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    max_width: int = 640,
    quality: int = 80,
) -> pathlib.Path:
    """Save the first frame of a video as a JPEG at most ``max_width`` wide; returns ``dest``."""
    import av
    from PIL import Image

    video_path, dest = pathlib.Path(video_path), pathlib.Path(dest)
    try:
        with open_input(video_path) as container:
            if not container.streams.video:
                raise DownloadError(f"{video_path} is not a playable video: it has no video stream")
            frame = next(container.decode(container.streams.video[0]), None)
            if frame is None:
                raise DownloadError(f"{video_path} is not a playable video: no frame could be decoded")
            img = frame.to_image()
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise DownloadError(f"{video_path} is not a playable video: {exc}") from exc
    if img.width > max_width:
        img = img.resize((max_width, max(1, round(img.height * max_width / img.width))),
                         Image.Resampling.LANCZOS)
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_whole(dest, lambda tmp: img.convert("RGB").save(tmp, format="JPEG", quality=quality))
    return dest


def describe(video_path: str | os.PathLike[str]) -> tuple[VideoProbe, pathlib.Path]:
    """Probe a downloaded video (a broken file raises DownloadError) and write its poster frame
    beside it (same name, ``.jpg``)."""
    path = pathlib.Path(video_path)
    return probe(path), poster_frame(path, path.with_suffix(".jpg"))


class HashingWriter:
    """Write a streamed download to a temp file next to ``dest``, hashing as it goes.

    :meth:`commit` checks the size and hash, fsyncs and moves the file into place; nothing ever
    appears at ``dest`` unless it is complete. As a context manager, leaving the block without
    :meth:`commit` (by an exception or otherwise) discards the data::

        with HashingWriter(dest, expected_size=n) as w:
            for chunk in response.iter_bytes():
                w.write(chunk)
            sha256, size = w.commit()
    """

    def __init__(
        self,
        dest: str | os.PathLike[str],
        *,
        expected_size: int | None = None,
        expected_sha256: str | None = None,
        max_bytes: int = MAX_DOWNLOAD_BYTES,
    ) -> None:
        self.dest = pathlib.Path(dest)
        self.expected_size = expected_size
        self.expected_sha256 = expected_sha256.lower() if expected_sha256 else None
        self.max_bytes = max_bytes
        try:
            self.dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = temp_beside(self.dest)
        except OSError as exc:
            raise DownloadError(f"cannot write to {self.dest.parent}: {exc.strerror or exc}") from exc
        self._tmp = tmp
        self._file = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self._size = 0
        self._state = "open"  # -> committed | aborted

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size

    @property
    def closed(self) -> bool:
        return self._state != "open"

    def expect(self, declared: int | None) -> None:
        """Check a declared size (``Content-Length``) before any byte arrives: it must be sane and
        fit on the disk. Raises :class:`DownloadError` (and aborts) otherwise."""
        if declared is None:
            return
        problem = None
        if declared > self.max_bytes:
            problem = (f"{self.dest.name}: the server declares {declared:,} bytes, more than the "
                       f"{self.max_bytes:,} a video may have; refusing to download it")
        free: int | None
        try:
            free = shutil.disk_usage(self.dest.parent).free
        except OSError:
            free = None
        if problem is None and free is not None and declared > free:
            problem = (f"{self.dest.name}: {declared:,} bytes do not fit in the {free:,} bytes free on "
                       f"the disk of {self.dest.parent}; free some space and run again")
        if problem is not None:
            self.abort()
            err = DownloadError(problem)
            err.final = True
            raise err

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        """Append ``chunk``; raises :class:`DownloadError` (and aborts) past ``expected_size`` or
        ``max_bytes``, or when the disk refuses it (full, read-only)."""
        self._require_open()
        n = memoryview(chunk).nbytes
        limit = self.expected_size if self.expected_size is not None else self.max_bytes
        if self._size + n > limit:
            self.abort()
            raise DownloadError(f"{self.dest.name}: received more than the "
                                f"{'expected' if self.expected_size is not None else 'maximum'} {limit} bytes")
        try:
            self._file.write(chunk)
        except OSError as exc:  # ENOSPC, EIO...: never leave the partial file filling the disk
            self.abort()
            raise DownloadError(f"{self.dest.name}: could not write the download ({exc.strerror or exc})") from exc
        self._hash.update(chunk)
        self._size += n

    def commit(self) -> tuple[str, int]:
        """Check size and hash, then move the file to ``dest``; returns ``(sha256, size)``."""
        self._require_open()
        digest = self._hash.hexdigest()
        try:
            if self.expected_size is not None and self._size != self.expected_size:
                raise DownloadError(
                    f"{self.dest.name}: incomplete download, got {self._size} of {self.expected_size} bytes"
                )
            if self.expected_sha256 is not None and digest != self.expected_sha256:
                raise DownloadError(
                    f"{self.dest.name}: sha256 mismatch, got {digest}, expected {self.expected_sha256}"
                )
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            publish(self._tmp, self.dest)
        except OSError as exc:
            self.abort()
            raise DownloadError(f"{self.dest.name}: could not store the download ({exc.strerror or exc})") from exc
        except BaseException:
            self.abort()
            raise
        self._state = "committed"
        _fsync_dir(self.dest.parent)
        return digest, self._size

    def abort(self) -> None:
        """Discard everything written; safe to call more than once."""
        if self._state != "open":
            return
        self._state = "aborted"
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(OSError):
            self._tmp.unlink()

    def __enter__(self) -> HashingWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.abort()

    def _require_open(self) -> None:
        if self._state != "open":
            raise ValueError(f"HashingWriter for {self.dest.name} is already {self._state}")


def _fsync_dir(directory: pathlib.Path) -> None:
    """Make a rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _check_iso_boxes(path: pathlib.Path, size: int) -> None:
    """For MP4/MOV files, refuse one whose top-level boxes run past the end of the file.

    Demuxers read a truncated MP4 without complaint up to the cut; the box sizes give it away.
    """
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[4:8] not in (b"ftyp", b"moov", b"mdat", b"free", b"wide"):
            return
        offset = 0
        while offset < size:
            fh.seek(offset)
            header = fh.read(16)
            if len(header) < 8:
                break
            box_size, box_type = int.from_bytes(header[:4], "big"), header[4:8]
            if box_size == 1 and len(header) == 16:
                box_size = int.from_bytes(header[8:16], "big")
            elif box_size == 0:  # extends to the end of the file
                return
            if box_size < 8 or offset + box_size > size:
                name = box_type.decode("latin-1")
                raise DownloadError(
                    f"{path} is not a playable video: truncated ({name!r} box at byte {offset} needs "
                    f"{box_size} bytes, the file has {size - offset} left)"
                )
            offset += box_size


def _probe_container(container: InputContainer, path: pathlib.Path, size: int) -> VideoProbe:
    import av

    if not container.streams.video:
        raise DownloadError(f"{path} is not a playable video: it has no video stream")
    video = container.streams.video[0]
    audio = container.streams.audio[0] if container.streams.audio else None
    streams = [s for s in (video, audio) if s is not None]
    first: dict[int, float] = {}
    end: dict[int, float] = {}
    decoded = False
    for packet in container.demux(streams):
        if packet.dts is None:  # end-of-stream marker
            continue
        if packet.is_corrupt:
            raise DownloadError(f"{path} is not a playable video: corrupt or truncated packet")
        idx = packet.stream.index
        tb = packet.time_base
        start = float((packet.pts if packet.pts is not None else packet.dts) * tb)
        first[idx] = min(first.get(idx, start), start)
        end[idx] = max(end.get(idx, start), start + float((packet.duration or 0) * tb))
        if idx == video.index and not decoded:
            decoded = bool(video.codec_context.decode(packet))
    if not decoded:
        raise DownloadError(f"{path} is not a playable video: no video frame could be decoded")

    def stream_duration(stream: Any) -> float | None:
        seen = end[stream.index] - first[stream.index] if stream.index in end else None
        declared = float(stream.duration * stream.time_base) if stream.duration else None
        if declared is None and stream is video and container.duration:
            declared = container.duration / av.time_base
        if declared is not None and seen is not None and seen < declared - _DURATION_SLACK_S:
            raise DownloadError(
                f"{path} is not a playable video: {stream.type} stops at {seen:.2f} s of {declared:.2f} s"
            )
        return declared if declared is not None else seen

    duration = stream_duration(video) or 0.0
    rate = video.average_rate or video.guessed_rate
    return VideoProbe(
        duration=duration,
        width=video.codec_context.width,
        height=video.codec_context.height,
        fps=float(rate) if rate else None,
        video_codec=video.codec_context.name,
        audio_codec=audio.codec_context.name if audio is not None else None,
        has_audio=audio is not None,
        audio_duration=stream_duration(audio) if audio is not None else None,
        size_bytes=size,
    )
