"""Routes for bytes: asset uploads (create, PUT, confirm), uploaded assets, and video downloads."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import urllib.parse
from pathlib import Path

import httpx

from ..errors import ExpiredURLError, Issue
from ..simulator import iso_utc
from .base import EmulatorBase
from .faults import TruncatedStream
from .wire import HTTPError, invalid, json_body, json_response, parse_range

__all__ = ["MAX_ASSET_BYTES", "AssetRoutes"]

MAX_ASSET_BYTES = 50 * 1024 * 1024


class AssetRoutes(EmulatorBase):
    """``POST /v1/asset-uploads``, ``PUT upload_url``, confirmations, ``GET /assets/...``, ``GET /files/...``."""

    def _upload_sig(self, asset_id: str) -> str:
        return hmac.new(self.state.secret, asset_id.encode(), hashlib.sha256).hexdigest()[:32]

    def _ep_create_upload(self, request: httpx.Request, request_id: str) -> httpx.Response:
        broken = self.create_fault()
        body = json_body(request)
        filename, content_type, size = body.get("filename"), body.get("content_type"), body.get("size")
        issues = []
        if not isinstance(filename, str) or not 1 <= len(filename) <= 255 or "/" in filename:
            issues.append(Issue("filename", "must be a file name of 1–255 characters without '/'",
                                "send e.g. reference1.png"))
        if not isinstance(content_type, str) or "/" not in content_type:
            issues.append(Issue("content_type", "must be a MIME type", "send e.g. image/png"))
        if type(size) is not int or not 1 <= size <= MAX_ASSET_BYTES:
            issues.append(Issue("size", f"must be a whole number of bytes, 1–{MAX_ASSET_BYTES} (50 MiB)",
                                "send the file's exact size"))
        if issues:
            raise invalid(issues)
        asset_id = f"asset_{secrets.token_hex(10)}"
        with self.state.lock:
            self.state.assets[asset_id] = {"filename": filename, "content_type": content_type, "size": size,
                                           "data": None, "status": "pending"}
        name = urllib.parse.quote(str(filename))
        broken.apply(request)
        return json_response(201, {
            "id": asset_id, "status": "pending", "method": "PUT",
            "upload_url": f"{self.base_url}/uploads/{asset_id}?signature={self._upload_sig(asset_id)}",
            "headers": {"Content-Type": content_type}, "url": f"{self.base_url}/assets/{asset_id}/{name}",
            "expires_at": iso_utc(time.time() + 3600)})

    def _ep_put_upload(self, request: httpx.Request, request_id: str, *, asset_id: str) -> httpx.Response:
        sig = request.url.params.get("signature", "")
        with self.state.lock:
            asset = self.state.assets.get(asset_id)
            if asset is None or not hmac.compare_digest(sig, self._upload_sig(asset_id)):
                raise HTTPError(403, "FORBIDDEN", "the upload URL is not valid")
            data = request.content
            if len(data) != asset["size"]:
                raise HTTPError(400, "SIZE_MISMATCH", f"declared {asset['size']} bytes, received {len(data)}")
            asset["data"], asset["status"] = data, "uploaded"
        return httpx.Response(200, headers={"ETag": f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'})

    def _ep_confirm_upload(self, request: httpx.Request, request_id: str, *, asset_id: str) -> httpx.Response:
        broken = self.create_fault()
        with self.state.lock:
            asset = self.state.assets.get(asset_id)
            if asset is None:
                raise HTTPError(404, "NOT_FOUND", f"no upload with id {asset_id!r}")
            if asset["data"] is None:
                raise HTTPError(409, "CONFLICT", "nothing was uploaded yet: PUT the bytes to upload_url first")
            asset["status"] = "confirmed"
            name = urllib.parse.quote(asset["filename"])
        broken.apply(request)
        with self.state.lock:
            return json_response(200, {"id": asset_id, "status": "confirmed", "size": asset["size"],
                                       "content_type": asset["content_type"],
                                       "url": f"{self.base_url}/assets/{asset_id}/{name}"})

    def _ep_get_asset(self, request: httpx.Request, request_id: str, *, asset_id: str, name: str) -> httpx.Response:
        with self.state.lock:
            asset = self.state.assets.get(asset_id)
        if asset is None or asset["status"] != "confirmed":
            raise HTTPError(404, "NOT_FOUND", "no such asset")
        data = b"" if request.method == "HEAD" else asset["data"]
        return httpx.Response(200, content=data, headers={"Content-Type": asset["content_type"],
                                                          "Content-Length": str(len(asset["data"]))})

    # -- downloads -------------------------------------------------------------------------------

    def _ep_get_file(self, request: httpx.Request, request_id: str, *, token: str, name: str) -> httpx.Response:
        if self.fault("expire"):
            raise HTTPError(410, "URL_EXPIRED", "this signed URL has expired")
        try:
            path = self.simulator.resolve_file(token, name)
        except ExpiredURLError as exc:
            raise HTTPError(403, "URL_EXPIRED", str(exc)) from None
        data = Path(path).read_bytes()
        headers = {"Content-Type": "video/mp4", "Accept-Ranges": "bytes", "Cache-Control": "private, max-age=3600",
                   "ETag": f'"{hashlib.sha256(data).hexdigest()[:32]}"'}
        status, body = 200, data
        rng = parse_range(request.headers.get("range"), len(data))
        if rng == "bad":
            raise HTTPError(416, "RANGE_NOT_SATISFIABLE", "the requested range is not satisfiable",
                            headers={"Content-Range": f"bytes */{len(data)}"})
        if isinstance(rng, tuple):
            start, end = rng
            status, body = 206, data[start:end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        headers["Content-Length"] = str(len(body))
        if request.method == "HEAD":
            return httpx.Response(status, headers=headers, content=b"")
        if len(body) > 1 and self.fault("truncate"):
            return httpx.Response(status, headers=headers,
                                  stream=TruncatedStream(body[: len(body) // 2], len(body), request))
        return httpx.Response(status, headers=headers, content=body)
