"""Reports: papermill runs of the seed sweep, resume across reports, the HTML, failures and the demo.

Every run here is on the offline simulator (RUNFLOW_API_KEY unset, or forced off for the demo) and
uses 3 s 720p clips, so a notebook run takes a few seconds, most of it kernel start-up.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

from runflow_nb.errors import ConfigurationError
from runflow_nb.report.build import (
    ReportError,
    bundled_notebook,
    find_notebook,
    parameter_list,
    parse_parameters,
    run_demo,
    run_report,
)
from runflow_nb.samples import sample_images
from runflow_nb.store.runstore import Store

REPO = Path(__file__).resolve().parents[1]
SEED_SWEEP = REPO / "notebooks" / "seed_sweep.ipynb"
SEEDS = [1, 2, 3]
pytestmark = pytest.mark.timeout(1200)  # a hang guard: two or three reports a test, each minutes on a loaded machine


@pytest.fixture(scope="module")
def offline_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """This process's and every kernel's environment: no key, samples drawn into a temporary cache."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        for name in ("RUNFLOW_API_KEY", "RUNFLOW_BASE_URL", "RUNFLOW_BACKEND", "RUNFLOW_STORE", "MPLBACKEND"):
            mp.delenv(name, raising=False)
        mp.setenv("RUNFLOW_CACHE_DIR", str(cache))
        mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        yield dict(os.environ)


def _sweep_params(data: Path) -> dict[str, Any]:
    return {"seeds": SEEDS, "durations": [3], "store": str(data / "runflow.sqlite"),
            "artifacts_dir": str(data / "artifacts")}


def _runs(store: Path, experiment: str = "seed-sweep") -> list[dict[str, Any]]:
    """The sweep's own runs (the notebook ends by upscaling one of them: see :func:`_upscales`)."""
    with Store(store) as st:
        return [r for r in st.runs(experiment) if not r["parent_run_id"]]


def _upscales(store: Path, experiment: str = "seed-sweep") -> list[dict[str, Any]]:
    with Store(store) as st:
        return [r for r in st.runs(experiment) if r["parent_run_id"]]


def _outputs(nb_path: Path) -> list[dict[str, Any]]:
    nb = nbformat.read(nb_path, as_version=4)
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def _html_of(output: dict[str, Any]) -> str:
    value = output.get("data", {}).get("text/html", "")
    return "".join(value) if isinstance(value, list) else value


