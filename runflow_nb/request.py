"""The validated request: every documented limit checked before anything is sent.

>>> req = VideoRequest.build(prompt="character1 waves", images=["horse.png"], duration=5,
...                          resolution="720p", seed=7)            # doctest: +SKIP
>>> req.estimate_usd()                                              # doctest: +SKIP
0.7

:meth:`VideoRequest.build` gathers every problem (bad fields, unreadable images, dangling
``characterN`` tags) into one :class:`~runflow_nb.errors.ValidationError` that names each field
and says how to fix it. References may be local paths, PIL images, raw bytes or http(s) URLs;
local ones are decoded with Pillow (the format is what the bytes say, not the file name) and
hashed, so a run key can name exactly which pixels went in.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import json
import numbers
import os
import random
import re
import stat
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from .errors import Issue, ValidationError
from .specs import REFERENCE_TO_VIDEO, FieldSpec, ModelSpec

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["INLINE_LIMIT_BYTES", "Reference", "VideoRequest", "load_reference"]

# Local images are sent inline as data: URIs when the URI is under 1 MiB (documented); larger ones
# go through the asset-upload flow.
INLINE_LIMIT_BYTES = 1024 * 1024

_FORMAT_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


@dataclass(frozen=True)
class Reference:
    """One reference image, loaded and checked.

    ``data`` holds the encoded bytes of a local image (None for a URL); ``sha256`` identifies
    the pixels that were sent (for a URL: a hash of the URL itself, since the bytes live remotely).
    """

    kind: Literal["path", "pil", "bytes", "url"]
    display: str
    sha256: str
    data: bytes | None = field(default=None, repr=False)
    format: str | None = None
    width: int | None = None
    height: int | None = None

    @property
    def size_bytes(self) -> int | None:
        return len(self.data) if self.data is not None else None

    @property
    def url(self) -> str | None:
        return self.display if self.kind == "url" else None

    def data_uri(self) -> str:
        assert self.data is not None and self.format is not None
        return f"data:{_FORMAT_MIME[self.format]};base64,{base64.b64encode(self.data).decode('ascii')}"

    @property
    def mime(self) -> str | None:
        return _FORMAT_MIME.get(self.format or "")


def _decode_checked(data: bytes, where: str, spec: ModelSpec) -> tuple[str, int, int] | list[Issue]:
    """Decode ``data`` fully with Pillow; return (format, width, height) or the issues found."""
    from PIL import Image, UnidentifiedImageError

    rules = spec.images
    issues: list[Issue] = []
    if len(data) > rules.max_bytes:
        issues.append(Issue(where, f"is {len(data) / 1e6:.1f} MB; the limit is {rules.max_bytes // 2**20} MB",
                            "re-encode it as JPEG or scale it down"))
        return issues
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                fmt = (img.format or "").upper()
                width, height = img.size
                if width * height > rules.max_pixels:
                    raise Image.DecompressionBombError(f"{width}x{height} pixels")
                if fmt in rules.formats:
                    img.load()  # a truncated or corrupt file fails here, not on the server
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return [Issue(where, f"has too many pixels to be a reference image ({exc})",
                      "scale it down to a normal photo size")]
    except UnidentifiedImageError:
        return [Issue(where, "is not an image Pillow can read",
                      f"use a {'/'.join(rules.formats)} file")]
    except (OSError, SyntaxError, ValueError) as exc:
        return [Issue(where, f"is a damaged or truncated image ({exc})", "re-export the image")]
    if fmt not in rules.formats:
        return [Issue(where, f"is {fmt or 'an unknown format'}; accepted formats are JPEG, PNG and WEBP",
                      "convert it, e.g. PIL.Image.open(p).convert('RGB').save('x.png')")]
    if min(width, height) < rules.min_short_side:
        issues.append(Issue(where, f"is {width}×{height}; the shortest side must be at least "
                                   f"{rules.min_short_side} px", "use a larger image (720 px or more is advised)"))
    return issues or (fmt, width, height)


def _encode_pil(img: Image.Image, spec: ModelSpec) -> bytes:
    buf = io.BytesIO()
    if img.mode not in ("RGB", "RGBA", "L", "LA"):
        img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
    img.save(buf, format="PNG", optimize=False)
    if buf.tell() > spec.images.max_bytes:  # a huge PNG: JPEG keeps it under the limit
        buf = io.BytesIO()
        img.convert("RGB").save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def load_reference(obj: Any, *, index: int = 0, spec: ModelSpec = REFERENCE_TO_VIDEO) -> Reference | list[Issue]:
    """Load one reference (path, PIL image, bytes or http(s) URL) or return why it can't be used."""
    where = f"{spec.images.field}[{index}]"
    try:
        return _load_reference(obj, where, spec)
    except (ValueError, UnicodeError, RuntimeError, OSError) as exc:  # NUL bytes, surrogates, ~nouser, bad IPv6
        return [Issue(where, f"cannot be used as a reference ({type(exc).__name__}: {str(exc)[:120]})",
                      "pass a plain file path, image bytes, a PIL image or an http(s) URL")]


