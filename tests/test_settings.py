"""One settings module: precedence, the key read only when needed, one default store for every entry point."""

from __future__ import annotations

import copy
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import runflow_nb as rf
from runflow_nb import settings
from runflow_nb.cli import main
from runflow_nb.errors import ConfigurationError
from runflow_nb.store.runstore import MissingStoreError, Store

REPO = Path(__file__).resolve().parents[1]
SECRET = "sk-NOPREFIX-7f3a9c1e5b"  # no rf_ prefix: only the value itself can give it away


# -- precedence: explicit, then environment, then default ----------------------------------------

def test_store_and_artifacts_precedence() -> None:
    assert settings.store_url(environ={}) == settings.DEFAULT_STORE == "runflow_data/runflow.sqlite"
    assert settings.store_url(environ={"RUNFLOW_STORE": " team.sqlite\n"}) == "team.sqlite"
    assert settings.store_url("mine.sqlite", environ={"RUNFLOW_STORE": "team.sqlite"}) == "mine.sqlite"
    assert settings.store_url(environ={"RUNFLOW_STORE": "   "}) == settings.DEFAULT_STORE  # blank = unset
    # Artifacts live beside a SQLite store unless told otherwise.
    assert settings.artifacts_location(environ={}) == "runflow_data/artifacts"
    assert settings.artifacts_location(environ={"RUNFLOW_STORE": "/d/s/x.sqlite"}) == "/d/s/artifacts"
    assert settings.artifacts_location(store="sqlite:////d/t/y.sqlite", environ={}) == "/d/t/artifacts"
    assert settings.artifacts_location(store="runs.sqlite", environ={}) == "artifacts"
    assert settings.artifacts_location(store="postgresql://db/runs", environ={}) == settings.DEFAULT_ARTIFACTS
    assert settings.artifacts_location(store=":memory:", environ={}) == settings.DEFAULT_ARTIFACTS
    env = {"RUNFLOW_STORE": "/d/s/x.sqlite", "RUNFLOW_ARTIFACTS": "s3://bucket/p"}
    assert settings.artifacts_location(environ=env) == "s3://bucket/p"
    assert settings.artifacts_location("here", environ=env) == "here"
    assert settings.local_artifacts_dir(environ=env) == settings.DEFAULT_ARTIFACTS  # not a local folder


def test_api_backend_and_behaviour_precedence() -> None:
    assert settings.base_url(environ={}) == settings.DEFAULT_BASE_URL
    assert settings.base_url(environ={"RUNFLOW_BASE_URL": "http://127.0.0.1:1"}) == "http://127.0.0.1:1"
    assert settings.base_url("https://x", environ={"RUNFLOW_BASE_URL": "http://y"}) == "https://x"
    with pytest.raises(ConfigurationError, match="RUNFLOW_BASE_URL must start with http"):
        settings.base_url(environ={"RUNFLOW_BASE_URL": "ftp://y"})
    assert settings.backend(environ={}) == "simulator"
    assert settings.backend(environ={"RUNFLOW_API_KEY": "k"}) == "runflow"
    assert settings.backend(api_key="k", environ={}) == "runflow"
    assert settings.backend(environ={"RUNFLOW_API_KEY": "k", "RUNFLOW_BACKEND": "Simulator"}) == "simulator"
    assert settings.backend("runflow", environ={"RUNFLOW_BACKEND": "simulator"}) == "runflow"
    with pytest.raises(ConfigurationError, match="RUNFLOW_BACKEND must be"):
        settings.backend(environ={"RUNFLOW_BACKEND": "real"})
    assert settings.simulator_latency(environ={}) == settings.DEFAULT_SIMULATOR_LATENCY
    assert settings.simulator_latency(environ={"RUNFLOW_SIMULATOR_LATENCY": "1.5"}) == 1.5
    assert settings.simulator_latency(0.0, environ={"RUNFLOW_SIMULATOR_LATENCY": "1.5"}) == 0.0
    for bad in ("fast", "-1", "nan"):
        with pytest.raises(ConfigurationError, match="RUNFLOW_SIMULATOR_LATENCY"):
            settings.simulator_latency(environ={"RUNFLOW_SIMULATOR_LATENCY": bad})
    assert settings.progress(environ={"RUNFLOW_PROGRESS": "TEXT"}) == "text"
    assert settings.progress("widget", environ={"RUNFLOW_PROGRESS": "none"}) == "widget"
    with pytest.raises(ConfigurationError, match="RUNFLOW_PROGRESS must be one of"):
        settings.progress(environ={"RUNFLOW_PROGRESS": "bars"})
    assert settings.organization_id(environ={"RUNFLOW_ORGANIZATION_ID": "org_1"}) == "org_1"
    assert settings.cache_dir(environ={"RUNFLOW_CACHE_DIR": "/c"}) == Path("/c")
    assert settings.cache_dir(environ={"XDG_CACHE_HOME": "/x"}) == Path("/x/runflow_nb")


