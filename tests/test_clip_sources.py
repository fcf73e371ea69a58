"""Where a clip's ``<video src>`` and still come from, in every place a clip shows.

A live JupyterLab kernel gives its server's own ``/files/`` URL (found from the server's runtime
file), the bytes for a file that server cannot serve, and a relative path in reports; shared
storage (S3, moto's server on loopback) gives presigned URLs that fetch as ``video/*`` from the
gallery (static and live), compare, ``rf.show``, ``exp.best()`` and ``exp.view()`` alike.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_artifacts_s3 import BUCKET, KEY, s3  # noqa: F401  (s3 is a fixture)

import runflow_nb as rf
from runflow_nb.views import display, served


@pytest.fixture
def live_kernel(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """This process as a kernel that JupyterLab started, with its server's runtime file in place."""
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "lab" / "nb.ipynb"))
    monkeypatch.setattr("runflow_nb.views.served.interactive_frontend", lambda: True)
    served.kernel_file_server.cache_clear()
    yield runtime
    served.kernel_file_server.cache_clear()


def _server_file(runtime: Path, *, pid: int, root: Path, base_url: str = "/") -> None:
    info = {"pid": pid, "root_dir": str(root), "base_url": base_url, "url": "http://127.0.0.1:1/", "port": 1}
    (runtime / f"jpserver-{pid}.json").write_text(json.dumps(info))


def test_a_live_kernel_plays_files_under_its_servers_root_by_the_servers_own_url(
        live_kernel: Path, tmp_path: Path) -> None:
    root = tmp_path / "lab"
    clip = root / "sub folder" / "runflow_data" / "a b.mp4"
    clip.parent.mkdir(parents=True)
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    _server_file(live_kernel, pid=os.getpid() + 10_000, root=tmp_path / "other")  # another user's server
    _server_file(live_kernel, pid=os.getppid(), root=root, base_url="/user/ana/")
    assert served.kernel_file_server() == served.FileServer(root=root, base_url="/user/ana/")
    # an absolute URL: nothing has to rewrite it, so it works in widgets, outputs, src and poster alike
    assert display.media_src(clip) == "/user/ana/files/sub%20folder/runflow_data/a%20b.mp4"


def test_a_file_the_server_cannot_serve_is_sent_as_its_bytes(live_kernel: Path, tmp_path: Path) -> None:
    root = tmp_path / "lab"
    root.mkdir()
    _server_file(live_kernel, pid=os.getppid(), root=root)
    outside = tmp_path / "elsewhere" / "clip.mp4"
    hidden = root / ".cache" / "clip.mp4"
    for path in (outside, hidden):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    for path in (outside, hidden):  # the server refuses both: outside its root, and hidden
        assert display.media_src(path) == "data:video/mp4;base64,AAAAGGZ0eXBtcDQy"
    # a kernel no server started (VS Code, Colab): the bytes too
    (live_kernel / f"jpserver-{os.getppid()}.json").unlink()
    served.kernel_file_server.cache_clear()
    assert display.media_src(root / "x.mp4") == os.path.relpath(root / "x.mp4")  # missing: no bytes to send
    inside = root / "clip.mp4"
    inside.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    assert display.media_src(inside).startswith("data:video/mp4;base64,")


def test_without_a_live_front_end_sources_stay_relative_for_reports(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runflow_data").mkdir()
    clip = tmp_path / "runflow_data" / "c.mp4"
    clip.write_bytes(b"x")
    assert served.local_src(clip) is None
    assert display.media_src(clip) == "runflow_data/c.mp4"


def _videos_and_posters(markup: str) -> tuple[list[str], list[str]]:
    videos = [html.unescape(m) for m in re.findall(r'<video [^>]*?\bsrc="([^"]*)"', markup)]
    posters = [html.unescape(m) for m in re.findall(r'<video [^>]*?\bposter="([^"]*)"', markup)]
    return videos, posters


def _assert_fetch(urls: list[str], kind: str, endpoint: str) -> None:
    assert urls
    for url in urls:
        assert url.startswith(endpoint) and "X-Amz-Signature=" in url, url
        reply = httpx.get(url, timeout=30)
        assert reply.status_code == 200 and reply.headers["content-type"].startswith(kind), (url, reply.headers)


def test_an_s3_study_shows_presigned_urls_that_fetch_as_video_in_every_view(
        s3: dict[str, Any], emulator_server: Any, ref_images: list[Path], tmp_path: Path,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch, live_kernel: Path) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    from runflow_nb.views.tableview import TableView
    from runflow_nb.widgets.compare import synced_videos_html
    from runflow_nb.widgets.gallery import best_html

    monkeypatch.chdir(tmp_path)
    _server_file(live_kernel, pid=os.getppid(), root=tmp_path)  # a live Lab: S3 still wins over /files/
    client = rf.Client(api_key=KEY, base_url=emulator_server.url, poll_interval=0.05)
    exp = rf.Experiment("s3-views", store="runs.sqlite", artifacts=f"s3://{BUCKET}/views/", client=client,
                        storage_options=s3["options"])
    df = exp.run(rf.grid(prompt="character1 waves", images=ref_images[:1], seed=[1, 2], duration=3,
                         resolution="720p"), progress=None)
    assert list(df.status) == ["succeeded", "succeeded"]
    rows = [exp.store.get_run(r) for r in df.run_id]

    gallery = exp.gallery()
    live = gallery.widget()
    live_html = "".join(str(getattr(w, "value", "") or "") for w in _walk(live))
    shown: list[str] = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append(obj.data))
    InteractiveShell.instance()
    rf.show(rows[0])
    views = {"gallery (static)": gallery.markup, "gallery (live widget)": live_html,
             "compare": synced_videos_html(rows[0], rows[1]), "rf.show": shown[0], "best": best_html(df)}
    for name, markup in views.items():
        videos, posters = _videos_and_posters(markup)
        assert videos and len(posters) == len(videos), name
        _assert_fetch(videos, "video/", s3["endpoint"])
        _assert_fetch(posters, "image/", s3["endpoint"])
    # exp.view(): a still per run, linked to its clip
    table = TableView(df).static_html()
    stills = [html.unescape(m) for m in re.findall(r'<img src="([^"]*)" alt="still"', table)]
    links = [html.unescape(m) for m in re.findall(r'<a href="([^"]*)" target="_blank" title="open the clip"', table)]
    _assert_fetch(stills, "image/", s3["endpoint"])
    _assert_fetch(links, "video/", s3["endpoint"])


def _walk(widget: Any) -> Iterator[Any]:
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)


def test_a_vs_code_kernel_gets_the_bytes_and_papermill_gets_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """VS Code starts kernels without a Jupyter server and marks its notebooks' namespace; a kernel
    papermill started (no marker, no session variable) keeps report paths."""
    class ZMQInteractiveShell:  # what ipykernel's shell is called; user_ns as VS Code leaves it
        def __init__(self) -> None:
            self.user_ns: dict[str, Any] = {}

    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.chdir(tmp_path)
    clip = tmp_path / "c.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    shell = ZMQInteractiveShell()
    monkeypatch.setattr("IPython.get_ipython", lambda: shell)
    assert display.media_src(clip) == "c.mp4"  # papermill: no marker
    shell.user_ns = {"__vsc_ipynb_file__": str(tmp_path / "nb.ipynb")}
    served.kernel_file_server.cache_clear()
    assert display.media_src(clip) == "data:video/mp4;base64,AAAAGGZ0eXBtcDQy"
