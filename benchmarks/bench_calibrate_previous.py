"""`costsim calibrate` against its previous (numpy/pandas) implementation, same log, same session.

    git worktree add --detach /tmp/calold e016b8f      # main before "Merge h-cal"
    python benchmarks/bench_calibrate_previous.py --previous /tmp/calold [--rounds 3] [--repeat 3]

The log is one the previous reader takes: one row per attempt, no summaries, signals or
`calls` column (tests/logsim.py, bundled medium-team workload under
cheapest-routing-full-history, cut to --rows rows of whole tasks), written as CSV and Parquet.
Each round runs every (implementation, format) in a fresh process (the previous code first
on sys.path for its own), which calls `calibrate()` --repeat times; the table keeps the best
wall clock and the best CPU time (process, all threads) over all rounds, and the range of
the first call of each process (what `costsim calibrate` pays: imports and first use of
each library included). Implementations alternate inside each round, so both see the same
load; the load average is printed. --log-dir reuses the logs a previous run kept (--keep).

--cli N: instead, the whole command line as a user runs it, `costsim calibrate LOG --prices P`
(start-up, imports, reading, fitting and the rendered report), N times per implementation and
format, alternating; wall clock of each process and its CPU time (children's rusage).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRICES = ROOT / "pricing" / "default.yaml"
WORKLOAD = ROOT / "workloads" / "medium-team.yaml"
POLICY = ROOT / "policies" / "cheapest-routing-full-history.yaml"

CHILD = r"""
import sys, time
impl, path, prices, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sys.path.insert(0, impl)
from costsim.calibrate import calibrate
import costsim
assert costsim.__file__.startswith(impl), costsim.__file__
for _ in range(n):
    w, c = time.perf_counter(), time.process_time()
    calibrate(path, prices=prices)
    print(time.perf_counter() - w, time.process_time() - c, flush=True)
