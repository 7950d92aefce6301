"""Monte Carlo throughput and peak memory, and the naive per-task loop on the same ladders.

    python benchmarks/bench_montecarlo.py            # 1M and 10M samples
    python benchmarks/bench_montecarlo.py --quick    # 1M only, smaller naive run

Then the same with tasks that differ (the workload with variation {difficulty: 1.3, tokens: 0.7,
tokens_follow_difficulty: 0.5}: every task draws its difficulty and size), and `budget` on very
large months (built from outcome counts) with and without variation.

Workload: the bundled medium-team workload and the bundled cheapest-routing policy (4 task
types x 16 signal combinations, up to 7 phases, 4 attempts, summary handoff, defects + review).
Throughput is simulated tasks per wall-clock second, best of --repeat runs (the machine may be
shared); peak memory is measured in a separate run with tracemalloc (NumPy reports its buffers
to it), so tracing does not slow the timed runs.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from naive_montecarlo import simulate_naive  # noqa: E402

from costsim.engine import montecarlo as mc  # noqa: E402
from costsim.engine.analytic import evaluate  # noqa: E402
from costsim.api import load_inputs, parse_strategy  # noqa: E402
from costsim.engine.compile import compile_ladders  # noqa: E402
from machine import describe as machine  # noqa: E402


def best_time(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def peak_mib(fn) -> float:
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--naive", type=int, default=200_000, help="tasks for the naive loop")
    ap.add_argument("--policy", default="cheapest-routing")
    args = ap.parse_args()

    table, _, wl, _, pols = load_inputs()
    L = compile_ladders(table, parse_strategy(args.policy, table, pols), wl)
    exact = evaluate(L)
    plan = mc.make_plan(L)
    print(f"# {machine()}")
    print(f"# workload {wl.name}, strategy {args.policy}: {len(L.cells)} cells, ladders "
          f"{L.p.shape}, exact spend/task ${exact.spend_per_task:.6f}")
    threads = mc.default_threads()
    sizes = [1_000_000] if args.quick else [1_000_000, 10_000_000]

    rows = []
    for n in sizes:
        for th in sorted({1, threads}):
            dt = best_time(lambda: mc.simulate_tasks(L, n, 0, threads=th, plan=plan),
                           args.repeat)
            mem = peak_mib(lambda: mc.simulate_tasks(L, n, 0, threads=th, plan=plan))
            rows.append(("simulate_tasks", n, th, n / dt, dt, mem))
            print(f"simulate_tasks  n={n:>11,} threads={th}  {n / dt / 1e6:7.2f} M tasks/s  "
                  f"{dt:6.2f} s  peak {mem:6.1f} MiB", flush=True)
    months = [667, 6667] if not args.quick else [667]
    for m in months:
        n = 1500 * m
        for th in sorted({1, threads}):
            dt = best_time(lambda: mc.simulate_months(L, 1500, m, 0, threads=th, plan=plan),
                           args.repeat)
            mem = peak_mib(lambda: mc.simulate_months(L, 1500, m, 0, threads=th, plan=plan))
            rows.append(("simulate_months", n, th, n / dt, dt, mem))
            print(f"simulate_months n={n:>11,} threads={th}  {n / dt / 1e6:7.2f} M tasks/s  "
                  f"{dt:6.2f} s  peak {mem:6.1f} MiB  (1500 tasks x {m} months)", flush=True)

    t0 = time.perf_counter()
    naive = simulate_naive(L, args.naive, 0)
    dt_naive = time.perf_counter() - t0
    naive_rate = args.naive / dt_naive
    print(f"naive loop      n={args.naive:>11,} threads=1  {naive_rate / 1e6:7.3f} M tasks/s  "
          f"{dt_naive:6.2f} s  (spend/task ${naive['spend_per_task']:.6f}, "
          f"completion {naive['completion_rate']:.5f})")
    one = max(r[3] for r in rows if r[0] == "simulate_tasks" and r[2] == 1)
    best = max(r[3] for r in rows if r[0] == "simulate_tasks")
    print(f"speed-up over the naive loop: {one / naive_rate:.0f}x on one thread, "
          f"{best / naive_rate:.0f}x with {threads} threads")

    # tasks that differ --------------------------------------------------------------------
    import tempfile

    from bench_compare import VARIATION, with_variation

    from costsim.budget import budget

    tmp = Path(tempfile.mkdtemp())
    wvar = with_variation(tmp)
    table, _, wl2, _, pols2 = load_inputs(None, None, wvar)
    Lv = compile_ladders(table, parse_strategy(args.policy, table, pols2), wl2)
    planv = mc.make_plan(Lv)
    print(f"# with variation {VARIATION}: size thresholds per row {planv.var.n_thr}")
    for n in sizes[:1] if args.quick else sizes:
        for th in sorted({1, threads}):
            dt = best_time(lambda: mc.simulate_tasks(Lv, n, 0, threads=th, plan=planv),
                           args.repeat)
            print(f"simulate_tasks (variation) n={n:>11,} threads={th}  {n / dt / 1e6:7.2f} M "
                  f"tasks/s  {dt:6.2f} s", flush=True)
    for m in months:
        n = 1500 * m
        dt = best_time(lambda: mc.simulate_months(Lv, 1500, m, 0, threads=threads, plan=planv),
                       args.repeat)
        print(f"simulate_months (variation) n={n:>11,} threads={threads}  {n / dt / 1e6:7.2f} M "
              f"tasks/s  {dt:6.2f} s", flush=True)
    for label, wfile in (("without variation", with_variation(tmp, None)),
                         ("with variation", wvar)):
        for tasks in (10 ** 5, 10 ** 9):
            t0 = time.perf_counter()
            r = budget(workload=wfile, tasks=tasks, seed=0)
            dt = time.perf_counter() - t0
            print(f"budget --tasks {tasks:>13,} {label}: {dt:6.2f} s ({r.months:,} months, "
                  f"{r.method}; P99/mean {r.p99 / r.expected:.5f})", flush=True)
    print(f"process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
