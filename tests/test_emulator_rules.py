"""The emulator validates from its own model pages, and those pages agree with the client's spec.

The emulator's rules (:mod:`runflow_nb.emulator.rules`, read from the ``inputs[]`` it serves, written
from the API page's tables) and the client's (:mod:`runflow_nb.specs` through
:func:`runflow_nb.server_checks.validate_input`) are two independent readings: on a battery of edge
values for every model of the family they must accept and refuse the same inputs, on the same fields.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from runflow_nb.emulator import EmulatorServer, serve
from runflow_nb.emulator.catalog import PAGES, model_detail
from runflow_nb.emulator.rules import page_rules, scalar_issues
from runflow_nb.server_checks import validate_input
from runflow_nb.specs import FAMILY, ModelSpec

MISSING = object()
NUMBERS: list[Any] = [MISSING, None, -1, 0, 1, 2, 3, 4, 5, 9, 10, 14, 15, 16, 60, 2147483647, 2147483648, -2147483648,
                      5.0, 5.5, "5", True, False, [5], {"v": 5}, 1e400]
TEXTS: list[Any] = [MISSING, None, "", " ", "\t\n", "a horse", "x" * 2500, "x" * 2501, "é" * 2500, "\ud800 horse", 7,
                    True, ["a horse"]]
CHOICES: list[Any] = [MISSING, None, "", "16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "16/9", "720p", "1080p",
                      "1080P", "4k", "auto", "origin", "AUTO", 720, True]
BOOLS: list[Any] = [MISSING, None, True, False, 0, 1, "true", "false"]
TAG_PROMPTS = ["character1 waves", "character9 waves", "character10 waves", "character0 waves", "character01 waves",
               "Character2 and CHARACTER3", "xcharacter1", "character1x", "character1é", "écharacter2",
               "character\u0663 waves", "character2, character1.", "@Image1 glows", "@image5", "@Image6",
               "x@Image2", "@Image01", "@Image1x", "@Image\u0663", "no tags at all", "character_1", "(character2)"]
IMAGE_COUNTS: list[int | None] = [None, 0, 1, 2, 3, 5, 9]


def values_for(name: str) -> list[Any]:
    return {"prompt": TEXTS, "duration": NUMBERS, "seed": NUMBERS, "enable_safety_checker": BOOLS}.get(name, CHOICES)


def verdict(issues: list[Any]) -> set[str]:
    return {i.field for i in issues}


def both(spec: ModelSpec, inp: dict[str, Any], n_images: int | None) -> tuple[set[str], set[str]]:
    rules = page_rules(model_detail(spec.model))
    emulator = verdict(scalar_issues(rules, inp, n_images=n_images))
    _, client = validate_input(inp, spec=spec, n_images=n_images)
    return emulator, verdict(client)


def cases(spec: ModelSpec) -> Iterator[tuple[dict[str, Any], int | None]]:
    base = {"prompt": "a horse"}
    for field in spec.fields:
        for value in values_for(field.name):
            inp = dict(base)
            if value is MISSING:
                inp.pop(field.name, None)
            else:
                inp[field.name] = value
            yield inp, 1
    for prompt, n in itertools.product(TAG_PROMPTS, IMAGE_COUNTS):
        yield {"prompt": prompt}, n
    yield {"prompt": "a horse", "duration": 4, "seed": 7, "resolution": "720p", "extra_key": object()}, 1


@pytest.mark.parametrize("spec", FAMILY, ids=lambda s: s.alias)
def test_the_emulators_page_rules_and_the_clients_spec_agree_on_every_edge(spec: ModelSpec) -> None:
    disagreements = []
    tried = 0
    for inp, n_images in cases(spec):
        tried += 1
        emulator, client = both(spec, inp, n_images)
        if emulator != client:
            shown = {k: (v[:20] + "…" if isinstance(v, str) and len(v) > 20 else v) for k, v in inp.items()}
            disagreements.append(f"{shown} with {n_images} images: emulator refuses {sorted(emulator)}, "
                                 f"client refuses {sorted(client)}")
    assert tried > 100
    assert not disagreements, f"{len(disagreements)} of {tried} differ:\n" + "\n".join(disagreements[:20])


@pytest.mark.parametrize("spec", FAMILY, ids=lambda s: s.alias)
def test_the_pages_media_rules_match_the_clients_spec(spec: ModelSpec) -> None:
    rules = page_rules(model_detail(spec.model))
    assert [e["name"] for e in rules.scalars] == list(spec.field_names)
    assert {e["name"]: e.get("default_value") for e in rules.scalars if not e["is_required"]} == spec.defaults
    if spec.has_images:
        image, ours = rules.images, spec.images
        assert image is not None
        assert (image.field, image.single, image.min_count, image.max_count, image.formats, image.min_short_side,
                image.max_bytes, image.min_aspect, image.max_aspect) == (
            ours.field, ours.single, ours.min_count, ours.max_count, ours.formats, ours.min_short_side,
            ours.max_bytes, ours.min_aspect, ours.max_aspect)
        for w, h in [(100, 100), (299, 750), (300, 750), (300, 751), (751, 300), (1000, 399), (0, 5)]:
            assert image.aspect_problem(w, h) == ours.aspect_problem(w, h)
    else:
        assert rules.images is None
    if spec.video is not None:
        video = rules.video
        assert video is not None
        assert (video.field, video.formats, video.min_duration_s, video.max_duration_s, video.max_bytes) == (
            spec.video.field, spec.video.formats, spec.video.min_duration_s, spec.video.max_duration_s,
            spec.video.max_bytes)
    else:
        assert rules.video is None
    tags = rules.tags
    assert (tags is None) == (spec.tags is None)
    if tags is not None and spec.tags is not None:
        assert (tags.name(tags.first), tags.name(tags.last)) == (spec.tags.name(spec.tags.first),
                                                                 spec.tags.name(spec.tags.last))


def test_the_emulator_imports_none_of_the_clients_rules() -> None:
    from pathlib import Path

    import runflow_nb.emulator as emulator

    for path in Path(emulator.__file__).parent.glob("*.py"):
        text = path.read_text()
        assert "server_checks" not in text.replace("``runflow_nb.server_checks``", ""), path.name
        assert "_prompt_rules" not in text and "request import" not in text, path.name


# -- over HTTP: the page it serves is the page it applies --------------------------------------------

@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    with serve(port=0, latency=0.05) as live:
        yield live


T2V = "alibaba/happy-horse/text-to-video"


def create(url: str, **inp: Any) -> httpx.Response:
    return httpx.post(f"{url}/v1/models/{T2V}/runs", headers={"Authorization": "Bearer k"}, timeout=60,
                      json={"input": {"prompt": "a horse", "resolution": "720p", **inp}})


def test_a_narrowed_model_page_is_what_the_emulator_refuses_by(server: EmulatorServer) -> None:
    served = httpx.get(f"{server.url}/v1/models/{T2V}", headers={"Authorization": "Bearer k"}, timeout=30).json()
    assert served == PAGES[T2V]
    assert create(server.url, duration=12).status_code == 201
    narrowed = copy.deepcopy(served)
    next(e for e in narrowed["inputs"] if e["name"] == "duration")["validator_attrs"] = {"min": 3, "max": 10}
    next(e for e in narrowed["inputs"] if e["name"] == "aspect_ratio")["validator_attrs"]["options"].remove("1:1")
    httpx.post(f"{server.url}/_emulator/config", json={"model_pages": {T2V: narrowed}}, timeout=30)
    refused = create(server.url, duration=12, aspect_ratio="1:1")
    assert refused.status_code == 422
    assert {e["field"] for e in refused.json()["errors"]} == {"duration", "aspect_ratio"}
    assert create(server.url, duration=10, aspect_ratio="16:9").status_code == 201
    httpx.post(f"{server.url}/_emulator/config", json={"model_pages": {}}, timeout=30)
    assert create(server.url, duration=12, aspect_ratio="1:1").status_code == 201


def test_a_zero_padded_tag_before_a_non_ascii_letter_is_refused_by_both() -> None:
    from runflow_nb.specs import REFERENCE_TO_VIDEO

    emulator, client = both(REFERENCE_TO_VIDEO, {"prompt": "character01é waves"}, 1)
    assert emulator == client == {"prompt"}
