"""The documented examples (vendored from the shared API page's contract/ folder) and shape checks.

Keys starting with ``_`` describe an example (route, status, headers, notes); the rest is the
payload. A shape check asks that every documented key is present with a value of the documented
JSON type (numbers are numbers; a documented ``null`` says nothing about the type); extra keys are
allowed, as the page says clients must ignore unknown fields.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

DOCUMENTED = Path(__file__).resolve().parent / "documented"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "docs" / "contract"
MODEL = "alibaba/happy-horse/reference-to-video"
KEY = "rf_test_contract_suite"


def load(name: str) -> dict[str, Any]:
    """The whole documented example ``name`` (with its ``_`` keys)."""
    return json.loads((DOCUMENTED / f"{name}.json").read_text())  # type: ignore[no-any-return]


def payload(name: str) -> dict[str, Any]:
    """The documented example without its describing ``_`` keys."""
    return {k: v for k, v in load(name).items() if not k.startswith("_")}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", dict: "object", list: "array"}[type(value)]


def problems(actual: Any, documented: Any, where: str = "$", *, nullable: frozenset[str] = frozenset()) -> list[str]:
    """Every way ``actual`` departs from the documented shape (empty when it conforms)."""
    if documented is None:
        return []
    name = where.rsplit(".", 1)[-1]
    if actual is None and name in nullable:
        return []
    if _kind(actual) != _kind(documented):
        return [f"{where}: documented {_kind(documented)}, got {_kind(actual)} ({actual!r:.60})"]
    out: list[str] = []
    if isinstance(documented, dict):
        for key, value in documented.items():
            if key.startswith("_"):
                continue
            if key not in actual:
                out.append(f"{where}.{key}: missing")
            else:
                out += problems(actual[key], value, f"{where}.{key}", nullable=nullable)
    elif isinstance(documented, list) and documented and actual:
        for i, item in enumerate(actual):
            out += problems(item, documented[0], f"{where}[{i}]", nullable=nullable)
    return out


def assert_conforms(actual: Any, name: str, *, nullable: frozenset[str] | set[str] = frozenset()) -> None:
    found = problems(actual, payload(name), nullable=frozenset(nullable))
    assert not found, f"answer does not match documented {name}.json:\n  " + "\n  ".join(found)


class Recorder(httpx.BaseTransport):
    """A real HTTP transport that keeps every request it sends (bodies read), for request-shape checks."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.sent.append(request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()

    def to(self, method: str, path_suffix: str) -> list[httpx.Request]:
        return [r for r in self.sent if r.method == method and r.url.path.endswith(path_suffix)]

    def json(self, request: httpx.Request) -> Any:
        return json.loads(request.content)