@pytest.fixture(scope="module")
def papermill_run(offline_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The issue's command, plain papermill CLI: ``-p seeds "[1, 2, 3]" -p durations "[3]"``."""
    work = tmp_path_factory.mktemp("papermill")
    data = work / "runflow_data"
    cmd = [sys.executable, "-m", "papermill", str(SEED_SWEEP), str(work / "out.ipynb"), "--no-progress-bar",
           "--cwd", str(work), "-p", "seeds", "[1, 2, 3]", "-p", "durations", "[3]",
           "-p", "store", str(data / "runflow.sqlite"), "-p", "artifacts_dir", str(data / "artifacts")]
    proc = subprocess.run(cmd, cwd=work, env=offline_env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"work": work, "data": data, "notebook": work / "out.ipynb"}


@pytest.fixture(scope="module")
def rerun(papermill_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The same parameters and store again, as a report into its own folder."""
    before = {r["run_id"]: r for r in _runs(papermill_run["data"] / "runflow.sqlite")}
    out = run_report(SEED_SWEEP, parameters=_sweep_params(papermill_run["data"]),
                     out_dir=tmp_path_factory.mktemp("reports") / "again", quiet=True)
    return before, out


def test_papermill_sweep_table_has_exactly_the_requested_seeds(papermill_run: dict[str, Any]) -> None:
    runs = _runs(papermill_run["data"] / "runflow.sqlite")
    assert sorted(r["seed"] for r in runs) == SEEDS
    assert {r["status"] for r in runs} == {"succeeded"}
    assert {(r["duration"], r["resolution"], r["backend"]) for r in runs} == {(3, "720p", "simulator")}
    assert all(r["attempts"] == 1 for r in runs)
    # The notebook ends with the loop: the picked clip again at 1080p with its seed, once, naming its parent.
    (keeper,) = _upscales(papermill_run["data"] / "runflow.sqlite")
    parent = next(r for r in runs if r["run_id"] == keeper["parent_run_id"])
    assert (keeper["status"], keeper["resolution"], keeper["seed"], keeper["attempts"]) == (
        "succeeded", "1080p", parent["seed"], 1)
    # ... and the table the notebook shows holds the same three rows.
    tables = [_html_of(o) for o in _outputs(papermill_run["notebook"]) if "rf-view" in _html_of(o)]
    assert len(tables) == 1
    view = tables[0]
    assert "mathjax_ignore" in view and "$" not in view.split("<script", 1)[0]
    assert view.count('alt="still"') >= len(SEEDS)  # a poster still per run (in the static preview too)
    # the rows carry exactly the requested seeds, in the view's table data
    assert all(f"run_id {r['run_id']}" in html.unescape(view).replace("\\", "") or r["run_id"][:8] in view
               for r in runs)


def test_report_rerun_reuses_every_run_and_submits_nothing(rerun: Any) -> None:
    before, out = rerun
    assert out.summary is not None
    assert (out.summary["reused"], out.summary["submitted"], out.summary["total"]) == (3, 0, 3)
    assert "reused 3, submitted 0" in out.message
    after = {r["run_id"]: r for r in _runs(Path(out.store))}
    assert after.keys() == before.keys()  # no new rows
    assert [r["attempts"] for r in _upscales(Path(out.store))] == [1]  # the upscale is reused too
    for run_id, row in after.items():  # and nothing re-submitted
        assert (row["attempts"], row["submitted_at"], row["remote_id"]) == (
            before[run_id]["attempts"], before[run_id]["submitted_at"], before[run_id]["remote_id"])


def test_report_is_recorded_against_the_experiment(rerun: Any) -> None:
    _, out = rerun
    assert out.recorded and out.experiment == "seed-sweep"
    with Store(out.store) as st:
        reports = st.reports("seed-sweep")
    assert [Path(r["path"]) for r in reports] == [out.html]
    assert reports[0]["params"]["seeds"] == SEEDS
    assert reports[0]["params"]["executed_notebook"] == str(out.notebook)


def test_html_report_plays_videos_from_its_folder_and_has_table_and_plot(rerun: Any) -> None:
    _, out = rerun
    page = out.html.read_text(encoding="utf-8")
    videos = re.findall(r"<video\b[^>]*>", page)
    assert len(videos) == len(SEEDS) + 1  # the sweep's clips and the upscaled pick in its detail view
    for tag in videos:
        assert "data:video" not in tag
        src = re.search(r'\bsrc="([^"]+)"', tag).group(1)  # type: ignore[union-attr]
        assert not src.startswith(("/", "http", "data:")), src
        assert (out.folder / src).is_file(), src  # reused runs' files are linked into the report
        poster = re.search(r'\bposter="([^"]+)"', tag)
        assert poster is not None and poster.group(1).startswith("data:image/jpeg;base64,")  # a small still
        assert len(poster.group(1)) < 60_000
    assert re.search(r'<img[^>]+src="data:image/png;base64,', page), "the wall time / cost plot"
    assert "rf-view" in page  # the table view (itables, with its static preview)
    assert out.complete
    assert "reused 3, submitted 0" in page


def test_report_files_hold_no_api_key_and_no_base64_video(rerun: Any, papermill_run: dict[str, Any]) -> None:
    _, out = rerun
    for path in (out.html, out.notebook, papermill_run["notebook"]):
        text = path.read_text(encoding="utf-8")
        assert "rf_live_" not in text
        assert "data:video" not in text


def test_executed_notebook_stays_small_per_clip(rerun: Any) -> None:
    _, out = rerun
    size = out.notebook.stat().st_size
    text = out.notebook.read_text(encoding="utf-8")
    # The table view's offline DataTables bundle is carried once per notebook, whatever the clip count.
    bundle = sum(len(m) for m in re.findall(r'inject(?:Module|CSS)\(\\?"[A-Za-z0-9+/=]+', text))
    assert bundle < 1_200_000, bundle
    per_clip = (size - bundle) / len(SEEDS)  # generous: the other fixed overhead counted per clip
    assert per_clip * 24 < 2_000_000, f"{per_clip:.0f} bytes a clip"


def test_cli_report_runs_then_resumes_and_says_so(offline_env: dict[str, str], tmp_path: Path) -> None:
    data = tmp_path / "data"
    for src in sample_images():  # relative to the caller's folder, not the report's
        (tmp_path / src.name).write_bytes(src.read_bytes())
    names = ", ".join(p.name for p in sample_images())
    cmd = [sys.executable, "-m", "runflow_nb.cli", "report", str(SEED_SWEEP), "-p", "seeds", "[1, 2, 3]",
           "-p", "durations", "[3]", "-p", "store", "data/rf.sqlite", "-p", "artifacts_dir", "data/artifacts",
           "-p", "images", f"[{names}]"]
    first = subprocess.run([*cmd, "--out", str(tmp_path / "r1")], cwd=tmp_path, env=offline_env,
                           capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    assert Path(first.stdout.strip().splitlines()[-1]) == (tmp_path / "r1" / "seed_sweep.html").resolve()
    assert "reused 0, submitted 3" in first.stderr
    runs = _runs(data / "rf.sqlite")
    assert sorted(r["seed"] for r in runs) == SEEDS
    assert {tuple(r["images"]) for r in runs} == {tuple(str(tmp_path / p.name) for p in sample_images())}
    assert all(Path(r["video_path"]).is_file() and data in Path(r["video_path"]).parents for r in runs)

    second = subprocess.run([*cmd, "--out", str(tmp_path / "r2")], cwd=tmp_path, env=offline_env,
                            capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "reused 3, submitted 0" in second.stderr
    assert [r["attempts"] for r in _runs(data / "rf.sqlite")] == [1, 1, 1]


BROKEN = [
    ("markdown", "# A notebook that fails"),
    ("parameters", "divisor = 1"),
    ("code", "x = 10 / divisor"),
    ("code", "raise ZeroDivisionError(f'broken on purpose: {x / 0}')"),
    ("code", "print('never reached')"),
]


def _broken_notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    for kind, src in BROKEN:
        cell = nbformat.v4.new_markdown_cell(src) if kind == "markdown" else nbformat.v4.new_code_cell(src)
        if kind == "parameters":
            cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nbformat.write(nb, path)
    return path


def test_failing_cell_raises_report_error_naming_the_cell(offline_env: dict[str, str], tmp_path: Path) -> None:
    source = _broken_notebook(tmp_path / "broken.ipynb")
    with pytest.raises(ReportError) as info:
        # a parameter makes papermill inject a cell: the index must still be the source notebook's
        run_report(source, parameters={"divisor": 2}, out_dir=tmp_path / "out", quiet=True)
    err = info.value
    assert err.cell_index == 3
    assert err.ename == "ZeroDivisionError"
    assert "cell 3 of broken.ipynb" in str(err) and "ZeroDivisionError" in str(err)
    assert err.notebook is not None and err.notebook.is_file()
    assert err.html is not None and err.html.is_file()  # the partial report, traceback included


def test_cli_prints_the_failing_cell(offline_env: dict[str, str], tmp_path: Path) -> None:
    source = _broken_notebook(tmp_path / "broken.ipynb")
    proc = subprocess.run([sys.executable, "-m", "runflow_nb.cli", "report", str(source), "--out",
                           str(tmp_path / "out")], cwd=tmp_path, env=offline_env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 1
    assert "ReportError: cell 3 of broken.ipynb" in proc.stderr


def test_base64_video_and_key_like_text_are_scrubbed_from_the_report(offline_env: dict[str, str],
                                                                      tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell(
        "from IPython.display import HTML, display\n"
        "payload = 'AAAAIGZ0' + 'eXBpc29t'  # built at run time: only the outputs hold it whole\n"
        "display(HTML('<video controls src=\"data:' + 'video/mp4;base64,' + payload + '\"></video>'))\n"
        "display({'video/mp4': payload, 'text/plain': 'a clip'}, raw=True)\n"
        "print('leaked: rf_' + 'live_abcdef0123456789')")]
    nbformat.write(nb, tmp_path / "leaky.ipynb")
    out = run_report(tmp_path / "leaky.ipynb", out_dir=tmp_path / "out", quiet=True)
    for path in (out.html, out.notebook):
        text = path.read_text(encoding="utf-8")
        assert "data:video" not in text and "rf_live_" not in text and "AAAAIGZ0eXBpc29t" not in text
        assert "leaked: [redacted]" in text
    assert not out.recorded  # no experiment/store parameters: nothing to record against


PLAIN_KEY = "k3yWithoutAnyPrefix0123456789SECRET"  # no rf_live_/rf_test_ prefix for a pattern to catch


def _key_notebook(path: Path, *, fail: bool) -> Path:
    """Prints the environment's key (and a prefixed one) at run time; optionally fails with it."""
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell("import os\nkey = os.environ['RUNFLOW_API_KEY']\n"
                                          "print('plain:', key)\nprint('prefixed:', 'rf_' + 'test_' + key)\n"
                                          "display({'text/html': '<b>' + key + '</b>'}, raw=True)")]
    if fail:
        nb.cells.append(nbformat.v4.new_code_cell("raise RuntimeError('auth failed for ' + key)"))
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize("key", [PLAIN_KEY, "rf_live_" + PLAIN_KEY])
def test_the_key_value_is_scrubbed_from_reports_with_and_without_its_prefix(
        offline_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    monkeypatch.setenv("RUNFLOW_API_KEY", key)
    out = run_report(_key_notebook(tmp_path / "keyed.ipynb", fail=False), out_dir=tmp_path / "out", quiet=True)
    for path in (out.html, out.notebook):
        text = path.read_text(encoding="utf-8")
        assert PLAIN_KEY not in text, f"{path.name} holds the key"
        assert "plain: [redacted]" in text  # the output was there, scrubbed
        assert re.search(r"prefixed: (rf_test_)?\[redacted\]", text)


def test_a_failing_cell_that_prints_the_key_raises_a_scrubbed_error(offline_env: dict[str, str], tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNFLOW_API_KEY", PLAIN_KEY)
    with pytest.raises(ReportError) as info:
        run_report(_key_notebook(tmp_path / "keyed.ipynb", fail=True), out_dir=tmp_path / "out", quiet=True)
    err = info.value
    assert err.cell_index == 1 and err.ename == "RuntimeError"
    assert PLAIN_KEY not in str(err) and PLAIN_KEY not in (err.evalue or "")
    assert "auth failed for [redacted]" in str(err)
    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file() and p.suffix in (".ipynb", ".html")]
    assert written
    for path in written:
        assert PLAIN_KEY not in path.read_text(encoding="utf-8"), f"{path.name} holds the key"


@pytest.mark.parametrize("value", [PLAIN_KEY, "rf_live_abcdef0123456789", ["x", {"k": "rf_test_abcdef01"}]])
def test_a_parameter_holding_the_key_is_refused_before_any_kernel_starts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: Any) -> None:
    monkeypatch.setenv("RUNFLOW_API_KEY", PLAIN_KEY)
    with pytest.raises(ConfigurationError, match="looks like a credential") as info:
        run_report(SEED_SWEEP, parameters={"prompt": value}, out_dir=tmp_path / "out", quiet=True)
    assert PLAIN_KEY not in str(info.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_redaction_replaces_the_exact_key_and_prefixed_keys_only() -> None:
    from runflow_nb.report.scrub import redact as _redact

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RUNFLOW_API_KEY", PLAIN_KEY)
        text = f"a {PLAIN_KEY} b rf_live_0123abcd c rf_test_zz d {PLAIN_KEY[:-1]} e"
        assert _redact(text) == f"a [redacted] b [redacted] c rf_test_zz d {PLAIN_KEY[:-1]} e"
        mp.setenv("RUNFLOW_API_KEY", "short")  # too short to tell from ordinary text: left alone
        assert _redact("a short b") == "a short b"
        mp.setenv("RUNFLOW_API_KEY", "8charKEY")  # the shortest key that is replaced
        assert _redact("a 8charKEY b") == "a [redacted] b"
        mp.delenv("RUNFLOW_API_KEY")
        assert _redact(f"x {PLAIN_KEY} rf_test_abcd XXXX") == f"x {PLAIN_KEY} [redacted] XXXX"


def test_scrubbing_a_written_report_removes_the_key_and_inline_video_only(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from runflow_nb.report.scrub import redact_file as _redact_file

    monkeypatch.setenv("RUNFLOW_API_KEY", PLAIN_KEY)
    page = tmp_path / "r.html"
    original = (f'<p>é {PLAIN_KEY} rf_live_abcdef99</p><video src="data:video/mp4;base64,AAAAIGZ0eXBp+/="></video>'
                '<img src="data:image/png;base64,iVBORw0KGgo=">')
    page.write_text(original, encoding="utf-8")
    _redact_file(page)
    assert page.read_text(encoding="utf-8") == ('<p>é [redacted] [redacted]</p><video src=""></video>'
                                                '<img src="data:image/png;base64,iVBORw0KGgo=">')
    clean = tmp_path / "clean.html"
    clean.write_text("<p>nothing to hide</p>", encoding="utf-8")
    before = clean.stat().st_mtime_ns
    _redact_file(clean)
    assert clean.read_text(encoding="utf-8") == "<p>nothing to hide</p>" and clean.stat().st_mtime_ns == before


def test_inline_video_outputs_are_replaced_by_a_note_and_html_keeps_other_media() -> None:
    from runflow_nb.report.scrub import strip_video_data as _strip_video_data

    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell("x")
    code.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="first"),
        nbformat.v4.new_output("display_data", data={"video/mp4": "AAAA"}),
        nbformat.v4.new_output("display_data", data={"video/webm": "AAAA", "text/plain": "a clip"}),
        nbformat.v4.new_output("display_data", data={"text/html": ['<video src="data:video/mp4;base64,AAAA">',
                                                                   '</video><img src="p.jpg">']}),
        nbformat.v4.new_output("stream", name="stdout", text="data:video/mp4;base64,AAAA"),
    ]
    nb.cells = [nbformat.v4.new_markdown_cell("data:video/mp4;base64,AAAA"), code]
    _strip_video_data(nb)
    _first_stream, first, second, third, stream = code.outputs
    assert first["data"] == {"text/plain": "(a video embedded as data was removed from this report; "
                                           "show videos by reference)"}
    assert second["data"] == {"text/plain": "a clip"}
    assert third["data"]["text/html"] == '<video src=""></video><img src="p.jpg">'
    assert stream["text"] == "data:video/mp4;base64,AAAA"  # plain text is not markup: left alone
    assert nb.cells[0].source == "data:video/mp4;base64,AAAA"


def test_html_given_as_one_string_loses_its_inline_video_too() -> None:
    from runflow_nb.report.scrub import strip_video_data as _strip_video_data

    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell("x")
    code.outputs = [nbformat.v4.new_output("display_data", data={
        "text/html": '<video src="data:video/webm;base64,AAAA"></video>'})]
    nb.cells = [code]
    _strip_video_data(nb)
    assert code.outputs[0]["data"]["text/html"] == '<video src=""></video>'


def test_the_credential_check_covers_exact_length_keys_paths_and_urls_with_passwords(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from runflow_nb.report.scrub import check_no_secrets as _check_no_secrets

    monkeypatch.setenv("RUNFLOW_API_KEY", "8charKEY")  # the shortest key that is looked for
    with pytest.raises(ConfigurationError, match="looks like a credential"):
        _check_no_secrets({"prompt": "x 8charKEY y"})
    with pytest.raises(ConfigurationError, match="looks like a credential"):
        _check_no_secrets({"images": [tmp_path / "8charKEY.png"]})  # not JSON: read as text
    with pytest.raises(ConfigurationError, match="password"):
        _check_no_secrets({"store": "postgresql://me:hunter2@db/x"})
    _check_no_secrets({"store": "postgresql://me@db/x", "images": [tmp_path / "a.png"], "seeds": [1, 2],
                       "prompt": "no key here"})
    monkeypatch.delenv("RUNFLOW_API_KEY")
    _check_no_secrets({"prompt": "XXXX and 8charKEY"})  # no key set: only key-shaped text is refused


def test_demo_is_offline_even_with_a_key_and_resumes(offline_env: dict[str, str], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    sentinel = "rf_live_SENTINEL0123456789abcdef"
    monkeypatch.setenv("RUNFLOW_API_KEY", sentinel)
    monkeypatch.setenv("RUNFLOW_BASE_URL", "http://127.0.0.1:9")  # nothing listens: a real call would fail
    # An edited copy of seed_sweep in the working directory is the user's; the demo runs the packaged one.
    poisoned = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("raise SystemExit('edited copy ran')")])
    nbformat.write(poisoned, tmp_path / "seed_sweep.ipynb")
    monkeypatch.chdir(tmp_path)
    out = run_demo(out_dir=tmp_path / "demo", seeds=[1, 2], quiet=True)
    assert out.html.is_file() and out.folder == (tmp_path / "demo").resolve()
    assert out.summary is not None and out.summary["submitted"] == 2 and out.summary["backend"] == "simulator"
    runs = _runs(tmp_path / "demo" / "runflow_data" / "runflow.sqlite", "demo")
    assert sorted(r["seed"] for r in runs) == [1, 2]
    assert out.media == 0  # the demo's videos already live inside its folder
    for path in (out.html, out.notebook):
        text = path.read_text(encoding="utf-8")
        assert sentinel not in text and "rf_live_" not in text
    assert os.environ["RUNFLOW_API_KEY"] == sentinel  # restored for this process

    again = run_demo(out_dir=tmp_path / "demo", seeds=[1, 2], quiet=True)
    assert again.summary is not None and (again.summary["reused"], again.summary["submitted"]) == (2, 0)
    assert again.complete

    # The seeds look different: their poster stills in the report differ pixel by pixel.
    import base64
    import io
    import re

    import numpy as np
    from PIL import Image

    page = again.html.read_text(encoding="utf-8")
    assert "character1 trots" not in page.split("<body", 1)[1] or "exp.run(" not in page  # code cells hidden
    stills = {}  # one per clip (by its file): a clip shown in several views is one clip
    for tag in re.findall(r"<figure class=\"rf-clip\".*?</figure>", page, flags=re.S):
        if "1080p" in tag:
            continue  # the notebook's last cell: the picked clip upscaled
        clip = re.search(r'src="([^"]+\.mp4)"', tag)
        poster = re.search(r'poster="data:image/jpeg;base64,([^"]+)"', tag)
        assert clip and poster, tag[:300]
        stills[clip.group(1)] = np.asarray(Image.open(io.BytesIO(base64.b64decode(poster.group(1)))).convert("L"),
                                           dtype=float)
    assert len(stills) == 2, sorted(stills)  # seeds 1 and 2
    a, b = stills.values()
    assert a.shape == b.shape and np.abs(a - b).mean() > 8, np.abs(a - b).mean()

    # Named explicitly, the user's own copy is what runs (this one lacks the bundled parameters cell).
    with pytest.raises(ConfigurationError, match=r"seed_sweep\.ipynb has no cell tagged 'parameters'"):
        run_demo(out_dir=tmp_path / "mine", seeds=[1], notebook=tmp_path / "seed_sweep.ipynb", quiet=True)
    with pytest.raises(ConfigurationError, match="no notebook at"):
        run_demo(out_dir=tmp_path / "none", notebook=tmp_path / "nope.ipynb", quiet=True)


# -- fast checks: no kernel ------------------------------------------------------------------------

def test_parse_parameters_reads_yaml_values_and_lets_pairs_win(tmp_path: Path) -> None:
    f = tmp_path / "params.yaml"
    f.write_text("seeds: [4, 5]\nprompt: from the file\nbudget_usd: 3.5\n")
    got = parse_parameters([("seeds", "[1, 2, 3]"), ("durations", "[3]"), ("resolutions", "720p"),
                            ("prompt", "character1: runs"), ("images", "null"), ("experiment", "")], f)
    assert got == {"seeds": [1, 2, 3], "durations": [3], "resolutions": "720p", "prompt": "character1: runs",
                   "budget_usd": 3.5, "images": None, "experiment": ""}


def test_parse_parameters_refuses_a_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    f = tmp_path / "params.yaml"
    f.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigurationError, match="mapping"):
        parse_parameters([], f)
    with pytest.raises(ConfigurationError, match="cannot read"):
        parse_parameters([], tmp_path / "missing.yaml")


