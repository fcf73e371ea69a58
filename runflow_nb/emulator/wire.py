"""The emulator's wire helpers: JSON answers, the error envelope, request bodies, byte ranges."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import httpx

from ..errors import Issue
from ..specs import ModelSpec, get_spec

__all__ = ["HTTPError", "invalid", "issue_item", "json_body", "json_response", "parse_range", "spec_for"]


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> httpx.Response:
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return httpx.Response(status, content=content, headers={"Content-Type": "application/json", **(headers or {})})


def issue_item(issue: Issue) -> dict[str, str]:
    return {"field": issue.field, "message": issue.message, "fix": issue.fix}


class HTTPError(Exception):
    """An error answer: ``{code, message, errors[], request_id, **extra}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str, errors: list[Any] | None = None,
                 headers: Mapping[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.errors, self.headers, self.extra = errors or [], dict(headers or {}), extra


def invalid(issues: list[Issue]) -> HTTPError:
    n = len(issues)
    return HTTPError(422, "VALIDATION_ERROR", f"{n} problem{'s' if n != 1 else ''} with the request",
                     [issue_item(i) for i in issues])


def spec_for(model: str) -> ModelSpec:
    try:
        return get_spec(model)
    except KeyError:
        raise HTTPError(404, "MODEL_NOT_FOUND", f"no model {model!r}") from None


def json_body(request: httpx.Request) -> dict[str, Any]:
    try:
        body = json.loads(request.content or b"null")
    except (ValueError, UnicodeDecodeError):
        raise HTTPError(400, "BAD_REQUEST", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise HTTPError(400, "BAD_REQUEST", "the body must be a JSON object")
    return body


def parse_range(value: str | None, size: int) -> tuple[int, int] | str | None:
    """One ``bytes=a-b`` range → (start, end) inclusive; ``"bad"`` if unsatisfiable; None if absent."""
    if not value:
        return None
    m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", value)
    if not m or (not m[1] and not m[2]):
        return None  # unsupported (e.g. several ranges): send the whole body
    if not m[1]:
        start, end = max(0, size - int(m[2])), size - 1
    else:
        start, end = int(m[1]), min(size - 1, int(m[2])) if m[2] else size - 1
    return (start, end) if start <= end and start < size else "bad"
