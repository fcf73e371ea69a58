"""How many widget models and messages does a live gallery send, and how long does it take to build?

Every widget model of a live gallery is a ``comm_open`` message to the page, and a change made after
it was built (a class added, a description set) one more; a page that is sent many thousands of them
while it draws may lose some ("widget model not found"). Builds ``Gallery.widget()`` for 48 and 150
stored clips (3 prompts × seeds, stand-in files, nothing rendered) and counts the models made and the
messages their comms would send. Baseline, measured in the same run: ``gallery_html`` of the same
table (the saved view every live gallery also sends: the floor of drawing those clips at all).

    python benchmarks/bench_gallery.py [48 150]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _study(root: Path, clips: int) -> Any:
    from PIL import Image

    from runflow_nb.experiment import Experiment

    exp = Experiment("bench-gallery", store=str(root / "runs.sqlite"), artifacts=root / "artifacts")
    folder = root / "clips"
    folder.mkdir(parents=True, exist_ok=True)
    prompts = ["character1 trots", "character1 rears up", "character1 grazes"]
    for i in range(clips):
        video, poster = folder / f"{i}.mp4", folder / f"{i}.jpg"
        video.write_bytes(b"stand-in")
        Image.new("RGB", (640, 360), (i % 255, 90, 140)).save(poster)
        exp.store.insert_run({"experiment": exp.name, "run_key": f"k{i}", "status": "succeeded", "backend": "simulator",
                              "model": "alibaba/happy-horse/text-to-video", "prompt": prompts[i % 3], "seed": i // 3,
                              "duration": 3, "resolution": "720p", "cost_usd": 0.42, "video_path": str(video),
                              "poster_path": str(poster)})
    return exp


def run(sizes: tuple[int, ...] = (48, 150), *, repeat: int = 3) -> list[dict[str, Any]]:
    import comm
    from ipywidgets.widgets.widget import _instances

    from runflow_nb.widgets.gallery import Gallery, gallery_html

    sent: list[str] = []
    original = comm.DummyComm.publish_msg

    def counted(self: Any, msg_type: str, *args: Any, **kwargs: Any) -> None:
        sent.append(msg_type)
        original(self, msg_type, *args, **kwargs)

    comm.DummyComm.publish_msg = counted  # type: ignore[method-assign]
    out = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for clips in sizes:
                exp = _study(Path(tmp) / str(clips), clips)
                df = exp.table()
                gallery_html(df, rows="prompt", cols="seed")  # warm: stills read and cached once
                html_s = widget_s = float("inf")
                for _ in range(repeat):
                    t0 = time.perf_counter()
                    gallery_html(df, rows="prompt", cols="seed")
                    html_s = min(html_s, time.perf_counter() - t0)
                    before, sent[:] = set(_instances), []
                    t0 = time.perf_counter()
                    root = Gallery(df, rows="prompt", cols="seed", experiment=exp).widget()
                    widget_s = min(widget_s, time.perf_counter() - t0)
                    models = len(set(_instances) - before)
                    messages = len(sent)
                    root.close_all() if hasattr(root, "close_all") else None
                out.append({"clips": clips, "models": models, "messages": messages, "models_per_clip": models / clips,
                            "widget_s": widget_s, "html_s": html_s, "ratio": widget_s / html_s})
    finally:
        comm.DummyComm.publish_msg = original  # type: ignore[method-assign]
    return out


def main(argv: list[str]) -> None:
    sizes = tuple(int(a) for a in argv) or (48, 150)
    for r in run(sizes):
        print(f"{r['clips']:4d} clips: {r['models']:6d} widget models ({r['models_per_clip']:.1f} a clip), "
              f"{r['messages']:6d} messages; widget() {r['widget_s']:.2f} s vs gallery_html {r['html_s']:.2f} s "
              f"({r['ratio']:.2f}x)")


if __name__ == "__main__":
    main(sys.argv[1:])
