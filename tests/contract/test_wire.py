"""Request and answer shapes of every endpoint the client uses, pinned to the documented examples.

Written from the shared API page and its contract/*.json examples (vendored in documented/), run
against the emulator over real HTTP on loopback. Requests are the ones the library's own client
sent (recorded on the wire); answers are read raw.
"""

from __future__ import annotations

import io
import re
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from _documented import MODEL, Recorder, assert_conforms, load, payload, problems
from conftest import configure
from PIL import Image

from runflow_nb.client import Client
from runflow_nb.emulator import EmulatorServer

SUBMIT = f"/v1/models/{MODEL}/runs"
UUID_V7 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
RUN_NULLABLE = {"cost", "cost_breakdown", "metadata", "output", "started_at", "completed_at", "duration_ms"}


def png_bytes(size: tuple[int, int] = (800, 600), *, noise: bool = False) -> bytes:
    if noise:
        img = Image.fromarray(np.random.default_rng(7).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    else:
        img = Image.new("RGB", size, (120, 80, 200))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def data_uri(data: bytes) -> str:
    import base64

    return "data:image/png;base64," + base64.b64encode(data).decode()


def create_body(**inp: Any) -> dict[str, Any]:
    base = {"prompt": "character1 trots", "image_urls": [data_uri(png_bytes())], "duration": 3,
            "resolution": "720p"}
    return {"input": {**base, **inp}, "metadata": {"experiment": "contract"}, "client_ref": f"ref-{time.time_ns()}"}


def wait_done(raw: httpx.Client, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = raw.get(f"/v1/runs/{run_id}").json()
        if run["status_code"] in ("succeeded", "failed", "canceled", "cancelled", "partial_succeeded"):
            return run  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} did not end")


# --- runs -------------------------------------------------------------------------------------


def test_the_client_creates_runs_with_the_documented_request(recorded: tuple[Client, Recorder]) -> None:
    client, rec = recorded
    run = client.submit(prompt="character1 trots", images=[png_bytes()], duration=3, resolution="720p", seed=4)
    [sent] = rec.to("POST", "/runs")
    documented = load("create_run_request")
    assert sent.url.path == documented["_route"].split(" ", 1)[1]
    assert set(rec.json(sent)) <= set(payload("create_run_request")), "undocumented keys in the create body"
    body = rec.json(sent)
    assert set(body["input"]) <= set(documented["input"]) and body["client_ref"] == run.client_ref
    assert len(body["client_ref"]) <= 255 and isinstance(body["metadata"], dict)
    for header in documented["_headers"]:
        assert sent.headers.get(header), f"the create carries no {header} header"
    assert sent.headers["authorization"].startswith("Bearer ")


def test_create_answers_201_with_the_full_run_object(raw: httpx.Client) -> None:
    r = raw.post(SUBMIT, json=create_body(), headers={"Idempotency-Key": "full-object"})
    assert r.status_code == load("run_queued_201")["_status"]
    run = r.json()
    assert_conforms(run, "run_queued_201", nullable=RUN_NULLABLE)
    assert run["status_code"] == "queued" and UUID_V7.fullmatch(run["id"]), run["id"]


def test_a_run_reads_as_documented_when_it_succeeds(raw: httpx.Client) -> None:
    run = wait_done(raw, raw.post(SUBMIT, json=create_body(seed=42)).json()["id"])
    assert_conforms(run, "run_succeeded")
    assert isinstance(run["cost"], str) and float(run["cost"]) == pytest.approx(0.42)
    assert run["output"]["outputs"][0]["url"].startswith("http") and run["output"]["seed"] == 42


def test_a_failed_run_reads_as_documented(live: EmulatorServer, raw: httpx.Client) -> None:
    configure(live, faults="fail=1x")
    run = wait_done(raw, raw.post(SUBMIT, json=create_body()).json()["id"])
    assert_conforms(run, "run_failed")
    assert float(run["cost"]) == 0 and run["failure_code"]


def test_run_ids_are_uuid_v7_in_creation_order(raw: httpx.Client) -> None:
    ids = [raw.post(SUBMIT, json=create_body()).json()["id"] for _ in range(3)]
    assert all(UUID_V7.fullmatch(i) for i in ids)
    assert [i[:13] for i in ids] == sorted(i[:13] for i in ids)  # the leading 48 bits are the time


def test_statuses_list_the_documented_enum(raw: httpx.Client) -> None:
    codes = {item["code"] for item in raw.get("/v1/runs/statuses").json()["items"]}
    assert {"queued", "dispatching", "running", "succeeded", "failed", "canceled", "partial_succeeded"} <= codes


def test_logs_are_items(raw: httpx.Client) -> None:
    run_id = raw.post(SUBMIT, json=create_body()).json()["id"]
    items = raw.get(f"/v1/runs/{run_id}/logs").json()["items"]
    assert items and {"id", "run_id", "level_code", "message", "timestamp", "meta"} <= set(items[0])


# --- list / search ----------------------------------------------------------------------------


def test_the_list_answers_items_with_cursors(raw: httpx.Client) -> None:
    ref = f"listed-{time.time_ns()}"
    ids = [raw.post(SUBMIT, json={**create_body(), "client_ref": ref}).json()["id"] for _ in range(3)]
    raw.post(SUBMIT, json=create_body())
    page = raw.get("/v1/runs", params={"q": f"client_ref:{ref}", "limit": 2, "sort_by": "created_at:desc"}).json()
    assert_conforms(page, "list_runs", nullable={"next_pq"})
    assert [r["id"] for r in page["items"]] == ids[::-1][:2] and page["next_pq"]
    rest = raw.get("/v1/runs", params={"q": f"client_ref:{ref}", "limit": 2, "pq": page["next_pq"]}).json()
    assert [r["id"] for r in rest["items"]] == ids[:1] and rest["next_pq"] is None and rest["prev_pq"]
    assert raw.get("/v1/runs", params={"limit": 500}).status_code == 200
    assert raw.get("/v1/runs", params={"limit": 501}).status_code == 422


def test_the_list_ignores_an_undocumented_client_ref_parameter(raw: httpx.Client) -> None:
    """``client_ref=`` is not a documented list parameter: a client relying on it would see other runs."""
    ref = f"mine-{time.time_ns()}"
    raw.post(SUBMIT, json={**create_body(), "client_ref": ref})
    raw.post(SUBMIT, json=create_body())
    listed = raw.get("/v1/runs", params={"client_ref": ref}).json()["items"]
    assert len(listed) == 2 and {r["client_ref"] for r in listed} != {ref}


def test_the_client_looks_runs_up_with_q_and_pages_by_either_cursor(live: EmulatorServer,
                                                                  recorded: tuple[Client, Recorder]) -> None:
    client, rec = recorded
    run = client.submit(prompt="character1", images=[png_bytes()], duration=3, resolution="720p", seed=1,
                        client_ref="needle")
    for _ in range(3):
        client.submit(prompt="character1", images=[png_bytes()], duration=3, resolution="720p", seed=2)
    # the filter ignored and two runs a page: the needle (the oldest) is on the second page
    for style, cursor_key in (("next", "next"), ("next_pq", "next_pq")):
        configure(live, list_ignores_filters=True, list_cursor_style=style, list_page_cap=2)
        rec.sent.clear()
        found = client.find("needle")
        assert found is not None and found.id == run.id, style
        pages = rec.to("GET", "/v1/runs")
        assert len(pages) == 2, f"{style}: the client followed the {cursor_key} cursor once"
        first = pages[0]
        assert first.url.params["q"] == "client_ref:needle" and "client_ref" not in first.url.params
        assert int(first.url.params["limit"]) <= 500
        assert pages[1].url.params.get("pq"), "the second page is asked for by its pq cursor"
    configure(live, list_ignores_filters=False, list_cursor_style="next_pq", list_page_cap=None)
    assert client.find("needle").id == run.id  # type: ignore[union-attr]
    assert client.find("no-such-ref") is None


# --- uploads ----------------------------------------------------------------------------------


def test_the_client_uploads_in_the_three_documented_steps(live: EmulatorServer, recorded: tuple[Client, Recorder],
                                                          tmp_path: Path) -> None:
    client, rec = recorded
    big = png_bytes((1100, 900), noise=True)
    assert 2.5 * 2**20 <= len(big) < 10 * 2**20, len(big)  # a 2.5+ MiB PNG: above the inline threshold
    path = tmp_path / "big.png"
    path.write_bytes(big)
    result = client.generate(prompt="character1 gallops", images=[path], duration=3, resolution="720p", seed=3,
                             out_dir=tmp_path)
    assert result.video_path is not None and result.video_path.stat().st_size > 0
    [start] = rec.to("POST", "/v1/asset-uploads")
    assert rec.json(start) == {**payload("asset_upload_request"), "filename": rec.json(start)["filename"],
                               "size_bytes": len(big)}
    [put] = [r for r in rec.sent if r.method == "PUT"]
    assert "authorization" not in put.headers, "the presigned PUT must not carry the API key"
    assert put.headers["content-type"] == load("asset_put")["_headers"]["Content-Type"]
    assert put.content == big
    [confirm] = rec.to("POST", "/confirmations")
    assert rec.json(confirm) == payload("asset_confirmation_request")
    [create] = rec.to("POST", "/runs")
    sent_url = rec.json(create)["input"]["image_urls"][0]
    record = live.emulator.state.assets[confirm.url.path.split("/")[3]]
    assert record["status"] == "confirmed" and sent_url.startswith(live.url + "/assets/") and "signature=" in sent_url


def test_upload_answers_match_the_documented_examples(raw: httpx.Client) -> None:
    data = png_bytes()
    session = raw.post("/v1/asset-uploads", json={**payload("asset_upload_request"), "size_bytes": len(data)})
    assert session.status_code == load("asset_upload_session_201")["_status"]
    assert_conforms(session.json(), "asset_upload_session_201")
    put = httpx.put(session.json()["upload_url"], content=data, headers=load("asset_put")["_headers"])
    assert put.status_code < 300
    record = raw.post(f"/v1/asset-uploads/{session.json()['asset_id']}/confirmations",
                      json=payload("asset_confirmation_request"))
    assert record.status_code == load("asset_record_201")["_status"]
    assert_conforms(record.json(), "asset_record_201", nullable={"folder_id", "thumbnail_url"})
    again = raw.get(f"/v1/assets/{record.json()['id']}").json()
    assert_conforms(again, "asset_record_201", nullable={"folder_id", "thumbnail_url"})
    assert httpx.get(again["url"]).content == data
    assert any(t["mime_type"] == "image/png" for t in raw.get("/v1/assets/types").json()["items"])


def test_the_old_upload_field_names_are_refused(raw: httpx.Client) -> None:
    """``content_type``/``size`` are not the documented names: the real service answers 422."""
    r = raw.post("/v1/asset-uploads", json={"filename": "ref.png", "content_type": "image/png", "size": 100})
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} >= {"mime_type", "size_bytes"}


