"""The validated request: every documented limit checked before anything is sent.

>>> req = VideoRequest.build(prompt="character1 waves", images=["horse.png"], duration=5,
...                          resolution="720p", seed=7)            # doctest: +SKIP
>>> req.estimate_usd()                                              # doctest: +SKIP
0.7

:meth:`VideoRequest.build` gathers every problem (bad fields, unreadable images, dangling
``characterN`` tags) into one :class:`~runflow_nb.errors.ValidationError` that names each field
and says how to fix it. References may be local paths, PIL images, numpy arrays, raw bytes or http(s) URLs;
local ones are decoded with Pillow (the format is what the bytes say, not the file name) and
hashed, so a run key can name exactly which pixels went in.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import numbers
import os
import random
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from ._prompt_rules import prompt_issues, tag_issues
from ._scalars import _as_int, _input_model
from ._sources import a_or_an, is_http_url, local_file, unsupported_scheme, url_issues
from .errors import Issue, ValidationError
from .media.video_input import VideoSource, billed_seconds, load_video
from .specs import REFERENCE_TO_VIDEO, FieldSpec, ImageRules, ModelSpec, get_spec

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["INLINE_LIMIT_BYTES", "Reference", "VideoRequest", "canonical_digest", "load_reference"]

# Local images are sent inline as data: URIs when the URI is under 1 MiB (documented); larger ones
# go through the asset-upload flow.
INLINE_LIMIT_BYTES = 1024 * 1024

_FORMAT_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "BMP": "image/bmp"}


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


def _rules(spec: ModelSpec) -> ImageRules:
    return spec.images


def _where(spec: ModelSpec, index: int) -> str:
    """The user's name for a reference (``images[0]``; ``image`` for a one-image model), not the wire's."""
    return "image" if _rules(spec).single else f"images[{index}]"


def _decode_checked(data: bytes, where: str, spec: ModelSpec) -> tuple[str, int, int] | list[Issue]:
    """Decode ``data`` fully with Pillow; return (format, width, height) or the issues found."""
    from PIL import Image, UnidentifiedImageError

    rules = _rules(spec)
    issues: list[Issue] = []
    if len(data) > rules.max_bytes:
        issues.append(Issue(where, rules.size_issue_text(len(data)), "re-encode it as JPEG or scale it down"))
        return issues
    try:
        with warnings.catch_warnings():
            # The cap is ours (rules.max_pixels, checked on the header below), not Pillow's warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                fmt = (img.format or "").upper()
                width, height = img.size
                if width * height > rules.max_pixels:
                    raise Image.DecompressionBombError(f"{width}x{height} pixels")
                if fmt in rules.formats:
                    img.load()  # a truncated or corrupt file fails here, not on the server
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return [Issue(where, f"has too many pixels to be a reference image ({exc}); the limit is "
                             f"{rules.max_pixels:,} pixels", "scale it down to a normal photo size")]
    except UnidentifiedImageError:
        return [Issue(where, "is not an image Pillow can read",
                      f"use a {'/'.join(rules.formats)} file")]
    except (OSError, SyntaxError, ValueError) as exc:
        return [Issue(where, f"is a damaged or truncated image ({exc})", "re-export the image")]
    if fmt not in rules.formats:
        return [Issue(where, f"is {fmt or 'an unknown format'}; accepted formats are {_formats_text(rules.formats)}",
                      "convert it, e.g. PIL.Image.open(p).convert('RGB').save('x.png')")]
    return _geometry_issues(width, height, where, rules) or (fmt, width, height)


def _geometry_issues(width: int, height: int, where: str, rules: ImageRules) -> list[Issue]:
    issues = []
    if min(width, height) < rules.min_short_side:
        issues.append(Issue(where, f"is {width}×{height}; the shortest side must be at least "
                                   f"{rules.min_short_side} px", "use a larger image (720 px or more is advised)"))
    aspect = rules.aspect_problem(width, height)
    if aspect:
        issues.append(Issue(where, aspect, "crop it to a less extreme shape"))
    return issues


def _formats_text(formats: Sequence[str]) -> str:
    return ", ".join(formats[:-1]) + f" and {formats[-1]}" if len(formats) > 1 else formats[0]


def _encode_pil(img: Image.Image, spec: ModelSpec) -> bytes:
    buf = io.BytesIO()
    if img.mode not in ("RGB", "RGBA", "L", "LA"):
        img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
    img.save(buf, format="PNG", optimize=False)
    if buf.tell() > _rules(spec).max_bytes:  # a huge PNG: JPEG keeps it under the limit
        buf = io.BytesIO()
        img.convert("RGB").save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def load_reference(obj: Any, *, index: int = 0, spec: ModelSpec = REFERENCE_TO_VIDEO) -> Reference | list[Issue]:
    """Load one reference (path, PIL image, bytes or http(s) URL) or return why it can't be used."""
    where = _where(spec, index)
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
    if _is_ndarray(obj):  # pixels in memory: encoded like a PIL image, so its key follows its pixels
        from PIL import Image

        try:
            obj = Image.fromarray(obj)
        except (TypeError, ValueError) as exc:
            return [Issue(where, f"a numpy array of shape {obj.shape} and dtype {obj.dtype} is not an image ({exc})",
                          "pass an H×W or H×W×3 (or ×4) uint8 array, or a PIL image")]
    if _is_pil(obj):
        w, h = obj.size
        early = _geometry_issues(w, h, where, _rules(spec))
        if early:
            return early
        data = _encode_pil(obj, spec)
        checked = _decode_checked(data, where, spec)
        if isinstance(checked, list):
            return checked
        fmt, w, h = checked
        digest = hashlib.sha256(data).hexdigest()
        return Reference("pil", f"<PIL image {w}x{h} {digest[:12]}>", digest, data, fmt, w, h)
    if is_http_url(obj):
        url = obj.strip()
        return url_issues(url, where) or Reference("url", url, hashlib.sha256(url.encode()).hexdigest())
    if isinstance(obj, str) and obj.lower().startswith("data:"):
        return [Issue(where, "data: URIs are built by the toolkit", "pass the image bytes or a file path instead")]
    bad_scheme = unsupported_scheme(obj, where)
    if bad_scheme:
        return bad_scheme
    if isinstance(obj, (str, os.PathLike)):
        found = local_file(obj, where=where, noun="image")
        if isinstance(found, list):
            return found
        path, size = found
        if size > _rules(spec).max_bytes:
            return [Issue(where, _rules(spec).size_issue_text(size), "re-encode it as JPEG or scale it down")]
        try:
            data = path.read_bytes()
        except OSError as exc:
            return [Issue(where, f"cannot read {str(path)!r}: {exc.strerror or exc}", "check its permissions")]
        checked = _decode_checked(data, where, spec)
        if isinstance(checked, list):
            return checked
        fmt, w, h = checked
        return Reference("path", str(path), hashlib.sha256(data).hexdigest(), data, fmt, w, h)
    return [Issue(where, f"{a_or_an(type(obj).__name__)} is not a reference image",
                  "pass a file path, a PIL image, image bytes or an http(s) URL")]


