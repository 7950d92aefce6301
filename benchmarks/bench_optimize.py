"""Speed of `costsim optimize`: the vectorised exact search against a plain per-policy loop.

    python benchmarks/bench_optimize.py [--loop-sample 200] [--repeat 3]

The loop builds each policy and runs ``compile_ladders`` + ``evaluate`` on it (what checking one
policy with the engine costs); it is timed on a random sample and extrapolated to the space.
Prints a Markdown block for docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from costsim.engine.analytic import evaluate
from costsim.engine.compile import Strategy, compile_ladders
from costsim.search.optimize import Search, optimize, policy_from_doc
from machine import cpu_model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--loop-sample", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    print(f"machine: {os.cpu_count()} CPUs (nproc), {cpu_model()}; python "
          f"{platform.python_version()}, numpy {np.__version__}\n")
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


if __name__ == "__main__":
    main()
