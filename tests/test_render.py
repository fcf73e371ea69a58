"""The simulator's clip renderer writes real, deterministic H.264 + AAC MP4s and caches the picture."""

from __future__ import annotations

import hashlib
import os
import pathlib
import subprocess
import sys
import threading

import av
import numpy as np
import pytest
from PIL import Image, ImageDraw

from runflow_nb.simulator import render
from runflow_nb.simulator.render import render_clip
from runflow_nb.specs import REFERENCE_TO_VIDEO

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _reference(color: tuple[int, int, int], size: tuple[int, int] = (800, 600), mode: str = "RGB") -> Image.Image:
    """A mostly ``color`` image with some texture, so pans and crossfades have something to move."""
    img = Image.new("RGB", size, color)
    draw = ImageDraw.Draw(img)
    rng = np.random.default_rng(sum(color))
    for _ in range(12):
        x, y = int(rng.integers(0, size[0])), int(rng.integers(0, size[1]))
        draw.ellipse((x, y, x + 60, y + 60), fill=tuple(min(255, c + 60) for c in color))
    return img.convert(mode)


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    return [_reference((200, 30, 30)), _reference((30, 30, 200), size=(600, 900))]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return tmp_path_factory.mktemp("render-cache")


def _render(images, dest, cache_dir, *, seed=7, duration=3, aspect_ratio="16:9", resolution="720p", **kw):
    return render_clip(images, duration=duration, aspect_ratio=aspect_ratio, resolution=resolution,
                       seed=seed, dest=dest, cache_dir=cache_dir, **kw)


def _sha(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _top_level_boxes(path: pathlib.Path) -> list[str]:
    data, boxes, offset = path.read_bytes(), [], 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset:offset + 4], "big")
        boxes.append(data[offset + 4:offset + 8].decode("latin-1"))
        if size == 1:
            size = int.from_bytes(data[offset + 8:offset + 16], "big")
        assert size >= 8
        offset += size
    assert offset == len(data)
    return boxes


def _packets(path: pathlib.Path, kind: str) -> list[bytes]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0] if kind == "video" else c.streams.audio[0]
        return [bytes(p) for p in c.demux(stream) if p.dts is not None]