def _load_reference(obj: Any, where: str, spec: ModelSpec) -> Reference | list[Issue]:
    if isinstance(obj, Reference):
        return obj
    if isinstance(obj, (bytes, bytearray, memoryview)):
        data = bytes(obj)
        checked = _decode_checked(data, where, spec)
        if isinstance(checked, list):
            return checked
        fmt, w, h = checked
        digest = hashlib.sha256(data).hexdigest()
        return Reference("bytes", f"<{fmt} bytes {w}x{h} {digest[:12]}>", digest, data, fmt, w, h)
    if _is_pil(obj):
        w, h = obj.size
        if min(w, h) < spec.images.min_short_side:
            return [Issue(where, f"is {w}×{h}; the shortest side must be at least {spec.images.min_short_side} px",
                          "use a larger image (720 px or more is advised)")]
        data = _encode_pil(obj, spec)
        checked = _decode_checked(data, where, spec)
        if isinstance(checked, list):
            return checked
        fmt, w, h = checked
        digest = hashlib.sha256(data).hexdigest()
        return Reference("pil", f"<PIL image {w}x{h} {digest[:12]}>", digest, data, fmt, w, h)
    if isinstance(obj, str) and obj.strip().lower().startswith(("http://", "https://")):
        url = obj.strip()
        parts = urlsplit(url)
        if not parts.netloc:
            return [Issue(where, f"{url!r} is not a complete URL", "give a full http(s) URL with a host")]
        if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
            return [Issue(where, "the URL contains spaces or control characters", "percent-encode the URL")]
        url.encode("utf-8")  # lone surrogates cannot be sent
        _ = parts.hostname, parts.port  # malformed hosts and ports raise ValueError here
        return Reference("url", url, hashlib.sha256(url.encode()).hexdigest())
    if isinstance(obj, str) and obj.lower().startswith("data:"):
        return [Issue(where, "data: URIs are built by the toolkit", "pass the image bytes or a file path instead")]
    if isinstance(obj, str) and "://" in obj and not obj.lower().startswith("file://"):
        scheme = obj.split("://", 1)[0]
        return [Issue(where, f"the {scheme}:// scheme is not supported", "use a local path or an http(s) URL")]
    if isinstance(obj, (str, os.PathLike)):
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
            return [Issue(where, f"{str(path)!r} is a folder, not an image", "name an image file inside it")]
        if not stat.S_ISREG(st.st_mode):
            return [Issue(where, f"{str(path)!r} is not a regular file", "name an image file")]
        if st.st_size > spec.images.max_bytes:
            return [Issue(where, f"is {st.st_size / 1e6:.1f} MB; the limit is {spec.images.max_bytes // 2**20} MB",
                          "re-encode it as JPEG or scale it down")]
        try:
            data = path.read_bytes()
        except OSError as exc:
            return [Issue(where, f"cannot read {str(path)!r}: {exc.strerror or exc}", "check its permissions")]
        checked = _decode_checked(data, where, spec)
        if isinstance(checked, list):
            return checked
        fmt, w, h = checked
        return Reference("path", str(path), hashlib.sha256(data).hexdigest(), data, fmt, w, h)
    return [Issue(where, f"a {type(obj).__name__} is not a reference image",
                  "pass a file path, a PIL image, image bytes or an http(s) URL")]


