"""Reference images on the emulator's side: data: URIs, confirmed uploads and fetched URLs, decoded
under the model page's image rule (:class:`.rules.ImageRule`), with offline placeholders."""

from __future__ import annotations

import base64
import binascii
import collections
import concurrent.futures
import functools
import hashlib
import io
import logging
import re
import threading
import urllib.parse
from typing import TYPE_CHECKING, Any

import httpx

from ..errors import Issue
from .rules import ImageRule
from .wire import HTTPError

if TYPE_CHECKING:
    from PIL import Image

    from .base import EmulatorBase

__all__ = ["FETCH_TIMEOUT_S", "decode_image", "resolve_images"]

log = logging.getLogger("runflow_nb.emulator")

EXAMPLE_HOST = re.compile(r"(^|\.)(example\.(com|net|org)|example|test|invalid)$", re.I)
FETCH_TIMEOUT_S = 3.0


def resolve_images(emu: EmulatorBase, urls: list[Any], request: httpx.Request, rules: ImageRule
                   ) -> tuple[list[Image.Image], list[Issue], list[str]]:
    """Fetch and decode every image (remote ones in parallel); gather every problem."""
    local = {urllib.parse.urlsplit(emu.base_url).netloc.lower(), request.url.netloc.decode("ascii").lower()}
    jobs = [functools.partial(_load_image, emu, u, i, local, rules) for i, u in enumerate(urls)]
    remote = sum(1 for u in urls if isinstance(u, str) and u.lower().startswith(("http://", "https://")))
    if remote > 1:
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(len(jobs), 9)) as pool:
            results = list(pool.map(lambda job: job(), jobs))
    else:
        results = [job() for job in jobs]
    images: list[Image.Image] = []
    issues: list[Issue] = []
    notes: list[str] = []
    for got, note in results:
        if isinstance(got, list):
            issues += got
        else:
            images.append(got)
        if note:
            notes.append(note)
            emu.state.count("placeholders")
            log.warning("emulator: %s", note)
    return images, issues, notes


def _load_image(emu: EmulatorBase, value: Any, index: int, local: set[str], rules: ImageRule
                ) -> tuple[Image.Image | list[Issue], str | None]:
    where = rules.field if rules.single else f"{rules.field}[{index}]"
    if not isinstance(value, str):
        return [Issue(where, f"must be a URL string, got {type(value).__name__}",
                      "send an http(s) URL, a data: URI or an uploaded asset URL")], None
    url = value.strip()
    if url[:5].lower() == "data:":
        got = _data_uri_bytes(url, where, rules.max_bytes)
        return (got if isinstance(got, list) else decode_image(got, where, rules)), None
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return [Issue(where, "is not an http(s) URL, a data: URI or an uploaded asset URL",
                      "send a full http(s) URL")], None
    if parts.netloc.lower() in local and parts.path.startswith("/assets/"):
        asset = emu.asset_from_url(parts.path, httpx.QueryParams(parts.query))
        if isinstance(asset, str):
            return [Issue(where, asset, "upload it (PUT the bytes to upload_url, then POST "
                                      "/v1/asset-uploads/{id}/confirmations) and send the record's url")], None
        return decode_image(asset["data"], where, rules), None
    reason: str | None = None
    if EXAMPLE_HOST.search(parts.hostname or ""):
        reason = "a reserved example host, never fetched"
    else:
        try:
            data = _fetch(url, rules.max_bytes, emu.fetch_timeout_s)
        except httpx.HTTPError as exc:
            reason = f"{type(exc).__name__}: {exc}"[:200]
        except HTTPError as exc:
            return [Issue(where, exc.message, "use a URL that answers with the image")], None
        else:
            return decode_image(data, where, rules), None
    if emu.offline_images == "placeholder":
        note = f"{where}: {url[:200]} could not be fetched ({reason}); a 1280×720 placeholder image was used"
        return _placeholder(url), note
    return [Issue(where, f"could not be fetched ({reason})",
                  "use a reachable URL, a data: URI or an uploaded asset")], None


def _fetch(url: str, max_bytes: int, timeout_s: float) -> bytes:
    with httpx.Client(timeout=timeout_s, follow_redirects=True, trust_env=False) as client, \
            client.stream("GET", url) as resp:
        if resp.status_code >= 400:
            raise HTTPError(422, "", f"could not be fetched: the server answered HTTP {resp.status_code}")
        buf = bytearray()
        for chunk in resp.iter_bytes():
            buf += chunk
            if len(buf) > max_bytes:
                break
        return bytes(buf)


