"""Runflow's HTTP contract, in-process (MockTransport) and on a real loopback socket, with every fault."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.client
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
import requests
from PIL import Image

from runflow_nb.emulator import FAULT_KINDS, Emulator, EmulatorServer, FaultPlan, emulator_main, serve
from runflow_nb.errors import ValidationError
from runflow_nb.simulator.engine import Simulator

AUTH = {"Authorization": "Bearer rf_test_key"}
SUBMIT = "/v1/models/alibaba/happy-horse/reference-to-video/runs"
UUID_V7 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
BLOCKING = "/v1/run/happy-horse/reference-to-video"
ROOT = Path(__file__).resolve().parents[1]

MODEL_PAGE_SNIPPET = '''
import requests
response = requests.post(
    "https://api.runflow.io/v1/run/happy-horse/reference-to-video",
    headers={"Authorization": "Bearer YOUR_API_KEY", "Content-Type": "application/json"},
    json={
        "prompt": "character1 and character2 dance in the rain",
        "image_urls": ["https://example.com/character1.png", "https://example.com/character2.png"],
        "aspect_ratio": "16:9",
        "duration": 5,
        "resolution": "1080p",
    },
)
data = response.json()
print(data["video"]["url"])
'''


def image_bytes(size: tuple[int, int] = (800, 600), fmt: str = "PNG", color: Any = (200, 80, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, fmt)
    return buf.getvalue()


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


PNG_URI = data_uri(image_bytes())


def body(**input_overrides: Any) -> dict[str, Any]:
    inp = {"prompt": "character1 gallops", "image_urls": [PNG_URI], "duration": 3, "resolution": "720p"}
    return {"input": {**inp, **input_overrides}, "client_ref": "test-ref"}


def probe_mp4(data: bytes) -> dict[str, Any]:
    with av.open(io.BytesIO(data)) as c:
        v = c.streams.video[0]
        frame = next(c.decode(video=0))
        return {"codec": v.codec_context.name, "size": (frame.width, frame.height),
                "duration": float(v.duration * v.time_base), "audio": [a.codec_context.name for a in c.streams.audio]}


def fake_renderer(images: Any, *, dest: Any, seed: int, **kw: Any) -> Path:
    Path(dest).write_bytes(f"not a video; seed={seed}".encode() * 100)
    return Path(dest)


def wait_done(client: httpx.Client, run_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run = client.get(f"/v1/runs/{run_id}").json()
        if run["status_code"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return run
        time.sleep(0.03)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("emu")  # shared: the render cache is reused across tests


@pytest.fixture
def make_emulator(workdir: Path) -> Iterator[Any]:
    made: list[Simulator] = []

    def make(**kw: Any) -> Emulator:
        sim = Simulator(latency=kw.pop("latency", 0.05), workdir=workdir, url_ttl_s=kw.pop("url_ttl_s", 3600),
                        clock=kw.pop("clock", time.time), renderer=kw.pop("renderer", None))
        made.append(sim)
        return Emulator(simulator=sim, **kw)

    yield make
    for sim in made:
        sim.close()


def mock_client(emulator: Emulator, **kw: Any) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(emulator.handle), base_url="https://api.runflow.io",
                        headers=AUTH, **kw)


@pytest.fixture(scope="module")
def server(workdir: Path) -> Iterator[EmulatorServer]:
    sim = Simulator(latency=0.1, workdir=workdir)
    with serve(port=0, emulator=Emulator(simulator=sim)) as srv:
        yield srv
    sim.close()


# --- the happy path -----------------------------------------------------------------------------


def test_submit_poll_download_in_process(make_emulator: Any) -> None:
    emu = make_emulator(latency=0.1)
    with mock_client(emu) as client:
        r = client.post(SUBMIT, json=body(), headers={"X-Organization-Id": "org_1"})
        assert r.status_code == 201 and r.json()["status_code"] == "queued" and r.headers["x-request-id"]
        run = wait_done(client, r.json()["id"])
        assert run["status_code"] == "succeeded" and run["cost"] == "0.42" and run["client_ref"] == "test-ref"
        video = run["output"]["outputs"][0]
        assert video["url"].startswith("http://127.0.0.1/files/")
        download = client.get(video["url"], headers={"Authorization": ""})  # presigned: no key needed
        assert download.status_code == 200 and download.headers["content-type"] == "video/mp4"
        assert len(download.content) == video["size"]
        info = probe_mp4(download.content)
        assert info["codec"] == "h264" and info["size"] == (1280, 720) and info["audio"] == ["aac"]
        assert abs(info["duration"] - 3) <= 0.1


def test_submit_poll_download_over_loopback(server: EmulatorServer) -> None:
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        r = client.post(SUBMIT, json=body(aspect_ratio="9:16", seed=42))
        assert r.status_code == 201
        run = wait_done(client, r.json()["id"])
        assert run["status_code"] == "succeeded" and run["output"]["seed"] == 42
        url = run["output"]["outputs"][0]["url"]
        assert url.startswith(server.url + "/files/")
        info = probe_mp4(httpx.get(url).content)
        assert info["size"] == (720, 1280) and abs(info["duration"] - 3) <= 0.1 and info["audio"] == ["aac"]
        logs = client.get(f"/v1/runs/{run['id']}/logs").json()["items"]
        assert logs[0]["message"].startswith("queued") and logs[0]["run_id"] == run["id"]


def test_async_client_over_mock_transport(make_emulator: Any) -> None:
    emu = make_emulator(latency=0.05)

    async def main(handler: Any) -> list[str]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://emu",
                                     headers=AUTH) as client:
            runs = await asyncio.gather(*(client.post(SUBMIT, json=body(seed=i)) for i in range(3)))
            statuses = []
            for r in runs:
                while (run := (await client.get(f"/v1/runs/{r.json()['id']}")).json())["status_code"] not in (
                        "succeeded", "failed"):
                    await asyncio.sleep(0.03)
                statuses.append(run["status_code"])
                assert (await client.get(run["output"]["outputs"][0]["url"])).status_code == 200
            return statuses

    assert asyncio.run(main(emu.handle)) == ["succeeded"] * 3
    assert asyncio.run(main(emu.ahandle)) == ["succeeded"] * 3


def test_the_model_page_snippet_runs_unchanged_against_the_live_server(server: EmulatorServer) -> None:
    code = MODEL_PAGE_SNIPPET.replace("https://api.runflow.io", server.url)
    out = io.StringIO()
    t0 = time.monotonic()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "model_page_snippet", "exec"), {})
    assert time.monotonic() - t0 < 30  # example.com is never waited on
    url = out.getvalue().strip()
    assert url.startswith(server.url + "/files/") and url.endswith(".mp4")
    download = requests.get(url, timeout=30)
    assert download.status_code == 200
    info = probe_mp4(download.content)
    assert info["size"] == (1920, 1080) and abs(info["duration"] - 5) <= 0.1 and info["audio"] == ["aac"]
    run_id = url.rsplit("/", 1)[-1].removesuffix(".mp4")
    logs = httpx.get(f"{server.url}/v1/runs/{run_id}/logs", headers=AUTH).json()["items"]
    assert sum("placeholder" in entry["message"] for entry in logs) == 2


def test_the_blocking_path_answers_the_model_page_shape(server: EmulatorServer) -> None:
    r = httpx.post(server.url + BLOCKING, headers=AUTH, timeout=30,
                   json={"prompt": "character1 naps", "image_urls": [PNG_URI], "duration": 3, "resolution": "720p",
                         "seed": 9, "future_option": True})
    data = r.json()
    assert r.status_code == 200 and set(data) >= {"video", "seed", "timing", "nsfw_detected", "id", "cost"}
    assert data["seed"] == 9 and data["cost"] == "0.42" and data["video"]["width"] == 1280
    assert httpx.get(f"{server.url}/v1/runs/{data['id']}", headers=AUTH).json()["status_code"] == "succeeded"


# --- validation ---------------------------------------------------------------------------------


def test_a_multi_error_input_gets_one_422_naming_every_field(make_emulator: Any) -> None:
    emu = make_emulator(offline_images="reject")
    bad = {
        "input": {
            "prompt": "character6 and character10 " + "x" * 2500,
            "image_urls": [data_uri(image_bytes((300, 300))), data_uri(image_bytes(fmt="GIF"), "image/gif"),
                           "data:image/png;base64,@@@", "ftp://x/y.png", 7],
            "aspect_ratio": "21:9", "duration": 5.5, "resolution": "1080P", "seed": -1,
            "enable_safety_checker": "yes",
        },
        "client_ref": "r" * 256, "metadata": [1], "callback_url": "not a url",
    }
    with mock_client(emu) as client:
        r = client.post(SUBMIT, json=bad)
    assert r.status_code == 422
    env = r.json()
    assert env["code"] == "VALIDATION_ERROR" and env["message"] and env["request_id"]
    fields = {e["field"] for e in env["errors"]}
    assert fields == {"prompt", "image_urls[0]", "image_urls[1]", "image_urls[2]", "image_urls[3]", "image_urls[4]",
                      "aspect_ratio", "duration", "resolution", "seed", "enable_safety_checker", "client_ref",
                      "metadata", "callback_url"}
    prompt_msgs = " ".join(e["message"] for e in env["errors"] if e["field"] == "prompt")
    assert "2500" in prompt_msgs and "character6" in prompt_msgs and "character10" in prompt_msgs
    assert all(e["message"] and e["fix"] for e in env["errors"])
    assert emu.simulator.counts()["runs"] == 0


def _bomb_png() -> bytes:
    buf = io.BytesIO()
    Image.new("1", (12_000, 12_000)).save(buf, "PNG")  # 144 Mpx, a few kB
    return buf.getvalue()


@pytest.mark.parametrize(("case", "make", "needle"), [
    ("too small", lambda: data_uri(image_bytes((399, 800))), "at least 400"),
    ("gif", lambda: data_uri(image_bytes(fmt="GIF"), "image/gif"), "GIF"),
    ("bmp named png", lambda: data_uri(image_bytes(fmt="BMP")), "BMP"),
    ("not an image", lambda: data_uri(b"hello"), "not an image"),
    ("truncated png", lambda: data_uri(image_bytes()[:300]), "damaged"),
    ("over 10 MB", lambda: data_uri(os.urandom(10 * 1024 * 1024 + 1)), "limit is 10 MB"),
    pytest.param("bomb", lambda: data_uri(_bomb_png()), "too many pixels",
                 marks=pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")),
])
def test_each_image_rule_is_enforced(make_emulator: Any, case: str, make: Any, needle: str) -> None:
    with mock_client(make_emulator()) as client:
        r = client.post(SUBMIT, json=body(image_urls=[PNG_URI, make()]))
    assert r.status_code == 422, case
    errors = r.json()["errors"]
    assert [e["field"] for e in errors] == ["image_urls[1]"] and needle in errors[0]["message"], errors


@pytest.mark.parametrize(("fmt", "size"), [("JPEG", (400, 400)), ("WEBP", (1024, 400)), ("PNG", (400, 2000))])
def test_accepted_formats_and_sizes_pass(make_emulator: Any, fmt: str, size: tuple[int, int]) -> None:
    with mock_client(make_emulator()) as client:
        r = client.post(SUBMIT, json=body(image_urls=[data_uri(image_bytes(size, fmt))]))
    assert r.status_code == 201, r.json()


def test_image_count_and_character_tags(make_emulator: Any) -> None:
    with mock_client(make_emulator()) as client:
        r = client.post(SUBMIT, json=body(image_urls=[PNG_URI] * 10))
        assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["image_urls"]
        r = client.post(SUBMIT, json=body(image_urls=[]))
        assert r.status_code == 422 and {e["field"] for e in r.json()["errors"]} == {"image_urls", "prompt"}
        r = client.post(SUBMIT, json=body(prompt="character2 dances", image_urls=[PNG_URI]))
        assert r.status_code == 422 and "character2" in r.json()["errors"][0]["message"]
        assert client.post(SUBMIT, json=body(prompt="character2 dances", image_urls=[PNG_URI] * 2)).status_code == 201
        r = client.post(SUBMIT, json={"client_ref": "x"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "input"
        r = client.post(SUBMIT, content=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["code"] == "BAD_REQUEST"


class _ImageServer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        data = image_bytes((640, 480), "JPEG") if self.path == "/ok.jpg" else b""
        self.send_response(200 if data else 404)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def image_server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _ImageServer)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_http_images_are_fetched_and_checked(make_emulator: Any, image_server: str) -> None:
    with mock_client(make_emulator(offline_images="reject")) as client:
        ok = client.post(SUBMIT, json=body(image_urls=[f"{image_server}/ok.jpg"]))
        assert ok.status_code == 201
        missing = client.post(SUBMIT, json=body(image_urls=[f"{image_server}/missing.png"]))
        assert missing.status_code == 422 and "HTTP 404" in missing.json()["errors"][0]["message"]
        t0 = time.monotonic()
        offline = client.post(SUBMIT, json=body(image_urls=["https://example.com/a.png", "http://127.0.0.1:9/b.png"]))
        assert offline.status_code == 422 and time.monotonic() - t0 < 3
        assert [e["field"] for e in offline.json()["errors"]] == ["image_urls[0]", "image_urls[1]"]


def test_unreachable_images_become_placeholders_quickly(make_emulator: Any) -> None:
    emu = make_emulator()
    urls = ["https://example.com/character1.png", "http://127.0.0.1:9/refused.png",
            "https://no-such-host.runflow-nb-test.invalid/x.png"]
    with mock_client(emu) as client:
        t0 = time.monotonic()
        r = client.post(SUBMIT, json=body(prompt="character1, character2 and character3", image_urls=urls))
        assert r.status_code == 201 and time.monotonic() - t0 < 3
        logs = client.get(f"/v1/runs/{r.json()['id']}/logs").json()["items"]
    assert sum(entry["level_code"] == "warning" and "placeholder" in entry["message"] for entry in logs) == 3
    assert emu.stats()["placeholders"] == 3


def test_uploaded_assets_are_usable_as_image_urls(make_emulator: Any) -> None:
    data = image_bytes((1024, 768), "JPEG")
    with mock_client(make_emulator()) as client:
        created = client.post("/v1/asset-uploads", json={"filename": "ref 1.jpg", "mime_type": "image/jpeg",
                                                         "size_bytes": len(data)})
        assert created.status_code == 201 and set(created.json()) == {"asset_id", "upload_url"}
        session = created.json()
        confirm = f"/v1/asset-uploads/{session['asset_id']}/confirmations"
        assert client.post(confirm, json={"folder_id": None}).status_code == 409  # nothing uploaded yet
        jpeg = {"Content-Type": "image/jpeg"}
        assert client.put(session["upload_url"] + "x", content=data, headers=jpeg).status_code == 403
        assert client.put(session["upload_url"], content=data, headers={"Content-Type": "image/png"}).status_code == 403
        assert client.put(session["upload_url"], content=data[:-1], headers=jpeg).status_code == 400
        assert client.put(session["upload_url"], content=data, headers=jpeg).status_code == 200
        confirmed = client.post(confirm, json={"folder_id": None})
        assert confirmed.status_code == 201
        record = confirmed.json()
        assert record["id"] == session["asset_id"] and record["mime_type"] == "image/jpeg"
        assert record["size_bytes"] == len(data) and record["name"] == "ref 1.jpg"
        assert client.get(record["url"]).content == data
        unsigned = record["url"].split("?")[0]
        assert client.get(unsigned).status_code == 403
        refused = client.post(SUBMIT, json=body(image_urls=[unsigned]))
        assert refused.status_code == 422 and "signed" in refused.json()["errors"][0]["message"]
        again = client.get(f"/v1/assets/{record['id']}").json()
        assert again["id"] == record["id"] and client.get(again["url"]).content == data  # a re-minted URL works
        run = client.post(SUBMIT, json=body(image_urls=[record["url"]]))
        assert run.status_code == 201 and wait_done(client, run.json()["id"])["status_code"] == "succeeded"
        too_big = client.post("/v1/asset-uploads", json={"filename": "a.png", "mime_type": "image/png",
                                                         "size_bytes": 50 * 1024 * 1024 + 1})
        assert too_big.status_code == 422 and too_big.json()["errors"][0]["field"] == "size_bytes"
        types = client.get("/v1/assets/types").json()["items"]
        assert {"image/png", "image/jpeg", "image/webp"} <= {t["mime_type"] for t in types}


# --- auth, routing, account ---------------------------------------------------------------------


def test_auth_is_required_and_checked(make_emulator: Any, server: EmulatorServer) -> None:
    emu = make_emulator(api_key="rf_live_secret")
    with httpx.Client(transport=httpx.MockTransport(emu.handle), base_url="http://emu") as client:
        for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "},
                        {"Authorization": "Bearer rf_live_wrong"}):
            r = client.get("/v1/runs", headers=headers)
            assert r.status_code == 401 and r.json()["code"] == "UNAUTHORIZED" and r.json()["errors"] is None
            assert "rf_live_wrong" not in r.text
        assert client.get("/v1/runs", headers={"Authorization": "Bearer rf_live_secret"}).status_code == 200
        assert client.get("/v1/health").json()["status"] == "ok"  # public
    assert httpx.post(server.url + SUBMIT, json=body()).status_code == 401  # any key, but some key


def test_routing_errors_use_the_envelope(make_emulator: Any) -> None:
    with mock_client(make_emulator()) as client:
        for r, status, code in [(client.get("/v1/runs/run_nope"), 404, "RUN_NOT_FOUND"),
                                (client.get("/v1/nothing"), 404, "NOT_FOUND"),
                                (client.delete("/v1/runs/run_x"), 405, "METHOD_NOT_ALLOWED"),
                                (client.post("/v1/models/acme/nope/runs", json=body()), 404, "MODEL_NOT_FOUND"),
                                (client.get("/v1/runs", params={"limit": 501}), 422, "VALIDATION_ERROR"),
                                (client.get("/v1/runs", params={"pq": "zzz"}), 422, "VALIDATION_ERROR"),
                                (client.get("/v1/runs", params={"q": "nonsense"}), 422, "VALIDATION_ERROR")]:
            assert r.status_code == status and r.json()["code"] == code
            assert isinstance(r.json()["errors"], list) if status == 422 else r.json()["errors"] is None
        balance = client.get("/v1/billing/balance").json()
        assert balance["balance"] == "10000.0000" and isinstance(balance["low_balance_threshold"], str)
        assert client.get("/v1/auth/me").json()["id"]


def test_list_runs_by_client_ref_with_cursor_pagination(server: EmulatorServer) -> None:
    with httpx.Client(base_url=server.url, headers=AUTH) as client:
        ids = [client.post(SUBMIT, json={**body(), "client_ref": "paging"}).json()["id"] for _ in range(5)]
        seen, cursor = [], None
        while True:
            page = client.get("/v1/runs", params={"q": "client_ref:paging", "limit": 2,
                                                  **({"pq": cursor} if cursor else {})}).json()
            seen += [r["id"] for r in page["items"]]
            assert all(r["client_ref"] == "paging" for r in page["items"])
            cursor = page["next_pq"]
            if not cursor:
                break
        assert seen == ids[::-1]
        assert len(client.get("/v1/runs", params={"limit": 500}).json()["items"]) >= 5


# --- faults ---------------------------------------------------------------------------------------


CAMPAIGN_KINDS = ("429", "429ra", "500", "503", "drop", "slow", "fail", "nsfw", "partial", "cancel", "truncate",
                  "expire")


def test_fault_spec_parsing() -> None:
    plan = FaultPlan.parse("429=0.1,429ra=0.05,500=0.05,503=0.05,drop=0.05,slow=0.05,fail=0.05,nsfw=0.05,"
                           "partial=0.05,cancel=0.05,truncate=0.05,expire=0.05,seed=1,slow_s=3")
    assert set(plan.rates) == set(CAMPAIGN_KINDS) and plan.seed == 1 and plan.slow_s == 3
    assert set(CAMPAIGN_KINDS) < set(FAULT_KINDS)
    assert FaultPlan.parse(str(plan)) == plan
    assert FaultPlan.parse("drop=2x,expire").counts == {"drop": 2} and FaultPlan.parse("expire").rates == {"expire": 1}
    assert FaultPlan.parse(None) == FaultPlan.parse("none") == FaultPlan()
    for bad in ("bogus=0.1", "429=1.5", "drop=-1x", "429=0.6,500=0.6", "seed=abc"):
        with pytest.raises(ValueError):
            FaultPlan.parse(bad)


def test_rate_limits_with_and_without_retry_after(make_emulator: Any) -> None:
    emu = make_emulator(faults="429=1x,429ra=1x,retry_after=2")
    with mock_client(emu) as client:
        first, second, third = (client.get("/v1/billing/balance") for _ in range(3))
    assert first.status_code == 429 and first.json()["code"] == "RATE_LIMITED" and "retry-after" not in first.headers
    assert second.status_code == 429 and second.headers["retry-after"] == "2"
    assert third.status_code == 200
    assert emu.stats()["faults"]["429"] == 1 and emu.stats()["faults"]["429ra"] == 1


def test_server_errors_on_any_endpoint(make_emulator: Any) -> None:
    emu = make_emulator(faults="500=1x,503=1x")
    with mock_client(emu) as client:
        r500 = client.post(SUBMIT, json=body())
        r503 = client.get("/v1/runs")
        assert (r500.status_code, r500.json()["code"]) == (500, "INTERNAL_ERROR")
        assert (r503.status_code, r503.json()["code"]) == (503, "MODEL_UNAVAILABLE")
        assert client.get("/v1/runs").json()["items"] == []  # the refused submit created nothing


def test_a_dropped_submit_creates_one_run_that_bills_once(make_emulator: Any, server: EmulatorServer) -> None:
    emu = make_emulator(faults="drop=1x")
    with mock_client(emu) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.post(SUBMIT, json={**body(), "client_ref": "lost-answer"})
        found = client.get("/v1/runs", params={"q": "client_ref:lost-answer"}).json()["items"]
        assert len(found) == 1
        assert wait_done(client, found[0]["id"])["status_code"] == "succeeded"
        assert client.get("/_emulator/ledger").json()["count"] == 1
    # over a real socket the connection closes without a byte of answer
    server.emulator.faults = "drop=1x"
    try:
        with httpx.Client(base_url=server.url, headers=AUTH) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                client.post(SUBMIT, json={**body(), "client_ref": "lost-on-socket"})
            assert len(client.get("/v1/runs", params={"q": "client_ref:lost-on-socket"}).json()["items"]) == 1
    finally:
        server.emulator.faults = None


def test_slow_polls(make_emulator: Any) -> None:
    emu = make_emulator(faults="slow=1x,slow_s=0.3")
    with mock_client(emu) as client:
        t0 = time.monotonic()
        assert client.get("/v1/runs").status_code == 200
        slow = time.monotonic() - t0
        t0 = time.monotonic()
        client.get("/v1/runs")
        fast = time.monotonic() - t0
        assert slow >= 0.3 and fast < slow  # the fault slows one answer only (ordering, not a wall-clock bound)


def test_failed_and_nsfw_runs(make_emulator: Any) -> None:
    emu = make_emulator(faults="fail=1x,nsfw=1x")
    with mock_client(emu) as client:
        failed = wait_done(client, client.post(SUBMIT, json=body()).json()["id"])
        flagged = wait_done(client, client.post(SUBMIT, json=body()).json()["id"])
        blocking = client.post(BLOCKING, json={"prompt": "x", "image_urls": [PNG_URI], "duration": 3,
                                               "resolution": "720p"})
        ledger = client.get("/_emulator/ledger").json()
    assert failed["status_code"] == "failed" and failed["failure_code"] == "GENERATION_FAILED"
    assert failed["cost"] == "0.00" and failed["output"] is None
    assert flagged["status_code"] == "succeeded" and flagged["output"]["nsfw_detected"] is True
    assert blocking.status_code == 200 and blocking.json()["nsfw_detected"] is False
    assert ledger["count"] == 2 and ledger["total_usd"] == 0.84
    assert failed["id"] not in {e["run_id"] for e in ledger["billed"]}


def test_a_failed_run_on_the_blocking_path_answers_500_with_its_id(make_emulator: Any) -> None:
    with mock_client(make_emulator(faults="fail")) as client:
        r = client.post(BLOCKING, json={"prompt": "x", "image_urls": [PNG_URI], "duration": 3})
    assert r.status_code == 500 and r.json()["code"] == "GENERATION_FAILED" and UUID_V7.fullmatch(r.json()["id"])


def test_truncated_downloads(make_emulator: Any, server: EmulatorServer) -> None:
    emu = make_emulator(faults="truncate=1x")
    with mock_client(emu) as client:
        url = wait_done(client, client.post(SUBMIT, json=body()).json()["id"])["output"]["outputs"][0]["url"]
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(url)
        assert probe_mp4(client.get(url).content)["audio"] == ["aac"]  # the retry gets it whole
    with httpx.Client(base_url=server.url, headers=AUTH) as client:
        url = wait_done(client, client.post(SUBMIT, json=body()).json()["id"])["output"]["outputs"][0]["url"]
        server.emulator.faults = "truncate=2x"
        try:
            with pytest.raises(httpx.RemoteProtocolError):
                httpx.get(url)
            with pytest.raises(requests.exceptions.RequestException):
                requests.get(url, timeout=10)
        finally:
            server.emulator.faults = None
        whole = httpx.get(url)
        assert int(whole.headers["content-length"]) == len(whole.content)


def test_expired_downloads(make_emulator: Any) -> None:
    clock = [time.time()]
    emu = make_emulator(faults="expire=1x", latency=0, url_ttl_s=60, clock=lambda: clock[0])
    with mock_client(emu) as client:
        url = wait_done(client, client.post(SUBMIT, json=body()).json()["id"])["output"]["outputs"][0]["url"]
        injected = client.get(url)
        assert injected.status_code == 410 and injected.json()["code"] == "URL_EXPIRED"
        assert client.get(url).status_code == 200
        head = client.head(url)
        assert head.status_code == 200 and int(head.headers["content-length"]) > 0
        part = client.get(url, headers={"Range": "bytes=0-99"})
        assert part.status_code == 206 and len(part.content) == 100
        clock[0] += 61
        expired = client.get(url)
        assert expired.status_code == 403 and expired.json()["code"] == "URL_EXPIRED"
        tampered = client.get(url.replace("/files/", "/files/1"))
        assert tampered.status_code == 403


def test_every_fault_kind_is_exercised_reproducibly_and_nothing_bills_twice(make_emulator: Any) -> None:
    spec = ("429=0.1,429ra=0.05,500=0.05,503=0.05,drop=0.25,slow=0.1,fail=0.2,nsfw=0.25,partial=0.1,"
            "cancel=0.1,truncate=0.25,expire=0.2,seed=2,slow_s=0.05,retry_after=0")

    def campaign() -> tuple[dict[str, int], int, int]:
        emu = make_emulator(faults=spec, latency=0.02, renderer=fake_renderer)  # bookkeeping, not pixels
        succeeded = 0
        with mock_client(emu) as client:
            for i in range(20):
                ref = f"camp-{i}"
                run = None
                while run is None:  # a minimal well-behaved client: re-attach by client_ref, never re-submit blind
                    try:
                        r = client.post(SUBMIT, json={**body(seed=i), "client_ref": ref})
                    except httpx.RemoteProtocolError:
                        r = None
                    if r is not None and r.status_code == 201:
                        run = r.json()
                    elif r is None or r.status_code >= 500:  # the answer was lost or ambiguous: look it up
                        while (found := client.get("/v1/runs", params={"q": f"client_ref:{ref}"})).status_code != 200:
                            pass
                        run = found.json()["items"][0] if found.json()["items"] else None
                # Wait without HTTP, so the request sequence (and so the fault sequence) is the same every time.
                emu.simulator.wait(run["id"], timeout=30)
                while (r := client.get(f"/v1/runs/{run['id']}")).status_code != 200:
                    pass
                run = r.json()
                if run["status_code"] in ("succeeded", "partial_succeeded"):
                    succeeded += 1
                    for _ in range(3):  # downloads may be truncated or "expired"
                        with contextlib.suppress(httpx.RemoteProtocolError):
                            client.get(run["output"]["outputs"][0]["url"])
            stats = emu.stats()
            print("faults exercised:", stats["faults"], "billed:", stats["billed_runs"])
            return stats["faults"], succeeded, stats["billed_runs"]

    faults, succeeded, billed = campaign()
    assert all(faults[k] > 0 for k in CAMPAIGN_KINDS), faults
    assert billed == succeeded == 20 - faults["fail"] - faults["cancel"]  # failed/canceled unbilled, dropped once
    assert campaign() == (faults, succeeded, billed)  # same seed, same requests → same faults


def test_latency_and_faults_change_at_runtime(make_emulator: Any, server: EmulatorServer) -> None:
    emu = make_emulator(latency=5)
    emu.latency = 0.01
    assert emu.simulator.latency == 0.01
    emu.faults = "500"
    with mock_client(emu) as client:
        assert client.get("/v1/runs").status_code == 500
        assert client.get("/v1/health").status_code == 200  # never faulted
    cfg = httpx.post(server.url + "/_emulator/config", json={"latency": 0.1, "faults": "429=0.5,seed=4"}).json()
    assert (cfg["latency"], cfg["faults"]) == (0.1, "429=0.5,seed=4,slow_s=3,retry_after=1")
    httpx.post(server.url + "/_emulator/config", json={"faults": None})
    assert httpx.get(server.url + "/_emulator/stats").json()["fault_plan"] == "none"


# --- the loopback server ------------------------------------------------------------------------


def test_the_server_takes_200_concurrent_clients(server: EmulatorServer) -> None:
    barrier = threading.Barrier(200)
    results: list[int] = []

    def hit() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        barrier.wait()
        try:
            conn.request("GET", "/v1/runs?limit=1", headers=AUTH)
            results.append(conn.getresponse().status)
        finally:
            conn.close()

    threads = [threading.Thread(target=hit) for _ in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 200


def test_serve_owns_the_emulator_it_makes_and_frees_the_port() -> None:
    with serve(port=0, latency=0.05) as srv:
        assert httpx.get(f"{srv.url}/v1/health").status_code == 200
        port = srv.port
    with serve(port=port, latency=0.05) as again:  # allow_reuse_address
        assert again.url.endswith(f":{port}")
    with pytest.raises(TypeError):
        serve(port=0, emulator=Emulator(), latency=1)


def test_the_cli_prints_its_url_serves_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "runflow_nb.emulator", "--port", "0", "--latency", "0.05",
                             "--faults", "seed=3"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        url = proc.stdout.readline().strip() if proc.stdout else ""
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/v1/health", timeout=10).json()["status"] == "ok"
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_cli_help_documents_the_fault_syntax(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        emulator_main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert all(k in out for k in ("--faults", "--latency", "--offline-images", "429ra", "truncate", "slow_s"))
    with pytest.raises(SystemExit) as info:
        emulator_main(["--faults", "bogus=1"])
    assert info.value.code == 2


def test_the_simulator_refuses_what_the_emulator_refuses() -> None:
    with Simulator(latency=0) as sim, pytest.raises(ValidationError):
        sim.submit({"prompt": "x", "image_urls": [Image.new("RGB", (800, 600))], "duration": 5.0})
    assert json.loads(json.dumps({"duration": 5.0}))["duration"] == 5.0  # JSON keeps 5.0 a float: refused