def test_every_variable_the_package_reads_is_declared_and_in_the_readme() -> None:
    import re

    used = set()
    for path in (REPO / "runflow_nb").rglob("*.py"):
        used |= set(re.findall(r"RUNFLOW_[A-Z_]+", path.read_text(encoding="utf-8")))
    declared = {v.name for v in settings.VARIABLES}
    assert used <= declared, f"read but not declared in settings.VARIABLES: {sorted(used - declared)}"
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## Configuration"):]
    missing = [name for name in declared if f"`{name}`" not in table]
    assert not missing, f"not in the README's configuration table: {missing}"
    # Only settings.py looks at os.environ for RUNFLOW_* variables.
    offenders = [str(p.relative_to(REPO)) for p in (REPO / "runflow_nb").rglob("*.py")
                 if p.name != "settings.py" and re.search(r"environ(\.get)?[\[(]\s*[\"']RUNFLOW_", p.read_text())]
    assert not offenders, f"read RUNFLOW_* from os.environ outside settings.py: {offenders}"


def test_describe_shows_sources_and_never_the_key() -> None:
    text = settings.describe(environ={"RUNFLOW_API_KEY": SECRET, "RUNFLOW_STORE": "t.sqlite"})
    assert SECRET not in text
    lines = {line.split()[0]: line for line in text.splitlines()}
    assert set(lines) == {v.name for v in settings.VARIABLES}
    assert "set" in lines["RUNFLOW_API_KEY"] and "(environment)" in lines["RUNFLOW_API_KEY"]
    assert "t.sqlite" in lines["RUNFLOW_STORE"] and "(environment)" in lines["RUNFLOW_STORE"]
    assert "artifacts" in lines["RUNFLOW_ARTIFACTS"] and "(default)" in lines["RUNFLOW_ARTIFACTS"]
    assert "runflow" in lines["RUNFLOW_BACKEND"]


# -- the key: read when needed, held nowhere visible ----------------------------------------------

