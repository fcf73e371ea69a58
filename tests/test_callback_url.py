"""An experiment's webhook URL reaches the service whole, and nothing else ever holds its token.

``exp.set_callback_url(url)`` sends the documented ``callback_url`` on every create (real HTTP on
loopback to the emulator, which POSTs each run's end there); the store (its file's raw bytes),
reprs, ``vars()``, logs and error messages show only the redacted form. A new process resuming the
sweep has no URL: it says so once and sends none, or takes ``RUNFLOW_CALLBACK_URL``.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from _wait import until

import runflow_nb as rf
from runflow_nb import settings
from runflow_nb.errors import ConfigurationError, ValidationError
from runflow_nb.experiment import Experiment

KEY = "rf_test_local"
PROMPT = "character1 trots"
pytestmark = pytest.mark.timeout(300)


class Hooks:
    """A webhook receiver on loopback: the path and JSON body of every POST."""

    def __init__(self) -> None:
        got: list[tuple[str, dict[str, Any]]] = []
        self.got = got

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                got.append((self.path, json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    h = Hooks()
    yield h
    h.close()


def _token() -> str:
    return f"TOKEN{secrets.token_hex(10)}"


def _hook_url(port: int, token: str) -> str:
    """A webhook URL with the token where real ones keep it: user:password@, a path segment, the query."""
    return f"http://bot:{token}@127.0.0.1:{port}/hooks/{token}/runflow?token={token}&study=horses"


def _grid(ref_images: list[Path], *seeds: int) -> rf.Plan:
    return rf.grid(prompt=PROMPT, images=[[ref_images[0]]], seed=list(seeds), duration=3, resolution="720p")


def _sent_callback(server: Any, remote_id: str) -> Any:
    run = httpx.get(f"{server.url}/v1/runs/{remote_id}", headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    return run.json()["callback_url"]


def _store_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.glob("s.sqlite*")) if p.is_file())


@pytest.mark.parametrize("url", [
    "https://hooks.slack.com/services/T0AB12CD3/B0EF45GH6/TOKENa1b2c3d4e5f6g7h8",
    "https://discord.com/api/webhooks/123456789012345678/TOKEN-abc_DEF123",
    "https://hooks.zapier.com/hooks/catch/123456/tokenxy/",
    "https://user:TOKENpw@hooks.example.org/runflow",
    "https://hooks.example.org/runflow?key=TOKEN123&sig=TOKENabc#TOKENfrag",
    "https://hooks.example.org/TOKENabcdefghijklmnop",
])
def test_a_webhook_url_is_shown_with_its_host_and_without_its_token(url: str) -> None:
    shown = settings.redact_url(url)
    host = httpx.URL(url).host
    assert shown.startswith(f"https://{'***@' if '@' in url else ''}{host}")
    assert "TOKEN" not in shown and "token" not in shown.replace("token=***", ""), shown


def test_the_token_reaches_the_service_and_nothing_else(tmp_path: Path, emulator_server: Any, hooks: Hooks,
                                                        ref_images: list[Path], caplog: pytest.LogCaptureFixture,
                                                        capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    token = _token()
    url = _hook_url(hooks.port, token)
    client = rf.Client(api_key=KEY, base_url=emulator_server.url, poll_interval=0.05)
    exp = Experiment("hooked", store=str(tmp_path / "s.sqlite"), artifacts=tmp_path / "a", client=client)
    exp.set_callback_url(url)
    exp.run(_grid(ref_images, 1, 2), progress=None)
    exp.run(_grid(ref_images, 3, 4), progress=None, batch="auto", concurrency=2)
    remote = {row["seed"]: row["remote_id"] for row in exp.runs()}

    # the service got the whole URL on every create, single runs and batches alike, and used it
    assert {seed: _sent_callback(emulator_server, rid) for seed, rid in remote.items()} == dict.fromkeys(remote, url)
    until(lambda: len(hooks.got) >= 4, what="four callbacks")
    assert {path for path, _ in hooks.got} == {f"/hooks/{token}/runflow?token={token}&study=horses"}
    assert {body["run_id"] for _, body in hooks.got} == set(remote.values())

    # the store: its raw bytes (database, WAL) never hold the token; the experiment shows the redacted form
    exp.store.close()
    assert token.encode() not in _store_bytes(tmp_path)
    shown = exp.store.experiment_metadata("hooked")
    assert shown == {"callback": f"http://***@127.0.0.1:{hooks.port}/hooks/***/***?token=***&study=***"}

    # what a notebook shows: reprs, vars(), the table, the client's own attribute, the run objects
    seen: list[str] = [repr(exp), exp._repr_html_(), repr(vars(exp)), repr(client), repr(vars(client)),
                       str(client.callback_url), exp.table().to_string(), repr(exp.last_summary)]
    inner = exp._async_client()
    seen += [repr(vars(inner)), str(inner.callback_url)]
    for rid in remote.values():
        run = client.get(rid)
        seen += [repr(run), repr(vars(run)), str(run.raw)]
    assert inner.callback_url == f"http://***@127.0.0.1:{hooks.port}/hooks/***/***?token=***&study=***"

    # error messages: a bad URL (with the token in it) is refused without repeating it
    for bad in (f"ftp://hooks.example.org/{token}", f"hooks.example.org/x?token={token}",
                f"https://hooks.example.org/{token} x", f"https://hooks.example.org:99999/?t={token}"):
        with pytest.raises(ValidationError) as info:
            exp.set_callback_url(bad)
        seen += [str(info.value), repr(info.value), "".join(traceback.format_exception(info.value))]
        with pytest.raises(ValidationError) as info:
            client.callback_url = bad
        seen.append(str(info.value))
    with pytest.raises(ConfigurationError) as conf:
        settings.callback_url(environ={"RUNFLOW_CALLBACK_URL": f"hooks.example.org/?token={token}"})
    seen += [str(conf.value), settings.describe(environ={"RUNFLOW_CALLBACK_URL": url})]
    assert "127.0.0.1" in settings.describe(environ={"RUNFLOW_CALLBACK_URL": url})

    # logs (every logger, DEBUG) and stdout/stderr of the client side; the emulator's own threads are the
    # service, which holds the URL by design
    client_side = [r for r in caplog.records if not r.name.startswith("runflow_nb.emulator")
                   and r.threadName != "runflow-emulator-callbacks" and not r.threadName.startswith("emulator")]
    seen += [r.getMessage() for r in client_side]
    captured = capfd.readouterr()
    seen += [captured.out, captured.err]
    hits = [s[:200] for s in seen if token in s]
    assert not hits, hits
    assert len(client_side) > 20
    client.close()


def _child(tmp_path: Path, server: Any, ref_images: list[Path], seed: int,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A new process (as a new kernel would) resuming the experiment's sweep with one more seed."""
    script = (
        "import runflow_nb as rf\n"
        f"client = rf.Client(api_key={KEY!r}, base_url={server.url!r}, poll_interval=0.05)\n"
        f"exp = rf.Experiment('hooked', store={str(tmp_path / 's.sqlite')!r}, artifacts={str(tmp_path / 'a')!r}, "
        "client=client)\n"
        f"exp.run(rf.grid(prompt={PROMPT!r}, images=[[{str(ref_images[0])!r}]], seed=[{seed}], duration=3, "
        "resolution='720p'), progress=None)\n"
        f"exp.run(rf.grid(prompt={PROMPT!r}, images=[[{str(ref_images[0])!r}]], seed=[{seed + 100}], duration=3, "
        "resolution='720p'), progress=None)\n"
        f"print('REMOTE=' + exp.store.runs('hooked', where={{'seed': {seed}}})[0]['remote_id'])\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240,
                          env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def test_a_new_process_says_once_that_it_has_no_url_or_takes_it_from_the_environment(
        tmp_path: Path, emulator_server: Any, hooks: Hooks, ref_images: list[Path]) -> None:
    token = _token()
    url = _hook_url(hooks.port, token)
    client = rf.Client(api_key=KEY, base_url=emulator_server.url, poll_interval=0.05)
    exp = Experiment("hooked", store=str(tmp_path / "s.sqlite"), artifacts=tmp_path / "a", client=client)
    exp.set_callback_url(url)
    exp.run(_grid(ref_images, 1), progress=None)

    # a later kernel without the URL: its runs go without a callback, and it says so once, redacted
    plain = _child(tmp_path, emulator_server, ref_images, 2)
    remote = plain.stdout.split("REMOTE=")[1].strip()
    assert _sent_callback(emulator_server, remote) is None
    notices = [line for line in plain.stderr.splitlines() if "WITHOUT a callback" in line]
    assert len(notices) == 1, plain.stderr  # two sweeps, one line
    assert f"127.0.0.1:{hooks.port}/hooks/***" in notices[0] and "exp.set_callback_url" in notices[0]
    assert "RUNFLOW_CALLBACK_URL" in notices[0] and token not in plain.stderr + plain.stdout

    # ... with RUNFLOW_CALLBACK_URL: the whole URL goes out, nothing to say
    with_env = _child(tmp_path, emulator_server, ref_images, 3, env={"RUNFLOW_CALLBACK_URL": url})
    assert _sent_callback(emulator_server, with_env.stdout.split("REMOTE=")[1].strip()) == url
    assert "WITHOUT a callback" not in with_env.stderr and token not in with_env.stderr + with_env.stdout

    # stopped with set_callback_url(None): no callback from later processes either, the variable included
    exp.set_callback_url(None)
    stopped = _child(tmp_path, emulator_server, ref_images, 4, env={"RUNFLOW_CALLBACK_URL": url})
    assert _sent_callback(emulator_server, stopped.stdout.split("REMOTE=")[1].strip()) is None
    assert "WITHOUT a callback" not in stopped.stderr
    exp.store.close()
    assert token.encode() not in _store_bytes(tmp_path)
    client.close()


def test_a_url_an_earlier_version_stored_is_moved_out_of_the_store_and_still_sent(
        tmp_path: Path, emulator_server: Any, ref_images: list[Path]) -> None:
    token = _token()
    url = f"https://hooks.example.org/runflow?token={token}"
    client = rf.Client(api_key=KEY, base_url=emulator_server.url, poll_interval=0.05)
    exp = Experiment("old", store=str(tmp_path / "s.sqlite"), artifacts=tmp_path / "a", client=client)
    exp.store.ensure_experiment("old", metadata={"callback_url": url})  # as earlier versions wrote it
    exp.run(_grid(ref_images, 1), progress=None)
    assert _sent_callback(emulator_server, exp.runs()[0]["remote_id"]) == url
    assert exp.store.experiment_metadata("old") == {"callback_url": None,
                                                    "callback": "https://hooks.example.org/runflow?token=***"}
    client.close()
    exp.store.close()