def _is_pil(obj: Any) -> bool:
    mod = type(obj).__module__
    return mod.startswith("PIL.") and hasattr(obj, "size") and hasattr(obj, "save")


def _as_int(value: Any) -> Any:
    """Accept Python and NumPy integers (not bools); leave anything else for the error path."""
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    return value


def _input_model(spec: ModelSpec) -> type[Any]:
    """A strict pydantic model of the scalar inputs, generated from the spec (built once per model)."""
    return _input_model_for(spec.model)


@functools.cache
def _input_model_for(model: str) -> type[Any]:
    from .specs import get_spec

    spec = get_spec(model)
    from typing import Annotated

    from pydantic import ConfigDict, Field, Strict, create_model

    fields: dict[str, Any] = {}
    for f in spec.fields:
        ann: Any
        if f.choices is not None:
            ann = Literal[f.choices]
        elif f.type is int:
            ann = Annotated[int, Strict(), Field(ge=f.minimum, le=f.maximum)]
        elif f.type is str:
            ann = Annotated[str, Strict(), Field(max_length=f.max_length)]
        else:
            ann = Annotated[f.type, Strict()]
        fields[f.name] = (ann, ...) if f.required else (ann | None, None)
    name = "".join(p.title() for p in re.split(r"[^a-z0-9]+", spec.short_path)) + "Input"
    return create_model(name, __config__=ConfigDict(extra="ignore"), **fields)


def _issue_for(f: FieldSpec, err: dict[str, Any]) -> Issue | None:
    """Turn one pydantic error into a message that names the field and the fix."""
    kind, value = err["type"], err.get("input")
    if kind == "missing":
        return Issue(f.name, "is required", f"pass {f.name}=...")
    if f.choices is not None:
        hint = f" (did you mean {value.lower()!r}?)" if isinstance(value, str) and value.lower() in f.choices else ""
        return Issue(f.name, f"{value!r} is not allowed{hint}", "use one of " + ", ".join(map(repr, f.choices)))
    if f.type is int:
        if kind in ("greater_than_equal", "less_than_equal"):
            return Issue(f.name, f"{value} is out of range", f"use {f.minimum}–{f.maximum}")
        return Issue(f.name, f"must be a whole number, got {value!r}", f"use an int between {f.minimum} and {f.maximum}")
    if f.type is bool:
        return Issue(f.name, f"must be True or False, got {value!r}", "pass a bool")
    if kind == "string_unicode" and isinstance(value, str):
        return None  # reported once, with its fix, by the UTF-8 check in _check_scalars
    if kind == "string_too_long" and isinstance(value, str):
        return Issue(f.name, f"is {len(value)} characters; the limit is {f.max_length}",
                     f"shorten it by {len(value) - (f.max_length or 0)} characters")
    return Issue(f.name, f"must be text, got {type(value).__name__}", "pass a str")


