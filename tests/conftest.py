"""Shared fixtures: sample reference images and a live emulator on loopback."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

# Tests run offline and never see a real key; the developer's own stores and settings stay out.
for _name in ("RUNFLOW_API_KEY", "RUNFLOW_BASE_URL", "RUNFLOW_BACKEND", "RUNFLOW_STORE", "RUNFLOW_ARTIFACTS",
              "RUNFLOW_ORGANIZATION_ID", "RUNFLOW_PROGRESS", "RUNFLOW_CALLBACK_URL"):
    os.environ.pop(_name, None)
os.environ.setdefault("RUNFLOW_SIMULATOR_LATENCY", "0.05")

TEST_KEY = "rf_test_0000000000000000"

# The harness: long loopback scenarios (interrupts, SIGKILLs, fault plans, budgets, fuzzing, every
# output searched for the key) of the toolkit's own logic. They run in the main suite.
HARNESS_FILES = frozenset({"test_money.py", "test_crash.py", "test_faults.py", "test_team.py", "test_secrets.py",
                           "test_bad_input.py", "test_leases.py", "test_soak_lags.py"})


# Slow: every test of these files takes seconds to minutes (papermill reports, SIGKILLed children,
# loopback fault and money scenarios, the team soak). `pytest -m "not slow and not browser"` leaves
# them out while working; make test runs them all.
SLOW_FILES = HARNESS_FILES | {"test_report.py", "test_compare_models.py"}


# Compat: the files whose tests drive a dependency's own API at the toolkit's edges (PyAV and numpy on
# real MP4s, Pillow, httpx over loopback, pydantic, SQLAlchemy, pandas and pyarrow, ipywidgets, IPython
# and traitlets, papermill, nbformat and jupyter_client, fsspec/s3fs, itables, pyyaml, the CLI). The jobs
# that re-run the suite on the lowest and the newest dependency versions run these (-m compat); the
# toolkit's own sweep, money and lag logic above them does not change with a dependency's version and
# runs in the main suite.
COMPAT_FILES = frozenset({
    "test_media.py", "test_render.py", "test_qa.py", "test_simulator.py",  # PyAV, numpy, Pillow
    "test_client.py", "test_wire.py", "test_protocol_flows.py", "test_client_flows.py",  # httpx
    "test_request.py", "test_request_edges.py", "test_request_messages.py", "test_request_limits.py",  # pydantic
    "test_emulator.py",  # the loopback server the clients talk to
    "test_store.py", "test_migrate.py", "test_settings.py", "test_cli_table.py", "test_study.py",  # SQLAlchemy, pandas
    "test_widgets.py", "test_usage_errors_widgets.py", "test_form_feedback.py", "test_studio_widgets.py",  # ipywidgets
    "test_display.py", "test_html_reprs.py", "test_notebook_errors.py", "test_notebook_commands.py",  # IPython
    "test_gallery_layout.py", "test_view_sorting.py", "test_ranking_view.py",  # itables, views
    "test_notebooks.py", "test_report.py",  # papermill, nbformat, nbconvert, jupyter_client (the fast part)
    "test_artifacts_s3.py", "test_clip_sources.py",  # fsspec, s3fs, moto
    "test_dependencies.py", "test_doctests.py", "test_layout.py", "test_escaping.py", "test_cli.py",
    "test_file_modes.py", "test_environment.py",
})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in HARNESS_FILES:
            item.add_marker(pytest.mark.harness)
        if item.path.name in COMPAT_FILES:
            item.add_marker(pytest.mark.compat)
        if item.path.name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)
    _keep_file_order(items)


def _keep_file_order(items: list[pytest.Item]) -> None:
    """A module that sets ``KEEP_ORDER = True`` (its tests walk one page through steps) runs its tests
    in file order, wherever a random order put the module; every other test keeps the order it got.
    This runs after pytest-randomly's shuffle (which reorders before plain hooks)."""
    def key(item: pytest.Item) -> tuple[int, tuple[tuple[str, int], ...]]:
        spec = getattr(item, "callspec", None)
        return item.location[1] or 0, tuple(sorted(spec.indices.items())) if spec is not None else ()

    slots: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        module = getattr(item, "module", None)
        if getattr(module, "KEEP_ORDER", False):
            slots.setdefault(item.nodeid.split("::", 1)[0], []).append(i)
    for positions in slots.values():
        ordered = sorted((items[i] for i in positions), key=key)
        for i, item in zip(positions, ordered, strict=True):
            items[i] = item


@pytest.fixture(autouse=True)
def _sigint_handler_restored() -> Iterator[None]:
    """Whatever a test does to the SIGINT handler (a CLI that installs its own, a library that sets
    one) is undone after it, so no later test inherits it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.getsignal(signal.SIGINT)
    yield
    if signal.getsignal(signal.SIGINT) is not before:
        signal.signal(signal.SIGINT, before)


@pytest.fixture
def default_sigint() -> Iterator[None]:
    """Python's own SIGINT handler (raise KeyboardInterrupt in the main thread), as in a plain script
    and as ipykernel installs it while a cell runs; tests of Ctrl-C and Kernel ▸ Interrupt assume it,
    whatever the test runner (a worker process, an earlier test) left in place."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture(scope="session")
def ref_images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two distinct 800×600 PNG references."""
    folder = tmp_path_factory.mktemp("refs")
    paths = []
    for i, color in enumerate([(200, 90, 40), (40, 90, 200)]):
        img = Image.new("RGB", (800, 600), color)
        ImageDraw.Draw(img).ellipse((250, 150, 550, 450), fill=(240, 240, 240))
        p = folder / f"character{i + 1}.png"
        img.save(p)
        paths.append(p)
    return paths


@pytest.fixture
def emulator_server() -> Iterator[object]:
    """A fresh emulator served on a free loopback port (latency 0.1 s, no faults)."""
    from runflow_nb.emulator import serve

    with serve(port=0, latency=0.1) as server:
        yield server


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store: a SQLite file, or a private schema on the PostgreSQL server (whose
    session runs in a non-UTC time zone, so timestamps must round-trip as UTC)."""
    from _pg import pg_schema_url

    if request.param == "sqlite":
        yield str(tmp_path / "runs.sqlite")
    else:
        with pg_schema_url(timezone="Asia/Kolkata") as url:
            yield url


# -- sweeps at zero latency (tests/_fast_sweep.py) ------------------------------------------------------


@pytest.fixture(scope="session")
def fast_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real 3 s 720p MP4 with audio, rendered once; every fast-sweep run's video is a copy."""
    from runflow_nb.simulator.render import render_clip

    folder = tmp_path_factory.mktemp("fast-clip")
    return Path(render_clip([Image.new("RGB", (800, 600), (200, 90, 40))], duration=3, aspect_ratio="16:9",
                            resolution="720p", seed=1, dest=folder / "clip.mp4"))


@pytest.fixture
def no_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """Downloads skip fsync (durability is the crash tests' subject, not the fast sweeps')."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)


@pytest.fixture
def service(fast_clip: Path, no_fsync: None) -> Iterator[Any]:
    """The documented API in-process at zero latency (:class:`_fast_sweep.Service`)."""
    from _fast_sweep import Service

    s = Service(fast_clip)
    yield s
    s.close()


@pytest.fixture
def sweeper(service: Any, tmp_path: Path) -> Any:
    """Repeated sweeps into one in-memory store through ``service`` (:class:`_fast_sweep.Sweeper`)."""
    from _fast_sweep import Sweeper

    return Sweeper(service, tmp_path)
