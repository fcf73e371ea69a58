"""The form's live checks: every change re-runs :meth:`VideoRequest.build` (no image is decoded
again) and puts each problem beside its own field, with the prompt's count and tag hints and the
estimated cost. Mixed into :class:`~runflow_nb.widgets.form.GenerateForm`."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from ..errors import Issue, ValidationError
from ..request import Reference, VideoRequest
from ..sweep.status import SIMULATED_NOTE
from ..views import html as _html
from .fields import issues_html

if TYPE_CHECKING:
    from ..specs import ModelSpec
    from .form_items import ImageItem

__all__ = ["FormChecks"]

_NOT_LOADED = object()  # stands in for a reference whose problems are already known (no re-decoding)


class FormChecks:
    """Validation of a :class:`~runflow_nb.widgets.form.GenerateForm` as you type (mixed into it)."""

    spec: ModelSpec
    images: list[ImageItem]
    controls: dict[str, Any]
    errors: dict[str, Any]
    request: VideoRequest | None
    issues: list[Issue]
    _touched: set[str]
    _busy: bool
    video_box: Any
    count: Any
    hints: Any
    cost: Any
    generate_button: Any

    if TYPE_CHECKING:
        def _tag(self, n: int) -> str: ...
        def _images_name(self) -> str: ...
        def _backend(self) -> str: ...

    # -- validation -------------------------------------------------------------------------------

    def values(self) -> dict[str, Any]:
        """The scalar inputs as the form holds them (None for a random seed)."""
        return {name: ctl.value for name, ctl in self.controls.items()}

    def _changed(self, name: str, _change: Any = None) -> None:
        self._touched.add(name)
        self.validate()

    def validate(self) -> list[Issue]:
        """Re-check the whole request (no image is decoded again) and refresh every label."""
        refs = [item.loaded if item.ok else _NOT_LOADED for item in self.images]
        extra: dict[str, Any] = {}
        if self.spec.has_images:
            extra["images"] = refs if refs or not self.spec.images.min_count else None
        if self.spec.video is not None:
            extra["video"] = self.video_box.value.strip() or None
        try:
            self.request = VideoRequest.build(**self.values(), **extra, spec=self.spec)
            self.issues = []
        except ValidationError as exc:
            self.request = None
            named = self._images_name()  # how the request names the references (the caller's name)
            where = (lambda i: named) if self.spec.images.single else (lambda i: f"{named}[{i}]")
            bad = {where(i): item for i, item in enumerate(self.images) if not item.ok}
            issues = [_in_form_words(i, named) for i in exc.issues if i.field not in bad]
            for key, item in bad.items():  # the real reasons, found when the image was added
                assert not isinstance(item.loaded, Reference)
                issues += [Issue(key, x.message, x.fix) for x in item.loaded]
            self.issues = issues
        self._refresh()
        return self.issues

    def _refresh(self) -> None:
        by_key: dict[str, list[Issue]] = {}
        field, named = self.spec.images.field, self._images_name()
        for issue in self.issues:
            key = issue.field.split("[", 1)[0]
            key = field if key == named else key  # the references' messages go under the images
            by_key.setdefault(key if key in self.errors else "general", []).append(issue)

        def image_prefix(issue: Issue) -> str:
            if issue.field.startswith(named + "[") or (self.spec.images.single and issue.field == named):
                n = int(issue.field[len(named) + 1:].rstrip("]") or 0) if "[" in issue.field else 0
                name = self.images[n].name if n < len(self.images) else ""
                return f"{self._tag(n + 1)} ({name}): " if name else ""
            return ""

        for key, label in self.errors.items():
            found = by_key.get(key, [])
            muted = key != "general" and key not in self._touched
            label.value = issues_html(found, muted=muted, prefix=image_prefix if key == field else None)
        self._refresh_prompt_extras()
        self._refresh_cost()
        self.generate_button.disabled = self._busy or self.request is None

    def _refresh_prompt_extras(self) -> None:
        ctl = self.controls.get("prompt")
        if ctl is None:
            return
        prompt = ctl.value or ""
        limit = ctl.field.max_length or self.spec.prompt_max_length
        over = len(prompt) > limit
        self.count.value = (f'<span style="font-size:12px;color:{"#b91c1c" if over else "#6b7280"}">'
                            f"{len(prompt)} / {limit}</span>")
        parts = []
        tags = sorted(set(self.spec.character_refs(prompt)))
        for n in tags:
            tag = html.escape(self._tag(n))
            if 1 <= n <= len(self.images):
                parts.append(f"<b>{tag}</b> → {html.escape(self.images[n - 1].name)}")
            else:
                parts.append(f'<span style="color:#b91c1c"><b>{tag}</b> → no image '
                             f"(dangling tag: {len(self.images)} image{'s' if len(self.images) != 1 else ''} "
                             "added)</span>")
        unused = [i + 1 for i in range(len(self.images)) if i + 1 not in tags] if self.spec.tags else []
        if unused:
            parts.append("not named in the prompt: " + ", ".join(self._tag(n) for n in unused))
        self.hints.value = ('<span style="font-size:12px;color:#374151;margin-left:12px">'
                            + " · ".join(parts) + "</span>") if parts else ""

    def _refresh_cost(self) -> None:
        values = self.values()
        note = f" — offline simulator ({SIMULATED_NOTE})" if self._backend() == "simulator" else ""
        try:
            resolution = str(values["resolution"])
            rate = self.spec.price_per_second[resolution]
            if self.spec.video is not None:  # priced by the input clip's length
                if self.request is None:
                    self.cost.value = (f'<span class="{_html.NO_MATH}">Price: &#36;{rate:.2f}/s of the input clip '
                                       f"at {html.escape(resolution)}{note}</span>")
                    return
                seconds, usd = self.request.billed_seconds, self.request.estimate_usd()
            else:
                seconds = int(values["duration"])
                usd = self.spec.price_usd(duration=seconds, resolution=resolution)
        except (KeyError, TypeError, ValueError):
            self.cost.value = ""
            return
        self.cost.value = (f'<span class="{_html.NO_MATH}">Estimated cost: <b>&#36;{usd:.2f}</b> ({seconds} s × '
                           f"&#36;{rate:.2f}/s at {html.escape(resolution)}){note}</span>")


def _in_form_words(issue: Issue, named: str) -> Issue:
    """A missing-reference issue says what to do in the form, not the code a caller would pass."""
    if issue.field == named and (issue.fix or "").startswith(("pass image=", "pass images=")):
        return Issue(issue.field, issue.message, "add one with Upload, or type a path or URL and press Add")
    return issue
