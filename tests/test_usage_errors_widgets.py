"""Bad arguments to rf.show, rf.sample_images and GenerateForm raise library errors that say what
the call takes; nothing the call already held is lost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import runflow_nb as rf
from runflow_nb.errors import ConfigurationError, RunflowError, UsageError, ValidationError


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RUNFLOW_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)


# -- rf.show ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("obj", [None, pd.DataFrame({"a": [1]}), float("nan"), b"clip.mp4", 5, "", "a\x00b",
                                 ["clip.mp4"]], ids=["None", "DataFrame", "nan", "bytes", "int", "empty", "nul",
                                                     "list"])
def test_show_refuses_what_it_cannot_show_and_says_what_it_takes(obj: Any) -> None:
    with pytest.raises(UsageError, match="video path or URL") as info:
        rf.show(obj)
    assert isinstance(info.value, RunflowError)


def test_show_of_a_dataframe_points_at_its_rows() -> None:
    with pytest.raises(UsageError, match="DataFrame"):
        rf.show(pd.DataFrame({"run_id": ["r1"]}))


@pytest.mark.parametrize("cost", ["x", "", object(), float("inf"), [1]])
def test_show_of_a_row_with_a_bad_cost_shows_it_as_unknown(cost: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from runflow_nb.views.display import row_fields, row_html

    row = {"run_id": "r1", "status": "failed", "cost_usd": cost, "backend": "runflow", "prompt": "a horse"}
    rf.show(row)  # no exception
    expected = None if isinstance(cost, str) and not cost else "unknown"  # empty text is a missing cost
    assert row_fields(row)["cost"] == expected
    assert ("unknown" in row_html(row)) == (expected is not None)


def test_the_forms_result_of_a_row_with_a_bad_cost_shows_it_as_unknown(tmp_path: Path) -> None:
    from runflow_nb.widgets.form_items import row_result_html

    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\0")
    html = row_result_html({"run_id": "r1", "status": "succeeded", "video_path": str(video), "cost_usd": "x",
                            "wall_s": "slow", "queue_s": None, "seed": 3, "prompt": "a horse"})
    assert "unknown" in html and "<video" in html


def test_show_still_takes_a_path_a_row_and_a_path_object(tmp_path: Path) -> None:
    rf.show("clip.mp4")
    rf.show(tmp_path / "clip.mp4")
    rf.show({"run_id": "r1", "status": "failed", "cost_usd": 0.42})


# -- rf.sample_images ---------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [0, 4, 5, -1, "2", 2.0, True])
def test_sample_images_count_out_of_range_is_a_usage_error(n: Any, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="n must be"):
        rf.sample_images(n, folder=tmp_path)


@pytest.mark.parametrize("folder", [5, b"samples", ["a"]])
def test_sample_images_folder_of_the_wrong_type_is_a_usage_error(folder: Any) -> None:
    with pytest.raises(UsageError, match="folder"):
        rf.sample_images(1, folder=folder)


def test_sample_images_folder_that_is_a_file_is_a_configuration_error(tmp_path: Path) -> None:
    existing = tmp_path / "existing.txt"
    existing.write_text("keep me")
    with pytest.raises(ConfigurationError, match=r"existing\.txt"):
        rf.sample_images(1, folder=existing)
    with pytest.raises(ConfigurationError, match=r"existing\.txt"):
        rf.sample_images(1, folder=existing / "sub")
    assert existing.read_text() == "keep me"


def test_sample_images_still_draws_into_a_new_folder(tmp_path: Path) -> None:
    paths = rf.sample_images(1, folder=tmp_path / "new")
    assert [p.name for p in paths] == ["character1-horse.png"] and paths[0].is_file()


# -- GenerateForm ---------------------------------------------------------------------------------------

def test_generate_form_unknown_model_is_a_validation_error_like_grid() -> None:
    with pytest.raises(ValidationError) as from_grid:
        rf.grid(model="nope", prompt="x")
    with pytest.raises(ValidationError) as from_form:
        rf.GenerateForm(model="nope", client=rf.Client(backend="simulator"))
    assert from_form.value.issues == from_grid.value.issues


def test_set_model_unknown_is_a_validation_error_and_the_form_keeps_its_model() -> None:
    form = rf.GenerateForm(client=rf.Client(backend="simulator"))
    before = form.spec
    with pytest.raises(ValidationError) as info:
        form.set_model("nope")
    assert info.value.fields == ["model"] and "unknown model 'nope'" in str(info.value)
    assert form.spec is before


@pytest.mark.parametrize("client", [5, "key", object()])
def test_generate_form_client_of_the_wrong_type_is_a_usage_error(client: Any) -> None:
    with pytest.raises(UsageError, match="client"):
        rf.GenerateForm(client=client)


def test_generate_form_experiment_of_the_wrong_type_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="experiment"):
        rf.GenerateForm(client=rf.Client(backend="simulator"), experiment="demo")  # type: ignore[arg-type]


@pytest.fixture
def form_with_two_images(tmp_path: Path) -> Any:
    from PIL import Image

    form = rf.GenerateForm(client=rf.Client(backend="simulator"))
    for i, colour in enumerate([(200, 90, 40), (40, 90, 200)]):
        path = tmp_path / f"ref{i}.png"
        Image.new("RGB", (800, 600), colour).save(path)
        form.add_image(str(path))
    return form


@pytest.mark.parametrize("source", [5, None, b"x.png", ["x.png"]])
def test_add_image_of_the_wrong_type_is_a_usage_error_and_nothing_is_added(form_with_two_images: Any,
                                                                           source: Any) -> None:
    form = form_with_two_images
    with pytest.raises(UsageError, match="path or http"):
        form.add_image(source)
    assert len(form.images) == 2


@pytest.mark.parametrize("index", [99, 2, -3, "0", 1.0, None])
def test_remove_image_of_no_such_image_is_a_usage_error_and_nothing_is_removed(form_with_two_images: Any,
                                                                               index: Any) -> None:
    form = form_with_two_images
    names = [it.name for it in form.images]
    with pytest.raises(UsageError, match="image"):
        form.remove_image(index)
    assert [it.name for it in form.images] == names


@pytest.mark.parametrize("index,offset", [(0, "x"), (0, None), (0, 1.5), ("0", 1), (99, 1), (-5, 1)])
def test_move_image_with_bad_arguments_is_a_usage_error_and_nothing_moves(form_with_two_images: Any,
                                                                          index: Any, offset: Any) -> None:
    form = form_with_two_images
    names = [it.name for it in form.images]
    with pytest.raises(UsageError):
        form.move_image(index, offset)
    assert [it.name for it in form.images] == names


def test_images_still_move_and_go(form_with_two_images: Any) -> None:
    form = form_with_two_images
    form.move_image(0, 1)
    assert [it.name for it in form.images] == ["ref1.png", "ref0.png"]
    form.move_image(1, 1)  # past the end (what the disabled ▶ on the last card means): nothing moves
    assert [it.name for it in form.images] == ["ref1.png", "ref0.png"]
    form.remove_image(-1)
    assert [it.name for it in form.images] == ["ref1.png"]
