"""The offline simulator's render time per clip, against the encoder alone on the same frames.

Every new seed films its references differently (framing, pans, grade, seed stamp), and so does a
new prompt (a colour cast, a turn of the camera path, a caption), so a sweep encodes one picture per
seed and prompt; a repeated run (the same seed and prompt, no prompt here) reuses the cached picture
and only encodes its audio. Baseline, measured in the same run: PyAV encoding
the same number of frames of one still image with the renderer's x264 settings — the floor any
per-seed picture pays.

    python benchmarks/bench_render.py [--clips 4]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def _encode_still(path: Path, *, size: tuple[int, int], frames: int, fps: int) -> None:
    import av
    import numpy as np

    from runflow_nb.simulator.engine import render

    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.codec_context.thread_count = render._X264_THREADS
        stream.options = dict(render._X264_OPTIONS)
        rgb = np.random.default_rng(0).integers(0, 255, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
        still = av.VideoFrame.from_ndarray(np.kron(rgb, np.ones((8, 8, 1), np.uint8)), format="rgb24")
        still = still.reformat(format="yuv420p")
        for i in range(frames):
            still.pts = i
            out.mux(stream.encode(still))
        out.mux(stream.encode(None))


def run(*, clips: int = 4, duration: int = 3, resolution: str = "720p", references: int = 1) -> dict[str, Any]:
    from PIL import Image

    from runflow_nb.samples import sample_images
    from runflow_nb.simulator.render import render_clip
    from runflow_nb.specs import REFERENCE_TO_VIDEO

    images = [Image.open(p) for p in sample_images(references)]
    size = REFERENCE_TO_VIDEO.output_size("16:9", resolution)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        _encode_still(work / "warm.mp4", size=size, frames=24, fps=24)  # load the codec once

        def timed(fn: Any) -> float:
            t0 = time.perf_counter()
            fn()
            return time.perf_counter() - t0

        new_seed = [timed(lambda s=s: render_clip(images, duration=duration, aspect_ratio="16:9", resolution=resolution,
                                                  seed=s, dest=work / f"{s}.mp4", cache_dir=work / "cache"))
                    for s in range(clips)]
        same_seed = [timed(lambda s=s: render_clip(images, duration=duration, aspect_ratio="16:9",
                                                   resolution=resolution, seed=s, dest=work / f"again{s}.mp4",
                                                   cache_dir=work / "cache"))
                     for s in range(clips)]
        still = [timed(lambda i=i: _encode_still(work / f"still{i}.mp4", size=size, frames=duration * 24, fps=24))
                 for i in range(clips)]
    med = statistics.median
    return {"clips": clips, "duration_s": duration, "resolution": resolution, "references": references,
            "new_seed_s": med(new_seed), "same_seed_s": med(same_seed), "still_encode_s": med(still),
            "ratio_vs_still": med(new_seed) / med(still)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=4)
    ap.add_argument("--duration", type=int, default=3)
    ap.add_argument("--resolution", default="720p")
    ap.add_argument("--references", type=int, default=1)
    a = ap.parse_args()
    r = run(clips=a.clips, duration=a.duration, resolution=a.resolution, references=a.references)
    print(f"render {r['duration_s']} s {r['resolution']} with {r['references']} reference(s), median of {r['clips']}")
    print(f"  new seed (picture encoded)      {r['new_seed_s']:.2f} s")
    print(f"  same seed again (cached)        {r['same_seed_s']:.2f} s")
    print(f"  encoder alone, still frames     {r['still_encode_s']:.2f} s   -> ratio {r['ratio_vs_still']:.2f}x")


if __name__ == "__main__":
    main()
