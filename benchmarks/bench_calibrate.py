"""Speed of `costsim calibrate` on a 1M-row runs log.

    python benchmarks/bench_calibrate.py [--rows 1000000] [--repeat 3] [--keep DIR]

Simulates the log with tests/logsim.py (bundled medium-team workload, cheapest-routing policy:
summaries, signals, reviewer changes, timestamps), once with one row per attempt and once with
one row per call, each cut to --rows rows of whole tasks, writes CSV and Parquet, and times
`read_log` (read + validate) and the whole `calibrate()` (measure, fit, fit check,
recommendations), best of --repeat, wall clock and CPU time of the process (all threads).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

PRICES = ROOT / "pricing" / "default.yaml"
WORKLOAD = ROOT / "workloads" / "medium-team.yaml"
POLICY = ROOT / "policies" / "cheapest-routing.yaml"


def make_log(rows: int, mode: str):
    from logsim import simulate_log

    per_task = 28.0 if mode == "call" else 12.0        # rows per task, about
    df = simulate_log(PRICES, WORKLOAD, POLICY, tasks=int(rows / per_task * 1.05) + 10,
                      seed=1, rows=mode)
    cut = df["task_id"].iloc[min(rows, len(df)) - 1]
    return df[df["task_id"] <= cut].reset_index(drop=True)


def best_of(fn, repeat):
    wall = cpu = float("inf")
    out = None
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        wall = min(wall, time.perf_counter() - w)
        cpu = min(cpu, time.process_time() - c)
    return wall, cpu, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", type=Path, default=None)
    args = ap.parse_args()
    import duckdb
    import pandas as pd

    from costsim.calibrate import calibrate
    from costsim.logs.runslog import read_log
    from logsim import write_log

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from machine import describe

    print(f"machine: {describe()}, pandas {pd.__version__}, DuckDB {duckdb.__version__}")
    d = args.keep or Path(tempfile.mkdtemp())
    d.mkdir(parents=True, exist_ok=True)
    for mode in ("attempt", "call"):
        df = make_log(args.rows, mode)
        print(f"{mode} rows: {len(df):,} rows, {df['task_id'].nunique():,} tasks")
        for ext in ("csv", "parquet"):
            path = d / f"runs-{mode}.{ext}"
            write_log(df, path)

            def read():
                log = read_log(path)
                log.close()

            rw, rc, _ = best_of(read, args.repeat)
            cw, cc, res = best_of(lambda: calibrate(path, prices=PRICES), args.repeat)
            print(f"  {ext:8s} ({path.stat().st_size / 1e6:5.0f} MB)  read+validate "
                  f"{rw:5.2f} s (cpu {rc:5.2f} s)   calibrate total {cw:5.2f} s (cpu "
                  f"{cc:5.2f} s)   load {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
