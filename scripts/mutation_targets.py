"""The money and safety code under mutation testing, its fast tests, and its score.

``python scripts/mutation_targets.py names`` lists the targets; ``... globs TARGET`` prints the
mutant-name globs to pass to ``mutmut run``; ``... config TARGET`` prints the ``pyproject.toml``
mutmut reads for that target (the package's own, with the target's fast test selection);
``... score [--markdown]`` reads the results under ``.mutate/*/mutants/`` and prints the kill
ratio per target with every mutant that was not killed.

A target is a module and the functions in it that guard money or safety; a glob names them the
way mutmut names mutants (``module.x_function`` for functions, ``module.xǁClassǁmethod`` for
methods). Killed = a test failed, or the mutant hung a test into mutmut's timeout; everything else
(survived, no test reaches it, suspicious) counts against the ratio.
"""

from __future__ import annotations

import fnmatch
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".mutate"


@dataclass(frozen=True)
class Target:
    name: str
    what: str
    globs: tuple[str, ...]  # mutant names without the ``__mutmut_N`` suffix
    tests: tuple[str, ...]  # the fast tests the coverage map is built from (pytest arguments)
    timeout_s: int = 120  # pytest-timeout per test: a mutant that hangs a test is killed after this


TARGETS = [  # cheapest first
    Target("report", "scrubbing: key redaction, base64 video removal, credential parameters refused",
           ("runflow_nb.report.scrub.*",),
           ("tests/test_report.py", "-k", "redaction or refused_before or scrubbing_a_written or inline_video or one_string or credential_check")),
    Target("display", "HTML rendering: escaping, URLs in attributes, rf.show",
           ("runflow_nb.views.display.*",), ("tests/test_escaping.py", "tests/test_display.py")),
    Target("store", "claims and transitions: claim_run, transition, insert_run and their filters",
           ("runflow_nb.store.runstore.xǁStoreǁclaim_run", "runflow_nb.store.runstore.xǁStoreǁtransition",
            "runflow_nb.store.runstore.xǁStoreǁinsert_run", "runflow_nb.store.rows.x__update_values", "runflow_nb.store.runstore.x__filters"),
           ("tests/test_store.py", "-k", "claim or transition or insert or filter or where or run_id_cannot or tags_with")),
    Target("request", "validation: VideoRequest.build, scalar checks, image loading and checks, the prompt's rules, paths and URLs",
           ("runflow_nb.request.xǁVideoRequestǁbuild", "runflow_nb.request.xǁVideoRequestǁ_load_images",
            "runflow_nb.request.x__check_scalars", "runflow_nb.request.x__issue_for", "runflow_nb.request.x__tag_issues",
            "runflow_nb.request.x_load_reference", "runflow_nb.request.x__load_reference",
            "runflow_nb.request.x__decode_checked", "runflow_nb.request.x__geometry_issues",
            "runflow_nb._prompt_rules.*", "runflow_nb._sources.*"),
           ("tests/test_request_limits.py", "tests/test_request_messages.py", "tests/test_request_edges.py",
            "tests/test_request.py",
            "-k", "not follows_the_documented_table")),
    Target("_protocol", "submit and its look-up, retries, Retry-After, which errors count as 'maybe created', "
           "key support, uploads, URL checks, deadlines",
           ("runflow_nb._protocol.submit.xǁSubmitsǁsubmit", "runflow_nb._protocol.submit.xǁSubmitsǁkeys_honoured",
            "runflow_nb._protocol.submit.x_idempotency_key_for",
            "runflow_nb._protocol.lookup.xǁLookUpǁfind", "runflow_nb._protocol.lookup.xǁLookUpǁ_next_page",
            "runflow_nb._protocol.lookup.xǁLookUpǁ_find_after_lost_answer", "runflow_nb._protocol.lookup.x__ours",
            "runflow_nb._protocol.lookup.xǁLookUpǁlook_up", "runflow_nb._protocol.polling.xǁPollingǁlook",
            "runflow_nb._protocol.calls.xǁCallsǁcall", "runflow_nb._protocol.calls.xǁCallsǁ_deadline",
            "runflow_nb._protocol.calls.xǁCallsǁ_pause",
            "runflow_nb._protocol.answers.x__definitely_unsent", "runflow_nb._protocol.answers.x_retry_after_seconds",
            "runflow_nb._protocol.answers.xǁRetryPolicyǁdelay", "runflow_nb._protocol.answers.x__create_failure",
            "runflow_nb._protocol.transfers.x_check_output_url", "runflow_nb._protocol.transfers.xǁTransfersǁupload",
            "runflow_nb._protocol.transfers.xǁTransfersǁ_put_bytes",
            "runflow_nb._protocol.batches.xǁBatchesǁsubmit_batch", "runflow_nb._protocol.batches.x__batch_runs",
            "runflow_nb._protocol.lookup.xǁLookUpǁ_find_items"),
           ("tests/test_protocol_flows.py", "tests/test_client_flows.py")),
    Target("client", "the key and backend, headers, the submit flow, what is sent, file names, redirects",
           ("runflow_nb._client_base.xǁ_Baseǁ_resolve", "runflow_nb._client_base.xǁ_Baseǁ_api_key",
            "runflow_nb._client_base.xǁ_Baseǁ_headers", "runflow_nb._client_base.xǁ_Baseǁ_submit_flow",
            "runflow_nb._client_base.xǁ_Baseǁ_input_flow", "runflow_nb._client_base.x_safe_name",
            "runflow_nb._client_base.x_new_client_ref", "runflow_nb._http.x_refuse_non_http"),
           ("tests/test_client_flows.py", "tests/test_protocol_flows.py")),
    Target("budget", "the money ledger of a sweep: reserve, hold, move, settle, close (spent + in flight + unknown)",
           ("runflow_nb.sweep.budget.*",), ("tests/test_budget.py", "tests/test_sweep_money.py")),
    Target("batches", "sweeps through batches: gathering, the stop checks before a batch leaves, the batch key "
           "kept with its runs, a lost batch sent again whole, a refused batch, polling a batch's runs",
           ("runflow_nb.sweep.batches.x_batch_key", "runflow_nb.sweep.batches.xǁBatcherǁ*", "runflow_nb.sweep.lost_batches.*"),
           ("tests/test_batch_paths.py", "tests/test_sweep_paths.py", "tests/test_sweep_details.py",
            "tests/test_sweep_money.py", "tests/contract/test_batches.py"),
           timeout_s=15),
    Target("runner", "the sweep's money paths: claims and caps, re-attach, drive, outcomes, failures, stops, fatal answers",
           ("runflow_nb.sweep.runner.xǁ_Sweepǁ_claim_all", "runflow_nb.sweep.runner.xǁ_Sweepǁjob", "runflow_nb.sweep.runner.xǁ_Sweepǁ_job",
            "runflow_nb.sweep.runner.xǁ_Sweepǁ_drive", "runflow_nb.sweep.runner.xǁ_Sweepǁ_reattach",
            "runflow_nb.sweep.runner.xǁ_Sweepǁ_watch_cancel", "runflow_nb.sweep.runner.xǁ_Sweepǁ_stop_report",
            "runflow_nb.sweep.runner.xǁ_Sweepǁrun", "runflow_nb.sweep.runner.x_run_plan",
            "runflow_nb.sweep.runner.xǁ_Sweepǁ_within_experiment_cap", "runflow_nb.sweep.recording.xǁRecorderǁ_never_sent",
            "runflow_nb.sweep.recording.xǁRecorderǁ_fail", "runflow_nb.sweep.recording.xǁRecorderǁ_stopped",
            "runflow_nb.sweep.recording.xǁRecorderǁ_fatal", "runflow_nb.sweep.recording.xǁRecorderǁ_finish",
            "runflow_nb.sweep.recording.xǁRecorderǁ_collect", "runflow_nb.sweep.recording.xǁRecorderǁreserve_usd",
            "runflow_nb.sweep.recording.xǁRecorderǁ_price_seen", "runflow_nb.sweep.status.x_charged_usd"),
           ("tests/test_sweep_money.py", "tests/test_sweep_outcomes.py", "tests/test_sweep_details.py",
            "tests/test_sweep_caps.py", "tests/test_sweep_counts.py", "tests/test_sweep_paths.py"),
           # each of these tests takes well under a second; a mutant that breaks a stop hangs one on
           # a 30 s hook, and at 120 s each those alone took most of an hour
           timeout_s=15),
]
KILLED = {1, 3, 36, 24, -24, 152, 255, 37}
LABELS = {0: "survived", 33: "no test", 5: "no test", 34: "skipped", 35: "suspicious", None: "not checked",
          -11: "crashed", -9: "crashed"}


