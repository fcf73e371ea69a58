"""The API key never lands anywhere, output URLs are only ever http(s), artifacts stay in their folder.

A sentinel key (``SENTINEL`` + a random suffix, with and without the ``rf_live_`` prefix) is set as ``RUNFLOW_API_KEY`` with
``RUNFLOW_BASE_URL`` pointing at a loopback emulator that accepts exactly that key, so every
component takes the real-backend path: the CLI (generate, sweep, an auth failure), a sweep through
``Experiment``, a papermill report of ``notebooks/seed_sweep.ipynb`` (its kernel inherits the
environment), error paths (401, 422, a failed run, a network error) and DEBUG logging. Then every
output is scanned for the sentinel: the store (each value of each table, and the raw SQLite/WAL
bytes), the artifacts, the executed notebook and its HTML, the logs, stdout/stderr, reprs and
exception messages with their tracebacks. Zero hits, and nothing was even redacted. Every sweep also
sends a webhook URL (``RUNFLOW_CALLBACK_URL``) whose token carries the sentinel: the service gets it
whole, no output holds it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import socket
import sqlite3
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _sweep_child import record

import runflow_nb as rf
from runflow_nb.emulator import EmulatorServer, serve
from runflow_nb.errors import (
    AuthenticationError,
    DownloadError,
    InvalidRequestError,
    NetworkError,
    RunFailedError,
    RunflowError,
)
from runflow_nb.runs import Output, Run

ROOT = Path(__file__).resolve().parents[1]
NEEDLE = "SENTINEL"
pytestmark = pytest.mark.timeout(240)


class Outputs:
    """Everything produced during the test, by kind, to be scanned for the key."""

    def __init__(self) -> None:
        self.texts: dict[str, list[str]] = {}
        self.files: dict[str, list[Path]] = {}

    def text(self, kind: str, value: Any) -> None:
        self.texts.setdefault(kind, []).append(value if isinstance(value, str) else repr(value))

    def error(self, exc: BaseException) -> None:
        self.text("exception messages", str(exc))
        self.text("exception reprs", repr(exc))
        self.text("tracebacks", "".join(traceback.format_exception(exc)))

    def tree(self, kind: str, folder: Path) -> None:
        self.files.setdefault(kind, []).extend(p for p in folder.rglob("*") if p.is_file())

    def scan(self, key: str) -> tuple[dict[str, int], list[str]]:
        """(items scanned by kind, hits) — a hit is the key, its distinctive part, or its base64."""
        import base64

        needles = [key.encode(), NEEDLE.encode(), base64.b64encode(key.encode())[:20], b"[redacted]"]
        counts: dict[str, int] = {}
        hits: list[str] = []
        for kind, values in self.texts.items():
            counts[kind] = len(values)
            hits += [f"{kind}: …{v[max(0, v.find(NEEDLE) - 60):][:160]!r}" for v in values
                     if any(n.decode() in v for n in needles)]
        for kind, paths in self.files.items():
            counts[kind] = len(paths)
            for p in paths:
                data = p.read_bytes()
                hits += [f"{kind}: {p} holds {n!r}" for n in needles if n in data]
        return counts, hits


@pytest.fixture(params=["rf_live_", ""], ids=["prefixed-key", "unprefixed-key"])
def sentinel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, EmulatorServer]]:
    """A key with the usual prefix, and one without it (which no key-shaped pattern would catch)."""
    key = f"{request.param}{NEEDLE}{secrets.token_hex(12)}"
    with serve(port=0, latency=0.05, api_key=key, offline_images="reject") as server:
        monkeypatch.setenv("RUNFLOW_API_KEY", key)
        monkeypatch.setenv("RUNFLOW_BASE_URL", server.url)
        monkeypatch.delenv("RUNFLOW_BACKEND", raising=False)
        yield key, server


def _cli(out: Outputs, *args: str, env: dict[str, str] | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "runflow_nb.cli", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})}, cwd=ROOT)
    out.text("CLI stdout", proc.stdout)
    out.text("CLI stderr", proc.stderr)
    assert (proc.returncode == 0) == ok, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sqlite_values(path: Path) -> list[str]:
    con = sqlite3.connect(path)
    try:
        return list(con.iterdump())  # every table, every column, every row, as SQL text
    finally:
        con.close()


def test_the_key_appears_in_no_output_of_any_kind(sentinel: tuple[str, EmulatorServer], ref_images: list[Path],
                                                  tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                  capfd: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    key, server = sentinel
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    # Every sweep (CLI, in-process, the report's kernel) also sends a webhook URL holding a token of the
    # same sentinel in its user:password, path and query, so the scan below looks for it too. It points
    # at a closed port: the emulator's delivery (tested in test_callback_url.py) then logs no request
    # line of its own, and what is scanned is the toolkit's side alone.
    hook_token = f"{NEEDLE}hook{secrets.token_hex(8)}"
    callback = f"http://bot:{hook_token}@127.0.0.1:{_closed_port()}/hooks/{hook_token}?token={hook_token}"
    monkeypatch.setenv("RUNFLOW_CALLBACK_URL", callback)
    out = Outputs()
    store, artifacts, image = tmp_path / "runflow.sqlite", tmp_path / "artifacts", str(ref_images[0])
    common = ["--image", image, "--duration", "3", "--resolution", "720p"]

    # 1. the CLI: generate and a sweep, against the emulator through the environment
    _cli(out, "generate", "--prompt", "character1 trots", *common, "--seed", "5", "--out", str(artifacts / "cli"),
         "--json")
    _cli(out, "sweep", "--experiment", "cli-sweep", "--prompt", "character1 trots", *common, "--seeds", "1-2",
         "--store", str(store), "--artifacts", str(artifacts))

    # 2. a sweep through Experiment (a default client: key and URL from the environment)
    client = rf.Client(poll_interval=0.05)
    exp = rf.Experiment("in-process", store=str(store), artifacts=artifacts, client=client)
    plan = rf.grid(prompt="character1 trots", images=[[image]], seed=[1, 2], duration=3, resolution="720p")
    table = exp.run(plan, concurrency=2)
    assert set(table["status"]) == {"succeeded"} and set(table["backend"]) == {"runflow"}
    result = client.generate(prompt="character1 trots", images=[image], duration=3, resolution="720p", seed=9,
                             out_dir=artifacts / "generate")

    # 3. a papermill report; its kernel inherits RUNFLOW_API_KEY / RUNFLOW_BASE_URL
    from runflow_nb.report.build import run_report

    report = run_report(ROOT / "notebooks" / "seed_sweep.ipynb", out_dir=tmp_path / "report", parameters={
        "experiment": "report", "prompt": "character1 trots", "seeds": [3, 4], "durations": [3], "images": [image], "store": str(store),
        "artifacts_dir": str(artifacts), "concurrency": 2})
    assert report.summary and report.summary["backend"] == "runflow", report.summary

    # 4. error paths: 401 (CLI and library), 422, a failed run, a network error, a refused download
    with serve(port=0, latency=0.05, api_key="rf_live_someone_else_entirely") as other:
        proc = _cli(out, "generate", "--prompt", "character1 trots", *common, "--out", str(artifacts / "cli"),
                    env={"RUNFLOW_BASE_URL": other.url}, ok=False)
        assert "AuthenticationError" in proc.stderr
        with pytest.raises(AuthenticationError) as auth:
            rf.Client(base_url=other.url, max_retries=0).generate(prompt="character1 trots", images=[image])
        out.error(auth.value)
    with pytest.raises(InvalidRequestError) as invalid:
        client.submit(prompt="character1 trots", images=[f"http://127.0.0.1:{_closed_port()}/horse.png"])
    out.error(invalid.value)
    server.emulator.faults = "fail=1x"
    with pytest.raises(RunFailedError) as failed:
        client.generate(prompt="character1 trots", images=[image], duration=3, resolution="720p", seed=11)
    out.error(failed.value)
    server.emulator.faults = None
    with pytest.raises(NetworkError) as network:
        rf.Client(base_url=f"http://127.0.0.1:{_closed_port()}", max_retries=1).generate(
            prompt="character1 trots", images=[image])
    out.error(network.value)
    with pytest.raises(DownloadError) as refused:
        client.download(Run(id="run_x", status="succeeded", output=Output(video_url="file:///etc/passwd")),
                        tmp_path / "x.mp4")
    out.error(refused.value)
    async_client = rf.AsyncClient()

    # 5. reprs of everything a notebook shows
    for obj in (client, async_client, rf.Client(api_key=key), rf.AsyncClient(api_key=key), client.to_async(), exp,
                exp.store, plan, plan[0], result, result.run, exp.last_summary, report, server):
        out.text("reprs", repr(obj))
        out.text("reprs", str(obj))
    out.text("reprs", result._repr_html_())

    # the real-backend path was used: the emulator accepted exactly this key, for every source
    ledger = server.emulator.simulator.ledger()
    sources = {server.emulator.simulator.get(e["run_id"])["metadata"].get("experiment") for e in ledger}
    assert {"cli-sweep", "in-process", "report", None} <= sources, sources
    swept = [e["run_id"] for e in ledger
             if server.emulator.simulator.get(e["run_id"])["metadata"].get("experiment") in ("cli-sweep", "in-process",
                                                                                             "report")]
    assert swept and {server.emulator.simulator.get(r)["callback_url"] for r in swept} == {callback}

    client.close()
    exp.store.close()
    captured = capfd.readouterr()
    out.text("stdout/stderr (in-process)", captured.out + captured.err)
    out.text("logs (DEBUG, all loggers)", caplog.text)
    out.text("store values", "\n".join(_sqlite_values(store)))
    out.files["store bytes (SQLite, WAL)"] = [p for p in tmp_path.glob("runflow.sqlite*") if p.is_file()]
    out.tree("artifacts", artifacts)
    out.tree("report (executed notebook, HTML, media)", tmp_path / "report")
    counts, hits = out.scan(key)
    assert counts["logs (DEBUG, all loggers)"] and len(caplog.records) > 50
    assert any(p.suffix == ".ipynb" for p in out.files["report (executed notebook, HTML, media)"])
    assert not hits, "\n".join(hits[:20])
    record(f"secrets: 0 hits for the sentinel key in {sum(counts.values())} outputs "
           f"({', '.join(f'{k} {v}' for k, v in counts.items())}); {len(ledger)} runs billed with it; "
           f"{len(caplog.records)} log records; faults 1; restarts 0")


# --- output URLs and artifact names come from the server: never trusted ------------------------------


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    from PIL import Image

    from runflow_nb.simulator.render import render_clip

    folder = tmp_path_factory.mktemp("clip")
    path = render_clip([Image.new("RGB", (1280, 720), (90, 140, 60))], duration=3, aspect_ratio="16:9",
                       resolution="720p", seed=1, dest=folder / "clip.mp4", cache_dir=folder / "cache")
    return path.read_bytes()


class FakeRunflow:
    """A MockTransport server whose runs succeed at once with whatever id and output URL it is given."""

    def __init__(self, *, run_id: str, video_url: str, clip: bytes) -> None:
        self.run_id, self.video_url, self.clip = run_id, video_url, clip
        self.requests: list[str] = []

    def run_json(self, client_ref: str | None = None) -> dict[str, Any]:
        output = {"url": self.video_url, "type": "video", "size": len(self.clip),
                  "sha256": hashlib.sha256(self.clip).hexdigest()}
        return {"id": self.run_id, "status_code": "succeeded", "output": {"outputs": [output], "seed": 1},
                "cost": "0.42", "client_ref": client_ref, "created_at": "2025-01-01T00:00:00Z",
                "started_at": "2025-01-01T00:00:01Z", "completed_at": "2025-01-01T00:00:09Z"}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(f"{request.method} {request.url}")
        path = request.url.path
        if request.url.host == "cdn.invalid":
            if path == "/redirect.mp4":
                return httpx.Response(302, headers={"Location": "file:///etc/passwd"})
            return httpx.Response(200, content=self.clip, headers={"Content-Type": "video/mp4"})
        if request.method == "POST" and path.endswith("/runs"):
            import json

            return httpx.Response(201, json=self.run_json(json.loads(request.content).get("client_ref")))
        if request.method == "GET" and path == "/v1/runs":
            return httpx.Response(200, json={"items": [], "next_pq": None, "prev_pq": None})
        if request.method == "GET" and path.startswith("/v1/runs/"):
            return httpx.Response(200, json=self.run_json())
        return httpx.Response(404, json={"code": "NOT_FOUND", "message": path})


def _client(server: FakeRunflow) -> rf.Client:
    return rf.Client(api_key="rf_test_paths", base_url="http://api.invalid", transport=httpx.MockTransport(server),
                     poll_interval=0.01, max_retries=1)


def _files(root: Path) -> set[Path]:
    return {p.resolve() for p in root.rglob("*") if p.is_file() or p.is_symlink()}


BAD_OUTPUT_URLS = ["file:///etc/passwd", "FILE:///etc/passwd", " file:///etc/passwd", "/etc/passwd",
                   "../../etc/passwd", "ftp://cdn.invalid/v.mp4", "gopher://cdn.invalid/v.mp4",
                   "data:video/mp4;base64,AAAA", "http:///etc/passwd", "javascript:alert(1)"]


@pytest.mark.parametrize("url", BAD_OUTPUT_URLS)
def test_non_http_output_urls_are_never_read(url: str, clip: bytes, ref_images: list[Path], tmp_path: Path) -> None:
    server = FakeRunflow(run_id="run_paths", video_url=url, clip=clip)
    client = _client(server)
    before = _files(tmp_path)
    with pytest.raises(DownloadError) as info:
        client.generate(prompt="character1 trots", images=[ref_images[0]], out_dir=tmp_path / "out")
    assert "root:" not in str(info.value)
    fetched = [r for r in server.requests if "api.invalid" not in r]
    assert not fetched, fetched
    assert _files(tmp_path) == before  # nothing written, not even a partial file

    exp = rf.Experiment("urls", store=str(tmp_path / "s.sqlite"), artifacts=tmp_path / "artifacts", client=client)
    row = exp.run(rf.grid(prompt="character1 trots", images=[[ref_images[0]]], seed=[1]), progress=None).iloc[0]
    assert row["status"] == "download_failed" and row["error_message"], row.to_dict()
    assert not [p for p in (tmp_path / "artifacts").rglob("*") if p.is_file()]
    exp.store.close()
    client.close()


def test_a_redirect_to_a_file_url_is_not_followed(clip: bytes, ref_images: list[Path], tmp_path: Path) -> None:
    server = FakeRunflow(run_id="run_redirect", video_url="http://cdn.invalid/redirect.mp4", clip=clip)
    client = _client(server)
    with pytest.raises(DownloadError):
        client.generate(prompt="character1 trots", images=[ref_images[0]], out_dir=tmp_path / "out")
    assert not [r for r in server.requests if r.split()[1].startswith("file:")], server.requests
    client.close()


def test_a_stored_file_url_is_not_read_when_the_video_is_re_fetched(clip: bytes, ref_images: list[Path],
                                                                     tmp_path: Path) -> None:
    server = FakeRunflow(run_id="run_ok", video_url="http://cdn.invalid/v.mp4", clip=clip)
    client = _client(server)
    exp = rf.Experiment("refetch", store=str(tmp_path / "s.sqlite"), artifacts=tmp_path / "artifacts", client=client)
    plan = rf.grid(prompt="character1 trots", images=[[ref_images[0]]], seed=[1])
    row = exp.run(plan, progress=None).iloc[0]
    assert row["status"] == "succeeded"
    Path(row["video_path"]).unlink()
    exp.store.update_run(row["run_id"], output_url="file:///etc/passwd")  # a tampered (or hostile) record
    exp.run(plan, progress=None)
    assert not Path(row["video_path"]).exists()
    assert exp.last_summary is not None and any("file" in m or "refus" in m for m in exp.last_summary.messages)
    exp.store.close()
    client.close()


HOSTILE_RUN_IDS = ["../../etc/x", "..", "/etc/x", "a/../../b", "..\\..\\x", "%2e%2e%2fx", "x\x00y", "~root/x",
                   "." * 300]
HOSTILE_EXPERIMENTS = ["../evil", "..", "/tmp/evil", "a/../../b", "..\\evil", "~"]


@pytest.mark.parametrize("run_id", HOSTILE_RUN_IDS)
def test_a_hostile_run_id_cannot_place_a_file_outside_the_folder(run_id: str, clip: bytes, ref_images: list[Path],
                                                                  tmp_path: Path) -> None:
    server = FakeRunflow(run_id=run_id, video_url="http://cdn.invalid/v.mp4", clip=clip)
    client = _client(server)
    out_dir = tmp_path / "deep" / "er" / "artifacts"
    result = client.generate(prompt="character1 trots", images=[ref_images[0]], out_dir=out_dir)
    assert result.video_path is not None and result.video_path.resolve().parent == out_dir.resolve()
    assert all(out_dir.resolve() in p.parents for p in _files(tmp_path)), sorted(_files(tmp_path))
    client.close()


@pytest.mark.parametrize("name", HOSTILE_EXPERIMENTS)
def test_a_hostile_experiment_name_cannot_place_a_file_outside_the_artifacts(name: str, clip: bytes,
                                                                             ref_images: list[Path],
                                                                             tmp_path: Path) -> None:
    server = FakeRunflow(run_id="../../etc/x", video_url="http://cdn.invalid/v.mp4", clip=clip)
    client = _client(server)
    artifacts = tmp_path / "deep" / "er" / "artifacts"
    store = tmp_path / "store.sqlite"
    exp = rf.Experiment(name, store=str(store), artifacts=artifacts, client=client)
    row = exp.run(rf.grid(prompt="character1 trots", images=[[ref_images[0]]], seed=[1]), progress=None).iloc[0]
    assert row["status"] == "succeeded", row["error_message"]
    outside = [p for p in _files(tmp_path) if artifacts.resolve() not in p.parents and not p.name.startswith(store.name)]
    assert not outside, outside
    assert Path(row["video_path"]).resolve().parent.parent == artifacts.resolve()
    exp.store.close()
    client.close()


@pytest.mark.parametrize("prefix", ["rf_live_", "rf_test_", ""])
def test_a_malformed_key_is_refused_without_echoing_it(prefix: str, ref_images: list[Path]) -> None:
    """A key holding a character a header cannot carry is refused before anything is sent, and the
    error (message, repr, traceback) does not repeat it — httpx's own error would."""
    with serve(port=0, latency=0.05) as server:
        for bad in (f"{prefix}{NEEDLE}\x00abc", f"{prefix}{NEEDLE}é", f"{prefix}{NEEDLE}\r\nX-Evil: 1",
                    f"{prefix}{NEEDLE}ab\ncd"):
            client = rf.Client(api_key=bad, base_url=server.url, max_retries=0)
            with pytest.raises(RunflowError) as info:
                client.submit(prompt="character1 trots", images=[ref_images[0]])
            text = "".join(traceback.format_exception(info.value)) + repr(info.value)
            assert NEEDLE not in text, text[-600:]
            assert "api_key" in str(info.value) or "RUNFLOW_API_KEY" in str(info.value)
            client.close()
        assert server.emulator.stats()["requests"] == 0, "a malformed key reached the server"