# --- errors, idempotency, account, catalogue ---------------------------------------------------


def test_error_envelopes(live: EmulatorServer, raw: httpx.Client) -> None:
    r404 = raw.get("/v1/runs/0193a8c2-0000-7000-8000-000000000000")
    assert r404.status_code == 404 and r404.json()["code"] == payload("error_404")["code"]
    assert_conforms(r404.json(), "error_404")
    r422 = raw.post(SUBMIT, json=create_body(duration=99))
    assert r422.status_code == 422 and isinstance(r422.json()["errors"], list) and r422.json()["errors"]
    configure(live, faults="429=1x")
    r429 = raw.get("/v1/billing/balance")
    assert r429.status_code == 429 and r429.json()["code"] == "RATE_LIMITED"
    assert "retry-after" not in r429.headers and not any(h.startswith("x-ratelimit") for h in r429.headers)
    configure(live, faults="429ra=1x,retry_after=2")
    assert raw.get("/v1/billing/balance").headers["retry-after"] == "2"  # the older docs' header, on request


def test_idempotency_key_replays_and_conflicts(raw: httpx.Client) -> None:
    body = create_body()
    first = raw.post(SUBMIT, json=body, headers={"Idempotency-Key": "k-replay"})
    again = raw.post(SUBMIT, json=body, headers={"Idempotency-Key": "k-replay"})
    assert first.status_code == again.status_code == 201 and again.json()["id"] == first.json()["id"]
    other = raw.post(SUBMIT, json={**body, "client_ref": "other"}, headers={"Idempotency-Key": "k-replay"})
    assert other.status_code == load("error_409_idempotency")["_status"]
    assert_conforms(other.json(), "error_409_idempotency")
    assert other.json()["code"] == "CONFLICT"
    listed = raw.get("/v1/runs", params={"q": f"client_ref:{body['client_ref']}"}).json()["items"]
    assert len(listed) == 1  # no second run
    no_key = raw.post(SUBMIT, json=body)
    assert no_key.status_code == 201 and no_key.json()["id"] != first.json()["id"]  # no header → no protection


