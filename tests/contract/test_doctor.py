"""``rf.doctor()`` and ``runflow-nb doctor`` against the emulator: a healthy account, a refused key,
a low balance, a drifted model page (new enum value, changed limits, a new required input, a price),
an unreachable service, and offline without a key."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from typing import Any

import httpx
import pytest
from _documented import KEY, MODEL
from conftest import configure

import runflow_nb as rf
from runflow_nb.client import Client
from runflow_nb.diagnose import compare_inputs
from runflow_nb.emulator import EmulatorServer, serve
from runflow_nb.simulator.engine import Simulator
from runflow_nb.specs import get_spec


def page(server: EmulatorServer) -> dict[str, Any]:
    return httpx.get(f"{server.url}/v1/models/{MODEL}", headers={"Authorization": f"Bearer {KEY}"}).json()  # type: ignore[no-any-return]


def drifted(original: dict[str, Any]) -> dict[str, Any]:
    """The live page after the provider changed things."""
    p = copy.deepcopy(original)
    inputs = {i["name"]: i for i in p["inputs"]}
    inputs["resolution"]["validator_attrs"]["options"].append("4k")
    inputs["duration"]["validator_attrs"]["max"] = 10
    inputs["prompt"]["validator_attrs"]["max"] = 2000
    p["inputs"].append({"name": "style_preset", "display_name": "Style", "variable_type_code": "string",
                        "is_required": True, "default_value": None, "validator_code": None, "validator_attrs": {},
                        "sort_order": 99})
    p["pricing_note"] = "$0.16/s at 720p, $0.28/s at 1080p"
    return p


def test_a_healthy_account_is_ready(live: EmulatorServer) -> None:
    live.emulator.api_key = KEY
    report = rf.doctor(api_key=KEY, base_url=live.url)
    text = str(report)
    assert report.ok and not report.offline and not report.warnings, text
    assert [c.name for c in report.checks] == ["health", "key", "balance", "model"]
    assert "ready" in report.verdict() and "USD 10000.00 left" in text and "$" not in text


def test_a_refused_key_fails_with_what_to_do(live: EmulatorServer) -> None:
    live.emulator.api_key = "rf_live_the_real_one"
    report = rf.doctor(api_key="rf_live_a_wrong_key", base_url=live.url)
    key = next(c for c in report.checks if c.name == "key")
    assert not report.ok and key.level == "fail" and "RUNFLOW_API_KEY" in key.fix
    assert "rf_live_a_wrong_key" not in str(report)


def test_a_balance_below_one_clip_fails() -> None:
    with Simulator(latency=0.1, balance_usd=1.0) as sim, serve(port=0, simulator=sim) as server:
        report = rf.doctor(api_key=KEY, base_url=server.url)
    balance = next(c for c in report.checks if c.name == "balance")
    assert balance.level == "fail" and "USD 1.00" in balance.message and "credit" in balance.fix


def test_a_drifted_model_page_is_reported_finding_by_finding(live: EmulatorServer) -> None:
    configure(live, model_pages={MODEL: drifted(page(live))})
    report = rf.doctor(api_key=KEY, base_url=live.url)
    model = [c for c in report.checks if c.name == "model"]
    text = str(report)
    assert not report.ok, text
    by = {c.message.split(":")[0].split(" ")[0]: c for c in model}
    assert any("new value" in c.message and "'4k'" in c.message and c.level == "warn" for c in model), text
    assert any("duration" in c.message and "maximum is now 10" in c.message and c.level == "fail" for c in model)
    assert any("prompt" in c.message and "2000 characters" in c.message and c.level == "fail" for c in model)
    assert any("new required input 'style_preset'" in c.message and c.level == "fail" for c in model)
    assert any("price at 720p" in c.message for c in model)
    assert all(c.fix for c in model), "every finding says what to do"
    assert by and "NOT READY" in text


def test_the_cli_prints_the_report_and_fails_on_drift(live: EmulatorServer) -> None:
    env = {**os.environ, "RUNFLOW_API_KEY": KEY, "RUNFLOW_BASE_URL": live.url, "PYTHONPATH": os.getcwd()}
    env.pop("RUNFLOW_BACKEND", None)
    ok = subprocess.run([sys.executable, "-m", "runflow_nb.cli", "doctor"], env=env, capture_output=True, text=True,
                        timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ready" in ok.stdout and KEY not in ok.stdout + ok.stderr
    configure(live, model_pages={MODEL: drifted(page(live))})
    bad = subprocess.run([sys.executable, "-m", "runflow_nb.cli", "doctor", "--json"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 1
    data = json.loads(bad.stdout)
    assert data["ok"] is False and any(c["level"] == "fail" and c["name"] == "model" for c in data["checks"])


def test_offline_it_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNFLOW_API_KEY", raising=False)
    report = rf.doctor()
    assert report.offline and report.ok and "offline" in str(report) and "RUNFLOW_API_KEY" in str(report)


def test_an_unreachable_service_is_named() -> None:
    report = rf.doctor(client=Client(api_key=KEY, base_url="http://127.0.0.1:9", max_retries=0))
    health = report.checks[0]
    assert health.name == "health" and health.level == "fail" and "127.0.0.1:9" in health.message
    assert report.offline and not report.ok


def test_the_generated_page_matches_every_built_in_spec() -> None:
    from runflow_nb.emulator.catalog import model_detail
    from runflow_nb.specs import SPECS

    for spec in SPECS.values():
        assert [f for f in compare_inputs(spec, model_detail(spec)["inputs"]) if f[0] != "info"] == [], spec.model
    assert compare_inputs(get_spec(MODEL), []) and all(f[0] == "warn" for f in compare_inputs(get_spec(MODEL), []))
