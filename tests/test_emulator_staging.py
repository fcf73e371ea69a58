"""The emulator stages what the docs leave open, over real HTTP on loopback: a run list that lags
(``list_lag_s``), a new run that answers 404 for a while (``get_lag_s``), Idempotency-Key honoured
on some routes only (``key_replay``), a 5xx after the run was made with and without a kept replay
(``create500`` / ``create500kept``), and the ledger that tells what was made and billed.

Lags run on the simulator's clock, injected here, so the tests move time instead of waiting for it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from runflow_nb.emulator import EmulatorServer, serve, spawn
from runflow_nb.simulator.engine import Simulator

T2V = "alibaba/happy-horse/text-to-video"
AUTH = {"Authorization": "Bearer rf_test_staging"}


def body(ref: str, seed: int = 1) -> dict[str, Any]:
    return {"input": {"prompt": "a horse trots", "duration": 3, "resolution": "720p", "seed": seed}, "client_ref": ref}


def batch_body(refs: list[str]) -> dict[str, Any]:
    return {"input": [{**body(ref, i)["input"], "client_ref": ref} for i, ref in enumerate(refs)]}


class Clock:
    """The simulator's clock: real time plus a shift the test moves."""

    def __init__(self) -> None:
        self.shift = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return time.time() + self.shift

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.shift += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def staged(clock: Clock) -> Iterator[tuple[EmulatorServer, httpx.Client]]:
    with Simulator(latency=0.05, clock=clock) as sim, serve(port=0, simulator=sim) as server, \
            httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as client:
        yield server, client


def config(client: httpx.Client, **settings: Any) -> dict[str, Any]:
    answer = client.post("/_emulator/config", json=settings)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def ledger(client: httpx.Client) -> dict[str, Any]:
    return client.get("/_emulator/ledger").json()  # type: ignore[no-any-return]


def listed(client: httpx.Client, **params: Any) -> list[str]:
    return [r["id"] for r in client.get("/v1/runs", params=params).json()["items"]]


# -- read-after-create lag -------------------------------------------------------------------------

def test_a_new_run_answers_404_run_not_found_until_get_lag_passes(staged: Any, clock: Clock) -> None:
    _, client = staged
    config(client, get_lag_s=30)
    created = client.post(f"/v1/models/{T2V}/runs", json=body("lag-get"))
    assert created.status_code == 201
    run_id = created.json()["id"]
    hidden = client.get(f"/v1/runs/{run_id}")
    assert hidden.status_code == 404
    assert hidden.json()["code"] == "RUN_NOT_FOUND" and hidden.json()["message"] and "errors" in hidden.json()
    assert client.get(f"/v1/runs/{run_id}/logs").status_code == 404
    clock.advance(29)
    assert client.get(f"/v1/runs/{run_id}").status_code == 404
    clock.advance(2)
    shown = client.get(f"/v1/runs/{run_id}")
    assert shown.status_code == 200 and shown.json()["id"] == run_id
    assert client.get("/_emulator/stats").json()["lag_404s"] == 3
    assert len(ledger(client)["by_client_ref"]["lag-get"]["run_ids"]) == 1  # hidden, never missing


def test_a_new_batch_and_its_items_answer_404_until_get_lag_passes(staged: Any, clock: Clock) -> None:
    _, client = staged
    config(client, get_lag_s=10)
    made = client.post(f"/v1/models/{T2V}/batches", json=batch_body(["b-0", "b-1"]))
    assert made.status_code == 201
    batch = made.json()
    for path in (f"/v1/batches/{batch['id']}", f"/v1/batches/{batch['id']}/items",
                 f"/v1/runs/{batch['items'][0]['run_id']}"):
        answer = client.get(path)
        assert answer.status_code == 404, path
    assert client.get(f"/v1/batches/{batch['id']}").json()["code"] == "BATCH_NOT_FOUND"
    clock.advance(11)
    assert client.get(f"/v1/batches/{batch['id']}").json()["items_total"] == 2
    items = client.get(f"/v1/batches/{batch['id']}/items").json()["items"]
    assert [i["run"]["client_ref"] for i in items] == ["b-0", "b-1"]


