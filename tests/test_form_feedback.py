"""The form says what it is doing: a bad image URL is refused with the reason, the upload button counts
what was just added, and a running Generate shows an ETA from earlier runs like it."""

from __future__ import annotations

import io
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import runflow_nb as rf
from runflow_nb import Experiment

pytest.importorskip("ipywidgets")
from runflow_nb.widgets.form import GenerateForm


def _png(size: tuple[int, int] = (800, 600)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, "steelblue").save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "horse.png").write_bytes(_png())
    return tmp_path


def _text(markup: str) -> str:
    import html

    return html.unescape(re.sub(r"<[^>]+>", "", markup))


@pytest.mark.parametrize(("url", "reason"), [
    ("https://", "is not a complete URL"),
    ("ftp://example.com/horse.png", "the ftp:// scheme is not supported"),
    ("https://example.com/a horse.png", "percent-encode the URL"),
    ("www.example.com/horse.png", "no file at"),
])
def test_a_bad_image_url_is_refused_with_the_reason(workdir: Path, url: str, reason: str) -> None:
    form = GenerateForm(client=rf.Client(backend="simulator"))
    form.path_box.value = url
    form.add_button.click()
    assert form.images == [] and form.path_box.value == url  # not added; the text stays to be fixed
    assert reason in _text(form.path_error.value)
    assert form.errors["general"].value == ""
    form.path_box.value = "horse.png"
    form.add_button.click()
    assert len(form.images) == 1 and form.images[0].ok and form.path_error.value == "" and form.path_box.value == ""


def test_a_bad_added_image_is_explained_under_the_images_not_as_a_general_error(workdir: Path) -> None:
    form = GenerateForm(client=rf.Client(backend="simulator"))
    form.add_image("missing.png")
    field = form.spec.images.field
    assert "no file at 'missing.png'" in _text(form.errors[field].value)
    assert "not a reference image" not in _text(form.errors["general"].value)


def test_a_missing_reference_says_what_to_do_in_the_form_not_in_code(workdir: Path) -> None:
    form = GenerateForm(client=rf.Client(backend="simulator"))  # reference-to-video needs a reference
    form.controls["prompt"].value = "character1 trots"
    form.validate()
    shown = _text(form.errors[form.spec.images.field].value)
    assert "at least one reference image is required" in shown and "Upload" in shown, shown
    assert "images=[" not in shown and "image=path" not in shown, shown


def test_the_upload_button_counts_the_files_just_added(workdir: Path) -> None:
    form = GenerateForm(client=rf.Client(backend="simulator"))
    files = tuple({"name": f"pic{i}.png", "type": "image/png", "size": len(_png()), "content": memoryview(_png()),
                   "last_modified": datetime.now(timezone.utc)} for i in range(2))
    form.upload.value = files
    assert len(form.images) == 2 and all(i.ok for i in form.images)
    assert len(form.upload.value) == 2  # the button shows "Upload (2)", not "Upload (0)"


def test_a_running_generate_shows_an_eta_from_earlier_runs(workdir: Path) -> None:
    exp = Experiment("eta", store=str(workdir / "s.sqlite"), artifacts=workdir / "a",
                     client=rf.Client(backend="simulator"))
    form = GenerateForm(experiment=exp)
    form.controls["prompt"].value = "character1 trots"
    form.controls["resolution"].value = "720p"
    form.controls["duration"].value = 3
    form.add_image("horse.png")
    form.generate()
    assert "ETA after the first run" in _text(form.status.value)  # nothing like it ran yet
    first: Any = form.wait(timeout=120)
    assert isinstance(first, dict) and first["wall_s"] > 0
    form.controls["seed"].value = 12345  # another run of the same kind
    form.generate()
    status = _text(form.status.value)
    assert re.search(r"ETA ~\d+ s \(runs like this took ~\d+ s\)|longer than usual", status), status
    form.wait(timeout=120)
