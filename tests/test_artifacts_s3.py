"""Artifacts on shared storage (fsspec), tested against a local S3 server (moto's server mode on loopback).

The local-folder tests run everywhere; the S3 ones skip, saying why, when moto[server] or s3fs
is missing.
"""

from __future__ import annotations

import hashlib
import html
import importlib.util
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import runflow_nb as rf
from runflow_nb.media.artifacts import Artifacts, is_remote_uri
from runflow_nb.views import display

BUCKET = "runflow-test"
KEY = "rf_test_x"
MISSING = [name for name in ("moto", "s3fs", "boto3") if importlib.util.find_spec(name) is None]


def _ledger(url: str) -> list[dict[str, Any]]:
    return list(httpx.get(f"{url}/_emulator/ledger", timeout=10).json()["billed"])


# --- a local folder: the default, unchanged -----------------------------------------------------------


def test_a_local_folder_keeps_files_where_they_are_written(tmp_path: Path) -> None:
    arts = Artifacts(tmp_path / "artifacts")
    assert arts.is_local and arts.root == tmp_path / "artifacts"
    dest = arts.local_tmp("exp/run1.mp4")
    assert dest == tmp_path / "artifacts" / "exp" / "run1.mp4" and dest.parent.is_dir()
    dest.write_bytes(b"video")
    assert arts.commit(dest, "exp/run1.mp4") == str(dest) and dest.read_bytes() == b"video"
    other = tmp_path / "elsewhere.jpg"
    other.write_bytes(b"poster")
    assert arts.commit(other, "exp/run1.jpg") == str(tmp_path / "artifacts" / "exp" / "run1.jpg")
    assert not other.exists()
    assert arts.exists(str(dest)) and not arts.exists(str(tmp_path / "nope.mp4"))
    assert arts.url_for(str(dest)) == str(dest)
    with arts.open(str(dest)) as f:
        assert f.read() == b"video"
    for bad in ("../escape.mp4", "/abs/run.mp4", ""):
        with pytest.raises(ValueError, match="relative path"):
            arts.local_tmp(bad)
    assert not is_remote_uri(str(dest)) and not is_remote_uri("https://x/y.mp4") and is_remote_uri("s3://b/k")


