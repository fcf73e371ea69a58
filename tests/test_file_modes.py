"""Every file the toolkit writes gets the mode a plain ``open()`` would give it (0o666 less the
umask), not the 0o600 of the temporary file it was written through: exports, sample images, the
simulator's clips, poster frames and downloaded artifacts alike."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

import runflow_nb as rf
from runflow_nb.media.probe import HashingWriter, poster_frame
from runflow_nb.samples import sample_images
from runflow_nb.simulator.render import render_clip
from runflow_nb.simulator.render_edit import render_edit


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_written_whole_get_the_umask_mode(umask: int, tmp_path: Path) -> None:
    want = 0o666 & ~umask
    written: dict[str, Path] = {}

    written["sample image"] = sample_images(1, folder=tmp_path / "samples")[0]
    ref = Image.new("RGB", (800, 600), (200, 90, 40))
    clip = render_clip([ref], duration=3, aspect_ratio="16:9", resolution="720p", seed=1,
                       dest=tmp_path / "clip.mp4", cache_dir=tmp_path / "cache")
    written["simulated clip"] = Path(clip)
    written["edited clip"] = render_edit(clip, references=[], prompt="make it night", seed=2, resolution="720p",
                                         audio_setting="origin", dest=tmp_path / "edit.mp4")
    written["poster frame"] = poster_frame(clip, tmp_path / "clip.jpg")
    with HashingWriter(tmp_path / "download.mp4") as w:
        w.write(b"bytes of a video")
        w.commit()
    written["download"] = tmp_path / "download.mp4"

    exp = rf.Experiment("modes", store=tmp_path / "runs.sqlite", artifacts=tmp_path / "artifacts")
    written["csv export"] = exp.to_csv(tmp_path / "runs.csv")
    written["parquet export"] = exp.to_parquet(tmp_path / "runs.parquet")

    modes = {what: oct(_mode(path)) for what, path in written.items()}
    assert modes == {what: oct(want) for what in written}
    # and no temporary file is left beside any of them
    assert not [p.name for p in tmp_path.rglob(".*.part")]
