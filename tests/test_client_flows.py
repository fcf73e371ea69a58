"""The client's own decisions, over ``httpx.MockTransport`` (no server, no threads, no sleeping):
which backend and base URL, the key and the headers it rides in, what a submit sends (client_ref,
metadata, inline images or uploads), file names from server ids, redirects off http(s), and that
the key shows in no repr, no ``vars()`` and no error.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from _wire import BASE, RUNS, Service, run_object
from PIL import Image

import runflow_nb as rf
from runflow_nb import __version__
from runflow_nb._client_base import new_client_ref, safe_name
from runflow_nb._http import refuse_non_http, send_sync
from runflow_nb._protocol import Send
from runflow_nb.client import SIMULATOR_BASE_URL, AsyncClient, Client
from runflow_nb.errors import ConfigurationError, NetworkError, RunflowError, ValidationError

KEYS = ["rf_live_0123456789abcdef", "sk-plain-key-without-prefix-7781", "k3y-no-usual-prefix-x9"]


@pytest.fixture(scope="module")
def small_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("refs") / "small.png"
    Image.new("RGB", (500, 400), (20, 100, 200)).save(path)
    return path


@pytest.fixture(scope="module")
def big_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Noise that PNG cannot squeeze below the 1 MiB inline limit: it must be uploaded."""
    path = tmp_path_factory.mktemp("refs") / "big.png"
    Image.frombytes("RGB", (700, 600), os.urandom(700 * 600 * 3)).save(path)
    assert path.stat().st_size > 1024 * 1024 * 3 // 4
    return path


def client(svc: Any, key: str | None = "rf_live_0123456789abcdef", **kwargs: Any) -> Client:
    return Client(api_key=key, base_url=BASE, transport=httpx.MockTransport(svc), **kwargs)


def sent_json(request: httpx.Request) -> Any:
    return json.loads(request.content)


# -- backend, base URL, protocol settings -------------------------------------------------------

def test_a_key_means_the_real_api_at_the_given_base_url_with_its_poll_settings() -> None:
    c = Client(api_key="rf_live_x", base_url="https://api.example.test/", timeout=12.0, download_timeout=99.0,
               poll_max=7.0, wait_timeout=321.0, max_retries=2)
    assert c.backend == "runflow" and c.base_url == "https://api.example.test/"
    proto = c._proto
    assert proto.base_url == "https://api.example.test" and proto.poll_interval == 2.0 and proto.poll_max == 7.0
    assert (proto.request_timeout_s, proto.download_timeout_s, proto.wait_timeout) == (12.0, 99.0, 321.0)
    assert proto.retry.max_retries == 2
    assert Client(api_key="k", poll_interval=9.0, poll_max=3.0)._proto.poll_max == 9.0  # never below the interval


def test_no_key_means_the_simulator_with_brisk_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNFLOW_API_KEY", raising=False)
    c = Client()
    assert c.backend == "simulator" and c.base_url == SIMULATOR_BASE_URL
    assert c._proto.poll_interval == 0.05 and c._proto.poll_max == 0.05
    assert c._api_key() == "simulator"
    c = Client(backend="simulator", poll_interval=0.2, poll_max=5.0)
    assert c._proto.poll_interval == 0.2 and c._proto.poll_max == 0.2


def test_the_backend_is_decided_at_first_use_so_a_key_set_after_import_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNFLOW_API_KEY", raising=False)
    c = Client(base_url=BASE)
    monkeypatch.setenv("RUNFLOW_API_KEY", "k3y-set-later")
    assert c.backend == "runflow" and c._api_key() == "k3y-set-later"
    assert c._resolve() is c._resolve()  # decided once


@pytest.mark.parametrize("url", ["ftp://api.test", "api.runflow.io", "https://", "https://a b.test",
                                 "https://api.test:99999", "file:///etc"])
