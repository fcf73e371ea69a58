"""Widgets generated from a :class:`~runflow_nb.specs.FieldSpec`, each with its own error label.

The mapping is by type, not by field name, so another model spec gets a form for free:

=====================================  ==========================================
spec field                             widget
=====================================  ==========================================
``choices`` (≤ 3)                      ToggleButtons
``choices`` (more)                     Dropdown
``int`` with a small range             IntSlider
``int`` with a wide range              BoundedIntText
``int`` optional (default None)        "random" Checkbox + BoundedIntText + 🎲
``bool``                               Checkbox
``str``                                Textarea (with a "n / max" counter)
=====================================  ==========================================
"""

from __future__ import annotations

import html
import random
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import Issue
from ..specs import FieldSpec

__all__ = ["FieldControl", "issues_html", "make_control"]

SLIDER_MAX_RANGE = 60  # wider int ranges get a text box: a slider over 2**31 values is useless
TOGGLE_MAX_CHOICES = 3
LABEL_WIDTH = "130px"

_ERROR_STYLE = "color:#b91c1c;font-size:12px;line-height:1.3"
_MUTED_STYLE = "color:#6b7280;font-size:12px;line-height:1.3"


def issues_html(issues: Sequence[Issue], *, muted: bool = False, prefix: Callable[[Issue], str] | None = None) -> str:
    """Escaped HTML for the issues of one field (muted before the user has touched it)."""
    if not issues:
        return ""
    lines = []
    for issue in issues:
        head = prefix(issue) if prefix else ""
        text = issue.message + (f" — {issue.fix}" if issue.fix else "")
        mark = "" if muted else "⚠ "
        lines.append(f"{mark}{html.escape(head)}{html.escape(text)}")
    return f'<div style="{_MUTED_STYLE if muted else _ERROR_STYLE}">' + "<br>".join(lines) + "</div>"


def _label(name: str) -> str:
    return name.replace("_", " ")


class FieldControl:
    """One spec field: the input widget(s), a ``value`` in the spec's terms, and an error label."""

    def __init__(self, field: FieldSpec, inputs: list[Any], value_widget: Any) -> None:
        import ipywidgets as w

        self.field = field
        self.name = field.name
        self.value_widget = value_widget
        self.error = w.HTML(value="", layout=w.Layout(margin="0 0 0 8px", flex="1 1 auto"))
        self.error.add_class(f"rf-error-{field.name}")
        self.label = w.HTML(value=f"<b>{html.escape(_label(field.name))}</b>",
                            tooltip=field.help, layout=w.Layout(width=LABEL_WIDTH, min_width=LABEL_WIDTH))
        self.box = w.HBox([self.label, *inputs, self.error], layout=w.Layout(align_items="center"))
        self.box.add_class(f"rf-field-{field.name}")

    @property
    def value(self) -> Any:
        return self.value_widget.value

    @value.setter
    def value(self, value: Any) -> None:
        self.value_widget.value = value

    def observe(self, callback: Callable[[Any], None]) -> None:
        self.value_widget.observe(callback, names="value")


class OptionalIntControl(FieldControl):
    """An optional int (the seed): random by default, or fixed; the dice draws a new fixed value."""

    def __init__(self, field: FieldSpec) -> None:
        import ipywidgets as w

        lo = field.minimum if field.minimum is not None else 0
        hi = field.maximum if field.maximum is not None else 2**31 - 1
        self.random = w.Checkbox(value=True, description="random", indent=False,
                                 layout=w.Layout(width="90px"))
        self.number = w.BoundedIntText(value=lo, min=lo, max=hi, disabled=True, tooltip=field.help,
                                       layout=w.Layout(width="140px"))
        self.dice = w.Button(description="", icon="dice", tooltip=f"draw a new {field.name}",
                             layout=w.Layout(width="42px"))
        self.dice.add_class(f"rf-dice-{field.name}")
        self._lo, self._hi = lo, hi
        self.dice.on_click(lambda _b: self.roll())
        self.random.observe(lambda ch: setattr(self.number, "disabled", bool(ch["new"])), names="value")
        super().__init__(field, [self.random, self.number, self.dice], self.number)

    def roll(self, rng: random.Random | None = None) -> int:
        """Fix the value to a fresh random one (so the run is reproducible and shown)."""
        value = (rng or random.SystemRandom()).randint(self._lo, self._hi)
        self.number.value = value
        self.random.value = False
        return value

    @property
    def value(self) -> int | None:
        return None if self.random.value else int(self.number.value)

    @value.setter
    def value(self, value: int | None) -> None:
        if value is None:
            self.random.value = True
        else:
            self.number.value = int(value)
            self.random.value = False

    def observe(self, callback: Callable[[Any], None]) -> None:
        self.number.observe(callback, names="value")
        self.random.observe(callback, names="value")


def make_control(field: FieldSpec) -> FieldControl:
    """The widget for ``field``, chosen from its type, choices and bounds."""
    import ipywidgets as w

    tip = field.help
    widget: Any
    if field.choices is not None:
        options = list(field.choices)
        value = field.default if field.default in options else options[0]
        if len(options) <= TOGGLE_MAX_CHOICES:
            widget = w.ToggleButtons(options=options, value=value, tooltip=tip,
                                     style={"button_width": "70px"})
        else:
            widget = w.Dropdown(options=options, value=value, tooltip=tip, layout=w.Layout(width="120px"))
    elif field.type is bool:
        widget = w.Checkbox(value=bool(field.default), indent=False, tooltip=tip, description="",
                            layout=w.Layout(width="40px"))
    elif field.type is int:
        if field.default is None and not field.required:
            return OptionalIntControl(field)
        lo = field.minimum if field.minimum is not None else -(2**31)
        hi = field.maximum if field.maximum is not None else 2**31 - 1
        value = field.default if field.default is not None else lo
        if hi - lo <= SLIDER_MAX_RANGE:
            widget = w.IntSlider(value=value, min=lo, max=hi, step=1, tooltip=tip, continuous_update=False,
                                 readout=True, layout=w.Layout(width="320px"))
        else:
            widget = w.BoundedIntText(value=value, min=lo, max=hi, tooltip=tip, layout=w.Layout(width="160px"))
    elif field.type is str:
        widget = w.Textarea(value=field.default or "", placeholder=tip, tooltip=tip, continuous_update=True,
                            rows=4, layout=w.Layout(width="520px"))
    else:  # pragma: no cover - a new spec type needs a widget here
        raise TypeError(f"no widget for field {field.name!r} of type {field.type.__name__}")
    widget.add_class(f"rf-input-{field.name}")
    return FieldControl(field, [widget], widget)