def test_the_key_is_not_read_at_import_and_counts_when_set_later(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import os
        reads = []
        class Spy(type(os.environ)):
            def __getitem__(self, key):
                reads.append(key)
                return super().__getitem__(key)
            def get(self, key, default=None):
                reads.append(key)
                return super().get(key, default)
        e = os.environ
        os.environ = Spy(e._data, e.encodekey, e.decodekey, e.encodevalue, e.decodevalue)
        os.environ["RUNFLOW_API_KEY"] = "{SECRET}"
        import runflow_nb as rf
        import runflow_nb.cli, runflow_nb.client, runflow_nb.experiment, runflow_nb.report.build, runflow_nb.settings
        import runflow_nb.store.runstore, runflow_nb.sweep.runner
        client = rf.Client()
        assert "RUNFLOW_API_KEY" not in reads, reads
        del os.environ["RUNFLOW_API_KEY"]  # unset after import and construction: the simulator
        assert client.backend == "simulator", client.backend
        os.environ["RUNFLOW_API_KEY"] = "{SECRET}"
        assert rf.Client().backend == "runflow"
        print("ok")
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNFLOW_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_an_explicit_key_is_in_no_repr_vars_copy_or_pickle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNFLOW_API_KEY", raising=False)
    for client in (rf.Client(api_key=SECRET, base_url="http://127.0.0.1:9"),
                   rf.AsyncClient(api_key=SECRET, base_url="http://127.0.0.1:9")):
        seen = repr(client) + repr(vars(client)) + repr(client._init_kwargs)
        assert SECRET not in seen and "api_key=set" in repr(client)
        assert client.backend == "runflow" and client._api_key() == SECRET  # still usable
        assert client.to_async()._api_key() == SECRET and client.to_sync()._api_key() == SECRET
    secret = settings.Secret(SECRET)
    assert SECRET not in repr(secret) + str(secret) and secret.reveal() == SECRET
    assert copy.deepcopy(secret) is secret
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(secret)
    with pytest.raises(AttributeError):
        secret._reveal = lambda: "x"  # type: ignore[method-assign]


# -- one store for CLI, library and notebooks; reading never creates one ----------------------------

def test_table_never_creates_a_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RUNFLOW_STORE", raising=False)
    assert main(["table", "demo"]) == 2  # the default store does not exist yet
    assert "no store at" in capsys.readouterr().err
    typo = tmp_path / "sub" / "runz.sqlite"
    assert main(["table", "demo", "--store", str(typo)]) == 2
    err = capsys.readouterr().err
    assert "no store at" in err and "runz.sqlite" in err and "nothing was created" in err
    monkeypatch.setenv("RUNFLOW_STORE", str(tmp_path / "env.sqlite"))
    assert main(["table", "demo"]) == 2
    assert main(["migrate", str(tmp_path / "mig.sqlite")]) == 2
    assert sorted(p.name for p in tmp_path.rglob("*")) == []  # no file, no folder
    with pytest.raises(MissingStoreError):
        Store(":memory:", create=False)
    (tmp_path / "empty.sqlite").write_bytes(b"")
    with pytest.raises(MissingStoreError, match="holds no runflow store"):
        Store(tmp_path / "empty.sqlite", create=False)
    Store(tmp_path / "real.sqlite").close()
    with Store(tmp_path / "real.sqlite", create=False) as existing:
        assert existing.experiments() == []
    assert (tmp_path / "empty.sqlite").stat().st_size == 0


def test_sweep_then_table_agree_through_runflow_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from runflow_nb.samples import sample_images

    monkeypatch.chdir(tmp_path)
    image = str(sample_images(1)[0])
    monkeypatch.setenv("RUNFLOW_STORE", str(tmp_path / "shared" / "team.sqlite"))
    assert main(["sweep", "--experiment", "env-sweep", "--prompt", "character1 trots", "--image", image,
                 "--seeds", "1-2", "--duration", "3", "--resolution", "720p"]) == 0
    capsys.readouterr()
    assert main(["table", "env-sweep"]) == 0
    table = capsys.readouterr().out
    assert table.count("| succeeded |") == 2
    assert not (tmp_path / "runflow_data" / "runflow.sqlite").exists()  # nothing went to the default
    assert (tmp_path / "shared" / "artifacts").is_dir()  # artifacts beside the store
    monkeypatch.delenv("RUNFLOW_STORE")
    assert main(["table", "env-sweep", "--store", str(tmp_path / "shared" / "team.sqlite")]) == 0
    assert capsys.readouterr().out == table


def test_cli_library_and_notebook_share_the_default_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """`runflow-nb sweep`, `Experiment(...)` and the bundled seed_sweep notebook run by `report`, all
    from one folder and with no store named, find each other's runs: nothing is submitted twice."""
    from runflow_nb.report.build import run_report
    from runflow_nb.samples import sample_images

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RUNFLOW_STORE", raising=False)
    monkeypatch.delenv("RUNFLOW_ARTIFACTS", raising=False)
    images = [str(p) for p in sample_images()]
    prompt = "character1 trots across the meadow while character2 waves and character3 watches from a branch"
    argv = ["sweep", "--experiment", "shared", "--prompt", prompt, "--seeds", "4", "--duration", "3",
            "--resolution", "720p", "--aspect-ratio", "16:9"]
    for image in images:
        argv += ["--image", image]
    assert main(argv) == 0
    capsys.readouterr()
    assert (tmp_path / "runflow_data" / "runflow.sqlite").is_file()
    with rf.Experiment("shared") as exp:
        assert exp.store.url.endswith("runflow_data/runflow.sqlite") and list(exp.table()["seed"]) == [4]
        assert Path(exp.artifacts) == tmp_path / "runflow_data" / "artifacts"  # absolute: found from any folder
    out = run_report("seed_sweep", parameters={"experiment": "shared", "seeds": [4]},
                     out_dir=tmp_path / "report", quiet=True)
    assert out.store == str(tmp_path / "runflow_data" / "runflow.sqlite")
    assert out.summary is not None and (out.summary["reused"], out.summary["submitted"]) == (1, 0)
    assert main(["table", "shared"]) == 0
    assert capsys.readouterr().out.count("| succeeded |") == 2  # the clip and the notebook's upscale of it


def test_a_notebook_in_a_subfolder_finds_the_projects_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A sweep from the project's top, then a kernel in ``notebooks/`` (JupyterLab starts kernels in
    the notebook's folder) and the CLI from a deeper folder: one store, found the way git finds its
    repository, with its videos; the walk never leaves the project, and none is created by looking."""
    from runflow_nb.samples import sample_images

    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / "notebooks" / "deep").mkdir(parents=True)
    outside = tmp_path / "runflow_data" / "runflow.sqlite"  # above the project's top: never used
    outside.parent.mkdir()
    Store(outside).close()
    monkeypatch.delenv("RUNFLOW_STORE", raising=False)
    monkeypatch.delenv("RUNFLOW_ARTIFACTS", raising=False)

    top = project / "runflow_data" / "runflow.sqlite"
    # None yet: the new one goes to the project's top, whichever folder of it asks first.
    assert settings.find_default_store(project) == settings.DEFAULT_STORE
    for folder in (project / "notebooks", project / "notebooks" / "deep"):
        assert settings.find_default_store(folder) == str(top)
    monkeypatch.chdir(project / "notebooks")
    assert main(["table", "found"]) == 2 and not (project / "notebooks" / "runflow_data").exists()
    assert not top.parent.exists()  # reading a store never creates one
    capsys.readouterr()

    monkeypatch.chdir(project)
    image = str(sample_images(1)[0])
    assert main(["sweep", "--experiment", "found", "--prompt", "character1 trots", "--image", image,
                 "--seeds", "1-2", "--duration", "3", "--resolution", "720p"]) == 0
    capsys.readouterr()
    assert top.is_file()

    monkeypatch.chdir(project / "notebooks")
    assert settings.store_url() == str(top)
    assert settings.artifacts_location() == str(project / "runflow_data" / "artifacts")
    with rf.Experiment("found") as exp:
        table = exp.table()
        assert sorted(table["seed"]) == [1, 2]
        assert all(Path(p).is_file() for p in table["video_path"])
    monkeypatch.chdir(project / "notebooks" / "deep")
    assert main(["table", "found"]) == 0
    assert capsys.readouterr().out.count("| succeeded |") == 2
    assert not (project / "notebooks" / "runflow_data").exists()
    assert not (project / "notebooks" / "deep" / "runflow_data").exists()
    # A store in the working directory itself wins over the project's, and keeps its relative name.
    Store(project / "notebooks" / "runflow_data" / "runflow.sqlite").close()
    assert settings.find_default_store(project / "notebooks") == settings.DEFAULT_STORE
    assert settings.find_default_store(project / "notebooks" / "deep") == str(
        project / "notebooks" / "runflow_data" / "runflow.sqlite")
    # Outside any checkout the walk goes on up (to the home folder): the store above is found.
    assert settings.find_default_store(tmp_path / "elsewhere") == str(outside)
    # Outside any checkout with no store above, a new one is made where the caller is.
    assert settings.find_default_store(tmp_path.parent / "no-store-here") == settings.DEFAULT_STORE


def test_experiment_closes_its_store(tmp_path: Path) -> None:
    import gc
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        with rf.Experiment("closing", store=tmp_path / "c.sqlite") as exp:
            exp.table()
            pool = exp.store.engine.pool
            assert pool.checkedin() >= 1
        assert pool.checkedin() == 0  # every connection closed
        del exp
        gc.collect()
    shared = Store(tmp_path / "c.sqlite")
    with rf.Experiment("closing", store=shared) as exp:
        exp.table()
    assert shared.experiments() == ["closing"]  # a store passed in stays the caller's to close
    shared.close()


def test_opening_for_reading_creates_no_schema(store_url: str) -> None:
    """SQLite and PostgreSQL alike: ``create=False`` on an empty database writes nothing."""
    import sqlalchemy as sa

    from runflow_nb.store.runstore import _make_engine

    with pytest.raises(MissingStoreError, match=r"nothing was created|holds no runflow store"):
        Store(store_url, create=False)
    if "://" not in store_url:
        assert not Path(store_url).exists()
    else:
        engine = _make_engine(store_url)
        try:
            assert sa.inspect(engine).get_table_names() == []
        finally:
            engine.dispose()
    Store(store_url).close()  # now there is one
    with Store(store_url, create=False) as again:
        assert again.experiments() == []