def test_an_unusable_base_url_is_a_configuration_error(url: str) -> None:
    svc = Service()
    with pytest.raises(ConfigurationError, match="http:// or https://"):
        Client(api_key="k", base_url=url, transport=httpx.MockTransport(svc)).get("0193-x")
    assert svc.requests == []


# -- the key and the headers -------------------------------------------------------------------

def test_requests_carry_the_key_agent_and_organization_and_presigned_ones_carry_none(
        monkeypatch: pytest.MonkeyPatch) -> None:
    c = client(Service(), key="k3y-no-usual-prefix-x9")
    assert c._headers(Send("GET", BASE)) == {"User-Agent": f"runflow_nb/{__version__}",
                                              "Authorization": "Bearer k3y-no-usual-prefix-x9"}
    assert c._headers(Send("PUT", BASE, auth=False, headers={"Content-Type": "image/png"})) == {
        "User-Agent": f"runflow_nb/{__version__}", "Content-Type": "image/png"}
    monkeypatch.setenv("RUNFLOW_ORGANIZATION_ID", "org-42")
    assert c._headers(Send("GET", BASE))["X-Organization-Id"] == "org-42"
    assert "X-Organization-Id" not in c._headers(Send("PUT", BASE, auth=False))
    assert c._headers(Send("POST", BASE, headers={"Idempotency-Key": "k1"}))["Idempotency-Key"] == "k1"


def test_no_key_for_the_real_api_is_a_configuration_error_before_any_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNFLOW_API_KEY", raising=False)
    svc = Service()
    c = Client(base_url=BASE, backend="runflow", transport=httpx.MockTransport(svc))
    with pytest.raises(ConfigurationError, match="no API key"):
        c.get("0193-x")
    assert svc.requests == []


@pytest.mark.parametrize("bad", ["ключ-1234567890", "key\x00with-nul-123", "key\twith-tab-1234", "key\nline-12345"])
def test_a_key_no_header_can_carry_is_refused_without_echoing_it(bad: str) -> None:
    svc = Service()
    with pytest.raises(ConfigurationError) as caught:
        client(svc, key=bad).get("0193-x")
    assert bad.strip() not in str(caught.value) and bad.strip() not in repr(caught.value)
    assert svc.requests == []