def _is_ndarray(obj: Any) -> bool:
    """A numpy array of pixels (H×W or H×W×C); numpy scalars such as ``np.str_`` paths are not."""
    return type(obj).__module__ == "numpy" and type(obj).__name__ == "ndarray" and getattr(obj, "ndim", 0) in (2, 3)


def _is_pil(obj: Any) -> bool:
    mod = type(obj).__module__
    return mod.startswith("PIL.") and hasattr(obj, "size") and hasattr(obj, "save")


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
        issues += prompt_issues(prompt)
    return issues


def canonical_digest(canonical: Mapping[str, Any]) -> str:
    """The run key of a request's :meth:`VideoRequest.canonical` form (also of one rebuilt from a stored
    run's record): SHA-256 of its sorted, compact JSON."""
    blob = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class VideoRequest:
    """A request that passed every documented check of its model. Build it with :meth:`build`.

    One class serves the whole family: fields a model does not take are None (text-to-video has
    no images, image-to-video no aspect ratio, video-edit a ``video`` instead of a duration).

    >>> from PIL import Image
    >>> img = Image.new("RGB", (800, 600), "white")
    >>> req = VideoRequest.build(prompt="character1 gallops", images=[img], resolution="720p", seed=1)
    >>> req.duration, req.estimate_usd()
    (5, 0.7)
    >>> VideoRequest.build(model="t2v", prompt="a horse on a beach", duration=3, resolution="720p").estimate_usd()
    0.42
    """

    prompt: str | None
    images: tuple[Reference, ...]
    aspect_ratio: str | None = "16:9"
    duration: int | None = 5
    resolution: str | None = "1080p"
    seed: int | None = None
    enable_safety_checker: bool | None = True
    model: str = REFERENCE_TO_VIDEO.model
    video: VideoSource | None = None
    audio_setting: str | None = None
    parent_run_id: str | None = None  # the run whose clip this one edits (lineage)

    @classmethod
    def build(
        cls,
        *,
        prompt: Any = None,
        images: Any = None,
        image: Any = None,
        video: Any = None,
        aspect_ratio: Any = None,
        duration: Any = None,
        resolution: Any = None,
        seed: Any = None,
        enable_safety_checker: Any = None,
        audio_setting: Any = None,
        model: str | ModelSpec | None = None,
        spec: ModelSpec | None = None,
        parent_run_id: str | None = None,
        video_duration_s: float | None = None,
        **unknown: Any,
    ) -> VideoRequest:
        """Check everything, load every reference, and raise one error listing every problem.

        ``model`` picks the family member (id, variant or alias: ``"t2v"``, ``"i2v"``,
        ``"edit"``); ``images`` are the references (image-to-video also takes ``image=``);
        ``video`` is video-edit's clip (a path or an http(s) URL; ``video_duration_s`` prices a
        URL whose length is known). An input the model does not take is refused by name, and so is
        a name no model takes (with the nearest one: ``durations`` → ``duration``).
        """
        if unknown:
            raise ValidationError([_unknown_input(name) for name in unknown])
        if spec is not None and not isinstance(spec, ModelSpec):
            raise ValidationError([Issue("spec", f"is {spec!r}, not a model spec", "name the model with model=, "
                                         "e.g. model='text-to-video'")])
        if model is not None and not isinstance(model, (str, ModelSpec)):
            raise ValidationError([Issue("model", f"is {model!r}", "name a model, e.g. model='text-to-video'")])
        if spec is None:
            try:
                spec = get_spec(model) if model is not None else REFERENCE_TO_VIDEO
            except KeyError as exc:
                raise ValidationError([Issue("model", str(exc.args[0]), "pick one of the known models")]) from None
        given = {"aspect_ratio": aspect_ratio, "duration": duration, "resolution": resolution, "seed": seed,
                 "enable_safety_checker": enable_safety_checker, "audio_setting": audio_setting}
        issues: list[Issue] = []
        for name, value in given.items():
            if value is not None and not spec.takes(name):
                issues.append(Issue(name, f"is not an input of {spec.variant}", _not_taken_fix(spec, name)))
        if image is not None and images is not None:
            issues.append(Issue("image", "pass either image= or images=, not both", "keep one of them"))
        images = image if image is not None else images
        if images is not None and not spec.has_images:
            issues.append(Issue("images", f"{spec.variant} takes no images",
                                "leave images out, or use image-to-video / reference-to-video"))
            images = None
        if video is not None and spec.video is None:
            issues.append(Issue("video", f"{spec.variant} takes no input video", "use model='video-edit'"))
        if isinstance(prompt, str) and not prompt.strip() and not spec.field("prompt").required:
            prompt = None  # an optional prompt left blank is no prompt
        values: dict[str, Any] = {"prompt": prompt}
        d = spec.defaults
        for name in spec.field_names:
            if name == "prompt":
                continue
            value = given.get(name)
            values[name] = d[name] if value is None else (_as_int(value) if spec.field(name).type is int else value)
        issues += _check_scalars(spec, values)
        if _is_sequence(images):
            images = list(images)  # a generator is read once
        refs: list[Reference] = []
        if spec.has_images:
            refs, image_issues = cls._load_images(images, spec)
            issues += image_issues
        issues += _tag_issues(spec, prompt, images)
        src: VideoSource | None = None
        if spec.video is not None:
            got = load_video(video, rules=spec.video, duration_s=video_duration_s)
            if isinstance(got, list):
                issues += got
            else:
                src = got
        if issues:
            raise ValidationError(issues)
        length = values.get("duration")
        if src is not None:
            length = billed_seconds(src.duration_s) if src.duration_s is not None else None
        return cls(prompt=values["prompt"], images=tuple(refs), aspect_ratio=values.get("aspect_ratio"),
                   duration=length, resolution=values.get("resolution"), seed=values.get("seed"),
                   enable_safety_checker=values.get("enable_safety_checker"), model=spec.model, video=src,
                   audio_setting=values.get("audio_setting"), parent_run_id=parent_run_id)

    @staticmethod
    def _load_images(images: Any, spec: ModelSpec) -> tuple[list[Reference], list[Issue]]:
        rules = _rules(spec)
        name = "image" if rules.single else "images"  # what the caller passed (the wire says image_url[s])
        what = "an image" if rules.single else "at least one reference image"
        if images is None:
            if rules.min_count == 0:
                return [], []
            how = "pass image=path" if rules.single else "pass images=[path, ...]"
            return [], [Issue(name, f"{what} is required", how)]
        items = list(images) if _is_sequence(images) else [images]
        issues: list[Issue] = []
        if len(items) < rules.min_count:
            issues.append(Issue(name, f"got {len(items)} images; at least {rules.min_count} is required",
                                "pass images=[path, ...]"))
        if len(items) > rules.max_count:
            if rules.single:
                issues.append(Issue(name, f"got {len(items)} images; {spec.variant} animates exactly one",
                                    "pass one image (e.g. image=images[0]), or use reference-to-video"))
            else:
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
        return get_spec(self.model)

    @property
    def billed_seconds(self) -> int:
        """Seconds the price is computed from: the clip's duration (video-edit: the input clip's
        length; the longest allowed clip while a URL's length is unknown)."""
        if self.duration is not None:
            return self.duration
        rules = self.spec.video
        return int(rules.max_duration_s) if rules is not None else 0

    def estimate_usd(self) -> float:
        """Price of this run from the published table (per second, by resolution and model)."""
        return self.spec.price_usd(duration=self.billed_seconds, resolution=self.resolution or "1080p")

    def with_seed(self, seed: int | None = None) -> VideoRequest:
        """A copy with ``seed`` set; with no argument, a fresh random seed (so the run is reproducible)."""
        if seed is None:
            seed = random.SystemRandom().randrange(0, 2**31)
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= int(seed) <= 2147483647:
            raise ValidationError([Issue("seed", f"{seed!r} is out of range", "use 0–2147483647")])
        return replace(self, seed=int(seed))

    def params(self) -> dict[str, Any]:
        """Every scalar input of the model as it will be sent (prompt and media excluded)."""
        return {name: getattr(self, name) for name in self.spec.field_names if name != "prompt"}

    def canonical(self) -> dict[str, Any]:
        """What identifies a run: model, prompt, every parameter and the hash of each input file."""
        out = {"model": self.model, "prompt": self.prompt, **self.params(),
               "image_sha256": [r.sha256 for r in self.images]}
        if self.video is not None:
            out["video_sha256"] = self.video.sha256
        if self.parent_run_id is not None:
            out["parent_run_id"] = self.parent_run_id
        return out

    def run_key(self) -> str:
        """Stable hash of :meth:`canonical`; the same inputs and seed give the same key."""
        return canonical_digest(self.canonical())

    def image_displays(self) -> list[str]:
        return [r.display for r in self.images]

    def record(self) -> dict[str, Any]:
        """The run-store columns that describe this request (for the sweep's first write)."""
        params = self.params()
        return {"model": self.model, "prompt": self.prompt, "images": self.image_displays(),
                "image_sha256": [r.sha256 for r in self.images], "aspect_ratio": self.aspect_ratio,
                "duration": self.duration, **params, "params": params, "cost_estimate_usd": self.estimate_usd(),
                "parent_run_id": self.parent_run_id,
                "source_video": self.video.display if self.video is not None else None,
                "source_video_sha256": self.video.sha256 if self.video is not None else None}

    def to_input(self, image_urls: Sequence[str] | None = None, video_url: str | None = None) -> dict[str, Any]:
        """The API's ``input`` object. Local images become data: URIs unless ``image_urls`` is given
        (the client passes uploaded asset URLs for images too large to inline); a local video
        needs ``video_url`` (its uploaded asset URL)."""
        spec = self.spec
        body: dict[str, Any] = {}
        if self.prompt is not None:
            body["prompt"] = self.prompt
        if spec.has_images:
            urls = list(image_urls) if image_urls is not None else [r.url or r.data_uri() for r in self.images]
            if spec.images.single:
                body[spec.images.field] = urls[0]
            elif urls or spec.images.min_count:
                body[spec.images.field] = urls
        if spec.video is not None:
            assert self.video is not None
            url = video_url or self.video.url
            if url is None:
                raise ValueError("a local video must be uploaded first: pass its asset URL as video_url")
            body[spec.video.field] = url
        body.update(self.params())
        if body.get("seed", 0) is None:
            del body["seed"]
        return body

    def needs_upload(self, ref: Reference) -> bool:
        """True when a local image is too big to send inline as a data: URI."""
        if ref.data is None:
            return False
        return len(ref.data) * 4 // 3 + 64 >= INLINE_LIMIT_BYTES

    def to_code(self) -> str:
        """Python that rebuilds this request (local files by path or display name)."""
        spec = self.spec
        lines = ["import runflow_nb as rf", "client = rf.Client()", "result = client.generate("]
        if spec is not REFERENCE_TO_VIDEO:
            lines.append(f"    model={spec.alias!r},")
        if self.prompt is not None:
            lines.append(f"    prompt={self.prompt!r},")
        if spec.has_images and spec.images.single:
            lines.append(f"    image={self.images[0].display!r},")
        elif spec.has_images and (self.images or spec.images.min_count):
            lines.append(f"    images=[{', '.join(repr(r.display) for r in self.images)}],")
        if self.video is not None:
            lines.append(f"    video={self.video.display!r},")
        lines += [f"    {name}={value!r}," for name, value in self.params().items()]
        return "\n".join([*lines, ")"]) + "\n"

    def __repr__(self) -> str:
        spec = self.spec
        prompt = self.prompt if self.prompt is None or len(self.prompt) <= 60 else self.prompt[:57] + "..."
        head = "" if spec is REFERENCE_TO_VIDEO else f"model={spec.alias!r}, "
        media = f", images={len(self.images)}" if spec.has_images else ""
        if self.video is not None:
            media += f", video={self.video.display[-40:]!r}"
        params = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"VideoRequest({head}prompt={prompt!r}{media}, {params}, estimate=${self.estimate_usd():.2f})"


