"""Bad input never reaches the network: every one is a ValidationError naming the field.

Each case goes through ``VideoRequest.build`` / ``load_reference`` and through ``Client.submit`` /
``AsyncClient.submit`` with an ``httpx.MockTransport`` that records requests: the error must be a
:class:`runflow_nb.errors.ValidationError` (never another exception type) that names the field,
and the transport must see zero requests. Hypothesis fuzzes image bytes, mutated real images,
path/URL strings and every scalar field.

``ODD_STRINGS`` lists paths and URLs that once escaped as other exception types.
"""

from __future__ import annotations

import asyncio
import io
import os
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _sweep_child import record
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

import runflow_nb as rf
from runflow_nb.errors import ValidationError
from runflow_nb.request import Reference, VideoRequest, load_reference

FIELD = "images[0]"  # the caller's name for the first reference (the wire calls it image_urls[0])
PROMPT = "character1 walks through the rain"
FUZZ = settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
COUNTS: dict[str, int] = {"cases": 0, "fuzzed": 0}


# --- inputs ---------------------------------------------------------------------------------------


def encoded(fmt: str, size: tuple[int, int] = (800, 600), mode: str = "RGB", **save: Any) -> bytes:
    img = Image.new(mode, size, "white" if mode != "P" else 0)
    if mode == "RGB":
        ImageDraw.Draw(img).ellipse((200, 100, 600, 500), fill=(30, 120, 200))
    buf = io.BytesIO()
    img.save(buf, fmt, **save)
    return buf.getvalue()


PNG, JPEG, WEBP = encoded("PNG"), encoded("JPEG", quality=85), encoded("WEBP", quality=80)


def png_bomb(width: int, height: int) -> bytes:
    """A few hundred bytes of 1-bit PNG whose header claims ``width``×``height`` pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width // 8 + 1) * 16, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


BAD_IMAGE_BYTES: dict[str, bytes] = {
    "empty": b"",
    "garbage": bytes(range(256)) * 4,
    "png-truncated-in-header": PNG[:20],
    "png-truncated-in-data": PNG[: len(PNG) // 2],
    "jpeg-truncated": JPEG[: len(JPEG) // 2],
    "webp-truncated": WEBP[: len(WEBP) // 2],
    "png-bad-ihdr-crc": PNG[:29] + bytes([PNG[29] ^ 0xFF]) + PNG[30:],
    "png-corrupt-idat": PNG[:60] + bytes([PNG[60] ^ 0xFF]) + PNG[61:],
    "decompression-bomb-40000x40000": png_bomb(40_000, 40_000),
    "decompression-bomb-12000x12000": png_bomb(12_000, 12_000),
    "huge-11MB": PNG + b"\x00" * (11 * 1024 * 1024),
    "too-small-100x100": encoded("PNG", (100, 100)),
    "gif": encoded("GIF", mode="P"),
    "bmp": encoded("BMP"),
    "tiff": encoded("TIFF"),
    "ico": encoded("ICO", (256, 256)),
    "pdf": encoded("PDF"),
    "svg-text": b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="800" height="600">'
                b'<rect width="800" height="600" fill="red"/></svg>',
    "html-text": b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>",
    "non-utf8-text": b"\xff\xfe\xfa not an image \x80\x81",
}

BAD_URLS = ["ftp://example.org/horse.png", "gopher://example.org/1", "javascript:alert(1)",
            "data:image/png;base64,iVBORw0KGgo=", "file:///etc/passwd", "http://", "https:///nohost.png",
            "http://exa mple.com/a.png", "s3://bucket/key.png", "  ", ""]


def _bad_paths(tmp: Path) -> dict[str, str]:
    folder = tmp / "a-folder"
    folder.mkdir()
    loop = tmp / "loop.png"
    os.symlink(loop, loop)
    dangling = tmp / "dangling.png"
    os.symlink(tmp / "nowhere.png", dangling)
    fifo = tmp / "fifo.png"
    os.mkfifo(fifo)
    sparse = tmp / "sparse-12MB.png"
    with open(sparse, "wb") as fh:
        fh.write(PNG)
        fh.truncate(12 * 1024 * 1024)
    html = tmp / "page.png"
    html.write_bytes(BAD_IMAGE_BYTES["html-text"])
    return {"directory": str(folder), "dev-zero": "/dev/zero", "dev-null": "/dev/null",
            "dev-urandom": "/dev/urandom", "symlink-loop": str(loop), "dangling-symlink": str(dangling),
            "fifo": str(fifo), "missing": str(tmp / "missing.png"), "sparse-12MB": str(sparse),
            "html-named-png": str(html), "proc-self-mem": "/proc/self/mem"}


# Inputs that once raised something other than ValidationError (or were accepted and would be sent).
ODD_STRINGS: dict[str, tuple[Any, str]] = {
    "path-with-nul": ("/tmp/horse\x00.png",
                      "load_reference: Path.stat() raises ValueError('embedded null byte'), not caught"),
    "path-with-lone-surrogate": ("/tmp/horse\ud800.png",
                                 "load_reference: Path.stat() raises UnicodeEncodeError, not caught"),
    "path-unknown-user-home": ("~no_such_user_runflow/horse.png",
                               "load_reference: Path.expanduser() raises RuntimeError, not caught"),
    "url-bad-ipv6": ("http://[::1/horse.png", "load_reference: urlsplit() raises ValueError('Invalid IPv6 URL')"),
    "url-lone-surrogate": ("https://ho\ud800rse.example/a.png",
                           "load_reference: url.encode() for the sha256 raises UnicodeEncodeError"),
    "url-with-nul": ("https://exa\x00mple.com/a.png",
                     "load_reference accepts a URL with a NUL byte (only spaces are checked): it is sent"),
}


# --- the harness ------------------------------------------------------------------------------------


class Recorder:
    """A MockTransport handler that records every request (and answers like a server would)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(f"{request.method} {request.url}")
        return httpx.Response(201, json={"id": "run_mock", "status": "queued"})


