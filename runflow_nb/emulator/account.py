"""Routes for the account and the catalogue: balance, the key's identity, health, model pages."""

from __future__ import annotations

import time

import httpx

from ..simulator.engine import ORG_ID, iso_utc
from .base import EmulatorBase
from .catalog import model_detail
from .wire import json_response, spec_for

__all__ = ["AccountRoutes"]


class AccountRoutes(EmulatorBase):
    """``GET /v1/billing/balance``, ``GET /v1/auth/me``, ``GET /v1/health``, ``GET /v1/models/{id}``."""

    def _ep_balance(self, request: httpx.Request, request_id: str) -> httpx.Response:
        return json_response(200, {"balance": f"{self.simulator.balance():.4f}", "low_balance_threshold": "5.0000",
                                   "org_id": ORG_ID, "currency": "USD"})

    def _ep_model_detail(self, request: httpx.Request, request_id: str, *, model: str) -> httpx.Response:
        spec = spec_for(model)
        page = self.model_pages.get(spec.model)
        return json_response(200, page if page is not None else model_detail(spec.model))

    def _ep_me(self, request: httpx.Request, request_id: str) -> httpx.Response:
        """200 confirms the key (the only documented part). The identity names the same org as the
        runs and the balance (``org_id``), or the one ``X-Organization-Id`` asks for; never the key."""
        org = request.headers.get("x-organization-id") or ORG_ID
        return json_response(200, {"id": "usr_emulator", "email": "emulator@runflow-nb.invalid",
                                   "name": "runflow_nb emulator", "org_id": org, "organization_id": org,
                                   "authenticated": True})

    def _ep_health(self, request: httpx.Request, request_id: str) -> httpx.Response:
        return json_response(200, {"status": "ok", "emulator": True, "time": iso_utc(time.time())})
