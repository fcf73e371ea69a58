"""Moving bytes: the documented three-step upload of references and clips, and the download of an
output video into a checked, atomic sink (presigned URLs: never the API key, only http(s))."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Generator
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from ..errors import APIError, DownloadError, ExpiredURLError
from .actions import Action, Outcome, Send, Sleep
from .answers import _error, _json, _network_error
from .calls import Calls

__all__ = ["Transfers", "check_output_url"]


class Transfers(Calls):
    """:meth:`upload` (reusing an asset uploaded a moment ago) and :meth:`download`."""

    def upload(self, data: bytes, *, filename: str, content_type: str) -> Generator[Action, Outcome, str]:
        """The documented three-step upload; returns the asset's signed ``url`` for ``image_urls``.

        ``POST /v1/asset-uploads {filename, mime_type, size_bytes}`` → ``{asset_id, upload_url}``;
        ``PUT upload_url`` with the bytes and the declared Content-Type, never the API key (403: the
        presigned URL expired, so start again); ``POST .../confirmations {folder_id}`` → the Asset
        record. The same bytes uploaded in the last ``upload_reuse_s`` seconds reuse that asset.
        """
        digest = hashlib.sha256(data).hexdigest()
        cached = self.uploads.get(digest)
        if cached is not None and self.clock() - cached[2] < self.upload_reuse_s:
            return cached[0]
        for _start_over in range(3):  # a 403 on the PUT: the presigned URL expired, start again
            resp = yield from self.call("POST", "/v1/asset-uploads", json={
                "filename": filename, "mime_type": content_type, "size_bytes": len(data)},
                what="starting an upload")
            created = _json(resp)
            asset_id = (created.get("asset_id") or created.get("id")) if isinstance(created, dict) else None
            upload_url = created.get("upload_url") if isinstance(created, dict) else None
            if not asset_id or not upload_url:
                raise APIError("the upload answer has no asset_id/upload_url", status_code=resp.status_code)
            if (yield from self._put_bytes(str(upload_url), data, content_type)):
                break
        else:
            raise APIError("the upload URL was refused (403: expired) three times", status_code=403)
        resp = yield from self.call("POST", f"/v1/asset-uploads/{quote(str(asset_id), safe='')}/confirmations",
                                    json={"folder_id": None}, what="confirming the upload")
        record = _json(resp)
        url = record.get("url") if isinstance(record, dict) else None
        if not url:
            raise APIError("the upload confirmation (the Asset record) has no url", status_code=resp.status_code)
        self.uploads[digest] = (str(url), str(asset_id), self.clock())
        return str(url)

    def _put_bytes(self, upload_url: str, data: bytes, content_type: str) -> Generator[Action, Outcome, bool]:
        """PUT to a presigned URL: True once stored, False on a 403 (the URL expired); other failures raise."""
        out: Outcome = None
        for attempt in range(self.retry.attempts):
            # Up to 50 MiB: as long as a video download may take, never unbounded. Never the API key.
            out = yield Send("PUT", upload_url, content=data, headers={"Content-Type": content_type},
                             auth=False, deadline=self.clock() + self.download_timeout_s)
            if isinstance(out, httpx.Response) and out.status_code < 300:
                return True
            if isinstance(out, httpx.Response) and out.status_code == 403:
                return False
            if isinstance(out, httpx.Response) and 400 <= out.status_code < 500 and out.status_code != 429:
                raise _error(out)
            if attempt < self.retry.attempts - 1:
                yield Sleep(self.retry.delay(attempt))
        if isinstance(out, Exception):
            raise _network_error(out, "uploading the file")
        assert isinstance(out, httpx.Response)
        raise _error(out)

    def download(self, url: str, make_sink: Callable[[int | None], Any], *, attempts: int | None = None
                 ) -> Generator[Action, Outcome, tuple[str, int]]:
        """Stream ``url`` into a fresh sink per attempt; a truncated or corrupted body is retried.

        ``make_sink(expected_size)`` returns a :class:`runflow_nb.media.probe.HashingWriter`-like object.
        Never sends the API key: output URLs are presigned.
        """
        check_output_url(url)
        attempts = attempts or self.retry.attempts
        deadline = self.clock() + self.download_timeout_s  # the whole download, every attempt included
        last: Exception | None = None
        for attempt in range(attempts):
            sink = make_sink(None)
            try:  # the partial file goes on every exit: failure, deadline, Ctrl-C, a closed flow
                out = yield Send("GET", url, auth=False, sink=sink, deadline=deadline)
                if isinstance(out, httpx.Response) and out.status_code < 300:
                    try:
                        return sink.commit()
                    except DownloadError as exc:
                        last = exc
                else:
                    if isinstance(out, httpx.Response) and out.status_code in (401, 403, 404, 410):
                        raise ExpiredURLError(
                            f"the output URL answered HTTP {out.status_code}: it has expired or was revoked; "
                            "the video can no longer be downloaded from the provider")
                    if isinstance(out, DownloadError) and getattr(out, "final", False):
                        raise out  # refused before a byte (too big, no disk space): retrying cannot help
                    last = out if isinstance(out, DownloadError) else _network_error(out, "downloading the video") \
                        if isinstance(out, Exception) else \
                        DownloadError(f"download failed with HTTP {out.status_code if out is not None else '?'}")
            finally:
                sink.abort()  # a no-op once committed
            pause = self.retry.delay(attempt)
            if attempt < attempts - 1 and self.clock() + pause >= deadline:
                last = DownloadError(f"{last}; the download deadline of {self.download_timeout_s:.0f} s passed")
                break
            if attempt < attempts - 1:
                yield Sleep(pause)
        assert last is not None
        raise DownloadError(f"could not download the video intact after {attempt + 1} attempt"
                            f"{'s' if attempt else ''}: {last}")



def check_output_url(url: str) -> None:
    """Only http(s) URLs are fetched: ``file://`` and other schemes in a server answer are refused."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise DownloadError(f"refusing to download from a non-http(s) URL ({parts.scheme or 'no'} scheme)")
