"""Speed of `costsim optimize`: the vectorised exact search against a plain per-policy loop, and
what a price table of thousands of models costs.

    python benchmarks/bench_optimize.py [--loop-sample 200] [--repeat 3]

The loop builds each policy and runs ``compile_ladders`` + ``evaluate`` on it (what checking one
policy with the engine costs); it is timed on a random sample and extrapolated to the space.
Prints Markdown blocks for docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import yaml

from costsim import paths
from costsim.engine.analytic import evaluate
from costsim.engine.compile import Strategy, compile_ladders
from costsim.errors import CostsimError
from costsim.search.optimize import Search, optimize, policy_from_doc
from machine import describe

# the format's example, and the spread measured on the public data (docs/defaults.md)
VARIATIONS = (("s 1.3, t 0.7, r 0.5", {"difficulty": 1.3, "tokens": 0.7,
                                       "tokens_follow_difficulty": 0.5}),
              ("s 3.24, t 0.75, r 0.24", {"difficulty": 3.24, "tokens": 0.75,
                                          "tokens_follow_difficulty": 0.24}))


def big_table(path: Path, n_per_class: int, seed: int = 0) -> None:
    """The bundled table plus 3 x n_per_class synthetic models with distinct prices and coding
    scores (so no model dominates another: the space cannot shrink)."""
    rng = np.random.default_rng(seed)
    doc = yaml.safe_load(paths.bundled_prices_path().read_text())
    for cls, lo in (("budget", 0.1), ("midrange", 1.0), ("premium", 5.0)):
        for j in range(n_per_class):
            inp = float(np.round(lo * rng.uniform(1, 4), 4))
            doc["models"][f"{cls}-{j:04d}"] = {
                "provider": "acme", "tier": cls, "input": inp,
                "output": float(np.round(inp * rng.uniform(3, 6), 4)),
                "cache_read": float(np.round(inp / 10, 5)),
                "coding_score": float(40 + 50 * (j + 0.5) / n_per_class)}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--loop-sample", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    print(f"machine: {describe()}\n")
    print("| space (bundled defaults, targets completion >= 0.99, defects <= 0.02) | policies "
          "| vectorised search (best of runs) | per-policy loop (extrapolated) | speed-up |")
    print("|---|---:|---:|---:|---:|")
    for label, kw in (("routes x escalation x handoff (`--fixed-tiers`)", {"fixed_tiers": True}),
                      ("... x models per tier (default)", {})):
        runs = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            r = optimize(min_completion=0.99, max_defect_rate=0.02, baselines=False, **kw)
            runs.append(time.perf_counter() - t)
        S = Search(**kw)
        rng = np.random.default_rng(0)
        flats = rng.choice(S.size, min(args.loop_sample, S.size), replace=False)
        t = time.perf_counter()
        for f in flats:
            pol = policy_from_doc(S.policy_doc(f))
            evaluate(compile_ladders(S.table, Strategy.routed(pol), S.wl))
        per = (time.perf_counter() - t) / len(flats)
        loop = per * r.evaluated
        best = min(runs)
        print(f"| {label} | {r.evaluated:,} | {best:.2f} s ({r.evaluated / best:,.0f} policies/s; "
              f"runs: {', '.join(f'{x:.2f}' for x in runs)}) | {loop:,.0f} s ({per * 1e3:.2f} ms "
              f"per policy, {len(flats)} sampled) | {loop / best:,.0f}x |")

    # tasks that differ: the bundled workload with the variation of the format's example and
    # with the spread measured on the public data (docs/defaults.md)
    print("\n| space, medium-team with variation | policies | wall (best of runs) | CPU time "
          "(best) | load |")
    print("|---|---:|---:|---:|---:|")
    for vname, var in VARIATIONS:
        with tempfile.TemporaryDirectory() as d:
            wl = Path(d) / "medium-team-variation.yaml"
            doc = yaml.safe_load(paths.bundled_workload_path().read_text())
            doc["variation"] = var
            wl.write_text(yaml.safe_dump(doc, sort_keys=False))
            S = Search(workload=wl)
            nodes = sorted({len(v.wq) for tp in S.prep for v in tp.variants})
            for label, kw in (("`--fixed-tiers`", {"fixed_tiers": True}), ("default", {})):
                walls, cpus = [], []
                load = os.getloadavg()[0]
                for _ in range(args.repeat):
                    t, c = time.perf_counter(), time.process_time()
                    r = optimize(workload=wl, min_completion=0.95, baselines=False, **kw)
                    walls.append(time.perf_counter() - t)
                    cpus.append(time.process_time() - c)
                print(f"| {vname} {label} (nodes per rule: {nodes}) | {r.evaluated:,} | "
                      f"{min(walls):.2f} s ({r.evaluated / min(walls):,.0f} policies/s) | "
                      f"{min(cpus):.2f} s ({r.evaluated / min(cpus):,.0f} policies per "
                      f"CPU-second) | {load:.1f} |")

    # the whole call with the other candidates (single models, the base policy) and peak memory
    runs = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        r = optimize(min_completion=0.99, max_defect_rate=0.02)
        runs.append(time.perf_counter() - t)
    tracemalloc.start()                       # a separate run: tracing slows Python down
    optimize(min_completion=0.99, max_defect_rate=0.02)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"\nwhole `optimize()` on the bundled defaults with its {len(r.baselines)} other "
          f"candidates: {min(runs):.2f} s best of {len(runs)} (runs: "
          f"{', '.join(f'{x:.2f}' for x in runs)}), peak traced memory {peak / 2**20:.0f} MiB\n")

    print("| price table | models per tier after pruning | answer | time (load + search) |")
    print("|---|---|---|---:|")
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "big.yaml"
        big_table(path, 1000)
        for label, kw in (("bundled + 3,000 synthetic models", {}),
                          ("same, `--candidates` 6 models",
                           {"candidates": ["gpt-5.6-luna", "budget-0001", "budget-0990",
                                           "grok-4.6", "midrange-0500", "gpt-5.6-sol"]})):
            t = time.perf_counter()
            try:
                r = optimize(path, min_completion=0.99, **kw)
                ans = f"best {r.best_name}, {r.evaluated:,} policies"
                per = ", ".join(f"{k} {len(v)}" for k, v in r.space["tier_models"].items())
            except CostsimError as e:
                msg = str(e)
                size = msg.split("has ")[1].split(" policies")[0]
                ans = f"refused (exit 2): {size} policies, narrow it"
                per = msg.split("models per tier: ")[1].split(")")[0].replace(";", ",")
            print(f"| {label} | {per} | {ans} | {time.perf_counter() - t:.2f} s |")


if __name__ == "__main__":
    main()
