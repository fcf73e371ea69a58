"""The vendored examples are the shared page's examples, so the suite also runs without ../shared."""

from __future__ import annotations

import json

import pytest
from _documented import DOCUMENTED, SHARED


def test_every_documented_example_is_vendored_unchanged() -> None:
    if not SHARED.is_dir():
        pytest.skip(f"no shared contract folder at {SHARED} (the vendored copy is used)")
    shared = {p.name: p for p in SHARED.iterdir() if p.suffix in (".json", ".md")}
    vendored = {p.name: p for p in DOCUMENTED.iterdir() if p.suffix in (".json", ".md")}
    assert sorted(vendored) == sorted(shared), "re-copy ../shared/docs/contract into tests/contract/documented"
    for name, path in shared.items():
        if name.endswith(".json"):
            assert json.loads(vendored[name].read_text()) == json.loads(path.read_text()), name
        else:
            assert vendored[name].read_text() == path.read_text(), name


def test_the_vendored_examples_are_json_objects() -> None:
    names = sorted(p.name for p in DOCUMENTED.glob("*.json"))
    assert len(names) >= 19
    for name in names:
        assert isinstance(json.loads((DOCUMENTED / name).read_text()), dict), name
