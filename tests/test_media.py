"""Artifact helpers: probe, poster frames, sha256 and the atomic hashing writer."""

from __future__ import annotations

import hashlib
import os
import pathlib
import random
import subprocess
import sys

import av
import numpy as np
import pytest
from PIL import Image

from runflow_nb.errors import DownloadError
from runflow_nb.media.probe import HashingWriter, VideoProbe, poster_frame, probe, sha256_file
from runflow_nb.simulator.render import render_clip

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    folder = tmp_path_factory.mktemp("clip")
    img = Image.linear_gradient("L").resize((640, 480)).convert("RGB")
    return render_clip([img], duration=3, aspect_ratio="16:9", resolution="720p", seed=3,
                       dest=folder / "clip.mp4", cache_dir=folder / "cache")


def _remux(src: pathlib.Path, dest: pathlib.Path, *, kinds: tuple[str, ...] = ("video", "audio")) -> pathlib.Path:
    """Copy some of ``src``'s streams into another container (format from the suffix)."""
    with av.open(str(src)) as inp, av.open(str(dest), "w") as out:
        streams = [s for s in inp.streams if s.type in kinds]
        mapping = {s.index: out.add_stream_from_template(s) for s in streams}
        for packet in inp.demux(streams):
            if packet.dts is not None:
                packet.stream = mapping[packet.stream.index]
                out.mux(packet)
    return dest


def _no_temp_files(folder: pathlib.Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.startswith(".")]


# --- probe ---------------------------------------------------------------------------------------


def test_probe_reads_streams(clip):
    info = probe(clip)
    assert isinstance(info, VideoProbe)
    assert (info.width, info.height) == (1280, 720)
    assert info.duration == pytest.approx(3, abs=0.1)
    assert info.fps == pytest.approx(24)
    assert (info.video_codec, info.audio_codec, info.has_audio) == ("h264", "aac", True)
    assert info.audio_duration == pytest.approx(3, abs=0.1)
    assert info.size_bytes == clip.stat().st_size


def test_probe_video_without_audio(clip, tmp_path):
    info = probe(_remux(clip, tmp_path / "silent.mp4", kinds=("video",)))
    assert (info.has_audio, info.audio_codec, info.audio_duration) == (False, None, None)
    assert info.duration == pytest.approx(3, abs=0.1)


@pytest.mark.parametrize("keep", [0.001, 0.02, 0.5, 0.97, -1])
def test_probe_refuses_truncated_mp4(clip, tmp_path, keep):
    data = clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:-1] if keep == -1 else data[: int(len(data) * keep)])
    with pytest.raises(DownloadError, match="is not a playable video"):
        probe(cut)


def test_probe_refuses_truncated_matroska(clip, tmp_path):
    # No box sizes to check here: the packets themselves must give the truncation away.
    data = _remux(clip, tmp_path / "clip.mkv").read_bytes()
    assert probe(tmp_path / "clip.mkv").duration == pytest.approx(3, abs=0.1)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: int(len(data) * 0.8)])
    with pytest.raises(DownloadError, match="stops at"):
        probe(cut)


@pytest.mark.parametrize("content", [b"", b"<html><body>Request has expired</body></html>", random.Random(0).randbytes(5000)])
def test_probe_refuses_non_video(tmp_path, content):
    path = tmp_path / "video.mp4"
    path.write_bytes(content)
    with pytest.raises(DownloadError, match="is not a playable video"):
        probe(path)


def test_probe_refuses_audio_only(clip, tmp_path):
    with pytest.raises(DownloadError, match="no video stream"):
        probe(_remux(clip, tmp_path / "sound.m4a", kinds=("audio",)))


def test_probe_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        probe(tmp_path / "nope.mp4")


# --- poster frames -------------------------------------------------------------------------------


def test_poster_frame_is_a_scaled_jpeg_of_the_first_frame(clip, tmp_path):
    dest = tmp_path / "posters" / "clip.jpg"
    assert poster_frame(clip, dest) == dest
    with Image.open(dest) as img:
        assert img.format == "JPEG"
        assert img.size == (640, 360)
        poster = np.asarray(img.convert("RGB"), dtype=float)
    with av.open(str(clip)) as c:
        first = next(c.decode(video=0)).to_image().resize((640, 360))
    assert np.abs(poster - np.asarray(first, dtype=float)).mean() < 8
    assert _no_temp_files(dest.parent)


def test_poster_frame_keeps_small_videos_at_size(clip, tmp_path):
    dest = poster_frame(clip, tmp_path / "p.jpg", max_width=4000, quality=50)
    with Image.open(dest) as img:
        assert img.size == (1280, 720)