def test_get_lag_switched_off_at_runtime_shows_a_hidden_run_at_once(staged: Any) -> None:
    _, client = staged
    config(client, get_lag_s=3600)
    run_id = client.post(f"/v1/models/{T2V}/runs", json=body("switch")).json()["id"]
    assert client.get(f"/v1/runs/{run_id}").status_code == 404
    assert config(client, get_lag_s=0)["get_lag_s"] == 0
    assert client.get(f"/v1/runs/{run_id}").status_code == 200


# -- list lag --------------------------------------------------------------------------------------

def test_a_new_run_is_missing_from_every_list_until_list_lag_passes(staged: Any, clock: Clock) -> None:
    server, client = staged
    server.emulator.list_lag_s = 20  # the attribute, as Emulator(list_lag_s=...) sets it
    single = client.post(f"/v1/models/{T2V}/runs", json=body("lag-list")).json()["id"]
    batch = client.post(f"/v1/models/{T2V}/batches", json=batch_body(["lag-b0", "lag-b1"])).json()
    in_batch = [i["run_id"] for i in batch["items"]]
    queries: list[dict[str, Any]] = [{}, {"q": "client_ref:lag-list"}, {"q": "client_ref:lag-b0 OR client_ref:lag-b1"},
                                     {"q": "status_code:queued"}, {"limit": 1}, {"sort_by": "created_at:asc"}]
    for params in queries:
        assert listed(client, **params) == [], params
    assert client.get(f"/v1/runs/{single}").status_code == 200  # GET knows it; the list does not yet
    clock.advance(21)
    assert listed(client, q="client_ref:lag-list") == [single]
    assert sorted(listed(client, q="client_ref:lag-b0 OR client_ref:lag-b1")) == sorted(in_batch)
    assert listed(client, limit=1) == [in_batch[-1]]  # newest first, paged
    assert set(listed(client)) == {single, *in_batch}


def test_an_older_run_shows_while_a_newer_one_is_still_hidden(staged: Any, clock: Clock) -> None:
    _, client = staged
    config(client, list_lag_s=5)
    old = client.post(f"/v1/models/{T2V}/runs", json=body("old")).json()["id"]
    clock.advance(6)
    new = client.post(f"/v1/models/{T2V}/runs", json=body("new")).json()["id"]
    assert listed(client) == [old]
    clock.advance(6)
    assert listed(client) == [new, old]


# -- key replay per route --------------------------------------------------------------------------

def _upload() -> dict[str, Any]:
    return {"filename": "ref.png", "mime_type": "image/png", "size_bytes": 1000}


