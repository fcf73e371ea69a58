"""``exp.ranking()`` reads like ``exp.view()``: the still, what varied, the judgement and the cost,
while staying a DataFrame with every column for code."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from runflow_nb import Experiment, study
from runflow_nb.widgets.compare import record_choice


@pytest.fixture
def exp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Experiment:
    monkeypatch.chdir(tmp_path)
    exp = Experiment("rank", store=str(tmp_path / "rf.sqlite"), artifacts=tmp_path / "artifacts")
    folder = tmp_path / "artifacts"
    folder.mkdir()
    for i, (prompt, seed) in enumerate((p, s) for p in ("a horse", "a zebra") for s in (1, 2)):
        video, poster = folder / f"r{i}.mp4", folder / f"r{i}.jpg"
        video.write_bytes(b"stand-in")
        Image.new("RGB", (640, 360), (i * 50, 90, 140)).save(poster)
        exp.store.insert_run({"run_id": f"run{i:05d}", "experiment": "rank", "run_key": f"k{i}", "prompt": prompt,
                              "seed": seed, "duration": 3, "status": "succeeded", "backend": "simulator",
                              "cost_usd": 0.42, "wall_s": 10.0 + i, "video_path": str(video),
                              "poster_path": str(poster)})
    return exp


def test_ranking_shows_the_judgement_not_every_column(exp: Experiment) -> None:
    record_choice(exp, "run00001", "run00000", "A better")
    exp.rate("run00002", 4)
    exp.tag("run00003", study.FAVOURITE)
    ranked = exp.ranking()
    assert isinstance(ranked, pd.DataFrame) and len(ranked.columns) > 40  # every column stays for code
    assert list(ranked["run_id"][:2]) == ["run00003", "run00002"]  # favourite, then rated
    text = repr(ranked)
    header = text.splitlines()[0].split()
    assert header == ["prompt", "seed", "rating", "favourite", "wins", "losses", "ties", "cost_usd", "run"]
    assert "…" not in text and "..." not in text and "★" in text.splitlines()[1]
    markup = ranked._repr_html_()
    for name in ("favourite", "wins", "losses", "ties", "cost_usd", "rating"):
        assert name in markup
    assert len(re.findall(r'alt=\\?"still', markup)) == 4  # the still of every run
    assert "video_sha256" not in markup and "remote_id" not in markup and "&#36;0.42" in markup
    sub = ranked[ranked["prompt"] == "a horse"]
    assert type(sub) is pd.DataFrame  # derived frames are plain again
