"""Check that every video a report shows (or every MP4 given) plays: found on disk and fully decodable.

    python scripts/check_videos.py runflow_reports/demo/seed_sweep.html
    python scripts/check_videos.py clip.mp4 other.mp4

For an HTML report, each ``<video src>`` is resolved against the report's folder. Every video and
audio frame is decoded with PyAV. Prints one line per file and exits 1 if any is missing or broken
(or if a report shows no video at all). Runs in any environment that has PyAV (e.g. a fresh venv
with only the wheel installed).
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path
from urllib.parse import unquote

VIDEO_SRC = re.compile(r"<video\b[^>]*?\bsrc=\"([^\"]+)\"|<source\b[^>]*?\bsrc=\"([^\"]+\.mp4[^\"]*)\"", re.I)


def decode(path: Path) -> str:
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        frames = {"video": 0, "audio": 0}
        for frame in container.decode(*container.streams.video[:1], *container.streams.audio[:1]):
            kind = "video" if frame.__class__.__name__ == "VideoFrame" else "audio"
            frames[kind] += 1
        stream = container.streams.video[0]
        if frames["video"] == 0:
            raise ValueError("no video frame decodes")
        return (f"{stream.codec_context.name} {stream.width}x{stream.height}, {frames['video']} video frames, "
                f"{frames['audio']} audio frames")


def videos_of(report: Path) -> list[Path]:
    text = report.read_text(encoding="utf-8")
    found = []
    for match in VIDEO_SRC.finditer(text):
        src = html.unescape(match.group(1) or match.group(2)).split("#", 1)[0].split("?", 1)[0]
        if src.startswith(("http://", "https://", "data:")):
            continue
        path = Path(unquote(src))
        found.append(path if path.is_absolute() else report.parent / path)
    return sorted(set(found))


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    files: list[Path] = []
    for arg in argv:
        path = Path(arg)
        if path.suffix.lower() in (".html", ".htm"):
            shown = videos_of(path)
            if not shown:
                print(f"FAIL {path}: the report shows no video")
                return 1
            files += shown
        else:
            files.append(path)
    bad = 0
    for path in files:
        try:
            print(f"ok   {path}: {decode(path)}")
        except Exception as exc:  # any failure to find or decode is the finding
            bad += 1
            print(f"FAIL {path}: {type(exc).__name__}: {exc}")
    print(f"{len(files) - bad} of {len(files)} videos play")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