def _clients() -> tuple[Recorder, rf.Client, rf.AsyncClient]:
    rec = Recorder()
    kw: dict[str, Any] = {"api_key": "rf_test_bad_input", "base_url": "http://runflow.invalid",
                          "transport": httpx.MockTransport(rec), "max_retries": 0}
    return rec, rf.Client(**kw), rf.AsyncClient(**kw)


def refused(field: str | Callable[[str], bool], *, counter: str = "cases", **inputs: Any) -> ValidationError:
    """Every entry point refuses ``inputs`` with a ValidationError naming ``field``, sending nothing."""
    COUNTS[counter] += 1
    match = field if callable(field) else (lambda f: f == field)
    rec, client, aclient = _clients()
    errors = []
    for call in (lambda: VideoRequest.build(**inputs), lambda: client.submit(**inputs),
                 lambda: asyncio.run(aclient.submit(**inputs))):
        with pytest.raises(ValidationError) as info:
            call()
        assert any(match(f) for f in info.value.fields), f"{info.value.fields} do not name {field}: {info.value}"
        errors.append(info.value)
    assert rec.calls == [], f"bad input reached the network: {rec.calls}"
    client.close()
    return errors[0]


def refused_image(obj: Any) -> None:
    got = load_reference(obj)
    assert isinstance(got, list) and got and all(i.field == FIELD for i in got), got
    err = refused(FIELD, prompt=PROMPT, images=[obj])
    assert all(i.message and i.fix for i in err.issues)


# --- explicit cases -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BAD_IMAGE_BYTES))
def test_bad_image_bytes_are_refused_before_sending(name: str) -> None:
    refused_image(BAD_IMAGE_BYTES[name])