@pytest.mark.parametrize("key", KEYS)
def test_the_key_is_in_no_repr_vars_or_error(key: str) -> None:
    def refusing(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == f"Bearer {key}"  # it is sent...
        return httpx.Response(401, json={"code": "UNAUTHORIZED", "message": "bad key"})

    def dropping(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError(f"connection reset while sending {request.headers!r}", request=request)

    texts: list[str] = []
    for handler in (refusing, dropping):
        c = client(handler, key=key, max_retries=0)
        texts += [repr(c), repr(vars(c)), str(c._init_kwargs)]
        with pytest.raises(RunflowError) as caught:
            c.get("0193-x")
        texts += [str(caught.value), repr(caught.value), repr(caught.value.args)]
        with pytest.raises(RunflowError) as caught:
            c.to_async().to_sync().get("0193-x")
        texts.append(str(caught.value))
    assert any("bad key" in t for t in texts) and any("ReadError" in t for t in texts)
    assert not [t for t in texts if key in t]  # ...and shown nowhere


# -- what a submit sends ------------------------------------------------------------------------

def test_a_submit_sends_its_client_ref_metadata_and_the_library(small_png: Path) -> None:
    svc = Service()
    run = client(svc).submit(prompt="character1 walks", images=[small_png], duration=3, resolution="720p",
                             seed=5, client_ref="rfnb-mine", metadata={"experiment": "horses"})
    (create,) = svc.requests
    sent = sent_json(create)
    assert set(sent) == {"input", "client_ref", "metadata"} and sent["client_ref"] == "rfnb-mine"
    assert sent["metadata"] == {"library": f"runflow_nb/{__version__}", "experiment": "horses"}
    assert sent["input"]["seed"] == 5 and sent["input"]["duration"] == 3 and sent["input"]["resolution"] == "720p"
    assert sent["input"]["image_urls"][0].startswith("data:image/png;base64,")  # small: inline, no upload
    assert create.headers["authorization"] == "Bearer rf_live_0123456789abcdef"
    assert run.id == svc.created[0]["id"]


def test_a_submit_without_a_client_ref_gets_a_fresh_one(small_png: Path) -> None:
    svc = Service()
    c = client(svc)
    c.submit(prompt="character1", images=[small_png], duration=3, resolution="720p", seed=1)
    c.submit(prompt="character1", images=[small_png], duration=3, resolution="720p", seed=1)
    refs = [sent_json(r)["client_ref"] for r in svc.requests]
    assert refs[0] != refs[1] and all(r.startswith("rfnb-") and len(r) == 37 for r in refs)
    keys = [r.headers["idempotency-key"] for r in svc.requests]
    assert keys[0] != keys[1]


def test_a_client_ref_over_255_characters_is_refused_before_any_request(small_png: Path) -> None:
    svc = Service()
    c = client(svc)
    with pytest.raises(ValidationError, match="256 characters; the limit is 255"):
        c.submit(prompt="character1", images=[small_png], duration=3, resolution="720p", client_ref="r" * 256)
    assert svc.requests == []
    c.submit(prompt="character1", images=[small_png], duration=3, resolution="720p", client_ref="r" * 255)
    assert sent_json(svc.requests[0])["client_ref"] == "r" * 255


def test_a_url_reference_is_sent_as_given(small_png: Path) -> None:
    svc = Service()
    client(svc).submit(prompt="character1 and character2", images=["https://img.test/a.png", small_png],
                       duration=3, resolution="720p")
    urls = sent_json(svc.requests[0])["input"]["image_urls"]
    assert urls[0] == "https://img.test/a.png" and urls[1].startswith("data:image/png;base64,")


def test_a_large_reference_is_uploaded_in_three_steps_and_its_signed_url_sent(small_png: Path, big_png: Path) -> None:
    svc = Service()
    client(svc).submit(prompt="character1 and character2", images=[small_png, big_png], duration=3,
                       resolution="720p", client_ref="rfnb-up")
    session, put, confirm, create = svc.requests
    asset_id = next(iter(svc.assets))
    assert sent_json(session) == {"filename": "reference2.png", "mime_type": "image/png",
                                  "size_bytes": big_png.stat().st_size}
    assert put.method == "PUT" and put.content == big_png.read_bytes() and put.headers["content-type"] == "image/png"
    assert "authorization" not in put.headers  # a presigned URL never sees the key
    assert all(r.headers["authorization"].startswith("Bearer ") for r in (session, confirm, create))
    urls = sent_json(create)["input"]["image_urls"]
    assert urls[0].startswith("data:image/png;base64,") and urls[1] == f"https://cdn.test/{asset_id}.png?sig=1"


def test_the_upload_names_each_reference_by_its_place_and_type(tmp_path: Path) -> None:
    paths = []
    for i, fmt in enumerate(["JPEG", "WEBP", "PNG"]):
        path = tmp_path / f"noise{i}.{fmt.lower()}"
        Image.frombytes("RGB", (900, 900), os.urandom(900 * 900 * 3)).save(path, fmt, **(
            {"quality": 100} if fmt == "JPEG" else {"lossless": True} if fmt == "WEBP" else {}))
        paths.append(path)
    svc = Service()
    client(svc).submit(prompt="character1 character2 character3", images=paths, duration=3, resolution="720p")
    sessions = [sent_json(r) for r in svc.requests if r.url.path == "/v1/asset-uploads"]
    assert [(s["filename"], s["mime_type"]) for s in sessions] == [
        ("reference1.jpg", "image/jpeg"), ("reference2.webp", "image/webp"), ("reference3.png", "image/png")]


def test_a_created_then_500_submit_through_the_client_pays_once(small_png: Path) -> None:
    svc = Service(create_faults=("created-500",))
    run = client(svc).submit(prompt="character1", images=[small_png], duration=3, resolution="720p")
    assert len(svc.created) == 1 and run.id == svc.created[0]["id"]
    assert [f"{r.method} {r.url.path}" for r in svc.requests] == [f"POST {RUNS}", "GET /v1/runs"]


# -- names, redirects, deadlines ------------------------------------------------------------------

@pytest.mark.parametrize(("server_id", "name"), [
    ("0193a8c2-7d4e-7b1a", "0193a8c2-7d4e-7b1a"), ("../../etc/passwd", "______etc_passwd"),
    ("a/b\\c:d", "a_b_c_d"), ("", "run"), ("x" * 300, "x" * 120), ("run_1-A", "run_1-A"), (".", "_"),
])
def test_a_server_id_becomes_a_safe_file_name(server_id: str, name: str) -> None:
    assert safe_name(server_id) == name


def test_client_refs_are_fresh_and_well_formed() -> None:
    refs = {new_client_ref() for _ in range(50)}
    assert len(refs) == 50
    assert all(r.startswith("rfnb-") and len(r) == 37 and int(r[5:], 16) >= 0 for r in refs)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://host/x", "data:text/plain,hi"])
def test_a_request_off_http_is_refused(url: str) -> None:
    with pytest.raises(httpx.UnsupportedProtocol, match="refusing a"):
        refuse_non_http(httpx.Request("GET", url))


def test_http_requests_pass_the_scheme_check() -> None:
    refuse_non_http(httpx.Request("GET", "https://cdn.test/v.mp4"))
    refuse_non_http(httpx.Request("GET", "http://cdn.test/v.mp4"))


def test_a_redirect_to_a_file_url_is_never_followed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "file:///etc/passwd"})

    with pytest.raises(NetworkError):
        client(handler, max_retries=0).get("0193-x")


