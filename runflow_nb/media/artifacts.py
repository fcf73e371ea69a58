"""Where videos and poster frames are kept: a local folder (the default) or shared storage (fsspec).

A sweep writes every file locally first (the streaming download, the probe and the poster frame
all need a real file), then *commits* it to the target. For a local folder the file is already
in place and nothing moves: videos stay at ``artifacts/<experiment>/<run_id>.mp4``. For an fsspec
URL such as ``s3://bucket/prefix`` the file is streamed up in blocks (never read whole into
memory), appears atomically when complete, and the local copy is removed. The run record stores
the returned URI (a local path, or ``s3://...``) in ``video_path`` / ``poster_path``.

>>> arts = Artifacts("s3://lab/runflow",                                        # doctest: +SKIP
...                  storage_options={"client_kwargs": {"endpoint_url": "http://127.0.0.1:9000"}})
>>> tmp = arts.local_tmp("horses/run1.mp4")                                     # doctest: +SKIP
>>> uri = arts.commit(tmp, "horses/run1.mp4")    # 's3://lab/runflow/horses/run1.mp4'  # doctest: +SKIP
>>> arts.url_for(uri)                            # presigned https URL for <video src>   # doctest: +SKIP

Display code turns stored URIs into URLs with :func:`url_for`: each :class:`Artifacts` with a
remote target registers itself (in memory, for this process), so a URI under its root is signed
with its ``storage_options`` (endpoint, credentials); other URIs use the default credentials of
the environment (``AWS_*``). Credentials are never written to the store or to HTML, only the
short-lived signatures that S3 presigned URLs carry.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import IO, Any

from .._files import prove_writable
from ..errors import ConfigurationError

__all__ = ["DEFAULT_URL_EXPIRES", "Artifacts", "is_remote_uri", "resolve", "url_for"]

DEFAULT_URL_EXPIRES = 3600  # seconds a presigned URL stays valid
_COPY_CHUNK = 1 << 20  # bytes read from the local file at a time
_BLOCK_SIZE = 8 << 20  # bytes buffered before a part is uploaded (S3 parts must be >= 5 MiB)
_CONTENT_TYPES = {".mp4": "video/mp4", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}
_S3_PROTOCOLS = ("s3", "s3a")


def is_remote_uri(uri: str | os.PathLike[str]) -> bool:
    """True for fsspec URLs such as ``s3://bucket/key`` (not local paths, ``file://`` or http(s) URLs)."""
    text = os.fspath(uri)
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.isascii() and scheme.replace("+", "").isalnum() and scheme.lower() not in (
        "file", "local", "http", "https")