def _not_taken_fix(spec: ModelSpec, name: str) -> str:
    if name == "aspect_ratio" and spec.has_images and spec.images.single:
        return "leave it out: the clip keeps the image's aspect ratio"
    if name == "duration" and spec.video is not None:
        return "leave it out: the edited clip is as long as the input video"
    return f"leave it out (inputs of {spec.variant}: {', '.join(spec.field_names)})"


def _tag_issues(spec: ModelSpec, prompt: Any, images: Any) -> list[Issue]:
    """Every image tag in the prompt must name an image that is given (characterN, @ImageN)."""
    tags = spec.tags
    if tags is None or not isinstance(prompt, str):
        return []
    if images is None and _rules(spec).min_count:
        return tag_issues(tags, prompt, n_images=None)  # the missing images are reported already
    n_given = 0 if images is None else len(images) if isinstance(images, list) else 1
    return tag_issues(tags, prompt, n_images=n_given)


def _is_sequence(obj: Any) -> bool:
    return isinstance(obj, Iterable) and not isinstance(obj, (str, bytes, bytearray, memoryview, os.PathLike)) \
        and not _is_pil(obj)


def _unknown_input(name: str) -> Issue:
    """An input name :meth:`VideoRequest.build` does not know, with the nearest one it does."""
    import difflib
    import inspect

    known = [p for p in inspect.signature(VideoRequest.build).parameters if p not in ("cls", "unknown")]
    near = difflib.get_close_matches(name, known, n=1)
    fix = f"did you mean {near[0]!r}?" if near else f"the inputs are {', '.join(known)}"
    return Issue(name, "is not an input of any model", fix)
