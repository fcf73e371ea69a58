"""Peak extra memory while downloading a 100 MB artifact: the toolkit's streamed, hashed download
against the naive ``requests.get(url).content``.

A stdlib ``http.server`` in its own process serves 100 MB of random bytes from disk. Each download
runs in a fresh interpreter (so one cannot inherit the other's heap) that records its resident set
size before the download and its peak during it: ``VmHWM`` after resetting it through
``/proc/self/clear_refs``, cross-checked by a thread sampling ``VmRSS`` every 2 ms.

    python benchmarks/bench_download_memory.py [--mb 100]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _child(mode: str, url: str, size: int, sha: str, dest: str) -> dict[str, Any]:
    """Runs in a fresh interpreter: one download, measured."""
    import requests

    import runflow_nb as rf
    from runflow_nb.runs import Output, Run

    client = rf.Client(api_key="rf_bench_key", base_url=url)
    client._client()  # the connection pool and every module exist before the baseline is taken
    assert client.backend == "runflow"
    import runflow_nb.media.probe  # noqa: F401

    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _status_kb("VmRSS"))
            time.sleep(0.002)

    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = _status_kb("VmRSS")
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    if mode == "toolkit":
        run = Run(id="bench", status="succeeded", output=Output(video_url=url, size=size, sha256=sha))
        got_sha, got_size = client.download(run, dest)
        assert (got_sha, got_size) == (sha, size)
    else:
        data = requests.get(url, timeout=120).content
        Path(dest).write_bytes(data)
        assert len(data) == size
        del data
    seconds = time.perf_counter() - t0
    stop.set()
    sampler.join()
    hwm = _status_kb("VmHWM")
    return {"mode": mode, "before_mb": before / 1024, "peak_extra_mb": (max(hwm, peak[0]) - before) / 1024,
            "sampled_extra_mb": (peak[0] - before) / 1024, "seconds": seconds}


@contextlib.contextmanager
def _file_server(folder: Path) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                             "--directory", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the file server did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def run(*, mb: int = 100) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "served"
        folder.mkdir()
        blob = folder / "artifact.mp4"
        h = hashlib.sha256()
        with open(blob, "wb") as fh:
            for _ in range(mb):
                chunk = os.urandom(1 << 20)
                h.update(chunk)
                fh.write(chunk)
        size, sha = mb << 20, h.hexdigest()
        results = {}
        with _file_server(folder) as base:
            for mode in ("toolkit", "naive"):
                out = subprocess.run([sys.executable, str(HERE), "--child", mode, f"{base}/artifact.mp4", str(size),
                                      sha, str(Path(tmp) / f"{mode}.bin")], capture_output=True, text=True,
                                     timeout=300, check=True)
                results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    return {"mb": mb, "toolkit": results["toolkit"], "naive": results["naive"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--child", nargs=5, metavar=("MODE", "URL", "SIZE", "SHA", "DEST"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        mode, url, size, sha, dest = a.child
        print(json.dumps(_child(mode, url, int(size), sha, dest)))
        return
    r = run(mb=a.mb)
    for mode in ("toolkit", "naive"):
        m = r[mode]
        print(f"{mode:8} {r['mb']} MB download: peak extra memory {m['peak_extra_mb']:6.1f} MB "
              f"(sampled {m['sampled_extra_mb']:.1f} MB) in {m['seconds']:.2f} s")


if __name__ == "__main__":
    main()