def test_parameter_list_accepts_papermill_cli_text() -> None:
    assert parameter_list("[1, 2, 3]") == [1, 2, 3]
    assert parameter_list("[a.png, https://x.test/b.png]") == ["a.png", "https://x.test/b.png"]
    assert parameter_list("[broken prompt") == ["[broken prompt"]
    assert parameter_list((1, 2)) == [1, 2] and parameter_list(7) == [7] and parameter_list(None) is None


def test_unknown_parameter_is_refused_before_any_kernel_starts(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"no parameter 'seed'.*seeds"):
        run_report(SEED_SWEEP, parameters={"seed": [1]}, out_dir=tmp_path / "out", quiet=True)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("params", [{"api_key": "x"}, {"prompt": "rf_live_abcdef123456"},
                                    {"store": "postgresql://me:hunter2@db/runs"}])
def test_credentials_are_never_passed_as_parameters(params: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"credential|password"):
        run_report(SEED_SWEEP, parameters=params, out_dir=tmp_path / "out", quiet=True)


def test_bundled_notebooks_are_found_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    # the package's notebooks/ holds the checkout's top-level notebooks/ (linked in a checkout, copied into a wheel)
    assert find_notebook("seed_sweep").read_bytes() == SEED_SWEEP.read_bytes()
    assert find_notebook("compare.ipynb").read_bytes() == (REPO / "notebooks" / "compare.ipynb").read_bytes()
    assert bundled_notebook("seed_sweep.ipynb").read_bytes() == SEED_SWEEP.read_bytes()
    with pytest.raises(ConfigurationError, match="no notebook"):
        find_notebook("nope")
    with pytest.raises(ConfigurationError, match="no notebook"):
        find_notebook("elsewhere/seed_sweep.ipynb")  # a path that does not exist is not a name
    with pytest.raises(ConfigurationError, match="bundled ones are"):
        bundled_notebook("../seed_sweep")
    (tmp_path / "seed_sweep.ipynb").write_text("{}")
    assert find_notebook("seed_sweep.ipynb") == Path("seed_sweep.ipynb")  # the user's file, named by path
    assert find_notebook("seed_sweep").read_bytes() == SEED_SWEEP.read_bytes()  # a bare name: the bundled one


