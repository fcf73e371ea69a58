"""Routes for bytes: asset uploads (create, PUT, confirm), uploaded assets, and video downloads."""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import httpx

from ..errors import ExpiredURLError, Issue
from ..simulator.engine import ORG_ID, iso_utc
from .base import EmulatorBase
from .faults import TruncatedStream
from .wire import HTTPError, invalid, json_body, json_response, parse_range

__all__ = ["ASSET_TYPES", "MAX_ASSET_BYTES", "AssetRoutes"]

MAX_ASSET_BYTES = 50 * 1024 * 1024  # 52428800, the documented size_bytes maximum
#: Supported upload types (``GET /v1/assets/types``): MIME type → file extensions.
ASSET_TYPES: dict[str, tuple[str, ...]] = {
    "image/png": (".png",), "image/jpeg": (".jpg", ".jpeg"), "image/webp": (".webp",), "image/bmp": (".bmp",),
    "video/mp4": (".mp4",), "video/quicktime": (".mov",), "audio/mpeg": (".mp3",), "audio/wav": (".wav",),
}


class AssetRoutes(EmulatorBase):
    """``POST /v1/asset-uploads`` → 201 ``{asset_id, upload_url}``; ``PUT upload_url`` (no auth, the
    declared Content-Type; 403 once expired); ``POST /v1/asset-uploads/{id}/confirmations`` → 201 the
    Asset record with a signed ``url``; ``GET /v1/assets/{id}`` (a fresh ``url``);
    ``GET /v1/assets/types``; the signed ``GET /assets/...`` URLs; video downloads ``GET /files/...``."""

    upload_url_ttl_s = 3600.0
    asset_url_ttl_s = 24 * 3600.0

    def _sig(self, *parts: object) -> str:
        msg = ":".join(str(p) for p in parts).encode()
        return hmac.new(self.state.secret, msg, hashlib.sha256).hexdigest()[:32]

    def _asset_url(self, asset_id: str, asset: dict[str, Any]) -> str:
        """A signed, expiring GET URL for a confirmed asset (re-minted by ``GET /v1/assets/{id}``)."""
        expires = int(time.time() + self.asset_url_ttl_s)
        name = urllib.parse.quote(asset["filename"])
        return (f"{self.base_url}/assets/{asset_id}/{name}?expires={expires}"
                f"&signature={self._sig('get', asset_id, expires)}")

    def _asset_record(self, asset_id: str, asset: dict[str, Any]) -> dict[str, Any]:
        return {"id": asset_id, "name": asset["filename"], "url": self._asset_url(asset_id, asset),
                "thumbnail_url": None, "mime_type": asset["mime_type"], "size_bytes": asset["size_bytes"],
                "asset_type": asset["mime_type"].split("/")[0], "folder_id": asset.get("folder_id"),
                "org_id": ORG_ID, "created_at": iso_utc(asset["created"])}

    def _ep_asset_types(self, request: httpx.Request, request_id: str) -> httpx.Response:
        return json_response(200, {"items": [{"mime_type": m, "asset_type": m.split("/")[0],
                                              "extensions": list(ext), "max_size_bytes": MAX_ASSET_BYTES}
                                             for m, ext in ASSET_TYPES.items()]})

    def _ep_create_upload(self, request: httpx.Request, request_id: str) -> httpx.Response:
        broken = self.create_fault()
        body = json_body(request)
        filename, mime_type, size = body.get("filename"), body.get("mime_type"), body.get("size_bytes")
        issues = []
        if not isinstance(filename, str) or not 1 <= len(filename) <= 500:
            issues.append(Issue("filename", "must be a file name of 1–500 characters", "send e.g. reference1.png"))
        if not isinstance(mime_type, str) or mime_type.lower() not in ASSET_TYPES:
            issues.append(Issue("mime_type", f"{mime_type!r} is not a supported type",
                                f"send one of {', '.join(ASSET_TYPES)} (GET /v1/assets/types)"))
        if type(size) is not int or not 1 <= size <= MAX_ASSET_BYTES:
            issues.append(Issue("size_bytes", f"must be a whole number of bytes, 1–{MAX_ASSET_BYTES} (50 MiB)",
                                "send the file's exact size"))
        if issues:
            raise invalid(issues)
        asset_id = str(uuid.uuid4())
        expires = int(time.time() + self.upload_url_ttl_s)
        with self.state.lock:
            self.state.assets[asset_id] = {"filename": filename, "mime_type": str(mime_type).lower(),
                                           "size_bytes": size, "data": None, "status": "pending",
                                           "created": time.time()}
        broken.apply(request)
        return json_response(201, {
            "asset_id": asset_id,
            "upload_url": f"{self.base_url}/uploads/{asset_id}?expires={expires}"
                          f"&signature={self._sig('put', asset_id, expires)}"})

    def _ep_put_upload(self, request: httpx.Request, request_id: str, *, asset_id: str) -> httpx.Response:
        params = request.url.params
        sig, expires_text = params.get("signature", ""), params.get("expires", "")
        expires = int(expires_text) if expires_text.isdigit() else -1
        with self.state.lock:
            asset = self.state.assets.get(asset_id)
            if asset is None or not hmac.compare_digest(sig, self._sig("put", asset_id, expires)):
                raise HTTPError(403, "FORBIDDEN", "the upload URL is not valid")
            if time.time() >= expires:
                raise HTTPError(403, "FORBIDDEN", "the upload URL has expired: start the upload again")
            sent_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if sent_type != asset["mime_type"]:
                raise HTTPError(403, "FORBIDDEN", f"the upload was declared as {asset['mime_type']}; "
                                                  f"send that Content-Type (got {sent_type or 'none'})")
            data = request.content
            if len(data) != asset["size_bytes"]:
                raise HTTPError(400, "SIZE_MISMATCH", f"declared {asset['size_bytes']} bytes, received {len(data)}")
            asset["data"], asset["status"] = data, "uploaded"
        return httpx.Response(200, headers={"ETag": f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'})

    def _ep_confirm_upload(self, request: httpx.Request, request_id: str, *, asset_id: str) -> httpx.Response:
        broken = self.create_fault()
        body = json_body(request) if request.content else {}
        folder = body.get("folder_id")
        if folder is not None and not isinstance(folder, str):
            raise invalid([Issue("folder_id", "must be a folder id or null", "send null")])
        with self.state.lock:
            asset = self.state.assets.get(asset_id)
            if asset is None:
                raise HTTPError(404, "NOT_FOUND", f"no upload with id {asset_id!r}")
            if asset["data"] is None:
                raise HTTPError(409, "CONFLICT", "nothing was uploaded yet: PUT the bytes to upload_url first")
            asset["status"], asset["folder_id"] = "confirmed", folder
            record = self._asset_record(asset_id, asset)
        broken.apply(request)
        return json_response(201, record)

    def _ep_asset_record(self, request: httpx.Request, request_id: str, *, asset_id: str) -> httpx.Response:
        with self.state.lock:
            asset = self.state.assets.get(asset_id)
            if asset is None or asset["status"] != "confirmed":
                raise HTTPError(404, "NOT_FOUND", "no such asset")
            return json_response(200, self._asset_record(asset_id, asset))

    def asset_from_url(self, path: str, params: httpx.QueryParams) -> dict[str, Any] | str:
        """The confirmed asset a signed ``/assets/{id}/{name}`` URL names, or why it cannot be read."""
        parts = path.split("/")
        asset_id = parts[2] if len(parts) > 2 else ""
        expires_text = params.get("expires", "")
        expires = int(expires_text) if expires_text.isdigit() else -1
        with self.state.lock:
            asset = self.state.assets.get(asset_id)
        if asset is None or asset["status"] != "confirmed":
            return "is not a confirmed upload of this server"
        if not hmac.compare_digest(params.get("signature", ""), self._sig("get", asset_id, expires)):
            return "is not a signed asset URL of this server"
        if time.time() >= expires:
            return "is an asset URL that has expired (GET /v1/assets/{id} re-mints it)"
        return asset

    def _ep_get_asset(self, request: httpx.Request, request_id: str, *, asset_id: str, name: str) -> httpx.Response:
        got = self.asset_from_url(request.url.path, request.url.params)
        if isinstance(got, str):
            raise HTTPError(403 if "signed" in got or "expired" in got else 404, "FORBIDDEN", f"this URL {got}")
        data = b"" if request.method == "HEAD" else got["data"]
        return httpx.Response(200, content=data, headers={"Content-Type": got["mime_type"],
                                                          "Content-Length": str(len(got["data"]))})

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
