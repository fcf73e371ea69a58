"""The form's reference images: adding them (a path or URL, an upload), moving and removing them,
and their thumbnails. Mixed into :class:`~runflow_nb.widgets.form.GenerateForm`; each change
re-checks the request (:mod:`.form_checks`)."""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..views import display
from .form_items import THUMB_PX, ImageItem, refusal_html, save_upload, short_repr

if TYPE_CHECKING:
    from ..client import Client
    from ..experiment import Experiment
    from ..specs import ModelSpec

__all__ = ["FormImages"]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class FormImages:
    """The reference images of a :class:`~runflow_nb.widgets.form.GenerateForm` (mixed into it)."""

    spec: ModelSpec
    images: list[ImageItem]
    client: Client
    experiment: Experiment | None
    _touched: set[str]
    upload: Any
    path_box: Any
    path_error: Any
    add_button: Any
    thumbnails: Any

    if TYPE_CHECKING:
        def validate(self) -> Any: ...

    # -- images -----------------------------------------------------------------------------------

    def add_image(self, source: str | os.PathLike[str], *, label: str | None = None) -> ImageItem:
        """Add a reference (path or http(s) URL); it is decoded and checked now, once."""
        text = os.fspath(source) if isinstance(source, (str, os.PathLike)) else None
        if not isinstance(text, str):
            raise UsageError(f"add_image takes a path or http(s) URL of an image (str or pathlib.Path), "
                             f"got {short_repr(source)}")
        if label is not None and not isinstance(label, str):
            raise UsageError(f"label must be text, got {short_repr(label)}")
        item = ImageItem.load(text.strip(), spec=self.spec, label=label)
        self.images.append(item)
        self._images_changed()
        return item

    def remove_image(self, index: int) -> None:
        """Remove image ``index`` (0-based; -1 is the last)."""
        n = len(self.images)
        if not _is_int(index) or not -n <= index < n:
            raise UsageError(f"no image {index!r} to remove: the form holds {n} image{'s' if n != 1 else ''}"
                             + (f" (indexes 0-{n - 1})" if n else ""))
        del self.images[index]
        self._images_changed()

    def move_image(self, index: int, offset: int) -> None:
        """Move image ``index`` (0-based) left (-1) or right (+1); its characterN number changes with it.
        A move past either end leaves the order as it is."""
        n = len(self.images)
        if not _is_int(index) or not 0 <= index < n:
            raise UsageError(f"no image {index!r} to move: the form holds {n} image{'s' if n != 1 else ''}"
                             + (f" (indexes 0-{n - 1})" if n else ""))
        if not _is_int(offset):
            raise UsageError(f"offset must be a whole number (-1 moves left, +1 right), got {short_repr(offset)}")
        j = index + offset
        if 0 <= index < len(self.images) and 0 <= j < len(self.images):
            self.images[index], self.images[j] = self.images[j], self.images[index]
            self._images_changed()

    def _images_name(self) -> str:
        return "image" if self.spec.images.single else "images"

    def _add_from_box(self) -> None:
        """Add the image named in the box, or say why it cannot be a reference (the text stays to fix)."""
        text = self.path_box.value.strip()
        item = ImageItem.load(text, spec=self.spec) if text else None
        self.path_error.value = refusal_html(item)
        if item is not None and item.ok:
            self.images.append(item)
            self._images_changed()
            self.path_box.value = ""

    def _upload_folder(self) -> Path:
        base = self.experiment.artifacts if self.experiment is not None else self.client.artifacts_dir
        if "://" in str(base):  # artifacts on shared storage: keep uploaded references local
            base = Path("runflow_uploads")
        return Path(base) / "uploads"

    def _on_upload(self, change: Mapping[str, Any]) -> None:
        files = change["new"]
        if not files:
            return
        for entry in files:
            self.add_image(save_upload(entry, self._upload_folder()), label=str(entry.get("name") or "") or None)
        # The button reads "Upload (N)", N the files of the last pick: the value is kept (not emptied),
        # so the count shows what was just added; the next pick replaces it and is added in turn.

    def _images_changed(self) -> None:
        self._touched.add(self.spec.images.field or "images")
        self._render_thumbnails()
        self.validate()

    def _render_thumbnails(self) -> None:
        import ipywidgets as w

        cards = []
        n = len(self.images)
        for i, item in enumerate(self.images):
            picture: Any
            if item.thumbnail is not None:
                picture = w.Image(value=item.thumbnail, format="jpeg",
                                  layout=w.Layout(width=f"{THUMB_PX}px", height=f"{THUMB_PX}px",
                                                  object_fit="contain"))
            elif item.ok:  # a URL: the browser fetches it, the kernel never does
                picture = w.HTML(f'<img src="{html.escape(display.safe_url(item.source), quote=True)}" alt="" '
                                 f'style="width:{THUMB_PX}px;height:{THUMB_PX}px;object-fit:contain">')
            else:
                picture = w.HTML(f'<div style="width:{THUMB_PX}px;height:{THUMB_PX}px;background:#fee2e2;'
                                 'display:flex;align-items:center;justify-content:center">⚠</div>')
            mark = "" if item.ok else ' <span style="color:#b91c1c">⚠</span>'
            caption = w.HTML(f'<div style="font-size:12px;text-align:center;max-width:{THUMB_PX}px;'
                             f'overflow:hidden;text-overflow:ellipsis;white-space:nowrap" '
                             f'title="{html.escape(item.source, quote=True)}"><b>{html.escape(self._tag(i + 1))}</b>'
                             f"{mark}<br>"
                             f"{html.escape(item.name)}</div>")
            small = w.Layout(width="30px", padding="0")
            left = w.Button(description="◀", tooltip="move left", disabled=i == 0, layout=small)
            drop = w.Button(description="✕", tooltip="remove", layout=small)
            right = w.Button(description="▶", tooltip="move right", disabled=i == n - 1, layout=small)
            left.on_click(lambda _b, it=item: self.move_image(self._index(it), -1))
            drop.on_click(lambda _b, it=item: self.remove_image(self._index(it)))
            right.on_click(lambda _b, it=item: self.move_image(self._index(it), +1))
            card = w.VBox([picture, caption, w.HBox([left, drop, right])],
                          layout=w.Layout(margin="0 8px 4px 0", align_items="center"))
            card.add_class("rf-thumbnail")
            cards.append(card)
        self.thumbnails.children = cards
        self.add_button.disabled = n >= self.spec.images.max_count
        self.upload.disabled = n >= self.spec.images.max_count
        self.upload.multiple = not self.spec.images.single

    def _tag(self, n: int) -> str:
        """How image ``n`` (1-based) is named in the prompt (or shown, when the model has no tags)."""
        tags = self.spec.tags
        return tags.name(n) if tags is not None else ("image" if self.spec.images.single else f"image {n}")

    def _index(self, item: ImageItem) -> int:
        return next(i for i, it in enumerate(self.images) if it is item)
