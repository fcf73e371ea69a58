"""Clip QA of a 5 s 1080p clip against a bare PyAV decode of the same clip, in the same run.

Two clips, both 5 s 1080p H.264 + AAC: the offline simulator's (slow pans over still pictures: cheap
to decode, so QA's own work weighs most) and a detailed one (a grainy backdrop panning under a
moving disc: every block changes, as in a model's output). For each, interleaved and repeated:

- the baseline, a bare decode of every video and audio frame with PyAV (``container.decode``, its
  default threading, as QA decodes);
- :func:`runflow_nb.qa.measure.measure` (the streaming numpy pass clip QA runs);
- the alternative it was chosen over: FFmpeg's blackdetect + freezedetect (on a 480-wide copy) and
  silencedetect + astats through PyAV filter graphs, pulling frames from the same decode.

    python benchmarks/bench_qa.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def _bare_decode(path: Path) -> int:
    import av

    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(*c.streams.video[:1], *c.streams.audio[:1]))


def _filter_graphs(path: Path) -> int:
    """blackdetect + freezedetect and silencedetect + astats through PyAV's filter graph."""
    import av

    found = 0
    with av.open(str(path)) as c:
        vs, aus = c.streams.video[0], c.streams.audio[0]
        vg = av.filter.Graph()
        chain = [vg.add_buffer(template=vs), vg.add("scale", "480:-2"), vg.add("blackdetect", "d=0.5:pix_th=0.10"),
                 vg.add("freezedetect", "n=-60dB:d=1"), vg.add("buffersink")]
        ag = av.filter.Graph()
        achain = [ag.add_abuffer(template=aus), ag.add("silencedetect", "n=-60dB:d=2"),
                  ag.add("astats", "metadata=1:reset=0"), ag.add("abuffersink")]
        for g, nodes in ((vg, chain), (ag, achain)):
            for a, b in itertools.pairwise(nodes):
                a.link_to(b)
            g.configure()
        for frame in c.decode(vs, aus):
            g = vg if isinstance(frame, av.VideoFrame) else ag
            g.push(frame)
            while True:
                try:
                    out = g.pull()
                except (av.error.BlockingIOError, av.error.EOFError):
                    break
                found += len(out.metadata)
    return found


def _clips(work: Path) -> dict[str, Path]:
    from PIL import Image

    from runflow_nb.samples import sample_images
    from runflow_nb.simulator.flaws import render_flawed
    from runflow_nb.simulator.render import render_clip

    images = [Image.open(p) for p in sample_images(2)]
    return {
        "simulator clip": render_clip(images, duration=5, aspect_ratio="16:9", resolution="1080p", seed=11,
                                      dest=work / "simulator.mp4", cache_dir=work / "cache"),
        "detailed clip": render_flawed("quiet", duration=5, size=(1920, 1080), seed=11, dest=work / "detailed.mp4"),
    }


def run(*, repeat: int = 5) -> dict[str, Any]:
    from runflow_nb.qa.measure import measure
    from runflow_nb.settings import qa_thresholds

    limits = qa_thresholds()
    out: dict[str, Any] = {"repeat": repeat, "clips": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in _clips(Path(tmp)).items():
            fns = {
                "decode_s": lambda p=path: _bare_decode(p),
                "qa_s": lambda p=path: measure(p, limits=limits),
                "filters_s": lambda p=path: _filter_graphs(p),
            }
            for fn in fns.values():  # warm: codecs loaded, file in the page cache
                fn()
            times: dict[str, list[float]] = {k: [] for k in fns}
            for _ in range(repeat):
                for key, fn in fns.items():
                    t0 = time.perf_counter()
                    fn()
                    times[key].append(time.perf_counter() - t0)
            r = {k: statistics.median(v) for k, v in times.items()}
            r["size_mb"] = round(path.stat().st_size / 1e6, 2)
            r["qa_vs_decode"] = r["qa_s"] / r["decode_s"]
            r["filters_vs_decode"] = r["filters_s"] / r["decode_s"]
            out["clips"][name] = r
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    r = run(repeat=ap.parse_args().repeat)
    for name, c in r["clips"].items():
        print(f"{name} ({c['size_mb']} MB), median of {r['repeat']}: bare decode {c['decode_s']:.3f} s; "
              f"clip QA {c['qa_s']:.3f} s = {c['qa_vs_decode']:.2f}x the bare decode; "
              f"FFmpeg filter graphs {c['filters_s']:.3f} s = {c['filters_vs_decode']:.2f}x")


if __name__ == "__main__":
    main()