class Artifacts:
    """A local folder or an fsspec URL (``s3://bucket/prefix``) that run artifacts are committed to.

    ``storage_options`` go to :func:`fsspec.filesystem` (for S3, e.g. ``{"key": ..., "secret": ...,
    "client_kwargs": {"endpoint_url": "http://127.0.0.1:9000"}}``); they stay in memory.
    """

    def __init__(self, target: str | os.PathLike[str] = "artifacts", *,
                 storage_options: Mapping[str, Any] | None = None) -> None:
        text = os.fspath(target)
        if not text:
            raise ConfigurationError("artifacts needs a folder or an fsspec URL such as s3://bucket/prefix")
        self.storage_options = dict(storage_options or {})
        self._fs: Any = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._lock = threading.Lock()
        if is_remote_uri(text):
            self.protocol = text.partition("://")[0].lower()
            if self.protocol in _S3_PROTOCOLS:  # SigV4 presigned URLs: the only kind every region accepts
                config = dict(self.storage_options.get("config_kwargs") or {})
                config.setdefault("signature_version", "s3v4")
                self.storage_options["config_kwargs"] = config
            self.root: Path | str = text.rstrip("/")
            _register(self)
        else:
            if text.startswith("file://"):
                text = text[len("file://"):]
            self.protocol = "file"
            # Absolute from the start: a path relative to whichever folder a kernel ran in would
            # not be found by a notebook, the CLI or a report kernel running elsewhere.
            self.root = Path(os.path.normpath(Path(text).expanduser().absolute()))

    @property
    def is_local(self) -> bool:
        return self.protocol == "file"

    def __repr__(self) -> str:
        return f"Artifacts({str(self.root)!r})"  # never the storage options: they may hold secrets

    @property
    def fs(self) -> Any:
        """The fsspec filesystem of a remote target (created on first use)."""
        if self.is_local:
            raise AttributeError("a local Artifacts folder has no fsspec filesystem")
        with self._lock:
            if self._fs is None:
                try:
                    import fsspec
                except ImportError:
                    raise ConfigurationError(
                        f"artifacts at {self.root}: install fsspec and s3fs (pip install 'runflow_nb[team]')"
                    ) from None
                try:
                    self._fs = fsspec.filesystem(self.protocol, **self.storage_options)
                except (ImportError, ValueError) as exc:
                    raise ConfigurationError(f"artifacts at {self.root}: {exc}") from None
            return self._fs

    # -- writing -----------------------------------------------------------------------------------

    def check_writable(self, folder: str) -> None:
        """Prove a file can be written under ``folder`` (a relative path), or ConfigurationError: a
        target that cannot take the videos is found before any run is paid for."""
        rel = _relpath(folder)
        if isinstance(self.root, Path):
            local = self.root / rel
            where: Path | str = local
            try:
                prove_writable(local)  # a probe of its own: sweeps of one experiment may check at once
                return
            except OSError as exc:
                why = exc.strerror or str(exc)
        else:
            where = f"{self.root}/{rel.as_posix()}"
            fs = self.fs  # ConfigurationError when fsspec or the protocol's driver is missing
            probe = f"{where}/.write-check-{uuid.uuid4().hex}"
            try:
                fs.pipe_file(probe, b"")
            except Exception as exc:  # drivers raise their own kinds (botocore, gcsfs...)
                why = f"{type(exc).__name__}: {str(exc)[:200]}"
            else:
                with contextlib.suppress(Exception):  # a policy may allow writes but not deletes
                    fs.rm_file(probe)
                return
        raise ConfigurationError(f"cannot write videos to {where} ({why}): nothing was submitted; "
                                 "choose a writable artifacts folder")

    def local_tmp(self, name: str) -> Path:
        """A local path to write ``name`` (a relative path such as ``exp/run.mp4``) to before :meth:`commit`.

        Local target: the final location itself, so committing moves nothing.
        """
        rel = _relpath(name)
        base = self.root if isinstance(self.root, Path) else Path(self._tmpdir())
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def commit(self, local_file: str | os.PathLike[str], relpath: str) -> str:
        """Store ``local_file`` as ``relpath`` under the target and return its URI (what the store keeps).

        Local: the path (the file is moved there unless it already is there). Remote: the file is
        streamed up, appears only once complete, and the local copy is removed (also on failure).
        """
        rel = _relpath(relpath)
        src = Path(local_file)
        if isinstance(self.root, Path):
            dest = self.root / rel
            if src.resolve() != dest.resolve():
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(os.fspath(src), dest)
            return str(dest)
        uri = f"{self.root}/{rel.as_posix()}"
        try:
            self._upload(src, uri)
        finally:
            with contextlib.suppress(OSError):
                src.unlink()
        return uri

    def _upload(self, src: Path, uri: str) -> None:
        kwargs: dict[str, Any] = {}
        content_type = _CONTENT_TYPES.get(src.suffix.lower())
        if content_type and self.protocol in _S3_PROTOCOLS:
            kwargs["ContentType"] = content_type
        with open(src, "rb") as fin:
            # autocommit=False: the object appears on commit(); an error discards every uploaded part.
            fout = self.fs.open(uri, "wb", block_size=_BLOCK_SIZE, autocommit=False, **kwargs)
            try:
                shutil.copyfileobj(fin, fout, _COPY_CHUNK)
                fout.close()
                fout.commit()
            except BaseException:
                with contextlib.suppress(Exception):
                    fout.discard()
                fout.closed = True  # discarded: closing again must not upload anything
                raise

    def _tmpdir(self) -> str:
        with self._lock:
            if self._tmp is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="runflow_nb-artifacts-")
            return self._tmp.name

    # -- reading -----------------------------------------------------------------------------------

    def exists(self, uri: str | os.PathLike[str]) -> bool:
        """Whether the artifact at ``uri`` (a local path or a URL) is there."""
        text = os.fspath(uri)
        if not is_remote_uri(text):
            return Path(text.removeprefix("file://")).exists()
        return bool(self._fs_for(text).exists(text))

    def url_for(self, uri: str | os.PathLike[str], *, expires: int = DEFAULT_URL_EXPIRES) -> str:
        """What a browser can load: local paths as they are (see ``display.media_src``), http(s)
        URLs as they are, and remote URIs as presigned URLs (S3: honours a custom ``endpoint_url``)."""
        text = os.fspath(uri)
        if not is_remote_uri(text):
            return text
        fs = self._fs_for(text)
        try:
            return str(fs.sign(text, expiration=int(expires)))
        except NotImplementedError:
            raise ConfigurationError(
                f"cannot make a browser URL for {text}: {type(fs).__name__} cannot presign; "
                "use s3:// (or another store that supports signed URLs)"
            ) from None

    def open(self, uri: str | os.PathLike[str], mode: str = "rb") -> IO[bytes]:
        """A binary file object for the artifact at ``uri`` (local path or URL)."""
        text = os.fspath(uri)
        if not is_remote_uri(text):
            return open(text.removeprefix("file://"), mode)  # the caller closes it
        return self._fs_for(text).open(text, mode)

    def _fs_for(self, uri: str) -> Any:
        """This target's filesystem for URIs under its root, else the registered (or default) one."""
        if isinstance(self.root, str) and (uri == self.root or uri.startswith(self.root + "/")):
            return self.fs
        return resolve(uri).fs


def _relpath(name: str) -> PurePosixPath:
    rel = PurePosixPath(str(name).replace("\\", "/"))
    if not str(name) or rel.is_absolute() or ".." in rel.parts:
        raise ValueError(f"an artifact name must be a relative path inside the target, got {name!r}")
    return rel


# --- URIs written by any Artifacts of this process ---------------------------------------------------

_REGISTRY: dict[str, Artifacts] = {}
_REGISTRY_LOCK = threading.Lock()


def _register(artifacts: Artifacts) -> None:
    with _REGISTRY_LOCK:
        _REGISTRY[str(artifacts.root)] = artifacts  # the latest options for a root win


def resolve(uri: str) -> Artifacts:
    """The :class:`Artifacts` that knows how to reach ``uri``: the registered one with the longest
    matching root, else one for the URI's bucket with the environment's default credentials."""
    with _REGISTRY_LOCK:
        matches = [root for root in _REGISTRY if uri == root or uri.startswith(root + "/")]
        if matches:
            return _REGISTRY[max(matches, key=len)]
    scheme, _, rest = uri.partition("://")
    return Artifacts(f"{scheme}://{rest.split('/', 1)[0]}")


def url_for(uri: str | os.PathLike[str], *, expires: int = DEFAULT_URL_EXPIRES) -> str:
    """A browser URL for a stored artifact URI (see :meth:`Artifacts.url_for`)."""
    text = os.fspath(uri)
    return resolve(text).url_for(text, expires=expires) if is_remote_uri(text) else text
