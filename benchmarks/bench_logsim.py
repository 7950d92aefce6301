"""Speed and fidelity of the test utilities tests/logsim.py and tests/reference_model.py.

    python benchmarks/bench_logsim.py [--repeat 3] [--truth-tasks 1000000] [--skip-fidelity]

Speed: ``simulate_log`` of 30,000 tasks (per-call and per-attempt rows, with and without
variation), ``write_log`` of that log, ``simulate_truth`` of 400,000 tasks, and the reference
model with and without variation, on the bundled price table, ``medium-team`` and
``small-team`` workloads and the ``cheapest-routing`` policy (best of --repeat).

Fidelity: ``simulate_truth`` (``--truth-tasks`` tasks) against the reference's exact numbers
for every bundled workload x every bundled policy + one single model, without variation, and
for small-team with variation: the z-score (measured - exact) / standard error of spend per
task, completion, cost per completed task and defect rate.  Over many independent comparisons
the z-scores should look standard normal (|z| > 3 about 1 time in 370).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import logsim  # noqa: E402
import reference_model as ref  # noqa: E402
from machine import describe  # noqa: E402

PRICES = ROOT / "pricing" / "default.yaml"
VARIATION = {"difficulty": 1.3, "tokens": 0.7, "tokens_follow_difficulty": 0.5}
KEYS = ("spend_per_task", "completion_rate", "cost_per_completed_task", "defect_rate")


def load(p):
    return yaml.safe_load(Path(p).read_text())


def best(fn, repeat):
    times = []
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def speed(repeat: int):
    px = load(PRICES)
    pol = load(ROOT / "policies" / "cheapest-routing.yaml")
    print("| what | rows | best time |\n|---|---:|---:|")
    for wname in ("medium-team",):
        wl = load(ROOT / "workloads" / f"{wname}.yaml")
        wlv = dict(wl, variation=VARIATION)
        for label, w in (("", wl), (" + variation", wlv)):
            for rows in ("call", "attempt"):
                t, df = best(lambda: logsim.simulate_log(px, w, pol, tasks=30_000, rows=rows,
                                                         cost=True), repeat)
                print(f"| simulate_log 30k tasks, {wname}{label}, rows={rows} | {len(df):,} "
                      f"| {t:.2f} s |")
        df = logsim.simulate_log(px, wl, pol, tasks=30_000, rows="call", cost=True)
        with tempfile.TemporaryDirectory() as d:
            for ext in ("csv", "parquet"):
                t, _ = best(lambda: logsim.write_log(df, Path(d) / f"log.{ext}"), repeat)
                print(f"| write_log {ext} of the per-call log | {len(df):,} | {t:.2f} s |")
        t, _ = best(lambda: logsim.measure_log(df), repeat)
        print(f"| measure_log of the per-call log | {len(df):,} | {t:.2f} s |")
        for label, w in (("", wl), (" + variation", wlv)):
            t, _ = best(lambda: logsim.simulate_truth(px, w, pol, tasks=400_000), repeat)
            print(f"| simulate_truth 400k tasks, {wname}{label} | - | {t:.2f} s |")
    for wname in ("small-team", "medium-team"):
        wl = load(ROOT / "workloads" / f"{wname}.yaml")
        for label, w in (("", wl), (" + variation", dict(wl, variation=VARIATION))):
            t, _ = best(lambda: ref.evaluate(px, w, policy=pol), 1)
            print(f"| reference_model.evaluate, {wname}{label} | - | {t:.2f} s |")


def fidelity(tasks: int):
    px = load(PRICES)
    pols = [load(p) for p in sorted((ROOT / "policies").glob("*.yaml"))]
    zs = []
    print("| workload | strategy | z spend | z completion | z cost/completed | z defects |")
    print("|---|---|---:|---:|---:|---:|")
    cases = [(w, None) for w in ("small-team", "medium-team", "large-team")]
    cases.append(("small-team", VARIATION))
    for wname, var in cases:
        wl = load(ROOT / "workloads" / f"{wname}.yaml")
        if var:
            wl["variation"] = var
        for strat in pols + ["single:claude-sonnet-5"]:
            exact = (ref.evaluate(px, wl, model=strat.split(":", 1)[1]) if isinstance(strat, str)
                     else ref.evaluate(px, wl, policy=strat))
            got = logsim.simulate_truth(px, wl, strat, tasks=tasks, seed=len(zs))
            z = [(got[k] - exact[k]) / got[k + "_se"] for k in KEYS]
            zs += z
            name = strat if isinstance(strat, str) else strat["name"]
            label = wname + (" + variation" if var else "")
            print(f"| {label} | {name} | " + " | ".join(f"{v:+.2f}" for v in z) + " |")
    zs = np.array(zs)
    print(f"\n{len(zs)} z-scores: mean {zs.mean():+.3f}, sd {zs.std(ddof=1):.3f}, "
          f"max |z| {np.abs(zs).max():.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--truth-tasks", type=int, default=1_000_000)
    ap.add_argument("--skip-fidelity", action="store_true")
    a = ap.parse_args()
    print(describe(), "\n")
    speed(a.repeat)
    if not a.skip_fidelity:
        print()
        fidelity(a.truth_tasks)


if __name__ == "__main__":
    main()