def test_bad_image_files_and_devices_are_refused_before_sending(tmp_path: Path) -> None:
    for name, path in _bad_paths(tmp_path).items():
        for obj in (path, Path(path)):
            try:
                refused_image(obj)
            except AssertionError as exc:
                raise AssertionError(f"{name}: {exc}") from None
    for name, data in BAD_IMAGE_BYTES.items():  # the same bytes as files (format from the bytes, not the name)
        if len(data) < 5 * 1024 * 1024:
            path = tmp_path / f"{name}.png"
            path.write_bytes(data)
            refused_image(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads chmod 000 files")
def test_an_unreadable_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret.png"
    path.write_bytes(PNG)
    path.chmod(0)
    refused_image(path)


@pytest.mark.parametrize("url", BAD_URLS)
def test_urls_with_bad_schemes_or_no_host_are_refused(url: str) -> None:
    refused_image(url)


@pytest.mark.parametrize("value", [pytest.param(value, id=name) for name, (value, _why) in ODD_STRINGS.items()])
def test_paths_and_urls_python_cannot_handle_are_refused(value: str) -> None:
    refused_image(value)


PROMPTS: dict[str, Any] = {
    "non-utf8-bytes": b"character1 \xff\xfe runs",
    "lone-surrogate": "character1 runs \ud800 fast",
    "2501-chars": "character1 " + "x" * 2490,
    "character10": "character1 meets character10",
    "character0": "character0 runs",
    "names-a-missing-image": "character1 chases character2",
    "empty": "",
    "whitespace": " \n\t ",
    "missing": None,
    "int": 42,
}


@pytest.mark.parametrize("name", list(PROMPTS))
def test_bad_prompts_are_refused_naming_the_prompt(name: str) -> None:
    if name == "2501-chars":
        assert len(PROMPTS[name]) == 2501
    refused("prompt", prompt=PROMPTS[name], images=[PNG])


def test_a_lone_surrogate_prompt_gets_one_clear_issue() -> None:
    err = refused("prompt", prompt=PROMPTS["lone-surrogate"], images=[PNG])
    assert not [i for i in err.issues if "got str" in i.message], f"misleading issue: {err}"


def test_images_given_as_a_generator_are_accepted() -> None:
    req = VideoRequest.build(prompt=PROMPT, images=(img for img in [PNG]))
    assert len(req.images) == 1


def test_the_limits_themselves_are_accepted() -> None:
    rec, client, _ = _clients()
    run = client.submit(prompt="character1 " + "x" * 2489, images=[PNG] * 9, seed=2147483647, duration=15)
    assert len("character1 " + "x" * 2489) == 2500 and run.id == "run_mock" and len(rec.calls) == 1


SCALARS: dict[str, list[Any]] = {
    "duration": [2, 16, 0, -5, 5.0, "5", True, 10**20],
    "resolution": ["4k", "720P", "", 720],
    "aspect_ratio": ["2:1", "16/9", "", 1.77],
    "seed": [-1, 2**31, 1.5, "7", False],
    "enable_safety_checker": ["yes", 1, 0.0],
}


@pytest.mark.parametrize("field", list(SCALARS))
def test_bad_scalars_are_refused_naming_the_field(field: str) -> None:
    for value in SCALARS[field]:
        refused(field, prompt=PROMPT, images=[PNG], **{field: value})


def test_too_many_or_no_images_are_refused() -> None:
    refused("images", prompt=PROMPT, images=[PNG] * 10)
    refused(lambda f: f.startswith("images"), prompt=PROMPT, images=[])
    refused("images", prompt=PROMPT, images=None)


def test_a_bad_plan_is_refused_before_a_sweep_starts(tmp_path: Path) -> None:
    rec, client, _ = _clients()
    with pytest.raises(ValidationError) as info:
        plan = rf.grid(prompt=PROMPT, images=[["/dev/zero"]], seed=[1, 2])
        rf.Experiment("bad", store=str(tmp_path / "s.sqlite"), artifacts=tmp_path, client=client).run(plan)
    assert info.value.fields and all(f.endswith(FIELD) for f in info.value.fields)
    assert rec.calls == []


def test_the_cli_refuses_bad_input_with_exit_2_and_no_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "RUNFLOW_API_KEY": "rf_test_bad_input", "RUNFLOW_BASE_URL": "http://127.0.0.1:9"}
    out = subprocess.run([sys.executable, "-m", "runflow_nb.cli", "generate", "--prompt", "character1 runs",
                          "--image", "/dev/zero", "--out", str(tmp_path)], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2 and FIELD in out.stderr and "Traceback" not in out.stderr, out.stderr


# --- fuzzing ----------------------------------------------------------------------------------------


def _outcome(**inputs: Any) -> tuple[str, Any]:
    """('ok', request) or ('refused', error) through build and a recording client; nothing else."""
    COUNTS["fuzzed"] += 1
    try:
        req = VideoRequest.build(**inputs)
    except ValidationError as exc:
        rec, client, _ = _clients()
        with pytest.raises(ValidationError):
            client.submit(**inputs)
        assert rec.calls == []
        return "refused", exc
    return "ok", req


@FUZZ
@given(st.binary(max_size=4096))
def test_fuzz_arbitrary_bytes_are_never_an_unexpected_exception(data: bytes) -> None:
    got = load_reference(data)
    assert isinstance(got, Reference) or all(i.field == FIELD for i in got)
    kind, value = _outcome(prompt=PROMPT, images=[data])
    assert kind == "refused" and FIELD in value.fields


@FUZZ
@given(base=st.sampled_from([PNG, JPEG, WEBP]), cut=st.floats(0, 1),
       flips=st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), max_size=6))