def test_balance_is_a_decimal_string(raw: httpx.Client) -> None:
    balance = raw.get("/v1/billing/balance").json()
    assert_conforms(balance, "balance")
    assert re.fullmatch(r"-?\d+(\.\d+)?", balance["balance"])
    assert raw.get("/v1/auth/me").status_code == 200 and raw.get("/v1/health").json()["status"] == "ok"


def test_the_model_page_lists_inputs_as_documented(raw: httpx.Client) -> None:
    page = raw.get(f"/v1/models/{MODEL}").json()
    documented = payload("model_detail")
    assert not problems({**page, "inputs": []}, {**documented, "inputs": []})
    entry = documented["inputs"][0]  # the documented entry is duration's; every entry has its keys
    by_name = {i["name"]: i for i in page["inputs"]}
    assert all(set(entry) <= set(i) for i in page["inputs"]), [sorted(set(entry) - set(i)) for i in page["inputs"]]
    assert not problems(by_name["duration"], entry)
    assert {"prompt", "image_urls", "duration", "resolution", "aspect_ratio", "seed"} <= set(by_name)
    assert by_name["prompt"]["is_required"] and not by_name["duration"]["is_required"]
    assert by_name["duration"]["validator_attrs"] == {"min": 3, "max": 15} and by_name["duration"]["default_value"] == 5
    assert isinstance(page["pricing_note"], str) and "0.14" in page["pricing_note"]