def test_sample_images_are_deterministic_labelled_and_inline_sized(tmp_path: Path) -> None:
    from PIL import Image

    a = sample_images(folder=tmp_path / "a")
    b = sample_images(folder=tmp_path / "b")
    assert [p.name for p in a] == ["character1-horse.png", "character2-robot.png", "character3-owl.png"]
    for x, y in zip(a, b, strict=True):
        assert x.read_bytes() == y.read_bytes()
        assert x.stat().st_size < 1_000_000
        with Image.open(x) as img:
            assert img.format == "PNG" and img.size == (1280, 720)
    assert sample_images(1, folder=tmp_path / "a") == a[:1]
    with pytest.raises(ValueError):
        sample_images(4)


def test_summary_json_is_machine_readable(rerun: Any) -> None:
    _, out = rerun
    bundles = [o["data"] for o in _outputs(out.notebook) if "application/vnd.runflow-nb.summary+json" in
               o.get("data", {})]
    assert len(bundles) == 1
    json.dumps(bundles[0]["application/vnd.runflow-nb.summary+json"])


def test_the_tables_library_is_embedded_once_per_report_and_not_in_its_notebook(rerun: Any) -> None:
    """The report's HTML works offline (DataTables inline, once); the executed notebook beside it
    loads the library from itables' CDN instead of carrying a second ~0.9 MB copy."""
    from itables.javascript import generate_init_offline_itables_html
    from itables.options import dt_bundle, dt_url

    bundle = generate_init_offline_itables_html(dt_bundle)
    probe = bundle[len(bundle) // 2: len(bundle) // 2 + 400]
    _before, out = rerun
    page, notebook = out.html.read_text(encoding="utf-8"), out.notebook.read_text(encoding="utf-8")
    assert page.count(probe) == 1 and notebook.count(probe) == 0
    assert dt_url in notebook and "rf-itables-bundle" not in notebook
    assert out.notebook.stat().st_size < len(bundle) / 2  # the notebook is small without it


def test_a_notebook_run_in_jupyter_then_reported_from_the_project_root_reuses_its_runs(
        offline_env: dict[str, str], tmp_path: Path) -> None:
    """JupyterLab starts a notebook's kernel in the notebook's folder; `runflow-nb report notebooks/x.ipynb`
    from the project's root must use the store that notebook used there, not make another and pay again."""
    for project, git in ((tmp_path / "checkout", True), (tmp_path / "folder", False)):
        notebooks = project / "notebooks"
        notebooks.mkdir(parents=True)
        if git:
            (project / ".git").mkdir()
        nb = notebooks / "seed_sweep.ipynb"
        nb.write_bytes(SEED_SWEEP.read_bytes())
        in_lab = subprocess.run(  # as JupyterLab runs it: the kernel's cwd is the notebook's folder, defaults kept
            [sys.executable, "-m", "papermill", str(nb), str(tmp_path / f"lab-{git}.ipynb"), "--no-progress-bar",
             "--cwd", str(notebooks), "-p", "seeds", "[1, 2]"],
            cwd=notebooks, env=offline_env, capture_output=True, text=True, timeout=600)
        assert in_lab.returncode == 0, in_lab.stderr[-3000:]
        store = (project if git else notebooks) / "runflow_data" / "runflow.sqlite"
        assert sorted(r["seed"] for r in _runs(store)) == [1, 2]
        report = subprocess.run(
            [sys.executable, "-m", "runflow_nb.cli", "report", "notebooks/seed_sweep.ipynb", "-p", "seeds", "[1, 2]",
             "--out", str(tmp_path / f"report-{git}")], cwd=project, env=offline_env, capture_output=True,
            text=True, timeout=600)
        assert report.returncode == 0, report.stderr[-3000:]
        assert "reused 2, submitted 0" in report.stderr, report.stderr[-2000:]
        assert "expired" not in report.stderr and "cannot be found" not in report.stderr
        assert [r["attempts"] for r in _runs(store)] == [1, 1]
        assert not (project / "notebooks" / "runflow_data").exists() if git else True
        assert not (project / "runflow_data").exists() if not git else True


def test_report_exits_non_zero_when_a_video_it_shows_cannot_be_found(offline_env: dict[str, str],
                                                                     tmp_path: Path) -> None:
    data = tmp_path / "data"
    cmd = [sys.executable, "-m", "runflow_nb.cli", "report", str(SEED_SWEEP), "-p", "seeds", "[1]",
           "-p", "store", str(data / "rf.sqlite"), "-p", "artifacts_dir", str(data / "artifacts")]
    first = subprocess.run([*cmd, "--out", str(tmp_path / "r1")], cwd=tmp_path, env=offline_env,
                           capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    (video,) = [Path(r["video_path"]) for r in _runs(data / "rf.sqlite")]
    video.unlink()  # gone, and the simulator of a new process cannot serve its old URL again
    second = subprocess.run([*cmd, "--out", str(tmp_path / "r2")], cwd=tmp_path, env=offline_env,
                            capture_output=True, text=True, timeout=600)
    assert second.returncode == 1, (second.returncode, second.stderr[-3000:])
    assert "cannot be found" in second.stderr and video.name in second.stderr, second.stderr[-2000:]