def _data_uri_bytes(uri: str, where: str, max_bytes: int) -> bytes | list[Issue]:
    head, sep, payload = uri[5:].partition(",")
    if not sep:
        return [Issue(where, "is not a valid data: URI", "use data:image/png;base64,<data>")]
    if len(payload) > 2 * max_bytes:  # clearly too big: don't even decode it
        return [Issue(where, f"is about {len(payload) * 3 / 4 / 1e6:.1f} MB; the limit is "
                             f"{max_bytes / 1e6:g} MB ({max_bytes:,} bytes)", "re-encode it as JPEG or scale it down")]
    if head.lower().endswith(";base64"):
        try:
            return base64.b64decode("".join(payload.split()), validate=True)
        except (binascii.Error, ValueError):
            return [Issue(where, "is not valid base64", "encode the image bytes with standard base64")]
    return urllib.parse.unquote_to_bytes(payload)


_DECODED: collections.OrderedDict[tuple[str, ImageRule], Image.Image] = collections.OrderedDict()
_DECODED_LOCK = threading.Lock()


def decode_image(data: bytes, where: str, rules: ImageRule) -> Image.Image | list[Issue]:
    """:func:`_decode_image_uncached`, remembering the last few good images: a sweep sends the same
    references with every run, and decoding them each time made every submit slower."""
    key = (hashlib.sha256(data).hexdigest(), rules)
    with _DECODED_LOCK:
        hit = _DECODED.get(key)
        if hit is not None:
            _DECODED.move_to_end(key)
            return hit
    got = _decode_image_uncached(data, where, rules)
    if not isinstance(got, list):
        with _DECODED_LOCK:
            _DECODED[key] = got
            while len(_DECODED) > 16:
                _DECODED.popitem(last=False)
    return got


def _decode_image_uncached(data: bytes, where: str, rules: ImageRule) -> Image.Image | list[Issue]:
    """Decode with Pillow under the page's image rule."""
    from PIL import Image, UnidentifiedImageError

    if len(data) > rules.max_bytes:
        return [Issue(where, rules.size_issue_text(len(data)),
                      "re-encode it as JPEG or scale it down")]
    limit = rules.max_pixels  # a decompression-bomb cap (below Pillow's own threshold)
    try:
        img = Image.open(io.BytesIO(data))
        fmt = (img.format or "").upper()
        width, height = img.size
        if width * height > limit:
            raise Image.DecompressionBombError(f"{width}x{height} pixels")
        if fmt in rules.formats:
            img.load()
    except Image.DecompressionBombError as exc:
        return [Issue(where, f"has too many pixels to be a reference image ({exc})",
                      "scale it down to a normal photo size")]
    except UnidentifiedImageError:
        return [Issue(where, "is not an image Pillow can read", f"use a {'/'.join(rules.formats)} file")]
    except (OSError, SyntaxError, ValueError) as exc:
        return [Issue(where, f"is a damaged or truncated image ({exc})", "re-export the image")]
    if fmt not in rules.formats:
        return [Issue(where, f"is {fmt or 'an unknown format'}; accepted formats are {', '.join(rules.formats)}",
                      "convert it to PNG or JPEG")]
    if min(width, height) < rules.min_short_side:
        return [Issue(where, f"is {width}×{height}; the shortest side must be at least {rules.min_short_side} px",
                      "use a larger image (720 px or more is advised)")]
    aspect = rules.aspect_problem(width, height)
    if aspect:
        return [Issue(where, aspect, "crop it to a less extreme shape")]
    return img


@functools.lru_cache(maxsize=32)
def _placeholder_image(url: str) -> Image.Image:
    from PIL import Image, ImageDraw

    digest = hashlib.sha256(url.encode()).digest()
    bg = (40 + digest[0] % 120, 40 + digest[1] % 120, 40 + digest[2] % 120)
    img = Image.new("RGB", (1280, 720), bg)
    draw = ImageDraw.Draw(img)
    fg = (255 - bg[0] // 2, 255 - bg[1] // 2, 255 - bg[2] // 2)
    for k in range(6):
        x, y, r = digest[3 + k] * 5, digest[9 + k] * 2 + 100, 40 + digest[15 + k] % 120
        draw.ellipse((x - r, y - r, x + r, y + r), outline=fg, width=6)
    name = urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1][:60] or url[:60]
    draw.text((40, 640), f"PLACEHOLDER for {name} (not fetched: offline)", fill=fg)
    return img


def _placeholder(url: str) -> Image.Image:
    return _placeholder_image(url).copy()