def _first_last_frames(path: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    with av.open(str(path)) as c:
        first = last = None
        for frame in c.decode(video=0):
            arr = frame.to_ndarray(format="rgb24")
            first = arr if first is None else first
            last = arr
    assert first is not None and last is not None
    return first, last


def test_streams_sizes_and_durations(images, cache, tmp_path):
    out = _render(images, tmp_path / "clip.mp4", cache)
    assert out == tmp_path / "clip.mp4"
    with av.open(str(out)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert v.codec_context.name == "h264"
        assert v.codec_context.pix_fmt == "yuv420p"
        assert (v.codec_context.width, v.codec_context.height) == (1280, 720)
        assert v.average_rate == 24
        assert float(v.duration * v.time_base) == pytest.approx(3, abs=0.05)
        assert a.codec_context.name == "aac"
        assert a.sample_rate == 48_000
        assert a.layout.nb_channels == 2
        assert float(a.duration * a.time_base) == pytest.approx(3, abs=0.05)
        assert "seed=7" in c.metadata.get("comment", "")
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 3 * 24
    with av.open(str(out)) as c:
        samples = sum(f.samples for f in c.decode(audio=0))
    assert samples / 48_000 == pytest.approx(3, abs=0.1)


def test_moov_comes_before_mdat(images, cache, tmp_path):
    boxes = _top_level_boxes(_render(images, tmp_path / "clip.mp4", cache))
    assert boxes[0] == "ftyp"
    assert boxes.index("moov") < boxes.index("mdat")


@pytest.mark.parametrize("aspect_ratio", ["9:16", "1:1", "4:3", "3:4"])
def test_output_size_follows_the_spec(images, cache, tmp_path, aspect_ratio):
    out = _render(images, tmp_path / "clip.mp4", cache, aspect_ratio=aspect_ratio)
    with av.open(str(out)) as c:
        ctx = c.streams.video[0].codec_context
        assert (ctx.width, ctx.height) == REFERENCE_TO_VIDEO.output_size(aspect_ratio, "720p")


def test_1080p(images, cache, tmp_path):
    out = _render(images, tmp_path / "clip.mp4", cache, resolution="1080p", duration=4)
    with av.open(str(out)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert (v.codec_context.width, v.codec_context.height) == (1920, 1080)
        assert float(v.duration * v.time_base) == pytest.approx(4, abs=0.05)
        assert float(a.duration * a.time_base) == pytest.approx(4, abs=0.05)


def test_same_inputs_and_seed_give_the_same_bytes(images, tmp_path):
    # Two fresh caches: the picture is encoded twice, so this checks x264's determinism too.
    a = _render(images, tmp_path / "a.mp4", tmp_path / "cache-a")
    b = _render(images, tmp_path / "b.mp4", tmp_path / "cache-b")
    c = _render(images, tmp_path / "c.mp4", tmp_path / "cache-a")  # from the cache
    assert _sha(a) == _sha(b) == _sha(c)


def test_seed_changes_the_picture_and_the_audio(images, cache, tmp_path):
    one = _render(images, tmp_path / "one.mp4", cache, seed=1)
    two = _render(images, tmp_path / "two.mp4", cache, seed=2)
    assert _sha(one) != _sha(two)
    assert _packets(one, "video") != _packets(two, "video")
    assert _packets(one, "audio") != _packets(two, "audio")
    # The first frames (the poster) differ visibly, not by a few code values.
    (a, _), (b, _) = _first_last_frames(one), _first_last_frames(two)
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 8


def test_seeds_are_stamped_top_right(tmp_path):
    flat = [Image.new("RGB", (800, 600), (90, 90, 90))]
    cache_dir = tmp_path / "cache"
    frames = [_first_last_frames(_render(flat, tmp_path / f"{seed}.mp4", cache_dir, seed=seed))[0]
              for seed in (5, 123456)]
    corner = (slice(10, 70), slice(1100, 1270))
    assert np.abs(frames[0][corner].astype(int) - frames[1][corner].astype(int)).max() > 100
    # Inside, a flat reference stays flat whatever the framing: only the grade moves its colour.
    for f in frames:
        assert f[200:500, 300:900].reshape(-1, 3).std(axis=0).max() < 3


def test_looks_are_deterministic_and_spread():
    from runflow_nb.simulator.look import GRADES, look_for

    assert look_for(42) == look_for(42)
    looks = [look_for(seed) for seed in range(64)]
    assert len({lk.grade for lk in looks}) == len(GRADES)
    assert len({round(lk.angle, 3) for lk in looks}) == 64
    assert all(1.1 < lk.margin < 1.5 for lk in looks)
    (x0, y0), (x1, y1) = looks[0].pan(0)
    assert all(0 <= v <= 1 for v in (x0, y0, x1, y1))
    assert look_for(-1).seed == -1 and look_for(2**40).seed == 2**40


def test_picture_shows_the_references_in_order(cache, tmp_path):
    refs = [_reference((220, 20, 20)), _reference((20, 200, 20), mode="RGBA"), _reference((20, 20, 220), mode="P")]
    first, last = _first_last_frames(_render(refs, tmp_path / "clip.mp4", cache))
    r, g, b = first[100:, 100:].reshape(-1, 3).mean(axis=0)
    assert r > 2 * max(g, b)
    r, g, b = last[100:, 100:].reshape(-1, 3).mean(axis=0)
    assert b > 2 * max(r, g)


def test_label_is_drawn(images, cache, tmp_path):
    labelled, _ = _first_last_frames(_render(images, tmp_path / "a.mp4", cache))
    plain, _ = _first_last_frames(_render(images, tmp_path / "b.mp4", cache, label=""))
    corner = (slice(100, 150), slice(1040, 1262))  # top right, under the seed stamp
    changed = np.abs(labelled[corner].astype(int) - plain[corner].astype(int)).max(axis=2) > 40
    assert changed.mean() > 0.15
    assert np.abs(labelled[300:600, 300:900].astype(int) - plain[300:600, 300:900].astype(int)).mean() < 2


def _frames_at(path: pathlib.Path, picks: tuple[int, ...]) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24").astype(int) for i, f in enumerate(c.decode(video=0)) if i in picks]


def _marks(a: pathlib.Path, b: pathlib.Path, picks: tuple[int, ...]) -> list[np.ndarray]:
    """Where two renders differ clearly (an H.264 edge is not a mark): one mask per picked frame."""
    return [np.abs(x - y).max(axis=2) > 60 for x, y in zip(_frames_at(a, picks), _frames_at(b, picks), strict=True)]


@pytest.mark.parametrize("aspect_ratio", ["16:9", "1:1"])
def test_a_references_own_label_reads_clear_of_the_simulated_label(cache, tmp_path, aspect_ratio):
    """The sample references name their character top left, as many references carry a label: the
    simulator's SIMULATED label, seed stamp and playhead never cover it (image- and reference-to-video)."""
    from runflow_nb.samples import sample_images

    labelled = Image.open(sample_images(1, folder=tmp_path / "samples")[0]).convert("RGB")
    bare = labelled.copy()  # the same picture without its label: each row of the box takes the sky beside it
    for y in range(20, 176):
        ImageDraw.Draw(bare).line((24, y, 508, y), fill=labelled.getpixel((700, y)))
    picks = (0, 36, 71)  # the poster, the middle and the last frame
    for seed in (1, 2, 3):
        clips = {(ref, label): _render([img], tmp_path / f"{seed}-{ref}-{label or 'none'}.mp4", cache, seed=seed,
                                       aspect_ratio=aspect_ratio, label=label)
                 for ref, img in (("labelled", labelled), ("bare", bare)) for label in ("SIMULATED", "")}
        reference_label = _marks(clips["labelled", ""], clips["bare", ""], picks)
        simulated_label = _marks(clips["labelled", "SIMULATED"], clips["labelled", ""], picks)
        assert any(m.sum() > 2000 for m in reference_label), "the reference's label is in the frame"
        assert all(m.sum() > 500 for m in simulated_label), "the SIMULATED label is in every frame"
        for ref_mask, sim_mask in zip(reference_label, simulated_label, strict=True):
            assert not (ref_mask & sim_mask).any(), f"seed {seed}: the SIMULATED label covers the reference's"


def test_same_seed_again_reuses_the_cached_picture(images, tmp_path, monkeypatch):
    cache_dir = tmp_path / "cache"
    first = _render(images, tmp_path / "a.mp4", cache_dir, seed=1)
    assert len(list(cache_dir.glob("*.mp4"))) == 1

    def fail(*args, **kwargs):
        raise AssertionError("the picture should come from the cache")

    monkeypatch.setattr(render, "_encode_video", fail)
    out = _render(images, tmp_path / "b.mp4", cache_dir, seed=1)
    assert _sha(out) == _sha(first)


def test_concurrent_renders_encode_the_picture_once(images, tmp_path, monkeypatch):
    cache_dir = tmp_path / "cache"
    calls = []
    encode = render._encode_video

    def counting(*args, **kwargs):
        calls.append(1)
        return encode(*args, **kwargs)

    monkeypatch.setattr(render, "_encode_video", counting)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            _render(images, tmp_path / f"{n}.mp4", cache_dir, seed=4)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(calls) == 1
    assert len(list(cache_dir.glob("*.mp4"))) == 1
    assert not list(cache_dir.glob(".*.part"))
    assert len({_sha(tmp_path / f"{n}.mp4") for n in range(3)}) == 1


def test_damaged_cache_entry_is_rebuilt(images, tmp_path):
    cache_dir = tmp_path / "cache"
    good = _render(images, tmp_path / "good.mp4", cache_dir)
    (entry,) = cache_dir.glob("*.mp4")
    entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    again = _render(images, tmp_path / "again.mp4", cache_dir)
    assert _sha(again) == _sha(good)


def test_failed_render_leaves_no_partial_file(images, cache, tmp_path, monkeypatch):
    dest = tmp_path / "clip.mp4"
    dest.write_bytes(b"previous")

    def boom(path, *args, **kwargs):
        pathlib.Path(path).write_bytes(b"half a file")
        raise RuntimeError("killed")

    monkeypatch.setattr(render, "_mux", boom)
    with pytest.raises(RuntimeError):
        _render(images, dest, cache)
    assert dest.read_bytes() == b"previous"
    assert sorted(os.listdir(tmp_path)) == ["clip.mp4"]


def test_cache_keeps_the_newest_entries_under_its_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(render, "_MAX_CACHE_BYTES", 1)
    cache_dir = tmp_path / "cache"
    _render([_reference((10, 120, 10))], tmp_path / "a.mp4", cache_dir, aspect_ratio="1:1")
    (old,) = cache_dir.glob("*.mp4")
    # A label wider than the frame is cut at the edge rather than failing.
    _render([_reference((10, 120, 10))], tmp_path / "b.mp4", cache_dir, aspect_ratio="1:1", label="X" * 300)
    (new,) = cache_dir.glob("*.mp4")
    assert new != old


def test_needs_an_image(tmp_path):
    with pytest.raises(ValueError):
        _render([], tmp_path / "clip.mp4", tmp_path)


def test_import_is_lazy():
    code = (
        "import sys, types; pkg = types.ModuleType('runflow_nb'); pkg.__path__ = [sys.argv[1]]; "
        "sys.modules['runflow_nb'] = pkg; import runflow_nb.simulator.render; "
        "print(sorted(m for m in ('av', 'PIL', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(ROOT / "runflow_nb")], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"