def test_a_local_sweep_stores_videos_at_artifacts_experiment_run_id(
    emulator_server: Any, ref_images: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    client = rf.Client(api_key=KEY, base_url=emulator_server.url, poll_interval=0.05)
    exp = rf.Experiment("local", store="runs.sqlite", client=client)  # default artifacts: ./artifacts
    assert exp.artifacts == tmp_path / "artifacts"  # absolute: found from any working folder
    df = exp.run(rf.grid(prompt="character1 waves", images=ref_images[:1], seed=[1, 2], duration=3,
                         resolution="720p"), progress=None)
    for run_id, video, poster in zip(df.run_id, df.video_path, df.poster_path, strict=True):
        assert (video, poster) == (str(tmp_path / f"artifacts/local/{run_id}.mp4"),
                                   str(tmp_path / f"artifacts/local/{run_id}.jpg"))
        assert Path(video).is_file() and Path(poster).is_file()
    # kept relative to the store's folder, so the store and its artifacts can move together
    stored = exp.store.engine.connect().exec_driver_sql("SELECT video_path FROM runs").scalars().all()
    assert sorted(stored) == sorted(f"artifacts/local/{r}.mp4" for r in df.run_id)
    markup = exp.gallery()._repr_html_()
    assert f'src="artifacts/local/{df.run_id[0]}.mp4"' in markup


# --- S3 (moto server on loopback) ----------------------------------------------------------------------


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A moto S3 server on a free loopback port with one empty bucket; yields storage_options."""
    if MISSING:
        pytest.skip(f"S3 tests need moto[server], s3fs and boto3 (missing: {', '.join(MISSING)}); "
                    "pip install 'runflow_nb[team,test]'")
    import boto3
    from moto.server import ThreadedMotoServer

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)  # dummies: nothing may reach real AWS
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield {"endpoint": endpoint, "client": client,
               "options": {"key": "testing", "secret": "testing",
                           "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}}
    finally:
        server.stop()


def _object(s3: dict[str, Any], uri: str) -> dict[str, Any]:
    assert uri.startswith(f"s3://{BUCKET}/")
    return s3["client"].head_object(Bucket=BUCKET, Key=uri[len(f"s3://{BUCKET}/"):])  # type: ignore[no-any-return]


def _srcs(markup: str, attr: str) -> list[str]:
    return [html.unescape(m) for m in re.findall(rf'{attr}="([^"]*)"', markup)]


def test_a_sweep_commits_artifacts_to_s3_and_the_gallery_plays_them_by_presigned_url(
    s3: dict[str, Any], emulator_server: Any, ref_images: list[Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import av

    monkeypatch.chdir(tmp_path)
    client = rf.Client(api_key=KEY, base_url=emulator_server.url, poll_interval=0.05)
    exp = rf.Experiment("team-s3", store="runs.sqlite", artifacts=f"s3://{BUCKET}/lab/", client=client,
                        storage_options=s3["options"])
    assert "testing" not in repr(exp) and "testing" not in repr(exp.artifact_store)
    plan = rf.grid(prompt="character1 <b>gallops</b>", images=ref_images[:1], seed=[1, 2, 3], duration=3,
                   resolution="720p")
    df = exp.run(plan, concurrency=3, progress=None)
    assert list(df.status) == ["succeeded"] * 3

    # the store holds s3 URIs; the objects exist with the downloaded bytes and a playable content type
    for run_id, video, poster, sha in zip(df.run_id, df.video_path, df.poster_path, df.video_sha256, strict=True):
        assert video == f"s3://{BUCKET}/lab/team-s3/{run_id}.mp4" and poster == video[:-4] + ".jpg"
        head = _object(s3, video)
        body = s3["client"].get_object(Bucket=BUCKET, Key=video[len(f"s3://{BUCKET}/"):])["Body"].read()
        assert head["ContentLength"] == len(body) > 10_000 and hashlib.sha256(body).hexdigest() == sha
        assert head["ContentType"] == "video/mp4" and _object(s3, poster)["ContentType"] == "image/jpeg"
    assert not (tmp_path / "artifacts").exists()  # nothing kept locally
    assert not list(Path(exp.artifact_store._tmpdir()).rglob("*.*"))  # temp files removed after upload

    # the gallery points at presigned URLs on the S3 endpoint (never base64) that serve the MP4 bytes
    markup = exp.gallery()._repr_html_()
    assert "base64" not in markup and "data:" not in markup and "<b>gallops" not in markup  # URLs, no stills
    videos, posters = _srcs(markup, "src"), _srcs(markup, "poster")
    assert len(videos) == len(posters) == 3
    for url in videos + posters:
        assert url.startswith(s3["endpoint"] + f"/{BUCKET}/lab/team-s3/") and "X-Amz-Signature=" in url and "X-Amz-Expires=3600" in url
    by_name = {url.split("?")[0].rsplit("/", 1)[-1]: url for url in videos}
    for run_id, sha in zip(df.run_id, df.video_sha256, strict=True):
        reply = httpx.get(by_name[f"{run_id}.mp4"], timeout=30)
        assert reply.status_code == 200 and hashlib.sha256(reply.content).hexdigest() == sha
        with av.open(io.BytesIO(reply.content)) as container:
            assert container.streams.audio, "the clip has a sound track"
            frame = next(container.decode(video=0))
            assert (frame.width, frame.height) == (1280, 720)
    assert httpx.get(posters[0], timeout=30).content[:3] == b"\xff\xd8\xff"  # a JPEG
    assert display.media_src(df.video_path[0]).startswith(s3["endpoint"])

    # re-running the plan finds every object in S3: nothing is downloaded, submitted or paid again
    exp.run(plan, progress=None)
    assert exp.last_summary is not None and exp.last_summary.reused == 3 and exp.last_summary.submitted == 0
    assert len(_ledger(emulator_server.url)) == 3

    # a lost object is fetched again from the (still valid) output URL and committed to S3 again
    lost = df.video_path[0]
    s3["client"].delete_object(Bucket=BUCKET, Key=lost[len(f"s3://{BUCKET}/"):])
    assert not exp.artifact_store.exists(lost)
    exp.run(plan, progress=None)
    assert exp.artifact_store.exists(lost) and _object(s3, lost)["ContentLength"] > 10_000
    assert exp.store.get_run(df.run_id[0])["video_path"] == lost  # type: ignore[index]
    assert len(_ledger(emulator_server.url)) == 3


def test_uploads_stream_in_parts_and_a_failed_upload_leaves_no_object(
    s3: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import runflow_nb.media.artifacts as artifacts_mod

    arts = Artifacts(f"s3://{BUCKET}/big", storage_options=s3["options"])
    data = hashlib.sha256(b"seed").digest() * (20 * 2**20 // 32)  # 20 MiB: three 8 MiB parts
    src = arts.local_tmp("exp/large.mp4")
    src.write_bytes(data)
    reads: list[int] = []
    real_open = open

    class Spy(io.BufferedReader):
        def read(self, n: int | None = -1) -> bytes:  # type: ignore[override]
            chunk = super().read(n)
            reads.append(len(chunk))
            return chunk

    monkeypatch.setattr(artifacts_mod, "open", lambda p, m="r": Spy(real_open(p, "rb", buffering=0)),
                        raising=False)
    uri = arts.commit(src, "exp/large.mp4")
    monkeypatch.undo()
    assert uri == f"s3://{BUCKET}/big/exp/large.mp4" and not src.exists()
    assert max(reads) <= 1 << 20 and sum(reads) == len(data)  # read in 1 MiB chunks, never whole
    assert _object(s3, uri)["ContentLength"] == len(data)
    with arts.open(uri) as f:
        assert hashlib.sha256(f.read()).digest() == hashlib.sha256(data).digest()

    # an upload that dies half way leaves nothing behind: no object, no local temp file
    src = arts.local_tmp("exp/broken.mp4")
    src.write_bytes(data)

    def dying_copy(fin: Any, fout: Any, length: int = 0) -> None:
        fout.write(fin.read(12 * 2**20))  # one part is already uploaded
        raise OSError("connection reset while uploading")

    monkeypatch.setattr(artifacts_mod.shutil, "copyfileobj", dying_copy)
    with pytest.raises(OSError, match="connection reset"):
        arts.commit(src, "exp/broken.mp4")
    monkeypatch.undo()
    assert not src.exists() and not arts.exists(f"s3://{BUCKET}/big/exp/broken.mp4")
    assert s3["client"].list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
