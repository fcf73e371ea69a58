"""What a researcher gets back in a notebook reads as what it is: ``rf.show`` takes a table row,
follow-ups return a run that shows as its clip (every field still reachable), ``rf.form()`` is the
form, and ``exp.qa()`` says in one line what it found."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pandas as pd
import pytest
from PIL import Image

import runflow_nb as rf
from runflow_nb.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def exp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (900, 600), (200, 90, 40)).save(tmp_path / "horse.png")
    e = rf.Experiment("nb", store=str(tmp_path / "s.sqlite"), artifacts=tmp_path / "a",
                      client=rf.Client(backend="simulator"))
    e.run(rf.grid(prompt="character1 trots", images=[["horse.png"]], seed=[1, 2], duration=3, resolution="720p"),
          progress=None)
    yield e
    e.close()


def _frames(path: Any) -> int:
    with av.open(str(path)) as box:
        return sum(1 for _ in box.decode(video=0))


def _shown(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    shown: list[str] = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append(obj.data))
    return shown


def test_show_takes_a_row_of_the_table_or_the_ranking_and_shows_its_clip(exp: Any,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    shown = _shown(monkeypatch)
    df = exp.table()
    exp.rate(df.run_id.iloc[1], 5)
    rf.show(df.iloc[1])
    rf.show(exp.ranking().iloc[0])
    for markup in shown:
        src = re.search(r'<video[^>]*\ssrc="([^"]+)"', markup)
        assert src and Path(df.video_path.iloc[1]).name in src.group(1) and 'poster="data:image/jpeg' in markup
        assert df.run_id.iloc[1][:8] in markup
    assert _frames(df.video_path.iloc[1]) > 0
    with pytest.raises(UsageError, match=r"row of exp\.table"):
        rf.show(pd.Series({"a": 1}))


def test_follow_ups_return_a_run_that_reads_as_a_clip_with_every_field_reachable(exp: Any) -> None:
    rec = exp.generate(prompt="character1 trots", images=["horse.png"], seed=7, duration=3, resolution="720p")
    stored = exp.store.get_run(rec["run_id"])
    assert isinstance(rec, dict) and dict(rec) == stored and rec.video_path == stored["video_path"]
    text = repr(rec)
    assert text.startswith(f"<run {rec.run_id[:8]} succeeded") and "seed 7" in text and len(text) < 100
    assert "/" not in text  # no paths
    markup = rec._repr_html_()
    assert "<video" in markup and 'poster="data:image/jpeg' in markup and f"run {rec.run_id[:8]}" in markup
    assert _frames(rec.video_path) > 0
    with pytest.raises(AttributeError, match="no field 'nope'"):
        _ = rec.nope
    child = exp.rerun(rec, seed=8)
    assert type(child) is type(rec) and child.parent_run_id == rec.run_id and child["seed"] == 8
    assert f"parent {rec.run_id[:8]}" in child._repr_html_() and _frames(child.video_path) > 0
    edit = exp.edit(rec, prompt="make it night")
    assert type(edit) is type(rec) and edit.parent_run_id == rec.run_id and _frames(edit.video_path) > 0
    assert type(exp.upscale(rec)) is type(rec)


def test_rf_form_is_the_generate_form_the_readme_names(exp: Any) -> None:
    assert rf.form is rf.GenerateForm and "form" in rf.__all__
    form = rf.form(experiment=exp, model="t2v")
    assert isinstance(form, rf.GenerateForm) and form.spec.alias == "t2v"
    assert "`rf.form()`" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_exp_qa_says_how_many_were_checked_flagged_and_changed(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from runflow_nb.emulator import serve

    Image.new("RGB", (900, 600), (40, 160, 90)).save(tmp_path / "ref.png")
    with serve(port=0, latency=0.05, faults="frozen=1x") as server:
        client = rf.Client(api_key="rf_test_nb_returns_000000000", base_url=server.url, poll_interval=0.05)
        e = rf.Experiment("qa", store=str(tmp_path / "s.sqlite"), artifacts=tmp_path / "a", client=client)
        df = e.run(rf.grid(prompt="character1", images=[[str(tmp_path / "ref.png")]], seed=[1, 2], duration=3,
                           resolution="720p"), progress=None)
    assert sorted(df.qa.str.startswith("frozen")) == [False, True]
    capsys.readouterr()
    done = e.qa(frozen_min_s=2.5)
    line = "clip QA: 2 clips checked, 0 flagged, 1 changed since last time"
    assert isinstance(done, pd.DataFrame) and list(done.columns) == ["run_id", "qa", "was"]
    assert done.attrs["summary"] == line and capsys.readouterr().out == f"runflow_nb: {line}\n"
    again = e.qa()
    assert again.attrs["summary"] == "clip QA: 2 clips checked, 1 flagged, 1 changed since last time"
    e.qa()
    assert capsys.readouterr().out.splitlines()[-1].endswith("1 flagged, 0 changed since last time")
    e.close()