@pytest.mark.parametrize("prefix", ["rf_live_", ""])
def test_a_key_pasted_with_surrounding_whitespace_is_used_trimmed(prefix: str, ref_images: list[Path]) -> None:
    key = f"{prefix}{NEEDLE}{secrets.token_hex(8)}"
    with serve(port=0, latency=0.05, api_key=key) as server:  # accepts exactly the trimmed key
        client = rf.Client(api_key=f"  {key}\n", base_url=server.url, max_retries=0, poll_interval=0.02)
        run = client.submit(prompt="character1 trots", images=[ref_images[0]])
        assert run.id and server.emulator.stats()["requests"] >= 1
        for text in (repr(client), str(client)):
            assert NEEDLE not in text, text
        client.close()


@pytest.mark.parametrize("prefix", ["rf_live_", ""])
def test_an_explicit_key_is_not_readable_in_vars(prefix: str) -> None:
    key = f"{prefix}{NEEDLE}{secrets.token_hex(8)}"
    for client in (rf.Client(api_key=key, base_url="http://127.0.0.1:9"), rf.AsyncClient(api_key=key)):
        seen = repr(vars(client)) + repr({k: vars(v) for k, v in vars(client).items() if hasattr(v, "__dict__")})
        assert NEEDLE not in seen, seen[:400]
