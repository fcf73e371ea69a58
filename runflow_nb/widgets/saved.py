"""A widget shown with a saved view of itself, so a reopened notebook never reads "model not found".

A widget output in a notebook is only a reference to a model in the kernel. When the notebook is
reopened after its kernel ended (restart, shutdown, the next day) and JupyterLab saved no widget
state, the reference points nowhere and JupyterLab writes "Error displaying widget: model not
found" where the form, the gallery or the progress bar was — the HTML fallback inside the same
output is never chosen, because the widget renderer ranks first.

:class:`SavedView` therefore displays two outputs: first a static HTML view of the widget (what
it showed: title, last result, final counts), then the widget itself. A small style rule keyed on
the two classes :data:`LIVE` and :data:`SAVED` shows exactly one of them in JupyterLab, Notebook 7
and nbconvert's HTML: the widget while it draws (live, or restored from saved widget state), the
saved view when it cannot. Other front ends and untrusted notebooks (where styles are dropped) show
the saved view above the widget, and their text fallback is one short line instead of the
widget's repr. The saved view is updated in place (``update_display``) when the widget shows
something worth keeping, e.g. a finished clip.

>>> view = SavedView(form.widget, "<b>the form</b>", label="GenerateForm")   # doctest: +SKIP
>>> view.show()                                                              # doctest: +SKIP
>>> view.update("<b>the form</b> and its last clip")                        # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from ..views import html as _html

__all__ = ["LIVE", "SAVED", "SavedView", "saved_html"]

LIVE = "rf-live"
"""Class on the live widget's outermost element."""
SAVED = "rf-saved"
"""Class on the saved view's outermost element."""

# Exactly one of the pair is visible: JupyterLab/Notebook 7/nbconvert-lab put each output in a
# .jp-OutputArea-child, nbconvert's classic template in an .output_area; siblings in that order.
_PAIR_RULES = "".join(
    f".{child}:has(.{SAVED}):has(+ .{child} .{LIVE}){{display:none}}"
    f".{child}:has(.{SAVED}) + .{child}:not(:has(.{LIVE})){{display:none}}"
    for child in ("jp-OutputArea-child", "output_area")
)
_STYLE = f"<style>{_PAIR_RULES}</style>"


def saved_html(body: str, *, label: str) -> str:
    """The saved view: ``body`` (already escaped HTML) under a one-line note naming ``label``."""
    note = (f'<div style="font-size:12px;color:#6b7280;margin:2px 0 6px">Saved view of this '
            f"{_html.text(label)}, shown where the live widget is not drawn (its kernel has ended, or the page "
            "never received it); run the cell again to use it."
            "</div>")
    return f'{_STYLE}<div class="{SAVED} {_html.NO_MATH}">{note}{body}</div>'


class SavedView:
    """Display ``widget`` after a saved HTML view of it; :meth:`update` replaces that view.

    >>> view = SavedView(ipywidgets.Button(description="go"), "<i>a button</i>", label="button")  # doctest: +SKIP
    >>> view.show()                                                                              # doctest: +SKIP
    """

    def __init__(self, widget: Any, body: str, *, label: str) -> None:
        self.widget = widget
        self.label = label
        self.body = body
        self._handles: list[Any] = []
        widget.add_class(LIVE)

    def saved_bundle(self) -> dict[str, Any]:
        """The saved view as a MIME bundle."""
        return {"text/html": saved_html(self.body, label=self.label),
                "text/plain": f"{self.label} (saved view; run the cell to use the live widget)"}

    def live_bundle(self) -> dict[str, Any]:
        """The widget as a MIME bundle, with a one-line text fallback instead of its repr."""
        bundle = self.widget._repr_mimebundle_()
        data = dict((bundle[0] if isinstance(bundle, tuple) else bundle) or {})
        data["text/plain"] = f"{self.label} (live widget)"
        return data

    def show(self) -> None:
        """Display the saved view and the widget, in that order (again on every call)."""
        from IPython.display import display

        self._handles.append(display(self.saved_bundle(), raw=True, display_id=True))
        display(self.live_bundle(), raw=True)

    def update(self, body: str) -> None:
        """Replace the saved view's body wherever it was shown (the notebook keeps the new one)."""
        self.body = body
        for handle in self._handles:
            if handle is not None:
                handle.update(self.saved_bundle(), raw=True)