# --- statuses the client must read --------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["canceled", "cancelled"])
def test_the_client_reads_both_cancel_spellings_as_terminal(live: EmulatorServer, recorded: tuple[Client, Recorder],
                                                            spelling: str) -> None:
    client, _ = recorded
    configure(live, faults="cancel=1x", cancel_spelling=spelling)
    run = client.submit(prompt="character1", images=[png_bytes()], duration=3, resolution="720p", seed=1)
    done = client.wait(run.id, timeout=60)
    assert done.status == "canceled" and done.done and not done.succeeded
    assert done.raw["status_code"] == spelling


def test_the_client_takes_partial_succeeded_with_its_outputs(live: EmulatorServer, recorded: tuple[Client, Recorder],
                                                             tmp_path: Path) -> None:
    client, _ = recorded
    configure(live, faults="partial=1x")
    result = client.generate(prompt="character1", images=[png_bytes()], duration=3, resolution="720p", seed=1,
                             out_dir=tmp_path)
    assert result.run.status == "partial_succeeded" and result.video_path is not None
    assert result.cost_usd == pytest.approx(0.42)  # cost parsed from the decimal string


# --- batches ------------------------------------------------------------------------------------


def test_batch_answers_match_the_documented_examples(live: EmulatorServer, raw: httpx.Client) -> None:
    item = {**create_body()["input"], "client_ref": "item-1"}
    request = {**payload("batch_request"), "input": [item, {**item, "seed": 2, "client_ref": "item-2"}]}
    r = raw.post(f"/v1/models/{MODEL}/batches", json=request)
    assert r.status_code == 201
    batch = r.json()
    assert_conforms(batch, "batch_201", nullable={"cost"})
    assert [i["client_ref"] for i in batch["items"]] == ["item-1", "item-2"]
    assert [i["sequence_index"] for i in batch["items"]] == [0, 1]
    for it in batch["items"]:
        wait_done(raw, it["run_id"])
    done = raw.get(f"/v1/batches/{batch['id']}").json()
    assert done["status_code"] == "succeeded" and done["items_succeeded"] == 2 and float(done["cost"]) > 0
    items = raw.get(f"/v1/batches/{batch['id']}/items").json()["items"]
    assert [i["run"]["client_ref"] for i in items] == ["item-1", "item-2"]
    assert all("client_ref" not in i["run"]["input"] for i in items)  # stripped before model validation
    configure(live, batches=False)
    refused = raw.post(f"/v1/models/{MODEL}/batches", json=request)
    assert refused.status_code == 422
    too_many = {**request, "input": [item] * 101}
    configure(live, batches=True)
    assert raw.post(f"/v1/models/{MODEL}/batches", json=too_many).status_code == 422