def test_an_answer_past_its_deadline_is_cut_off() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=run_object("0193-x", "r"))

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        late = send_sync(http, Send("GET", f"{BASE}/v1/runs/x", deadline=time.monotonic() - 1), headers={},
                         timeout=httpx.Timeout(5.0))
        on_time = send_sync(http, Send("GET", f"{BASE}/v1/runs/x", deadline=time.monotonic() + 60), headers={},
                            timeout=httpx.Timeout(5.0))
    assert isinstance(late, httpx.ReadTimeout) and "deadline passed" in str(late)
    assert isinstance(on_time, httpx.Response) and on_time.json()["id"] == "0193-x"


def test_the_async_client_sends_what_the_sync_one_does(small_png: Path) -> None:
    import asyncio

    svc = Service()

    async def go() -> Any:
        async with AsyncClient(api_key="k3y-async-1234567", base_url=BASE, transport=httpx.MockTransport(svc)) as c:
            return await c.submit(prompt="character1", images=[small_png], duration=3, resolution="720p",
                                  client_ref="rfnb-async")

    run = asyncio.run(go())
    (create,) = svc.requests
    assert run.client_ref == "rfnb-async" and create.headers["authorization"] == "Bearer k3y-async-1234567"
    assert sent_json(create)["metadata"] == {"library": f"runflow_nb/{__version__}"}


def test_bad_input_is_refused_before_any_request(small_png: Path) -> None:
    svc = Service()
    with pytest.raises(ValidationError):
        client(svc).submit(prompt="character1", images=[small_png], duration=99, resolution="720p")
    with pytest.raises(ValidationError, match="both a VideoRequest and keyword inputs"):
        req = rf.VideoRequest.build(prompt="character1", images=[small_png], duration=3, resolution="720p")
        client(svc).submit(req, prompt="x")
    assert svc.requests == []



# -- what the first pass of mutation testing showed untested ------------------------------------

def test_a_server_id_keeps_its_letters_including_x() -> None:
    assert safe_name("0193-Xx-run") == "0193-Xx-run"