def test_fuzz_damaged_real_images_are_refused_or_decode(base: bytes, cut: float,
                                                        flips: list[tuple[float, int]]) -> None:
    data = bytearray(base[: max(1, int(len(base) * cut))] if cut < 0.999 else base)
    for where, xor in flips:
        data[min(len(data) - 1, int(where * len(data)))] ^= xor
    kind, value = _outcome(prompt=PROMPT, images=[bytes(data)])
    if kind == "refused":
        assert value.fields == [FIELD], value
    else:  # still a whole image: Pillow decoded every pixel
        assert value.images[0].format in ("PNG", "JPEG", "WEBP")


_TEXT = st.text(st.characters(codec="utf-8"), max_size=60)  # surrogates: see KNOWN_BUGS


@FUZZ
@given(st.one_of(_TEXT, st.builds(lambda s, rest: f"{s}://{rest}", st.from_regex(r"[a-z][a-z0-9+.\-]{0,8}",
                                                                                   fullmatch=True), _TEXT)))
def test_fuzz_path_and_url_strings_never_raise_unexpectedly(text: str) -> None:
    # KNOWN_BUGS: NUL bytes, malformed IPv6 hosts, ~user paths for users that do not exist
    assume("\x00" not in text and "[" not in text and not text.startswith("~"))
    got = load_reference(text)
    if isinstance(got, Reference):  # only a well-formed http(s) URL is accepted without a file
        assert got.kind == "url" and text.strip().lower().startswith(("http://", "https://"))
        return
    assert got and all(i.field == FIELD for i in got)
    refused(FIELD, counter="fuzzed", prompt=PROMPT, images=[text])


_ANY = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=True),
                 st.text(max_size=12), st.binary(max_size=8), st.lists(st.integers(), max_size=2))


@FUZZ
@given(prompt=st.one_of(_ANY, st.text(max_size=3000)), duration=st.one_of(_ANY, st.integers(0, 20)),
       resolution=st.one_of(_ANY, st.sampled_from(["720p", "1080p", "480p"])),
       aspect_ratio=st.one_of(_ANY, st.sampled_from(["16:9", "9:16", "1:1", "4:3", "3:4", "21:9"])),
       seed=st.one_of(_ANY, st.integers(-10, 2**31 + 10)), enable_safety_checker=_ANY)
def test_fuzz_scalar_fields_are_validated_or_refused_by_name(**inputs: Any) -> None:
    kind, value = _outcome(images=[PNG], **inputs)
    known = {"prompt", "duration", "resolution", "aspect_ratio", "seed", "enable_safety_checker", FIELD}
    if kind == "refused":
        assert value.issues and set(value.fields) <= known, value
        return
    req = value
    assert isinstance(req.prompt, str) and 0 < len(req.prompt) <= 2500 and req.prompt.strip()
    assert type(req.duration) is int and 3 <= req.duration <= 15
    assert req.resolution in ("720p", "1080p") and req.aspect_ratio in ("16:9", "9:16", "1:1", "4:3", "3:4")
    assert req.seed is None or (type(req.seed) is int and 0 <= req.seed <= 2147483647)
    assert type(req.enable_safety_checker) is bool


@pytest.fixture(scope="module", autouse=True)
def _bad_input_summary() -> Iterator[None]:
    """The harness line, written once every test of this file has run (in whatever order)."""
    yield
    record(f"bad input: {COUNTS['cases']} explicit refusals (each through build, Client.submit and "
           f"AsyncClient.submit), {COUNTS['fuzzed']} fuzzed requests; "
           "0 network calls for refused input; faults 0; restarts 0")