"""


def make_log(rows: int, d: Path) -> tuple[Path, Path, int, int]:
    import numpy as np

    sys.path.insert(0, str(ROOT / "tests"))
    from logsim import simulate_log, write_log

    df = simulate_log(PRICES, WORKLOAD, POLICY, tasks=int(rows / 7.2 * 1.05) + 10, seed=1,
                      rows="attempt", signals_on="none")
    df = df.drop(columns=["calls", "kind"])
    ends = df.groupby("task_id").size().sort_index().cumsum()
    last = ends.index[min(np.searchsorted(ends.to_numpy(), rows), len(ends) - 1)]
    df = df[df["task_id"] <= last].reset_index(drop=True)
    csv, pq = d / "runs-previous.csv", d / "runs-previous.parquet"
    write_log(df, csv)
    write_log(df, pq)
    return csv, pq, len(df), df["task_id"].nunique()


CLI = r"""
import sys
impl = sys.argv[1]
sys.path.insert(0, impl)
sys.argv = ["costsim", "calibrate"] + sys.argv[2:]
from costsim.cli import main
import costsim
assert costsim.__file__.startswith(impl), costsim.__file__
main()
"""


def cli_rounds(impls: dict, logs, n: int) -> None:
    """The command line, fresh process each time, alternating implementations."""
    import resource
    import statistics
    import time

    res: dict = {}
    loads = []
    for k in range(n):
        for path in logs:
            for name, impl in impls.items():
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                t = time.perf_counter()
                subprocess.run([sys.executable, "-c", CLI, impl, str(path), "--prices",
                                str(PRICES)], capture_output=True, check=True,
                               env={**os.environ, "PYTHONPATH": "", "COLUMNS": "100"})
                wall = time.perf_counter() - t
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
                loads.append(os.getloadavg()[0])
                res.setdefault((name, path.suffix[1:]), []).append((wall, cpu))
                print(f"run {k + 1} {name:6s} {path.suffix[1:]:7s} {wall:.2f}/{cpu:.2f} "
                      f"(wall/cpu s; load {loads[-1]:.1f})", flush=True)
    print(f"\n`costsim calibrate LOG`, {n} processes each (load average "
          f"{min(loads):.1f}-{max(loads):.1f}):")
    print("| log | before: wall median (min) / cpu | now: wall median (min) / cpu "
          "| now / before (wall, median) |")
    print("|---|---:|---:|---:|")
    for fmt, label in (("csv", "CSV"), ("parquet", "Parquet")):
        b, w = res[("before", fmt)], res[("now", fmt)]
        bw, nw = statistics.median(x[0] for x in b), statistics.median(x[0] for x in w)
        print(f"| {label} | {bw:.2f} s ({min(x[0] for x in b):.2f}) / "
              f"{statistics.median(x[1] for x in b):.2f} s | {nw:.2f} s "
              f"({min(x[0] for x in w):.2f}) / {statistics.median(x[1] for x in w):.2f} s "
              f"| {nw / bw:.2f}x |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--previous", type=Path, required=True,
                    help="a checkout of the previous implementation")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", type=Path, default=None)
    ap.add_argument("--log-dir", type=Path, default=None,
                    help="a directory a previous run kept (--keep): reuse its logs")
    ap.add_argument("--cli", type=int, default=0, metavar="N",
                    help="time the command line instead, N processes per implementation")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from machine import describe

    print(f"machine: {describe()}")
    if args.log_dir is not None:
        import pandas as pd

        csv, pq = args.log_dir / "runs-previous.csv", args.log_dir / "runs-previous.parquet"
        ids = pd.read_parquet(pq, columns=["task_id"])["task_id"]
        n, tasks = len(ids), ids.nunique()
    else:
        d = args.keep or Path(tempfile.mkdtemp())
        d.mkdir(parents=True, exist_ok=True)
        csv, pq, n, tasks = make_log(args.rows, d)
    print(f"log: {n:,} rows, {tasks:,} tasks; CSV {csv.stat().st_size / 1e6:.0f} MB, "
          f"Parquet {pq.stat().st_size / 1e6:.0f} MB")
    impls = {"before": str(args.previous.resolve()), "now": str(ROOT)}
    if args.cli:
        cli_rounds(impls, (csv, pq), args.cli)
        return
    best: dict = {}
    first: dict = {}
    loads = []
    for rnd in range(args.rounds):
        for path in (csv, pq):
            for name, impl in impls.items():
                out = subprocess.run([sys.executable, "-c", CHILD, impl, str(path), str(PRICES),
                                      str(args.repeat)], capture_output=True, text=True,
                                     check=True, env={**os.environ, "PYTHONPATH": ""})
                runs = [tuple(map(float, line.split())) for line in out.stdout.strip().splitlines()]
                load = os.getloadavg()[0]
                loads.append(load)
                key = (name, path.suffix[1:])
                w, c = best.get(key, (float("inf"), float("inf")))
                best[key] = (min([w] + [r[0] for r in runs]), min([c] + [r[1] for r in runs]))
                first.setdefault(key, []).append(runs[0])
                print(f"round {rnd + 1} {name:6s} {path.suffix[1:]:7s} "
                      + " ".join(f"{r[0]:.2f}/{r[1]:.2f}" for r in runs)
                      + f"  (wall/cpu s; load {load:.1f})", flush=True)
    print(f"\nbest over {args.rounds} rounds x {args.repeat} runs (load average "
          f"{min(loads):.1f}-{max(loads):.1f}):")
    print("| log | before (wall / cpu) | now (wall / cpu) | now / before (wall) "
          "| now / before (cpu) |")
    print("|---|---:|---:|---:|---:|")

    def rng(xs):
        return f"{min(xs):.2f}-{max(xs):.2f}"

    for fmt, label in (("csv", "CSV"), ("parquet", "Parquet")):
        bw, bc = best[("before", fmt)]
        nw, nc = best[("now", fmt)]
        print(f"| {label}, best call | {bw:.2f} s / {bc:.2f} s | {nw:.2f} s / {nc:.2f} s | "
              f"{nw / bw:.2f}x | {nc / bc:.2f}x |")
    for fmt, label in (("csv", "CSV"), ("parquet", "Parquet")):
        b, nw = first[("before", fmt)], first[("now", fmt)]
        ratio = sorted(x[1] / y[1] for x, y in zip(nw, b))     # same round, same load
        wr = sorted(x[0] / y[0] for x, y in zip(nw, b))
        print(f"| {label}, first call of a process | {rng([x[0] for x in b])} s / "
              f"{rng([x[1] for x in b])} s | {rng([x[0] for x in nw])} s / "
              f"{rng([x[1] for x in nw])} s | {wr[0]:.2f}-{wr[-1]:.2f}x | "
              f"{ratio[0]:.2f}-{ratio[-1]:.2f}x |")


if __name__ == "__main__":
    main()