def test_poster_frame_of_a_broken_file(tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    with pytest.raises(DownloadError, match="is not a playable video"):
        poster_frame(broken, tmp_path / "p.jpg")
    assert not (tmp_path / "p.jpg").exists()
    assert _no_temp_files(tmp_path)


# --- sha256 and the hashing writer ---------------------------------------------------------------


def test_sha256_file(tmp_path):
    data = os.urandom(300_000)
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f", chunk_size=4096) == hashlib.sha256(data).hexdigest()


def _chunks(data: bytes, size: int = 1000) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def test_hashing_writer_commits_atomically(tmp_path):
    data = os.urandom(10_000)
    digest = hashlib.sha256(data).hexdigest()
    dest = tmp_path / "sub" / "video.mp4"
    with HashingWriter(dest, expected_size=len(data), expected_sha256=digest.upper()) as w:
        for chunk in _chunks(data):
            assert not dest.exists()
            w.write(memoryview(chunk))
        assert w.size == len(data)
        assert w.commit() == (digest, len(data))
    assert dest.read_bytes() == data
    assert _no_temp_files(dest.parent)
    with pytest.raises(ValueError):
        w.write(b"more")


def test_hashing_writer_without_expectations(tmp_path):
    with HashingWriter(tmp_path / "v.mp4") as w:
        w.write(b"abc")
        assert w.commit() == (hashlib.sha256(b"abc").hexdigest(), 3)


@pytest.mark.parametrize(
    ("expect", "match"),
    [
        ({"expected_size": 20_000}, "incomplete download"),
        ({"expected_sha256": "0" * 64}, "sha256 mismatch"),
    ],
)
def test_hashing_writer_refuses_a_bad_download(tmp_path, expect, match):
    dest = tmp_path / "video.mp4"
    dest.write_bytes(b"older copy")
    w = HashingWriter(dest, **expect)
    for chunk in _chunks(os.urandom(10_000)):
        w.write(chunk)
    with pytest.raises(DownloadError, match=match):
        w.commit()
    assert dest.read_bytes() == b"older copy"
    assert _no_temp_files(tmp_path)
    assert w.closed


def test_hashing_writer_stops_at_oversize(tmp_path):
    w = HashingWriter(tmp_path / "video.mp4", expected_size=1500)
    w.write(b"x" * 1000)
    with pytest.raises(DownloadError, match="more than the expected"):
        w.write(b"x" * 1000)
    assert list(tmp_path.iterdir()) == []


def test_hashing_writer_context_aborts(tmp_path):
    dest = tmp_path / "video.mp4"
    with pytest.raises(RuntimeError), HashingWriter(dest) as w:
        w.write(b"partial")
        raise RuntimeError("connection dropped")
    with HashingWriter(dest) as w:  # leaving without commit() keeps nothing
        w.write(b"partial")
    assert list(tmp_path.iterdir()) == []
    w.abort()  # idempotent


def test_import_is_lazy():
    code = (
        "import sys, types; pkg = types.ModuleType('runflow_nb'); pkg.__path__ = [sys.argv[1]]; "
        "sys.modules['runflow_nb'] = pkg; import runflow_nb.media.probe; "
        "print(sorted(m for m in ('av', 'PIL', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(ROOT / "runflow_nb")], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- PyAV versions -------------------------------------------------------------------------------


def _with_latin1_title(clip: pathlib.Path, dest: pathlib.Path) -> pathlib.Path:
    """``clip`` with a metadata title whose bytes are not UTF-8 (as some cameras and tools write)."""
    with av.open(str(clip)) as inp, av.open(str(dest), "w", format="mp4") as out:
        out.metadata["title"] = "Caf@ horses"  # ASCII placeholder, patched below: any PyAV can write it
        streams = list(inp.streams)
        mapping = {s.index: out.add_stream_from_template(s) for s in streams}
        for packet in inp.demux(streams):
            if packet.dts is not None:
                packet.stream = mapping[packet.stream.index]
                out.mux(packet)
    data = dest.read_bytes()
    assert data.count(b"Caf@ horses") == 1
    dest.write_bytes(data.replace(b"Caf@ horses", b"Caf\xe9 horses"))  # same length: the boxes stay valid
    return dest


def test_undecodable_metadata_does_not_make_a_video_unreadable(clip, tmp_path):
    """PyAV < 19 raises on such metadata unless told to replace; 19 dropped that argument."""
    path = _with_latin1_title(clip, tmp_path / "latin1.mp4")
    info = probe(path)
    assert info.width == 1280 and info.has_audio and abs(info.duration - 3.0) < 0.1
    assert poster_frame(path, tmp_path / "latin1.jpg").stat().st_size > 0


def test_open_input_detects_whether_av_open_takes_metadata_errors(clip, monkeypatch):
    import runflow_nb.media.probe as media

    major = int(av.__version__.split(".")[0])
    monkeypatch.setattr(media, "_TAKES_METADATA_ERRORS", None)
    with media.open_input(clip) as c:
        assert c.streams.video
    assert media._TAKES_METADATA_ERRORS is (major < 19)  # PyAV 19 removed the argument

    # A PyAV without the argument (as 19 is), whatever is installed: the refusal is detected once.
    real_open, calls = av.open, []

    def open_without_metadata_errors(file, *args, **kwargs):
        calls.append(sorted(kwargs))
        if "metadata_errors" in kwargs:
            raise TypeError("open() got an unexpected keyword argument 'metadata_errors'")
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(av, "open", open_without_metadata_errors)
    monkeypatch.setattr(media, "_TAKES_METADATA_ERRORS", None)
    for _ in range(2):
        assert probe(clip).width == 1280
    assert calls == [["metadata_errors"], [], []]
    assert media._TAKES_METADATA_ERRORS is False

    def broken_open(file, *args, **kwargs):  # any other TypeError is not mistaken for the API change
        raise TypeError("something else")

    monkeypatch.setattr(av, "open", broken_open)
    monkeypatch.setattr(media, "_TAKES_METADATA_ERRORS", None)
    with pytest.raises(TypeError, match="something else"):
        media.open_input(clip)
    assert media._TAKES_METADATA_ERRORS is None
