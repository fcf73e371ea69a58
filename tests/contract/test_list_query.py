"""The run list's documented ``q`` operators, from the API page's own words and examples:
``GET /v1/runs`` with ``q`` (filter expression) reading ``=``, ``:``, ``>``, ``<``, ``>=``, ``<=``,
``AND``, ``OR``, ``NOT``; the docs' example ``status_code:succeeded AND created_at>2026-04-01``;
``q=client_ref:<value>`` (inferred); the list example ``q=status_code:succeeded`` (list_runs.json).
Bad expressions answer the documented 422 envelope. Over real HTTP on loopback."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import httpx
import pytest
from _documented import assert_conforms, load
from test_wire import SUBMIT, create_body, wait_done

DOCS_EXAMPLE = "status_code:succeeded AND created_at>2026-04-01"


def ids(raw: httpx.Client, q: str, **params: Any) -> list[str]:
    answer = raw.get("/v1/runs", params={"q": q, **params})
    assert answer.status_code == 200, f"{q!r}: {answer.text}"
    return [r["id"] for r in answer.json()["items"]]


@pytest.fixture
def three(raw: httpx.Client) -> dict[str, dict[str, Any]]:
    """Three finished runs under fresh client_refs: two succeeded, one failed (an injected fault)."""
    tag = time.time_ns()
    runs = {}
    for name in ("ok1", "ok2"):
        runs[name] = raw.post(SUBMIT, json={**create_body(), "client_ref": f"{name}-{tag}"}).json()
    httpx.post(f"{raw.base_url}/_emulator/config", json={"faults": "fail=1x"}, timeout=30)
    runs["bad"] = raw.post(SUBMIT, json={**create_body(), "client_ref": f"bad-{tag}"}).json()
    httpx.post(f"{raw.base_url}/_emulator/config", json={"faults": None}, timeout=30)
    return {k: wait_done(raw, r["id"]) for k, r in runs.items()}


def test_the_docs_own_example_answers_the_succeeded_runs(raw: httpx.Client, three: dict[str, Any]) -> None:
    found = ids(raw, DOCS_EXAMPLE)
    assert {three["ok1"]["id"], three["ok2"]["id"]} <= set(found) and three["bad"]["id"] not in found
    page = raw.get("/v1/runs", params={"q": "status_code:succeeded", "limit": 100, "sort_by": "created_at:desc"})
    assert_conforms(page.json(), "list_runs", nullable={"next_pq"})
    assert load("list_runs")["_route"].startswith("GET /v1/runs?q=status_code:succeeded")


def test_each_documented_operator_is_read(raw: httpx.Client, three: dict[str, Any]) -> None:
    ok1, ok2, bad = (three[k] for k in ("ok1", "ok2", "bad"))
    mine = f"(client_ref:{ok1['client_ref']} OR client_ref:{ok2['client_ref']} OR client_ref:{bad['client_ref']})"
    created = dt.datetime.fromisoformat(ok2["created_at"].replace("Z", "+00:00"))
    second_before = (created - dt.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    hour_after = (created + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ids(raw, f"client_ref:{ok1['client_ref']}") == [ok1["id"]]
    assert ids(raw, f"client_ref={ok1['client_ref']}") == [ok1["id"]]
    assert set(ids(raw, f"{mine} AND status_code:succeeded")) == {ok1["id"], ok2["id"]}
    assert ids(raw, f"{mine} AND NOT status_code:succeeded") == [bad["id"]]
    assert set(ids(raw, f"client_ref:{ok1['client_ref']} OR client_ref:{bad['client_ref']}")) == {ok1["id"], bad["id"]}
    assert ids(raw, f"{mine} AND created_at>{hour_after}") == []
    assert ok2["id"] in ids(raw, f"{mine} AND created_at>={second_before}")
    assert set(ids(raw, f"{mine} AND created_at<{hour_after}")) == {ok1["id"], ok2["id"], bad["id"]}
    assert ids(raw, f"{mine} AND created_at<=2026-04-01") == []
    assert set(ids(raw, f"{mine} AND cost>0")) == {ok1["id"], ok2["id"]}  # failed runs are not billed


@pytest.mark.parametrize("q", ["status_code:succeeded AND", "(status_code:succeeded", "colour:red",
                               "created_at>yesterday", "client_ref>abc", "OR status_code:failed"])
def test_a_bad_expression_answers_the_documented_422(raw: httpx.Client, q: str) -> None:
    answer = raw.get("/v1/runs", params={"q": q})
    assert answer.status_code == 422
    assert_conforms(answer.json(), "error_422")
    (problem,) = answer.json()["errors"]
    assert problem["field"] == "q" and problem["message"] and problem["fix"]