def test_key_problems_say_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNFLOW_API_KEY", raising=False)
    with pytest.raises(ConfigurationError) as caught:
        Client(base_url=BASE, backend="runflow")._api_key()
    assert str(caught.value) == "no API key: pass api_key=... or set RUNFLOW_API_KEY"
    with pytest.raises(ConfigurationError) as caught:
        Client(api_key="bad\x01key-123456", base_url=BASE)._api_key()
    assert str(caught.value) == ("the API key holds characters an HTTP header cannot carry (non-ASCII or control "
                                 "characters): check api_key=... / RUNFLOW_API_KEY for stray ones")


def test_a_too_long_client_ref_names_its_field_and_the_fix(small_png: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        client(Service()).submit(prompt="character1", images=[small_png], duration=3, resolution="720p",
                                 client_ref="r" * 300)
    (issue,) = caught.value.issues
    assert (issue.field, issue.message, issue.fix) == ("client_ref", "is 300 characters; the limit is 255",
                                                       "use a shorter reference")


def test_an_explicit_idempotency_key_reaches_the_create(small_png: Path) -> None:
    svc = Service()
    client(svc).submit(prompt="character1", images=[small_png], duration=3, resolution="720p",
                       idempotency_key="my-key-1")
    assert svc.requests[0].headers["idempotency-key"] == "my-key-1"


def test_a_large_bmp_for_image_to_video_is_uploaded_as_bmp(tmp_path: Path) -> None:
    path = tmp_path / "noise.bmp"
    Image.frombytes("RGB", (700, 600), os.urandom(700 * 600 * 3)).save(path, "BMP")

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/image-to-video/runs"):
            svc.requests.append(request)
            return httpx.Response(201, json=run_object("0193-i2v", sent_json(request)["client_ref"]))
        return svc(request)

    svc = Service()
    client(handler).submit(model="image-to-video", image=path, prompt="it moves", duration=3, resolution="720p")
    (session,) = [sent_json(r) for r in svc.requests if r.url.path == "/v1/asset-uploads"]
    assert (session["filename"], session["mime_type"]) == ("reference1.bmp", "image/bmp")
    assert sent_json(svc.requests[-1])["input"]["image_url"].startswith("https://cdn.test/")


@pytest.mark.parametrize(("fmt", "name", "mime"), [("mp4", "input.mp4", "video/mp4"),
                                                   ("mov", "input.mov", "video/quicktime")])
def test_a_local_clip_for_video_edit_is_uploaded_and_its_url_sent(fmt: str, name: str, mime: str,
                                                                   tmp_path: Path) -> None:
    import av
    import numpy as np

    clip = tmp_path / f"clip.{fmt}"
    with av.open(str(clip), "w", format=fmt) as out:
        stream = out.add_stream("mpeg4", rate=2)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(8):  # 4 s
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 20, np.uint8), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/video-edit/runs"):
            svc.requests.append(request)
            return httpx.Response(201, json=run_object("0193-edit", sent_json(request)["client_ref"]))
        if request.url.host == "storage.test":  # the Service's PUT stores only images' bytes
            svc.requests.append(request)
            return httpx.Response(200)
        return svc(request)

    svc = Service()
    client(handler).submit(model="video-edit", video=clip, prompt="make it night", resolution="720p")
    (session,) = [sent_json(r) for r in svc.requests if r.url.path == "/v1/asset-uploads"]
    assert session == {"filename": name, "mime_type": mime, "size_bytes": clip.stat().st_size}
    (put,) = [r for r in svc.requests if r.method == "PUT"]
    assert put.content == clip.read_bytes() and "authorization" not in put.headers
    asset_id = next(iter(svc.assets))
    assert sent_json(svc.requests[-1])["input"]["video_url"] == f"https://cdn.test/{asset_id}.png?sig=1"


def test_the_refusal_of_a_non_http_request_names_the_request() -> None:
    request = httpx.Request("GET", "file:///etc/passwd")
    with pytest.raises(httpx.UnsupportedProtocol) as caught:
        refuse_non_http(request)
    assert caught.value.request is request and str(caught.value) == "refusing a file:// URL"