def _check_scalars(spec: ModelSpec, values: dict[str, Any]) -> list[Issue]:
    from pydantic import ValidationError as PydanticError

    issues: list[Issue] = []
    try:
        _input_model(spec).model_validate({k: v for k, v in values.items() if v is not None})
    except PydanticError as exc:
        for err in exc.errors():
            issue = _issue_for(spec.field(str(err["loc"][0])), dict(err))
            if issue is not None:
                issues.append(issue)
    prompt = values.get("prompt")
    if isinstance(prompt, str):
        if not prompt.strip():
            issues.append(Issue("prompt", "is empty", "describe the clip"))
        try:
            prompt.encode("utf-8")
        except UnicodeEncodeError:
            issues.append(Issue("prompt", "contains characters that are not valid UTF-8 (lone surrogates)",
                                "remove or replace them"))
    return issues


@dataclass(frozen=True)
class VideoRequest:
    """A request that passed every documented check. Build it with :meth:`build`.

    >>> from PIL import Image
    >>> img = Image.new("RGB", (800, 600), "white")
    >>> req = VideoRequest.build(prompt="character1 gallops", images=[img], resolution="720p", seed=1)
    >>> req.duration, req.estimate_usd()
    (5, 0.7)
    """

    prompt: str
    images: tuple[Reference, ...]
    aspect_ratio: str = "16:9"
    duration: int = 5
    resolution: str = "1080p"
    seed: int | None = None
    enable_safety_checker: bool = True
    model: str = REFERENCE_TO_VIDEO.model

    @classmethod
    def build(
        cls,
        *,
        prompt: Any = None,
        images: Any = None,
        aspect_ratio: Any = None,
        duration: Any = None,
        resolution: Any = None,
        seed: Any = None,
        enable_safety_checker: Any = None,
        spec: ModelSpec = REFERENCE_TO_VIDEO,
    ) -> VideoRequest:
        """Check everything, load every reference, and raise one error listing every problem."""
        d = spec.defaults
        values = {
            "prompt": prompt,
            "aspect_ratio": d["aspect_ratio"] if aspect_ratio is None else aspect_ratio,
            "duration": d["duration"] if duration is None else _as_int(duration),
            "resolution": d["resolution"] if resolution is None else resolution,
            "seed": None if seed is None else _as_int(seed),
            "enable_safety_checker": d["enable_safety_checker"] if enable_safety_checker is None
            else enable_safety_checker,
        }
        issues = _check_scalars(spec, values)
        if _is_sequence(images):
            images = list(images)  # a generator is read once
        refs, image_issues = cls._load_images(images, spec)
        issues += image_issues
        if isinstance(prompt, str) and images is not None:
            n_given = len(images) if isinstance(images, list) else 1
            for n in sorted(set(spec.character_refs(prompt))):
                if n < 1 or n > spec.images.max_count:
                    issues.append(Issue("prompt", f"names character{n}; tags run from character1 to "
                                                  f"character{spec.images.max_count}",
                                        "renumber the tag to match an image"))
                elif n > n_given:
                    issues.append(Issue("prompt", f"names character{n} but only {n_given} image"
                                                  f"{'s are' if n_given != 1 else ' is'} given",
                                        f"add a {_ordinal(n)} reference image or change the tag"))
        if issues:
            raise ValidationError(issues)
        return cls(prompt=values["prompt"], images=tuple(refs), aspect_ratio=values["aspect_ratio"],
                   duration=values["duration"], resolution=values["resolution"], seed=values["seed"],
                   enable_safety_checker=values["enable_safety_checker"], model=spec.model)

    @staticmethod
    def _load_images(images: Any, spec: ModelSpec) -> tuple[list[Reference], list[Issue]]:
        rules = spec.images
        name = rules.field
        if images is None:
            return [], [Issue(name, "at least one reference image is required", "pass images=[path, ...]")]
        items = list(images) if _is_sequence(images) else [images]
        issues: list[Issue] = []
        if len(items) < rules.min_count:
            issues.append(Issue(name, f"got {len(items)} images; at least {rules.min_count} is required",
                                "pass images=[path, ...]"))
        if len(items) > rules.max_count:
            issues.append(Issue(name, f"got {len(items)} images; at most {rules.max_count} are allowed",
                                f"drop {len(items) - rules.max_count} of them"))
        refs: list[Reference] = []
        for i, item in enumerate(items[: rules.max_count]):
            got = load_reference(item, index=i, spec=spec)
            if isinstance(got, list):
                issues += got
            else:
                refs.append(got)
        return refs, issues

    # -- derived views ---------------------------------------------------------------------

    @property
    def spec(self) -> ModelSpec:
        from .specs import get_spec

        return get_spec(self.model)

    def estimate_usd(self) -> float:
        """Price of this run from the published table ($0.14/s at 720p, $0.28/s at 1080p)."""
        return self.spec.price_usd(duration=self.duration, resolution=self.resolution)

    def with_seed(self, seed: int | None = None) -> VideoRequest:
        """A copy with ``seed`` set; with no argument, a fresh random seed (so the run is reproducible)."""
        if seed is None:
            seed = random.SystemRandom().randrange(0, 2**31)
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= int(seed) <= 2147483647:
            raise ValidationError([Issue("seed", f"{seed!r} is out of range", "use 0–2147483647")])
        return replace(self, seed=int(seed))

    def params(self) -> dict[str, Any]:
        """Every scalar input as it will be sent (images excluded)."""
        return {
            "aspect_ratio": self.aspect_ratio,
            "duration": self.duration,
            "resolution": self.resolution,
            "seed": self.seed,
            "enable_safety_checker": self.enable_safety_checker,
        }

    def canonical(self) -> dict[str, Any]:
        """What identifies a run: model, prompt, every parameter and the hash of each image."""
        return {"model": self.model, "prompt": self.prompt, **self.params(),
                "image_sha256": [r.sha256 for r in self.images]}

    def run_key(self) -> str:
        """Stable hash of :meth:`canonical`; the same inputs and seed give the same key."""
        blob = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def image_displays(self) -> list[str]:
        return [r.display for r in self.images]

    def to_input(self, image_urls: Sequence[str] | None = None) -> dict[str, Any]:
        """The API's ``input`` object. Local images become data: URIs unless ``image_urls`` is given
        (the client passes uploaded asset URLs for images too large to inline)."""
        urls = list(image_urls) if image_urls is not None else [r.url or r.data_uri() for r in self.images]
        body: dict[str, Any] = {"prompt": self.prompt, "image_urls": urls, **self.params()}
        if body["seed"] is None:
            del body["seed"]
        return body

    def needs_upload(self, ref: Reference) -> bool:
        """True when a local image is too big to send inline as a data: URI."""
        if ref.data is None:
            return False
        return len(ref.data) * 4 // 3 + 64 >= INLINE_LIMIT_BYTES

    def to_code(self) -> str:
        """Python that rebuilds this request (local images by path or display name)."""
        imgs = ", ".join(repr(r.display) for r in self.images)
        return (
            "import runflow_nb as rf\n"
            "client = rf.Client()\n"
            f"result = client.generate(\n    prompt={self.prompt!r},\n    images=[{imgs}],\n"
            f"    aspect_ratio={self.aspect_ratio!r},\n    duration={self.duration!r},\n"
            f"    resolution={self.resolution!r},\n    seed={self.seed!r},\n"
            f"    enable_safety_checker={self.enable_safety_checker!r},\n)\n"
        )

    def __repr__(self) -> str:
        prompt = self.prompt if len(self.prompt) <= 60 else self.prompt[:57] + "..."
        return (f"VideoRequest(prompt={prompt!r}, images={len(self.images)}, aspect_ratio={self.aspect_ratio!r}, "
                f"duration={self.duration}, resolution={self.resolution!r}, seed={self.seed}, "
                f"estimate=${self.estimate_usd():.2f})")


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _is_sequence(obj: Any) -> bool:
    return isinstance(obj, Iterable) and not isinstance(obj, (str, bytes, bytearray, memoryview, os.PathLike)) \
        and not _is_pil(obj)
