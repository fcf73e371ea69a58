"""A strict pydantic model of a model's scalar inputs, generated from its spec (built once per model).

:func:`runflow_nb.request._check_scalars` validates with it and turns each error into an
:class:`~runflow_nb.errors.Issue`.
"""

from __future__ import annotations

import functools
import numbers
import re
from typing import Any, Literal

from .specs import ModelSpec

__all__: list[str] = []


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