def _twice(client: httpx.Client, path: str, payload: dict[str, Any], key: str) -> tuple[httpx.Response, httpx.Response]:
    first = client.post(path, json=payload, headers={"Idempotency-Key": key})
    again = client.post(path, json=payload, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 201, (first.text, again.text)
    return first, again


def _same(first: httpx.Response, again: httpx.Response, field: str) -> bool:
    replayed = again.headers.get("Idempotent-Replayed") == "true"
    assert replayed == (first.json()[field] == again.json()[field])
    return replayed


ROUTES_REPLAYED = {  # mode -> (single-run create, batch create, asset upload) replayed?
    "all": (True, True, True),
    "creates": (True, True, False),
    "all_but_single_create": (False, True, True),
    "none": (False, False, False),
}


@pytest.mark.parametrize("mode", list(ROUTES_REPLAYED))
def test_key_replay_set_at_start_decides_which_routes_replay(mode: str) -> None:
    with serve(port=0, latency=0.05, key_replay=mode) as server, \
            httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as client:
        run = _same(*_twice(client, f"/v1/models/{T2V}/runs", body(f"k-{mode}"), f"run-{mode}"), "id")
        batch = _same(*_twice(client, f"/v1/models/{T2V}/batches", batch_body([f"kb-{mode}"]), f"batch-{mode}"), "id")
        upload = _same(*_twice(client, "/v1/asset-uploads", _upload(), f"upload-{mode}"), "asset_id")
        assert (run, batch, upload) == ROUTES_REPLAYED[mode]
        book = ledger(client)
        assert (book["made_twice"] == []) == (run and batch) and (book["runs_made"] == 2 + (not run) + (not batch))
        vias = [e["via"] for e in book["creates"]]
        assert vias.count("replayed") == run + batch + upload


def test_key_replay_switches_at_runtime_and_the_idempotency_switch_still_works(staged: Any) -> None:
    server, client = staged
    assert config(client, key_replay="all_but_single_create")["idempotency"] is True
    assert not _same(*_twice(client, f"/v1/models/{T2V}/runs", body("rt-1"), "rt-1"), "id")
    assert _same(*_twice(client, "/v1/asset-uploads", _upload(), "rt-probe"), "asset_id")  # a probe looks fine
    assert config(client, idempotency=False)["key_replay"] == "none"
    assert server.emulator.idempotency is False
    assert config(client, idempotency=True)["key_replay"] == "all"
    assert _same(*_twice(client, f"/v1/models/{T2V}/runs", body("rt-2"), "rt-2"), "id")
    assert ledger(client)["made_twice"] == ["rt-1"]


@pytest.mark.parametrize("settings", [{"key_replay": "sometimes"}, {"list_lag_s": -1}, {"get_lag_s": "soon"},
                                      {"get_lag_s": float("inf")}, {"idempotency": "yes"},
                                      {"idempotency": False, "key_replay": "all"}, {"list_lag": 3}])
def test_bad_staging_settings_are_refused_by_name(staged: Any, settings: dict[str, Any]) -> None:
    _, client = staged
    before = config(client)
    answer = client.post("/_emulator/config", content=json.dumps(settings), headers={"Content-Type": "application/json"})
    assert answer.status_code == 422
    assert any(name in answer.json()["message"] for name in settings)
    assert config(client) == before  # nothing half-applied


def test_the_cli_flags_set_the_staging_knobs() -> None:
    with spawn(latency=0.05, list_lag_s=2.5, get_lag_s=1.5, key_replay="creates") as (url, _proc):
        settings = httpx.post(f"{url}/_emulator/config", json={}, timeout=30).json()
    assert (settings["list_lag_s"], settings["get_lag_s"], settings["key_replay"]) == (2.5, 1.5, "creates")


# -- a 5xx after the create ------------------------------------------------------------------------

@pytest.mark.parametrize("route", ["runs", "batches"])
def test_create500_makes_the_run_and_keeps_nothing_so_a_resend_makes_another(staged: Any, route: str) -> None:
    _, client = staged
    config(client, faults="create500=1x")
    path, payload = ((f"/v1/models/{T2V}/runs", body("c500")) if route == "runs"
                     else (f"/v1/models/{T2V}/batches", batch_body(["c500"])))
    failed = client.post(path, json=payload, headers={"Idempotency-Key": "c500"})
    assert failed.status_code == 500 and failed.json()["code"] == "INTERNAL_ERROR"
    assert ledger(client)["by_client_ref"]["c500"]["made"] == 1  # made, though answered 500
    again = client.post(path, json=payload, headers={"Idempotency-Key": "c500"})
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    book = ledger(client)
    assert book["made_twice"] == ["c500"] and book["runs_made"] == 2
    assert [e["answer"] for e in book["creates"]] == ["create500", "201"]


@pytest.mark.parametrize("route", ["runs", "batches"])
def test_create500kept_makes_the_run_and_a_resend_under_the_key_replays_it(staged: Any, route: str) -> None:
    _, client = staged
    config(client, faults="create500kept=1x")
    path, payload = ((f"/v1/models/{T2V}/runs", body("kept")) if route == "runs"
                     else (f"/v1/models/{T2V}/batches", batch_body(["kept", "kept-2"])))
    failed = client.post(path, json=payload, headers={"Idempotency-Key": "kept"})
    assert failed.status_code == 500
    again = client.post(path, json=payload, headers={"Idempotency-Key": "kept"})
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    book = ledger(client)
    assert book["made_twice"] == [] and book["runs_made"] == (1 if route == "runs" else 2)
    assert [(e["via"], e["answer"]) for e in book["creates"]] == [("created", "create500kept"), ("replayed", "201")]
    made = book["by_client_ref"]["kept"]["run_ids"]
    shown = again.json()["id"] if route == "runs" else again.json()["items"][0]["run_id"]
    assert made == [shown]


def test_create500kept_without_a_key_makes_a_second_run_on_resend(staged: Any) -> None:
    _, client = staged
    config(client, faults="create500kept=1x")
    assert client.post(f"/v1/models/{T2V}/runs", json=body("nokey")).status_code == 500
    assert client.post(f"/v1/models/{T2V}/runs", json=body("nokey")).status_code == 201
    assert ledger(client)["made_twice"] == ["nokey"]


# -- the ledger ------------------------------------------------------------------------------------

def test_the_ledger_ties_each_billed_run_to_its_client_ref_and_cost(staged: Any, clock: Clock) -> None:
    _, client = staged
    ids = [client.post(f"/v1/models/{T2V}/runs", json=body(f"led-{i}", i)).json()["id"] for i in range(3)]
    deadline = time.monotonic() + 120
    while len(ledger(client)["billed"]) < 3:
        assert time.monotonic() < deadline, "the runs never finished"
        clock.advance(1)
        time.sleep(0.05)
    book = ledger(client)
    assert {e["run_id"]: (e["client_ref"], e["cost"]) for e in book["billed"]} == {
        run_id: (f"led-{i}", "0.42") for i, run_id in enumerate(ids)}
    assert book["by_client_ref"]["led-1"] == {"made": 1, "billed": 1, "billed_usd": 0.42, "run_ids": [ids[1]],
                                              "other_callers": 0}
    assert book["total_usd"] == 1.26 and book["count"] == 3 and book["made_twice"] == []


@pytest.mark.parametrize("kwargs, names", [({"list_lag_s": -1}, "list_lag_s"), ({"get_lag_s": float("nan")}, "get_lag_s"),
                                           ({"key_replay": "bogus"}, "key_replay"),
                                           ({"idempotency": False, "key_replay": "all"}, "key_replay")])
def test_bad_staging_keywords_are_refused_at_start(kwargs: dict[str, Any], names: str) -> None:
    from runflow_nb.emulator import Emulator

    with pytest.raises(ValueError, match=names):
        Emulator(latency=0.05, **kwargs)


def test_the_staging_keywords_are_read_at_start() -> None:
    from runflow_nb.emulator import Emulator

    with Emulator(latency=0.05, list_lag_s=3, get_lag_s=2.5, key_replay="creates") as emu:
        assert (emu.list_lag_s, emu.get_lag_s, emu.key_replay, emu.idempotency) == (3.0, 2.5, "creates", True)
    with Emulator(latency=0.05, idempotency=False) as emu:
        assert emu.key_replay == "none"


def test_another_callers_run_under_the_same_client_ref_is_counted_apart(staged: Any) -> None:
    _, client = staged
    config(client, faults="dupref=1x")
    mine = client.post(f"/v1/models/{T2V}/runs", json=body("shared")).json()["id"]
    book = ledger(client)
    assert book["by_client_ref"]["shared"]["made"] == 1 and book["by_client_ref"]["shared"]["run_ids"] == [mine]
    assert book["by_client_ref"]["shared"]["other_callers"] == 1 and len(book["other_callers"]) == 1
    assert book["made_twice"] == [] and book["runs_made"] == 1
    listed_refs = [r["client_ref"] for r in client.get("/v1/runs", params={"q": "client_ref:shared"}).json()["items"]]
    assert listed_refs == ["shared", "shared"]  # the list shows both, as a real server would