def _pick(wanted: list[str]) -> list[Target]:
    chosen = [t for t in TARGETS if not wanted or any(w == t.name or w.lower() in t.name.lower() for w in wanted)]
    if not chosen:
        raise SystemExit(f"no target matches {wanted}; targets: {', '.join(t.name for t in TARGETS)}")
    return chosen


def config(target: Target) -> str:
    """The package's pyproject.toml with this target's test selection for mutmut."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    selection = "pytest_add_cli_args_test_selection = [" + ", ".join(json.dumps(a) for a in target.tests) + "]"
    new, n = re.subn(r"(?ms)^pytest_add_cli_args_test_selection = \[.*?^\]\n?|^pytest_add_cli_args_test_selection = \[.*?\]\n",
                     selection + "\n", text)
    if n != 1:
        raise SystemExit("pyproject.toml has no single pytest_add_cli_args_test_selection under [tool.mutmut]")
    new, n = re.subn(r"--timeout=\d+", f"--timeout={target.timeout_s}", new)
    if n != 1:
        raise SystemExit("pyproject.toml has no single --timeout=N in pytest_add_cli_args under [tool.mutmut]")
    modules = dict.fromkeys(re.split(r"\.x[ǁ_]|\.\*$", g)[0].replace(".", "/") + ".py" for g in target.globs)
    listed = ", ".join(json.dumps(m) for m in modules)  # only the target's own files are mutated
    new, n = re.subn(r"(?ms)^only_mutate = \[.*?^\]\n", f"only_mutate = [{listed}]\n", new)
    if n != 1:
        raise SystemExit("pyproject.toml has no single only_mutate list under [tool.mutmut]")
    return new


def results() -> dict[str, dict[str, int | None]]:
    """target name -> {mutant name: exit code} from each target's ``mutants/**/*.py.meta``."""
    out: dict[str, dict[str, int | None]] = {}
    for target in TARGETS:
        codes: dict[str, int | None] = {}
        for meta in sorted((WORK / target.name / "mutants").rglob("*.py.meta")):
            for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
                fn = name.rsplit("__mutmut_", 1)[0]
                if any(fnmatch.fnmatchcase(fn, g) for g in target.globs):
                    codes[name] = code
        out[target.name] = codes
    return out


