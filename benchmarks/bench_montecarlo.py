"""Monte Carlo throughput and peak memory, and the naive per-task loop on the same ladders.

    python benchmarks/bench_montecarlo.py            # 1M and 10M samples
    python benchmarks/bench_montecarlo.py --quick    # 1M only, smaller naive run

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
    print(f"process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
