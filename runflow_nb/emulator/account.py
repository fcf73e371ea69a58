"""Routes for the account: balance, the key's identity, health."""

from __future__ import annotations

import time

import httpx

from ..simulator import iso_utc
from .base import EmulatorBase
from .wire import json_response

__all__ = ["AccountRoutes"]


class AccountRoutes(EmulatorBase):
    """``GET /v1/billing/balance``, ``GET /v1/auth/me``, ``GET /v1/health``."""

    def _ep_balance(self, request: httpx.Request, request_id: str) -> httpx.Response:
        return json_response(200, {"balance": f"{self.simulator.balance():.2f}", "currency": "USD"})

    def _ep_me(self, request: httpx.Request, request_id: str) -> httpx.Response:
        org = request.headers.get("x-organization-id") or "org_emulator"
        return json_response(200, {"id": "usr_emulator", "email": "emulator@runflow-nb.invalid",
                                   "name": "runflow_nb emulator", "organization_id": org})

    def _ep_health(self, request: httpx.Request, request_id: str) -> httpx.Response:
        return json_response(200, {"status": "ok", "emulator": True, "time": iso_utc(time.time())})
