"""From a stored run back to the :class:`~runflow_nb.request.VideoRequest` that made it.

A run's record holds everything its run key was made of: the model, the prompt, every input as
sent (``params``), the sha256 of each reference image and of the input clip, and the parent run.
:func:`request_for` rebuilds the request from those, finding each file **by content**:

* a reference image is looked for where it was read from (as stored; relative paths from the
  working folder and from the store's folder) and in the experiment's kept copies
  (``<artifacts>/references/<sha256>.<ext>``, written by :func:`keep_references` once a run has
  made its clip, so a PIL image or a file edited since can still be found); a file counts only when its
  sha256 is the one the run used;
* video-edit's clip is the stored file, else the parent run's video, else a URL standing in for it
  (the stored clip's output URL), with the stored sha256, so the run key is the stored one.

A file that is gone, with no URL to stand in, is a :class:`~runflow_nb.errors.ValidationError`
naming the input and how to bring it back. The rebuilt request's ``run_key()`` is checked against
the stored one before it is handed out.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import Issue, ValidationError
from ..specs import REFERENCE_TO_VIDEO, get_spec

if TYPE_CHECKING:
    from ..media.video_input import VideoSource
    from ..request import Reference, VideoRequest
    from ..store.runstore import Store

__all__ = ["KEPT", "keep_references", "request_for", "stored_inputs"]

KEPT = "references"
"""The folder under an experiment's artifacts that keeps a copy of every reference image of its
clips, by sha256."""

_EXT = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "BMP": "bmp"}


def keep_references(requests: Iterable[VideoRequest], artifacts_root: Path | str, *, store: Store,
                    experiment: str) -> None:
    """Keep a copy of every local reference image of the requests whose runs made a clip, under
    ``<artifacts>/references/``, named by its sha256 (written once, whole), so :func:`request_for`
    finds the exact pixels later (a failed run leaves no file behind). Shared storage (``s3://``)
    keeps none: the references are found where they were read from."""
    if not isinstance(artifacts_root, Path):
        return
    from .._files import write_whole

    folder = artifacts_root / KEPT
    missing: dict[str, Reference] = {}  # sha256 -> a reference not kept yet (each distinct file looked at once)
    wanting: dict[str, list[str]] = {}  # run key -> the missing references its request used
    seen: set[str] = set()
    for req in requests:
        for ref in req.images:
            if ref.data is None or ref.format not in _EXT:
                continue
            if ref.sha256 not in seen:
                seen.add(ref.sha256)
                if not (folder / f"{ref.sha256}.{_EXT[ref.format]}").exists():
                    missing[ref.sha256] = ref
            if ref.sha256 in missing:
                wanting.setdefault(req.run_key(), []).append(ref.sha256)
    if not wanting:
        return
    made = store.runs(experiment, status="succeeded", where={"run_key": list(wanting)})
    for sha in dict.fromkeys(sha for row in made for sha in wanting.get(str(row["run_key"]), ())):
        ref = missing[sha]
        dest = folder / f"{sha}.{_EXT[str(ref.format)]}"
        data = ref.data
        try:
            folder.mkdir(parents=True, exist_ok=True)
            write_whole(dest, lambda tmp, data=data: tmp.write_bytes(data))  # type: ignore[misc]
        except OSError:
            return  # a read-only artifacts folder: the sweep's own check says so


def stored_inputs(row: Mapping[str, Any]) -> dict[str, Any]:
    """The scalar inputs of the run as they were sent (``params``; the columns for older records)."""
    spec = get_spec(row.get("model") or REFERENCE_TO_VIDEO.model)
    given = row.get("params")
    params: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    out: dict[str, Any] = {}
    for name in spec.field_names:
        if name == "prompt":
            continue
        value = params.get(name) if name in params else row.get(name)
        out[name] = _plain(value)
    return out


def request_for(row: Mapping[str, Any], *, store: Store | None = None, artifacts_root: Path | str | None = None
                ) -> VideoRequest:
    """The request that made the stored run ``row`` (same run key), its files found by content."""
    from ..request import VideoRequest

    model = row.get("model") or REFERENCE_TO_VIDEO.model
    spec = get_spec(model)
    issues: list[Issue] = []
    refs: list[Reference] = []
    displays = list(row.get("images") or [])
    shas = list(row.get("image_sha256") or [])
    folder = getattr(store, "folder", None)
    for i, (display, sha) in enumerate(zip(displays, shas, strict=False)):
        got = find_reference(str(display), str(sha), index=i, spec=spec, store_folder=folder,
                             artifacts_root=artifacts_root)
        if isinstance(got, list):
            issues += got
        else:
            refs.append(got)
    video = None
    if spec.video is not None:
        found = _find_video(row, store=store)
        if isinstance(found, list):
            issues += found
        else:
            video = found
    if issues:
        raise ValidationError(issues)
    inputs = stored_inputs(row)
    images: Any = None
    if spec.has_images:
        images = refs if not spec.images.single else (refs[0] if refs else None)
    req = VideoRequest.build(model=spec, prompt=row.get("prompt"), images=images, video=video,
                             parent_run_id=_plain(row.get("parent_run_id")), **_given(spec, inputs))
    if row.get("run_key") and req.run_key() != row["run_key"]:
        raise ValidationError([Issue("run", f"run {row.get('run_id')} was made by another version of the run key "
                                     f"(library {row.get('library_version')})",
                                     "build the request by hand from exp.table()'s columns")])
    return req


def _given(spec: Any, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """``inputs`` as :meth:`VideoRequest.build` keywords (a seed left random stays None)."""
    return {k: v for k, v in inputs.items() if spec.takes(k)}


def _plain(value: Any) -> Any:
    """A table cell as a plain Python value (pandas' NA and NumPy scalars become None / int)."""
    if value is None:
        return None
    try:
        import pandas as pd

        if value is pd.NA or (isinstance(value, float) and value != value):
            return None
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value


def find_reference(display: str, sha: str, *, index: int, spec: Any, store_folder: Path | None,
                   artifacts_root: Path | str | None) -> Reference | list[Issue]:
    """Reference ``index`` of a run, found by its sha256 (see the module docstring)."""
    from ..request import load_reference

    where = spec.images.field if spec.images.single else f"{spec.images.field}[{index}]"
    if display.lower().startswith(("http://", "https://")):
        got = load_reference(display, index=index, spec=spec)
        if not isinstance(got, list) and got.sha256 == sha:
            return got
    for path in candidates(display, sha, store_folder=store_folder, artifacts_root=artifacts_root):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if hashlib.sha256(data).hexdigest() != sha:
            continue
        got = load_reference(path, index=index, spec=spec)
        if not isinstance(got, list):
            return got
    kept = f"{artifacts_root}/{KEPT}/{sha}.png" if artifacts_root is not None else f"{KEPT}/{sha}.png"
    return [Issue(where, f"the image the run used ({display[:120]}, sha256 {sha[:12]}…) is not here any more",
                  f"put that exact file back at {display[:120]} (or copy it to {kept}), or pass "
                  "references=[...] to rerun to use other images")]


def candidates(display: str, sha: str, *, store_folder: Path | None, artifacts_root: Path | str | None
               ) -> list[Path]:
    """Where reference ``display`` may be, best first: where it was read from when that is within
    reach of the working folder (code names it as the researcher did), then the kept copy, then
    anywhere else it was read from. The caller checks each one's sha256."""
    near: list[Path] = []
    far: list[Path] = []
    if display and not display.startswith("<") and "://" not in display:
        path = Path(display).expanduser()
        for where in [path] + ([Path(store_folder) / path] if not path.is_absolute() and store_folder else []):
            (far if Path(local_display(where)).is_absolute() else near).append(where)
    kept: list[Path] = []
    if isinstance(artifacts_root, Path) and (artifacts_root / KEPT).is_dir():
        kept = sorted((artifacts_root / KEPT).glob(f"{sha}.*"))
    return [p for p in dict.fromkeys(near + kept + far) if p.is_file()]


def _find_video(row: Mapping[str, Any], *, store: Store | None) -> VideoSource | list[Issue]:
    """Video-edit's clip by content: the stored path, the parent's video, or a URL standing in."""
    from dataclasses import replace

    from ..media.probe import sha256_file
    from ..media.video_input import VideoSource, load_video

    rules = get_spec(row.get("model") or "edit").video
    assert rules is not None
    shown = str(row.get("source_video") or "")
    sha = str(row.get("source_video_sha256") or "")
    parent = store.get_run(str(row["parent_run_id"])) if store is not None and row.get("parent_run_id") else None
    paths = [Path(shown)] if shown and "://" not in shown else []
    if parent is not None and parent.get("video_path") and "://" not in str(parent["video_path"]):
        paths.append(Path(str(parent["video_path"])))
    for path in paths:
        if path.is_file() and sha256_file(path) == sha:
            got = load_video(path, rules=rules)
            if isinstance(got, VideoSource):
                return got
    urls = [shown] if shown.lower().startswith(("http://", "https://")) else []
    if parent is not None and str(parent.get("output_url") or "").lower().startswith(("http://", "https://")):
        urls.append(str(parent["output_url"]))
    length = _plain(parent.get("video_duration")) if parent is not None else None
    for url in urls:
        got = load_video(url, rules=rules, duration_s=float(length) if length is not None else None)
        if isinstance(got, VideoSource):
            return replace(got, sha256=sha or got.sha256)
    return [Issue("video", f"the clip run {row.get('run_id')} edited ({shown[:120] or 'unnamed'}) is not here "
                           "and no URL stands in for it",
                  "put the clip back where it was, or pass video= to a new video-edit request")]


def local_display(path: str | os.PathLike[str], *, here: Path | None = None) -> str:
    """How ``path`` is best written in code run from ``here`` (the working folder): relative when
    it is within two folders up, else absolute (the only way to name it)."""
    here = here or Path.cwd()
    absolute = Path(os.path.normpath(Path(path).expanduser().absolute()))
    try:
        rel = os.path.relpath(absolute, here)
    except ValueError:  # another drive
        return str(absolute)
    return rel if rel.count("..") <= 2 else str(absolute)
