"""The loopback server bounds request bodies: past 60 MiB it answers 413 in the error envelope before
reading the excess (a declared size is refused at once), and it keeps serving afterwards."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest

from runflow_nb.emulator import MAX_BODY_BYTES, EmulatorServer, serve

AUTH = {"Authorization": "Bearer rf_test_limits"}


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    with serve(port=0, latency=0.05) as live:
        yield live


def raw_exchange(server: EmulatorServer, head: bytes) -> tuple[int, dict[str, object]]:
    """Send only ``head`` (request line, headers, maybe a chunk size) and read the answer: the body
    the headers announce is never sent, so an answer proves the server did not wait to read it."""
    with socket.create_connection((server.host, server.port), timeout=60) as sock:
        sock.sendall(head)
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
            more = sock.recv(65536)
            if not more:
                break
            data += more
    status = int(data.split(b" ", 2)[1])
    return status, json.loads(data.split(b"\r\n\r\n", 1)[1])


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


def test_a_chunked_body_past_the_cap_answers_413_and_the_server_keeps_serving(server: EmulatorServer) -> None:
    chunk = b"x" * (1 << 20)

    def body() -> Iterator[bytes]:
        for _ in range(MAX_BODY_BYTES // len(chunk) + 8):
            yield chunk

    answer = httpx.post(f"{server.url}/v1/asset-uploads", content=body(), headers=AUTH, timeout=120)
    assert answer.status_code == 413
    assert answer.json()["code"] == "PAYLOAD_TOO_LARGE" and "60 MiB" in answer.json()["message"]
    assert answer.json()["errors"] is None and answer.json()["request_id"]
    assert httpx.get(f"{server.url}/v1/health", timeout=30).json()["status"] == "ok"


def test_a_declared_chunk_past_the_cap_is_refused_before_it_is_sent(server: EmulatorServer) -> None:
    head = (b"POST /v1/asset-uploads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + f"{10 * 2**30:x}\r\n".encode())
    status, answer = raw_exchange(server, head)
    assert status == 413 and answer["code"] == "PAYLOAD_TOO_LARGE"


def test_a_content_length_past_the_cap_is_refused_before_it_is_sent(server: EmulatorServer) -> None:
    head = (b"PUT /uploads/any HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            + f"Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n".encode())
    status, answer = raw_exchange(server, head)
    assert status == 413 and answer["code"] == "PAYLOAD_TOO_LARGE"


def test_a_malformed_chunk_size_is_a_400_in_the_envelope(server: EmulatorServer) -> None:
    head = (b"POST /v1/asset-uploads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
            b"Transfer-Encoding: chunked\r\n\r\nnot-hex\r\n")
    status, answer = raw_exchange(server, head)
    assert status == 400 and answer["code"] == "BAD_REQUEST"


def test_a_documented_50_mib_upload_still_fits(server: EmulatorServer) -> None:
    size = 52_428_800
    session = httpx.post(f"{server.url}/v1/asset-uploads", headers=AUTH, timeout=60,
                         json={"filename": "big.png", "mime_type": "image/png", "size_bytes": size}).json()
    put = httpx.put(session["upload_url"], content=b"\0" * size, headers={"Content-Type": "image/png"}, timeout=120)
    assert put.status_code < 300, put.text
