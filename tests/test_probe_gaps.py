"""Behaviours a planted-bug probe found untested, pinned through the public API on loopback.

* A batch create answered 5xx whose runs the list shows only in part: each listed run is mapped,
  the others stay unknown, the batch is never POSTed twice.
* A lost batch that a resume finds only partly listed, with key replay off: nothing is sent
  again and the unlisted runs stay unknown with their money held.
* Two in-memory images of the same size and mode but different pixels in one grid (and numpy
  arrays, and a file edited in place): two runs, each request bound to its own image.
* The ``title`` attribute of a long, cut prompt in every HTML view is escaped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from _lagging import Lagging
from _ledger import billed, settle
from PIL import Image

import runflow_nb as rf
from runflow_nb.emulator import serve

KEY = "rf_test_probe_gaps"
PROMPT = "character1 walks along a river bank"
RUN = 0.42


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[Any]:
    emu = Lagging(latency=0.1, **getattr(request, "param", {}))
    try:
        with serve(emulator=emu) as srv:
            yield srv
    finally:
        emu.close()


def _experiment(url: str, tmp_path: Path) -> rf.Experiment:
    return rf.Experiment("gaps", store=str(tmp_path / "store.sqlite"), artifacts=tmp_path / "artifacts",
                         client=rf.Client(api_key=KEY, base_url=url, poll_interval=0.05))


def _plan(images: Any, seeds: Any) -> rf.Plan:
    return rf.grid(prompt=PROMPT, images=images, seed=list(seeds), duration=3, resolution="720p")


def _odd_seed(item: dict[str, Any]) -> bool:
    return (item.get("input") or {}).get("seed", 0) % 2 == 1


def _batch_posts(emu: Lagging) -> int:
    return len([c for c in emu.state.creates() if c["route"] == "batches"])


# -- batches the list shows only in part ------------------------------------------------------


@pytest.mark.parametrize("server", [{"faults": "create500=1x"}], indirect=True)
def test_a_batch_answered_500_and_listed_in_part_maps_the_listed_runs_and_keeps_the_rest_unknown(
        server: Any, ref_images: list[Path], tmp_path: Path) -> None:
    emu: Lagging = server.emulator
    emu.list_hides = _odd_seed
    exp = _experiment(server.url, tmp_path)
    plan = _plan([ref_images[:1]], range(4))
    df = exp.run(plan, concurrency=4, batch="auto", progress=None)
    settle(emu)
    by_seed = {int(r.seed): r for r in df.itertuples()}
    assert {s: by_seed[s].status for s in by_seed} == {0: "succeeded", 1: "unknown", 2: "succeeded", 3: "unknown"}
    made = {r["client_ref"]: r["id"] for r in emu.simulator.list_runs(limit=500)[0]}
    for seed in (0, 2):  # each listed run mapped to its own row
        assert by_seed[seed].remote_id == made[by_seed[seed].client_ref]
    assert _batch_posts(emu) == 1 and len(made) == 4 and billed(emu)[0] == 4
    emu.list_hides = None  # the list catches up: the next sweep collects them, nothing is made again
    df = exp.run(plan, batch="auto", progress=None)
    settle(emu)
    assert Counter(df.status) == Counter({"succeeded": 4}) and _batch_posts(emu) == 1 and billed(emu)[0] == 4


@pytest.mark.parametrize("server", [{"faults": "drop=1x", "key_replay": "none"}], indirect=True)
def test_a_lost_batch_a_resume_finds_in_part_without_key_replay_sends_nothing_and_holds_the_money(
        server: Any, ref_images: list[Path], tmp_path: Path) -> None:
    emu: Lagging = server.emulator
    emu.list_hides = _odd_seed
    exp = _experiment(server.url, tmp_path)
    plan = _plan([ref_images[:1]], range(4))
    exp.run(plan, concurrency=4, batch="auto", progress=None)
    settle(emu)
    # resumed with room for the two unknown runs only: they hold it, so the two new seeds are skipped
    df = exp.run(_plan([ref_images[:1]], range(6)), concurrency=4, batch="auto", budget_usd=2 * RUN, progress=None)
    settle(emu)
    status = {int(r.seed): r.status for r in df.itertuples()}
    assert status == {0: "succeeded", 1: "unknown", 2: "succeeded", 3: "unknown", 4: "skipped_budget",
                      5: "skipped_budget"}, status
    assert _batch_posts(emu) == 1 and billed(emu)[0] == 4 and not emu.state.counts().get("creates:replayed")


# -- in-memory images ---------------------------------------------------------------------------


def _pair(kind: str, tmp_path: Path) -> list[Any]:
    a = np.zeros((600, 800, 3), dtype=np.uint8)
    b = a.copy()
    b[100:300, 200:500] = (250, 30, 30)  # same size and mode, other pixels
    if kind == "pil":
        return [Image.fromarray(a), Image.fromarray(b)]
    return [a, b]


def _sent_pixels(emu: Lagging, client_ref: str) -> np.ndarray:
    """The reference image the create of ``client_ref`` carried, decoded."""
    import base64
    import io

    (body,) = [b for b in emu.create_bodies if b.get("client_ref") == client_ref][-1:]
    (url,) = body["input"]["image_urls"]
    data = base64.b64decode(url.split(",", 1)[1]) if url.startswith("data:") else httpx.get(url).content
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.mark.parametrize("kind", ["pil", "numpy"])
def test_two_in_memory_images_of_one_size_and_mode_make_two_runs_each_with_its_own_image(
        server: Any, kind: str, tmp_path: Path) -> None:
    emu: Lagging = server.emulator
    images = _pair(kind, tmp_path)
    exp = _experiment(server.url, tmp_path)
    df = exp.run(_plan([[images[0]], [images[1]]], [7]), progress=None)
    settle(emu)
    assert len(df) == 2 and Counter(df.status) == Counter({"succeeded": 2}) and billed(emu)[0] == 2
    sent = [_sent_pixels(emu, ref) for ref in df.client_ref]
    expected = [np.asarray(img if kind == "numpy" else img.convert("RGB")) for img in images]
    assert {bool(np.array_equal(sent[0], e)) for e in expected} == {True, False}
    assert not np.array_equal(sent[0], sent[1]), "both runs were sent the same image"


def test_a_reference_file_edited_in_place_is_a_new_run_sent_with_its_new_pixels(server: Any, tmp_path: Path) -> None:
    emu: Lagging = server.emulator
    first, second = _pair("numpy", tmp_path)
    path = tmp_path / "ref.png"
    Image.fromarray(first).save(path)
    exp = _experiment(server.url, tmp_path)
    exp.run(_plan([[path]], [7]), progress=None)
    Image.fromarray(second).save(path)  # edited in place: same name, size and mode
    exp.run(_plan([[path]], [7]), progress=None)
    settle(emu)
    rows = sorted(exp.runs(), key=lambda r: r["created_at"])
    assert billed(emu)[0] == 2 and len(rows) == 2 and rows[0]["run_key"] != rows[1]["run_key"]
    assert [r["status"] for r in rows] == ["succeeded", "succeeded"]
    assert np.array_equal(_sent_pixels(emu, rows[0]["client_ref"]), first)
    assert np.array_equal(_sent_pixels(emu, rows[1]["client_ref"]), second)


# -- a long, cut prompt in every HTML view ---------------------------------------------------------


def test_the_title_of_a_long_cut_prompt_is_escaped_in_every_html_view(ref_images: list[Path], tmp_path: Path) -> None:
    from test_escaping import assert_inert

    from runflow_nb.views import display
    from runflow_nb.widgets.compare import synced_videos_html
    from runflow_nb.widgets.gallery import gallery_html

    base = "character1 \"quoted\" <b>bold</b> & 'single' \" onmouseover=\"alert(1) ' onfocus='alert(2) "
    prompts = [base + "x" * 200, base + "y" * 200]  # cut on screen, whole on hover; they differ only past the cut
    exp = rf.Experiment("titles", store=str(tmp_path / "s.sqlite"), artifacts=tmp_path / "a",
                        client=rf.Client(backend="simulator"))
    df = exp.run(rf.grid(prompt=prompts, images=[ref_images[:1]], seed=[1], duration=3, resolution="720p"),
                 progress=None)
    rows = exp.runs()
    prompt = rows[0]["prompt"]
    views = {
        "view": exp.view().static_html(),
        "gallery": gallery_html(exp.table(), rows="prompt", cols="seed"),
        "show": display.row_html(rows[0]),
        "compare": synced_videos_html(rows[0], rows[1]),
        "caption": display.caption_html({"seed": 1}, prompt=prompt),
    }
    for name, markup in views.items():
        parsed = assert_inert(markup)
        titles = [a["title"] for _tag, a in parsed.elements if a.get("title") and 'character1 "' in a["title"]]
        if name != "compare":
            assert titles, f"{name}: no title holds the prompt"
        assert all(t in prompts for t in titles), f"{name}: a title is not a whole prompt: {titles[:1]!r}"
    assert len(df) == 2
