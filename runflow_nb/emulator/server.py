"""The loopback server: a stdlib ``ThreadingHTTPServer`` adapting real sockets to
:meth:`Emulator.handle <runflow_nb.emulator.Emulator.handle>`."""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from .app import Emulator
from .faults import ConnectionDropped

__all__ = ["MAX_BODY_BYTES", "EmulatorServer", "serve"]

log = logging.getLogger("runflow_nb.emulator")

#: The largest request body served: 60 MiB, room for the documented 50 MiB upload (``size_bytes`` ≤
#: 52,428,800) and inline ``data:`` images. A larger body answers 413 ``PAYLOAD_TOO_LARGE`` (the
#: envelope) before its excess is read, and the connection closes.
MAX_BODY_BYTES = 60 * 1024 * 1024


_DISCARD_CAP = 4 * MAX_BODY_BYTES  # bytes read and dropped after a refusal before the socket closes anyway


class _BodyRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _too_large() -> _BodyRefused:
    return _BodyRefused(413, "PAYLOAD_TOO_LARGE", f"the request body is over {MAX_BODY_BYTES:,} bytes (60 MiB); "
                                                  "upload large files through POST /v1/asset-uploads")

class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024
    emulator: Emulator
    base_url: str

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):  # a client hung up (reset, broken pipe): routine, not a bug
            log.debug("emulator: connection from %s ended: %s", client_address, exc)
        else:
            log.exception("emulator: error while serving %s", client_address)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, keep-alive clients wait ~40 ms for
    # the delayed ACK on every answer.
    disable_nagle_algorithm = True
    server_version = "runflow-nb-emulator"
    timeout = 300  # idle keep-alive connections end eventually
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("emulator: %s - %s", self.address_string(), format % args)

    def _read_body(self) -> bytes:
        """The request body, refused (:class:`_BodyRefused`) past :data:`MAX_BODY_BYTES` before the
        excess is read: a declared Content-Length or chunk size is checked first."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = bytearray()
            while True:
                line = self.rfile.readline(1024)
                try:
                    size = int(line.split(b";")[0].strip() or b"0", 16)
                except ValueError:
                    raise _BodyRefused(400, "BAD_REQUEST", "the chunked body has a malformed chunk size") from None
                if size < 0:
                    raise _BodyRefused(400, "BAD_REQUEST", "the chunked body has a malformed chunk size")
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                if len(out) + size > MAX_BODY_BYTES:
                    raise _too_large()
                out += self.rfile.read(size)
                self.rfile.readline(1024)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise _BodyRefused(400, "BAD_REQUEST", "Content-Length is not a number") from None
        if length < 0:
            raise _BodyRefused(400, "BAD_REQUEST", "Content-Length is negative")
        if length > MAX_BODY_BYTES:
            raise _too_large()
        return self.rfile.read(length) if length else b""

    def _refuse(self, refused: _BodyRefused) -> None:
        """Answer a refused body with the error envelope and close (the unread rest is never read)."""
        body = json.dumps({"code": refused.code, "message": refused.message, "errors": None,
                           "request_id": f"req_{secrets.token_hex(8)}"}).encode()
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.send_response(refused.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        # Lingering close: the client is still sending; read and discard what it sends (never kept),
        # so it reads the answer rather than a connection reset.
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(5)
            discarded = 0
            while discarded < _DISCARD_CAP and (chunk := self.rfile.read1(1 << 16)):
                discarded += len(chunk)

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
        except _BodyRefused as refused:
            self._refuse(refused)
            return
        except OSError:
            self.close_connection = True
            return
        skip = {"content-length", "transfer-encoding"}
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in skip]
        try:
            request = httpx.Request(self.command, self.server.base_url + self.path, headers=headers, content=body)
            response = self.server.emulator.handle(request)
        except ConnectionDropped:
            self.close_connection = True  # the socket closes without a byte of answer
            return
        except (httpx.InvalidURL, ValueError):
            self.send_error(400)
            return
        try:
            self.send_response(response.status_code)
            for key, value in response.headers.multi_items():
                if key.lower() not in ("transfer-encoding", "connection", "content-encoding"):
                    self.send_header(key, value)
            if "content-length" not in response.headers:
                response.read()
                self.send_header("Content-Length", str(len(response.content)))
            self.end_headers()
            if self.command != "HEAD":
                assert isinstance(response.stream, httpx.SyncByteStream)
                for chunk in response.stream:
                    self.wfile.write(chunk)
            self.wfile.flush()
        except ConnectionDropped:
            with contextlib.suppress(OSError):
                self.wfile.flush()
            self.close_connection = True
        except OSError:  # the client went away
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch


class EmulatorServer:
    """An emulator served on a real socket by a daemon thread. Use as a context manager.

    >>> with serve(port=0, latency=0.05) as server:                           # doctest: +SKIP
    ...     httpx.get(f"{server.url}/v1/health").json()
    """

    def __init__(self, emulator: Emulator, *, host: str = "127.0.0.1", port: int = 0,
                 owns_emulator: bool = False) -> None:
        self.emulator = emulator
        self._owns = owns_emulator
        self._server = (_Server6 if ":" in host else _Server)((host, port), _Handler)
        self.host, self.port = host, int(self._server.server_address[1])
        shown = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
        self.url = f"http://[{shown}]:{self.port}" if ":" in shown else f"http://{shown}:{self.port}"
        self._server.emulator = emulator
        self._server.base_url = self.url
        emulator.base_url = self.url
        emulator.callbacks.enabled = True  # served, it acts as the service: run ends go to callback URLs
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"runflow-emulator-{self.port}", daemon=True)
        self._thread.start()
        self._closed = False

    def close(self) -> None:
        """Stop serving and free the port (and close the emulator if :func:`serve` made it)."""
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        if self._owns:
            self.emulator.close()

    def __enter__(self) -> EmulatorServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<EmulatorServer {self.url} faults={self.emulator.faults}>"


def serve(host: str = "127.0.0.1", port: int = 0, *, emulator: Emulator | None = None,
          **kw: Any) -> EmulatorServer:
    """Serve ``emulator`` (or a new ``Emulator(**kw)``) on ``host:port`` (0 = any free port)."""
    if emulator is not None and kw:
        raise TypeError("pass either an emulator or Emulator options, not both")
    owns = emulator is None
    emu = emulator if emulator is not None else Emulator(**kw)
    try:
        return EmulatorServer(emu, host=host, port=port, owns_emulator=owns)
    except BaseException:
        if owns:
            emu.close()
        raise


