"""Batch and identity answers as the API page documents them, over real HTTP on loopback.

The page: a batch create answers ``{id, status_code, items_total, items_succeeded, items_failed,
items_cancelled, items: [{id, sequence_index, run_id, status_code, client_ref}], cost, ...}``;
``GET /v1/batches/{id}`` the same; ``GET /v1/batches/{id}/items`` "each item with its full run";
``GET /v1/auth/me`` answers 200 for a good key (and the documented 401 for none)."""

from __future__ import annotations

import time

import httpx
from _documented import MODEL, assert_conforms, load, payload
from test_wire import RUN_NULLABLE, data_uri, png_bytes

ITEM_KEYS = {"id", "sequence_index", "run_id", "status_code", "client_ref"}
BATCHES = f"/v1/models/{MODEL}/batches"


def documented_body(n: int) -> dict[str, object]:
    example = payload("batch_request")
    item = {**example["input"][0], "image_urls": [data_uri(png_bytes())], "duration": 3, "resolution": "720p"}
    return {**example, "input": [{**item, "prompt": "character1 trots", "seed": i, "client_ref": f"item-{i}"}
                                 for i in range(n)]}


def test_a_batch_answers_the_documented_shape_with_its_items(raw: httpx.Client) -> None:
    made = raw.post(BATCHES, json=documented_body(3))
    assert made.status_code == load("batch_201").get("_status", 201)
    batch = made.json()
    assert_conforms(batch, "batch_201", nullable={"cost"})
    assert [set(i) >= ITEM_KEYS for i in batch["items"]] == [True] * 3
    assert [(i["sequence_index"], i["client_ref"]) for i in batch["items"]] == [(k, f"item-{k}") for k in range(3)]
    assert batch["items_total"] == 3
    again = raw.get(f"/v1/batches/{batch['id']}").json()
    assert_conforms(again, "batch_201", nullable={"cost"})
    assert [i["run_id"] for i in again["items"]] == [i["run_id"] for i in batch["items"]]


def test_batch_items_each_carry_their_full_run(raw: httpx.Client) -> None:
    batch = raw.post(BATCHES, json=documented_body(2)).json()
    deadline = time.monotonic() + 120
    while raw.get(f"/v1/batches/{batch['id']}").json()["status_code"] not in ("succeeded", "partial_succeeded"):
        assert time.monotonic() < deadline, "the batch never finished"
        time.sleep(0.1)
    items = raw.get(f"/v1/batches/{batch['id']}/items").json()["items"]
    assert len(items) == 2
    for item, made in zip(items, batch["items"], strict=True):
        assert set(item) >= ITEM_KEYS and item["run_id"] == made["run_id"]
        run = item["run"]
        assert_conforms(run, "run_succeeded", nullable=RUN_NULLABLE | {"failure_code", "failure_message"})
        assert run["id"] == item["run_id"] and run["batch_id"] == batch["id"]
        assert run["client_ref"] == item["client_ref"] and run["status_code"] == item["status_code"]


def test_auth_me_confirms_the_key_and_refuses_none(raw: httpx.Client) -> None:
    me = raw.get("/v1/auth/me")
    assert me.status_code == 200 and isinstance(me.json(), dict)
    runs_org = raw.get("/v1/billing/balance").json().get("org_id")
    assert me.json()["org_id"] == runs_org
    bare = httpx.get(f"{raw.base_url}/v1/auth/me", timeout=30)
    assert bare.status_code == 401 and bare.json()["code"] == "UNAUTHORIZED"
    assert "rf_test" not in me.text  # the key is never echoed
