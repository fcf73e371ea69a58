"""The test hooks under ``/_emulator/`` (no auth): the ledger, the counters and the settings.

``GET /_emulator/ledger`` answers what the server made and billed, for "no client_ref made twice,
billed == stored" checks: ``billed`` (one entry per billed run: ``run_id``, ``client_ref``,
``cost``, ``cost_usd``, ...), ``count``, ``total_usd``, ``creates`` (the journal: one entry per
create request, with ``via`` created/replayed/conflict and ``answer`` 201/409/drop/create500/
create500kept), ``runs_made``, ``by_client_ref`` (``{ref: {made, billed, billed_usd, run_ids,
other_callers}}``) and ``made_twice`` (the client_refs with more than one run). Runs the ``dupref``
fault makes for "another caller" are counted apart (``other_callers`` per ref, and their ids in
``other_callers``), never in ``made``, ``billed`` per ref or ``runs_made``; ``billed``, ``count``
and ``total_usd`` are everything the server billed, theirs included.

``POST /_emulator/config`` changes any of: ``latency``, ``faults``, ``idempotency`` (true: key
replay on every route, false: none), ``key_replay``, ``list_lag_s``, ``get_lag_s``, ``batches``,
``list_ignores_filters``, ``list_page_cap``, ``cancel_spelling``, ``list_cursor_style``,
``model_pages``; it answers the settings in force.
"""

from __future__ import annotations

from typing import Any

import httpx

from .base import EmulatorBase, lag_seconds, replay_mode
from .faults import nonneg
from .wire import HTTPError, json_body, json_response

__all__ = ["HookRoutes"]


class HookRoutes(EmulatorBase):
    """``GET /_emulator/ledger``, ``GET /_emulator/stats``, ``POST /_emulator/config``."""

    def ledger_view(self) -> dict[str, Any]:
        """What ``GET /_emulator/ledger`` answers (see the module's doc)."""
        billed = self.simulator.ledger()
        made, others = self.state.made_runs()
        by_ref: dict[str, dict[str, Any]] = {}

        def entry(ref: str) -> dict[str, Any]:
            return by_ref.setdefault(ref, {"made": 0, "billed": 0, "billed_usd": 0.0, "run_ids": [],
                                           "other_callers": 0})

        for run_id, ref in made.items():
            if ref is not None:
                if run_id in others:
                    entry(ref)["other_callers"] += 1
                else:
                    entry(ref)["made"] += 1
                    entry(ref)["run_ids"].append(run_id)
        for e in billed:
            if e.get("client_ref") is not None and e["run_id"] not in others:
                entry(e["client_ref"])["billed"] += 1
                entry(e["client_ref"])["billed_usd"] = round(entry(e["client_ref"])["billed_usd"] + e["cost_usd"], 2)
        return {"billed": billed, "count": len(billed), "total_usd": round(sum(e["cost_usd"] for e in billed), 2),
                "creates": self.state.creates(), "runs_made": len(made) - len(others), "by_client_ref": by_ref,
                "made_twice": sorted(ref for ref, e in by_ref.items() if e["made"] > 1),
                "other_callers": sorted(others)}

    def settings(self) -> dict[str, Any]:
        """The settings ``POST /_emulator/config`` can change, as they stand."""
        return {"latency": self.latency, "faults": str(self.faults), "idempotency": self.idempotency,
                "key_replay": self.key_replay, "list_lag_s": self.list_lag_s, "get_lag_s": self.get_lag_s,
                "batches": self.batches, "list_ignores_filters": self.list_ignores_filters,
                "list_page_cap": self.list_page_cap, "cancel_spelling": self.cancel_spelling,
                "list_cursor_style": self.list_cursor_style, "model_pages": sorted(self.model_pages)}

    def _ep_ledger(self, request: httpx.Request, request_id: str) -> httpx.Response:
        return json_response(200, self.ledger_view())

    def _ep_stats_endpoint(self, request: httpx.Request, request_id: str) -> httpx.Response:
        return json_response(200, self.stats())

    def _ep_config(self, request: httpx.Request, request_id: str) -> httpx.Response:
        body = json_body(request)
        try:
            self.configure(body)
        except (TypeError, ValueError) as exc:
            raise HTTPError(422, "VALIDATION_ERROR", str(exc)) from None
        return json_response(200, self.settings())

    def configure(self, body: dict[str, Any] | None = None, **settings: Any) -> dict[str, Any]:
        """Apply the settings in ``body`` and/or keyword arguments, as ``POST /_emulator/config`` does
        (all checked before any is applied; ValueError names the bad one); returns the settings in force.

        >>> emulator.configure(list_lag_s=20, key_replay="creates")          # doctest: +SKIP
        """
        body = {**(body or {}), **settings}
        known = set(self.settings())
        unknown = sorted(set(body) - known)
        if unknown:
            raise ValueError(f"unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(known))}")
        changes: dict[str, Any] = {}
        if "latency" in body:
            changes["latency"] = nonneg(float(body["latency"]))
        if "faults" in body:
            from .faults import FaultPlan

            changes["faults"] = FaultPlan.parse(body["faults"])
        for flag in ("batches", "list_ignores_filters"):
            if flag in body:
                if not isinstance(body[flag], bool):
                    raise ValueError(f"{flag} must be true or false")
                changes[flag] = body[flag]
        if "idempotency" in body:
            if not isinstance(body["idempotency"], bool):
                raise ValueError("idempotency must be true or false (or set key_replay)")
            changes["key_replay"] = replay_mode(body["idempotency"])
        if "key_replay" in body:
            if "idempotency" in body and replay_mode(body["key_replay"]) != changes["key_replay"]:
                raise ValueError("idempotency and key_replay disagree: send key_replay only")
            changes["key_replay"] = replay_mode(body["key_replay"])
        for lag in ("list_lag_s", "get_lag_s"):
            if lag in body:
                changes[lag] = lag_seconds(body[lag], lag)
        if "list_page_cap" in body:
            cap = body["list_page_cap"]
            if cap is not None and (type(cap) is not int or cap < 1):
                raise ValueError("list_page_cap must be a positive integer or null")
            changes["list_page_cap"] = cap
        if "cancel_spelling" in body:
            if body["cancel_spelling"] not in ("canceled", "cancelled"):
                raise ValueError("cancel_spelling must be 'canceled' or 'cancelled'")
            changes["cancel_spelling"] = body["cancel_spelling"]
        if "list_cursor_style" in body:
            if body["list_cursor_style"] not in ("next_pq", "next"):
                raise ValueError("list_cursor_style must be 'next_pq' or 'next'")
            changes["list_cursor_style"] = body["list_cursor_style"]
        if "model_pages" in body:
            pages = body["model_pages"]
            if not isinstance(pages, dict) or not all(isinstance(v, dict) for v in pages.values()):
                raise ValueError("model_pages must map model ids to model detail objects")
            changes["model_pages"] = dict(pages)
        for name, value in changes.items():
            setattr(self, name, value)
        return self.settings()
