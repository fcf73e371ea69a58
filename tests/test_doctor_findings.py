"""``runflow-nb doctor`` never reassures falsely: a refused key or a model the key cannot use is a
FAIL (exit 1), a balance it cannot read is a clear finding (never a traceback), and a 1080p price
written the way the docs write prices ("resolution: $0.28/second") is compared with the toolkit's."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _scripted import Scripted, answer

import runflow_nb as rf
from runflow_nb.diagnose import DoctorReport
from runflow_nb.emulator import serve
from runflow_nb.emulator.catalog import model_detail
from runflow_nb.specs import get_spec

KEY = "rf_test_doctor_findings"
MODEL = "alibaba/happy-horse/reference-to-video"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def live() -> Iterator[tuple[Scripted, str]]:
    emu = Scripted(latency=0.05)
    try:
        with serve(emulator=emu) as server:
            yield emu, server.url
    finally:
        emu.close()


def _on(path: str, status: int, body: Any) -> Any:
    def hook(request: httpx.Request) -> httpx.Response | None:
        return answer(status, body) if request.url.path == path else None
    return hook


def _cli(url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RUNFLOW_API_KEY": KEY, "RUNFLOW_BASE_URL": url, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "runflow_nb.cli", "doctor"], env=env, capture_output=True, text=True,
                          timeout=120)


def _levels(report: DoctorReport, name: str) -> list[str]:
    return [c.level for c in report.checks if c.name == name]


@pytest.mark.parametrize(("path", "status", "code"), [
    ("/v1/billing/balance", 401, "UNAUTHORIZED"),
    ("/v1/billing/balance", 403, "PERMISSION_DENIED"),
    (f"/v1/models/{MODEL}", 403, "PERMISSION_DENIED"),
    (f"/v1/models/{MODEL}", 401, "UNAUTHORIZED"),
])
def test_a_key_refused_on_the_balance_or_the_model_page_is_a_failure(
        live: tuple[Scripted, str], path: str, status: int, code: str) -> None:
    emu, url = live
    emu.before.append(_on(path, status, {"code": code, "message": "no", "errors": None}))
    report = rf.doctor(api_key=KEY, base_url=url)
    name = "balance" if "billing" in path else "model"
    assert not report.ok and "fail" in _levels(report, name), str(report)
    assert "NOT READY" in str(report)
    done = _cli(url)
    assert done.returncode == 1 and "NOT READY" in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize("balance", ["NaN", "Infinity", "-Infinity", "1e30", "sNaN", "twelve", "", None, True,
                                     ["1.00"], {"amount": "1.00"}])
def test_an_unreadable_balance_is_a_clear_finding_never_a_traceback(live: tuple[Scripted, str], balance: Any) -> None:
    emu, url = live
    emu.before.append(_on("/v1/billing/balance", 200, {"balance": balance, "low_balance_threshold": "NaN"}))
    report = rf.doctor(api_key=KEY, base_url=url)
    (check,) = [c for c in report.checks if c.name == "balance"]
    assert check.level == "warn" and "no readable amount" in check.message and check.fix
    done = _cli(url)
    assert "Traceback" not in done.stderr and "no readable amount" in done.stdout, done.stderr


@pytest.mark.parametrize(("note", "changed"), [
    ("Price: $0.14/s at 720p; pricing rules: resolution: $0.28/second", False),
    ("Price: $0.14/s at 720p; pricing rules: resolution: $0.35/second", True),
    ("resolution: 0.35 USD per second", True),
])
def test_a_1080p_price_written_as_the_docs_write_it_is_compared(live: tuple[Scripted, str], note: str,
                                                                changed: bool) -> None:
    emu, url = live
    spec = get_spec(MODEL)
    emu.model_pages = {MODEL: {**model_detail(spec), "pricing_note": note}}
    report = rf.doctor(api_key=KEY, base_url=url)
    prices = [c for c in report.checks if c.name == "model" and "price at 1080p" in c.message]
    assert bool(prices) is changed, str(report)
    if changed:
        assert "USD 0.35/s on the model page" in prices[0].message and "USD 0.28/s" in prices[0].message
