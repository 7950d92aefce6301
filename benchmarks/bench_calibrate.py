"""Speed of `costsim calibrate` on a synthetic runs log (default 1M rows).

    python benchmarks/bench_calibrate.py [--rows 1000000] [--keep DIR]

Generates the log with NumPy (4 task types x 4 phases, 3 models, up to 3 attempts per phase,
timestamps over 12 weeks), writes it as CSV and Parquet, and times `calibrate()` on each
(best of 3), split into reading/validation and the rest.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
PRICES = ROOT / "tests" / "fixtures" / "calibrate_prices.yaml"


def synthetic_log(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    phases = np.array(["search", "implement", "test_repair", "review"])
    types = np.array(["bugfix", "feature", "refactor", "docs"])
    models = np.array(["cheap", "mid", "top"])
    p1 = np.array([0.95, 0.45, 0.6, 0.9])            # first-try success per phase
    route = np.array([0, 0, 1, 2])                   # start model per phase
    n_tasks = int(rows / 5.0)        # ~5.4 attempts per task; cut to `rows` below
    task = np.repeat(np.arange(n_tasks), 4)
    phase = np.tile(np.arange(4), n_tasks)
    ttype = rng.integers(0, 4, n_tasks)[task]
    a = np.ones_like(task)
    out = []
    alive = np.ones(len(task), bool)
    total = 0
    for k in (1, 2, 3):
        ok = rng.random(len(task)) < (p1[phase] + (1 - p1[phase]) * 0.4 * (k > 1))
        m = np.minimum(route[phase] + (k == 3), 2)
        idx = np.flatnonzero(alive)
        out.append(pd.DataFrame({"task": task[idx], "phase": phase[idx], "ttype": ttype[idx],
                                 "attempt": k, "model": m[idx], "success": ok[idx]}))
        total += len(idx)
        alive &= ~ok
    df = pd.concat(out, ignore_index=True)
    if len(df) > rows:
        df = df.iloc[:rows]
    n = len(df)
    start = np.datetime64("2026-01-05T00:00:00")
    ts = start + (df["task"].to_numpy() * (84 * 86400 // max(n_tasks, 1))).astype("timedelta64[s]")
    return pd.DataFrame({
        "task_id": "t" + df["task"].astype(str),
        "task_type": types[df["ttype"].to_numpy()],
        "phase": phases[df["phase"].to_numpy()],
        "attempt": df["attempt"].to_numpy(),
        "model": models[df["model"].to_numpy()],
        "input_tokens": rng.integers(1000, 20000, n),
        "cached_input_tokens": rng.integers(0, 10000, n),
        "output_tokens": rng.integers(100, 3000, n),
        "success": df["success"].to_numpy(),
        "reviewer_changes": np.where(df["phase"].to_numpy() == 3, rng.integers(0, 3, n), -1),
        "timestamp": pd.to_datetime(ts, utc=True).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }).assign(reviewer_changes=lambda d: d["reviewer_changes"].where(d["reviewer_changes"] >= 0))


def best_of(fn, repeat=3):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--keep", type=Path, default=None)
    args = ap.parse_args()
    from costsim.calibrate import calibrate
    from costsim.logs.runslog import read_log

    from machine import describe

    print(f"machine: {describe()}, pandas {pd.__version__}")
    d = args.keep or Path(tempfile.mkdtemp())
    d.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    df = synthetic_log(args.rows)
    print(f"generated {len(df):,} rows, {df['task_id'].nunique():,} tasks "
          f"in {time.perf_counter() - t:.1f}s")
    csv, pq = d / "runs.csv", d / "runs.parquet"
    df.to_csv(csv, index=False)
    df.to_parquet(pq)
    for path in (csv, pq):
        t_read, _ = best_of(lambda: read_log(path))
        t_all, res = best_of(lambda: calibrate(path, prices=PRICES))
        print(f"{path.suffix[1:]:8s} read+validate {t_read:5.2f}s   calibrate total {t_all:5.2f}s"
              f"   ({len(res.recommendations)} recommendations, {len(res.weekly)} weeks)")


if __name__ == "__main__":
    main()
