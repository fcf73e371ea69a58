"""A seeded soak of servers that lag behind their creates, on loopback: list lag, read-after-create
404s, key replay on some routes only, creates answered 5xx after the run was made (with and without
a replay kept), mixed with the emulator's own faults, stops mid-sweep and resumes, across single
and batch sweeps. Every schedule is checked on the server's ledger:

* no client_ref was made twice;
* what the server billed equals what the store records as cost, once the lags are over;
* the server never billed more than the experiment's budget.

Bounded in count (``RUNFLOW_SOAK_SCHEDULES``, default 6) and wall time; the number of schedules
tried and their outcome go to the harness summary.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _ledger import billed, made_per_ref, settle
from _sweep_child import record

import runflow_nb as rf
from runflow_nb.emulator import Emulator, serve

KEY = "rf_test_soak_lags"
SEED = 20261207
RUN = 0.42  # 3 s at 720p
SCHEDULES = int(os.environ.get("RUNFLOW_SOAK_SCHEDULES", "6"))
WALL_S = 300.0
FAULTS = ["none", "create500=1x", "drop=1x", "500=0.15", "429=0.15,503=0.1", "fail=0.25", "drop=0.2,create500=0.1",
          "cancel=0.2,partial=0.2"]
KEY_MODES = ["all", "creates", "all_but_single_create", "none"]


def _draw(rng: random.Random) -> dict[str, Any]:
    list_lag_s = rng.choice([0.0, 0.5, 2.0, 9.0])  # 9 s outlasts the client's look-ups (about 7 s)
    get_lag_s = rng.choice([0.0, 0.3, 1.0])
    key_replay = rng.choice(KEY_MODES)
    kept = rng.choice([0, 0, 1])  # creates made, answered 500, their 201 kept for a replay
    faults = f"{rng.choice(FAULTS)},seed={rng.randrange(10_000)}".replace("none,", "")
    return {
        "list_lag_s": list_lag_s,
        "get_lag_s": get_lag_s,
        "key_replay": key_replay,
        "faults": f"{faults},create500kept={kept}x" if kept else faults,
        "seeds": rng.randint(3, 6),
        "budget_runs": rng.choice([2, 3, 5]),
        "batch": rng.choice([False, "auto"]),
        "resume_batch": rng.choice([False, "auto"]),
        "stop_after_s": rng.choice([None, 0.2, 0.8]),
    }


def _schedule(cfg: dict[str, Any], images: list[Path], folder: Path) -> Counter[str]:
    emu = Emulator(latency=0.05, list_lag_s=cfg["list_lag_s"], get_lag_s=cfg["get_lag_s"],
                   key_replay=cfg["key_replay"], faults=cfg["faults"])
    budget = cfg["budget_runs"] * RUN
    try:
        with serve(emulator=emu) as server:
            client = rf.Client(api_key=KEY, base_url=server.url, poll_interval=0.05)
            exp = rf.Experiment("soak", store=str(folder / "store.sqlite"), artifacts=folder / "artifacts",
                                client=client, budget_usd=budget)
            plan = rf.grid(prompt="character1 trots in the rain", images=[images[:1]], seed=range(cfg["seeds"]),
                           duration=3, resolution="720p")
            if cfg["stop_after_s"] is None:
                exp.run(plan, concurrency=3, batch=cfg["batch"], progress=None, timeout=20)
            else:  # the Stop button, mid-sweep
                handle = exp.run(plan, concurrency=3, batch=cfg["batch"], progress=None, timeout=20,
                                 background=True)
                time.sleep(cfg["stop_after_s"])
                handle.cancel()
                handle.wait(120)
            exp.run(plan, concurrency=3, batch=cfg["resume_batch"], progress=None, timeout=20)  # resumed at once
            settle(emu)
            # the lags end and the faults stop: a last resume collects every run that was made
            emu.configure(list_lag_s=0.0, get_lag_s=0.0, faults="none", key_replay="all")
            df = exp.run(plan, concurrency=3, progress=None, timeout=60)
            settle(emu)
            made = made_per_ref(emu)
            twice = {ref: n for ref, n in made.items() if n > 1}
            assert not twice, f"{cfg}: client_refs made twice: {twice}"
            _, billed_usd = billed(emu)
            stored = round(sum(float(r["cost_usd"]) for r in exp.store.runs("soak")
                               if isinstance(r.get("cost_usd"), (int, float))), 2)
            assert billed_usd == stored, f"{cfg}: billed ${billed_usd:.2f}, the store records ${stored:.2f}"
            assert billed_usd <= budget + 1e-9, f"{cfg}: billed ${billed_usd:.2f} on a ${budget:.2f} budget"
            exp.close()
            client.close()
            return Counter(df.status)
    finally:
        emu.close()


def test_a_seeded_soak_of_lagging_servers_never_pays_twice_nor_past_the_budget(ref_images: list[Path],
                                                                                 tmp_path: Path) -> None:
    rng = random.Random(SEED)
    started = time.monotonic()
    tried, outcome = 0, Counter[str]()
    for i in range(SCHEDULES):
        if time.monotonic() - started > WALL_S:
            break
        cfg = _draw(rng)
        outcome += _schedule(cfg, ref_images, tmp_path / f"schedule-{i}")
        tried += 1
    assert tried >= 1
    record(f"soak (lagging servers, seed {SEED}): {tried} schedule(s) of list lag, read-after-create 404s, "
           f"per-route key replay, 5xx-after-create, faults, stops and resumes in {time.monotonic() - started:.0f} s; "
           f"all held: no client_ref made twice, billed == stored cost, never past the budget; final rows "
           f"{dict(sorted(outcome.items()))}")
