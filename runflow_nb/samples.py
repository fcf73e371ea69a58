"""Sample reference images for offline notebooks, demos and tests, drawn on first use.

Three 1280×720 PNGs, one illustrated "character" each, with a large label naming the tag a prompt
uses for it (``character1`` is the horse, ``character2`` the robot, ``character3`` the owl). They
are drawn from shapes with Pillow, so the wheel carries no image files, and the drawing is
deterministic: the same Pillow build writes the same bytes, and the files are written once to a
cache folder and reused, so run keys (which hash the image bytes) stay stable across sessions.

>>> from runflow_nb.samples import sample_images
>>> paths = sample_images()          # doctest: +SKIP
>>> [p.name for p in paths]          # doctest: +SKIP
['character1-horse.png', 'character2-robot.png', 'character3-owl.png']
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ._files import write_whole

if TYPE_CHECKING:
    from PIL import ImageDraw, ImageFont

__all__ = ["SAMPLE_NAMES", "default_samples_dir", "sample_images"]

_VERSION = 1  # bump when the drawings change: a new folder, so old run keys are not confused
WIDTH, HEIGHT = 1280, 720
SAMPLE_NAMES = ("character1-horse", "character2-robot", "character3-owl")


def default_samples_dir() -> Path:
    """``$RUNFLOW_CACHE_DIR/samples/v1``, else ``$XDG_CACHE_HOME/runflow_nb/...``, else ``~/.cache/...``."""
    from .settings import cache_dir

    return cache_dir() / "samples" / f"v{_VERSION}"


def sample_images(n: int = 3, *, folder: str | os.PathLike[str] | None = None) -> list[Path]:
    """Paths of the first ``n`` (1–3) sample images, drawing any that are missing.

    The images are 1280×720 PNGs well under 1 MB, so requests send them inline.
    ``folder`` defaults to :func:`default_samples_dir` (a temporary folder if that is not writable).
    """
    from .errors import ConfigurationError, UsageError

    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(SAMPLE_NAMES):
        raise UsageError(f"n must be a whole number from 1 to {len(SAMPLE_NAMES)} (there are "
                         f"{len(SAMPLE_NAMES)} sample images), got {n!r}")
    if folder is not None and (not isinstance(folder, (str, os.PathLike))
                               or not isinstance(os.fspath(folder), str) or not os.fspath(folder)):
        raise UsageError(f"folder must be a folder path (str or pathlib.Path), got {folder!r}")
    target = Path(folder) if folder is not None else default_samples_dir()
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if folder is not None:
            raise ConfigurationError(_unusable(target, exc)) from None
        target = Path(tempfile.gettempdir()) / "runflow_nb_samples" / f"v{_VERSION}"
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as exc2:
            raise ConfigurationError(_unusable(target, exc2) + " (the cache folder could not be used either; "
                                     "set RUNFLOW_CACHE_DIR)") from None
    paths = []
    for index, name in enumerate(SAMPLE_NAMES[:n]):
        path = target / f"{name}.png"
        if not path.is_file() or path.stat().st_size == 0:
            try:
                _write_atomically(path, _DRAWERS[index])
            except OSError as exc:
                raise ConfigurationError(_unusable(target, exc)) from None
        paths.append(path)
    return paths


def _unusable(folder: Path, exc: OSError) -> str:
    """Why the sample images cannot be written into ``folder``, and what to do."""
    blocker = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        why = "it is a file" if blocker == folder else f"{str(blocker)!r} is a file"
    else:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
    return f"cannot write the sample images into folder {str(folder)!r}: {why}; give another folder"


def _write_atomically(path: Path, draw: Callable[[ImageDraw.ImageDraw], None]) -> None:
    from PIL import Image, ImageDraw

    number = SAMPLE_NAMES.index(path.stem) + 1
    img = Image.new("RGB", (WIDTH, HEIGHT))
    canvas = ImageDraw.Draw(img)
    draw(canvas)
    _label(canvas, f"character{number}", path.stem.split("-", 1)[1])
    # Another process may draw the same file at the same moment: each writes its own temporary
    # file and renames it into place, so readers never see a partial PNG.
    write_whole(path, lambda tmp: img.save(tmp, format="PNG", optimize=True))


# -- drawing ------------------------------------------------------------------------------------

def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow < 10.1 or no FreeType: the small bitmap font
        return ImageFont.load_default()


def _label(d: ImageDraw.ImageDraw, tag: str, what: str) -> None:
    """A dark banner top-left: the prompt tag in large type, what it shows below it."""
    d.rounded_rectangle((32, 28, 500, 168), radius=18, fill=(20, 24, 36))
    d.text((56, 40), tag, font=_font(72), fill=(255, 255, 255))
    d.text((60, 124), f"sample reference: {what}", font=_font(30), fill=(190, 200, 220))


def _sky(d: ImageDraw.ImageDraw, top: tuple[int, int, int], bottom: tuple[int, int, int], *,
         horizon: int = HEIGHT) -> None:
    """A vertical gradient (rows of one colour compress to almost nothing in PNG)."""
    for y in range(horizon):
        t = y / max(1, horizon - 1)
        colour = tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        d.line((0, y, WIDTH, y), fill=colour)


def _draw_horse(d: ImageDraw.ImageDraw) -> None:
    _sky(d, (120, 180, 235), (205, 230, 250), horizon=470)
    d.rectangle((0, 470, WIDTH, HEIGHT), fill=(96, 160, 72))
    d.ellipse((1030, 60, 1170, 200), fill=(255, 214, 90))  # sun
    brown, dark, mane = (150, 88, 44), (110, 62, 30), (60, 36, 20)
    for x in (560, 620, 820, 880):  # legs
        d.rounded_rectangle((x, 430, x + 38, 610), radius=14, fill=dark)
        d.rectangle((x - 4, 596, x + 42, 622), fill=(40, 30, 24))  # hooves
    d.ellipse((520, 300, 960, 480), fill=brown)  # body
    d.polygon([(880, 340), (960, 200), (1010, 230), (950, 380)], fill=brown)  # neck
    d.ellipse((930, 170, 1090, 260), fill=brown)  # head
    d.ellipse((1040, 200, 1100, 250), fill=(175, 110, 70))  # muzzle
    d.ellipse((985, 190, 1003, 208), fill=(20, 20, 20))  # eye
    d.polygon([(955, 175), (968, 130), (985, 178)], fill=dark)  # ear
    d.polygon([(900, 210), (950, 170), (905, 350), (870, 330)], fill=mane)  # mane
    d.polygon([(530, 340), (440, 380), (420, 520), (470, 470), (525, 390)], fill=mane)  # tail


def _draw_robot(d: ImageDraw.ImageDraw) -> None:
    _sky(d, (70, 50, 120), (150, 110, 190))
    d.rectangle((0, 600, WIDTH, HEIGHT), fill=(60, 50, 80))
    steel, dark, glow = (176, 186, 200), (96, 106, 124), (90, 240, 255)
    d.line((640, 150, 640, 90), fill=dark, width=10)  # antenna
    d.ellipse((620, 70, 660, 110), fill=(255, 90, 90))
    d.rounded_rectangle((520, 150, 760, 330), radius=30, fill=steel)  # head
    d.ellipse((565, 205, 625, 265), fill=glow)  # eyes
    d.ellipse((655, 205, 715, 265), fill=glow)
    d.rounded_rectangle((590, 285, 690, 305), radius=8, fill=dark)  # mouth
    d.rounded_rectangle((480, 345, 800, 560), radius=26, fill=steel)  # body
    d.rounded_rectangle((560, 390, 720, 500), radius=14, fill=dark)  # panel
    for i, colour in enumerate(((255, 200, 60), (90, 220, 120), (255, 90, 90))):
        d.ellipse((585 + i * 45, 425, 620 + i * 45, 460), fill=colour)
    d.rounded_rectangle((400, 360, 470, 540), radius=30, fill=dark)  # arms
    d.rounded_rectangle((810, 300, 880, 480), radius=30, fill=dark)  # the waving arm
    d.ellipse((800, 250, 890, 320), fill=steel)  # hand
    d.rounded_rectangle((530, 560, 610, 640), radius=14, fill=dark)  # legs
    d.rounded_rectangle((670, 560, 750, 640), radius=14, fill=dark)


def _draw_owl(d: ImageDraw.ImageDraw) -> None:
    _sky(d, (20, 40, 80), (60, 110, 140))
    for i in range(18):  # stars: a fixed scatter, no randomness
        x, y = 20 + (389 * i) % 1220, 200 + (157 * i * i) % 300
        d.ellipse((x, y, x + 6, y + 6), fill=(250, 250, 210))
    d.ellipse((1040, 50, 1180, 190), fill=(240, 240, 215))  # moon
    d.rounded_rectangle((200, 560, 1100, 600), radius=20, fill=(100, 66, 40))  # branch
    body, belly, face = (60, 150, 140), (200, 230, 210), (230, 245, 235)
    d.ellipse((500, 260, 780, 580), fill=body)  # body
    d.ellipse((560, 380, 720, 570), fill=belly)
    d.polygon([(520, 270), (545, 190), (590, 260)], fill=body)  # ear tufts
    d.polygon([(760, 270), (735, 190), (690, 260)], fill=body)
    for cx in (585, 695):  # eyes
        d.ellipse((cx - 55, 250, cx + 55, 360), fill=face)
        d.ellipse((cx - 26, 278, cx + 26, 330), fill=(250, 180, 40))
        d.ellipse((cx - 12, 292, cx + 12, 316), fill=(10, 10, 10))
    d.polygon([(625, 350), (655, 350), (640, 385)], fill=(240, 150, 40))  # beak
    d.ellipse((480, 360, 540, 520), fill=(40, 110, 100))  # wings
    d.ellipse((740, 360, 800, 520), fill=(40, 110, 100))
    for x in (585, 665):  # talons
        d.rounded_rectangle((x, 560, x + 30, 585), radius=8, fill=(240, 150, 40))


_DRAWERS: tuple[Callable[[ImageDraw.ImageDraw], None], ...] = (_draw_horse, _draw_robot, _draw_owl)
