"""The simulator's prompt visibly shapes a reference-to-video clip (as the seed does), and the clip stays
marked SIMULATED: two prompts with one seed and the same references give visibly different clips."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageDraw

from runflow_nb.simulator.engine import Simulator

PROMPTS = ("character1 trots along a beach at dusk", "character1 sleeps in the snow under the moon")


def _reference() -> Image.Image:
    img = Image.new("RGB", (800, 600), (120, 120, 120))
    ImageDraw.Draw(img).ellipse((250, 150, 550, 450), fill=(200, 200, 200))
    return img


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each prompt through the simulator (real render, real MP4), seed 5, one reference."""
    work = tmp_path_factory.mktemp("sim")
    out: dict[str, Path] = {}
    with Simulator(latency=0, workdir=work) as sim:
        for prompt in (*PROMPTS, PROMPTS[0]):
            run = sim.submit({"prompt": prompt, "image_urls": [_reference()], "duration": 3, "resolution": "720p",
                              "seed": 5})
            done = sim.wait(run["id"], timeout=120)
            assert done["status_code"] == "succeeded"
            path = sim.video_path(run["id"])
            assert path is not None
            out.setdefault(prompt, Path(path))
            if prompt in out and Path(path) != out[prompt]:
                out[prompt + " (again)"] = Path(path)
    return out


def test_two_prompts_with_one_seed_give_visibly_different_clips(clips: dict[str, Path]) -> None:
    a, b = _frames(clips[PROMPTS[0]]), _frames(clips[PROMPTS[1]])
    assert clips[PROMPTS[0]].read_bytes() != clips[PROMPTS[1]].read_bytes()
    assert len(a) == len(b) == 72
    h, w = a[0].shape[:2]
    middle = (slice(h // 4, 3 * h // 4), slice(w // 4, 3 * w // 4))  # the picture, away from every badge
    for i in (0, 36, 71):  # the poster frame and later ones: the colour cast differs everywhere
        diff = np.abs(a[i][middle].astype(int) - b[i][middle].astype(int))
        assert diff.mean() > 6, (i, diff.mean())
    # the camera moves differently: how the picture shifts over the clip is not the same
    drift_a = np.abs(a[0][middle].astype(int) - a[71][middle].astype(int)).mean()
    drift_b = np.abs(b[0][middle].astype(int) - b[71][middle].astype(int)).mean()
    assert drift_a != pytest.approx(drift_b, abs=0.05)


def test_the_prompt_is_written_on_the_clip_and_it_stays_marked_simulated(clips: dict[str, Path]) -> None:
    a, b = _frames(clips[PROMPTS[0]])[0], _frames(clips[PROMPTS[1]])[0]
    h, w = a.shape[:2]
    caption = (slice(h - h // 8 - 60, h - h // 8), slice(10, w // 2))  # bottom left, above the controls
    text_a = (a[caption].max(axis=2) > 200) & (a[caption].min(axis=2) > 200)  # white lettering
    text_b = (b[caption].max(axis=2) > 200) & (b[caption].min(axis=2) > 200)
    assert text_a.mean() > 0.02 and text_b.mean() > 0.02 and (text_a != text_b).mean() > 0.02
    label = (slice(100, 150), slice(w - 240, w - 18))  # the SIMULATED label, top right under the seed stamp
    assert np.abs(a[label].astype(int) - b[label].astype(int)).max(axis=2).mean() < 60
    lettering = (a[label].min(axis=2) > 200).mean()
    assert lettering > 0.02


def test_the_same_prompt_and_seed_give_the_same_clip(clips: dict[str, Path]) -> None:
    again = clips.get(PROMPTS[0] + " (again)")
    assert again is not None
    assert [f.tobytes() for f in _frames(again)[:3]] == [f.tobytes() for f in _frames(clips[PROMPTS[0]])[:3]]


@pytest.mark.parametrize("size", [(828, 1472), (1472, 828), (414, 736)])
def test_a_text_to_video_caption_fits_inside_the_frame_in_portrait_and_landscape(size: tuple[int, int]) -> None:
    from runflow_nb.simulator.scenes import text_scene

    width = size[0]
    pixels = np.asarray(text_scene("character1 gallops along the shore at dusk", seed=1, size=size))
    box = np.all(pixels == 16, axis=2)  # the caption's dark backing
    columns = np.flatnonzero(box.any(axis=0))
    assert columns.size, "no caption drawn"
    # inside the window a pan shows (the scene is 1.15 × the clip): the whole caption stays in view
    assert columns.max() < width / 1.15, (columns.min(), columns.max(), width)