def score(markdown: bool = False) -> int:
    table = results()
    lines = ["| target | mutants | killed | survived | no test | other | kill ratio |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    survivors: list[str] = []
    all_killed = all_total = 0
    for name, codes in table.items():
        counts = Counter("killed" if c in KILLED else LABELS.get(c, "other") for c in codes.values())
        total, killed = len(codes), counts["killed"]
        all_killed, all_total = all_killed + killed, all_total + total
        other = total - killed - counts["survived"] - counts["no test"]
        ratio = f"{killed / total:.1%}" if total else "not run"
        lines.append(f"| {name} | {total} | {killed} | {counts['survived']} | {counts['no test']} | {other} | {ratio} |")
        survivors += [f"{m} ({LABELS.get(c, c)})" for m, c in sorted(codes.items()) if c not in KILLED]
    if all_total:
        lines.append(f"| **all** | {all_total} | {all_killed} | | | | **{all_killed / all_total:.1%}** |")
    print("\n".join(lines))
    if not markdown:
        print(f"\n{len(survivors)} not killed:")
        print("\n".join(f"  {s}" for s in survivors))
    return 0


def main(argv: list[str]) -> int:
    command, args = (argv[0], argv[1:]) if argv else ("", [])
    if command == "names":
        print(" ".join(t.name for t in TARGETS))
    elif command == "globs":
        print(" ".join(f"{g}__mutmut_*" for t in _pick(args) for g in t.globs))
    elif command == "config":
        (target,) = _pick(args)
        sys.stdout.write(config(target))
    elif command == "score":
        return score(markdown="--markdown" in args)
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
