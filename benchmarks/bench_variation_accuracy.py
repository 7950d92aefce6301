"""How exactly the analytic engine integrates over tasks that differ (docs/cost-model.md).

    python benchmarks/bench_variation_accuracy.py [--quick]

For a grid of spreads (difficulty s, tokens t, tokens_follow_difficulty r) on a workload whose
long-context thresholds are in reach, compares the engine's spend per task and completion
rate with (1) a brute-force integration over (z, e) with deterministic sizes and panels split at
every long-context step (tests/test_variation.py::brute_force) and (2) the same engine with a
quadrature rule four times finer; prints the largest relative differences, the number of
nodes per task type, and the time to compile and evaluate. Then the same against the finer rule
on a workload of 20 phases per task (bench_compare.large_case, 10 task types, 4 random
policies and their single models): a product of many success factors is what limits the rule.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import costsim.engine.variation as V  # noqa: E402
from costsim.engine.analytic import evaluate  # noqa: E402
from costsim.engine.compile import compile_ladders  # noqa: E402
from machine import describe  # noqa: E402
from test_variation import brute_force, setup  # noqa: E402


def fine(fn):
    names = ("PANEL_MAX", "PANEL_SCALE", "GL_NODES", "GL_MIN_NODES", "TRAP_SCALE", "TRAP_GAUSS")
    saved = tuple(getattr(V, k) for k in names)
    for k, v in zip(names, (0.25, 0.3, 12, 8, V.TRAP_SCALE / 4, V.TRAP_GAUSS / 4)):
        setattr(V, k, v)
    try:
        return fn()
    finally:
        for k, v in zip(names, saved):
            setattr(V, k, v)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    ss = [0.5, 1.3, 3.0, 10.0] if args.quick else [0.5, 1.3, 3.0, 6.0, 10.0]
    ts = [0.7] if args.quick else [0.0, 0.7, 1.2]
    rs = [0.0, 0.9, 0.995, 1.0] if args.quick else [0.0, 0.5, 0.9, 0.97, 0.995, 0.9999, 1.0]
    print(f"# {describe()}")
    print(f"{'s':>5} {'t':>4} {'r':>6}  {'nodes':>11}  {'vs brute':>9}  {'vs fine':>9}  "
          f"{'compile+eval':>12}")
    worst_b = worst_f = 0.0
    for s in ss:
        for t in ts:
            for r in rs if t > 0 else [0.0]:
                tmp = Path(tempfile.mkdtemp())
                table, wl, strategies = setup(tmp, {"difficulty": s, "tokens": t,
                                                    "tokens_follow_difficulty": r})
                eb = ef = 0.0
                took = 0.0
                for strat in strategies:
                    t0 = time.perf_counter()
                    L = compile_ladders(table, strat, wl)
                    m = evaluate(L)
                    took += time.perf_counter() - t0
                    nodes = [len(tn.rule) for tn in L.variation.types if tn is not None]
                    E, C = brute_force(L, nz=80, ne=16)
                    eb = max(eb, abs(m.spend_per_task / E - 1), abs(m.completion_rate / C - 1))
                    mf = fine(lambda: evaluate(compile_ladders(table, strat, wl)))
                    ef = max(ef, abs(m.spend_per_task / mf.spend_per_task - 1),
                             abs(m.completion_rate / mf.completion_rate - 1),
                             abs(m.cost_per_completed_task / mf.cost_per_completed_task - 1))
                worst_b, worst_f = max(worst_b, eb), max(worst_f, ef)
                print(f"{s:5.1f} {t:4.1f} {r:6.4f}  {str(nodes):>11}  {eb:9.1e}  {ef:9.1e}  "
                      f"{took * 1000:9.1f} ms", flush=True)
    print(f"largest relative difference: vs brute force {worst_b:.1e}, vs the finer rule "
          f"{worst_f:.1e}")
    many_phases()


HEAD = ("spend_per_task", "completion_rate", "cost_per_completed_task", "defect_rate",
        "review_minutes", "expected_attempts")


def many_phases() -> None:
    from bench_compare import large_case

    from costsim import api, limits

    print("20 phases per task, 10 task types, 4 policies + their single models: largest "
          "relative difference from the finer rule")
    saved = limits.MAX_VARIED_WORK
    limits.MAX_VARIED_WORK = 10 ** 9
    try:
        for s, t, r in ((0.5, 0.75, 0.3), (1.3, 0.7, 0.5), (1.3, 0.75, 0.9), (3.0, 0.8, 0.9),
                        (3.24, 0.75, 0.24), (6.0, 0.75, 0.3)):
            wp, pols = large_case(Path(tempfile.mkdtemp()), types=10, policies=4, variation={
                "difficulty": s, "tokens": t, "tokens_follow_difficulty": r})
            table, _, wl, _, pl = api.load_inputs(None, pols, wp)
            worst = np.zeros(len(HEAD))
            for strat in api.strategies_for(table, pl):
                L = compile_ladders(table, strat, wl)
                nodes = len(L.variation.types[0].rule)
                m = evaluate(L)
                mf = fine(lambda: evaluate(compile_ladders(table, strat, wl)))
                worst = np.maximum(worst, [abs(getattr(m, f) / getattr(mf, f) - 1)
                                           if getattr(mf, f) else 0.0 for f in HEAD])
            print(f"{s:5.2f} {t:4.2f} {r:4.2f}  {nodes:4d} nodes  " + "  ".join(
                f"{f} {x:.1e}" for f, x in zip(HEAD, worst)), flush=True)
    finally:
        limits.MAX_VARIED_WORK = saved


if __name__ == "__main__":
    main()
