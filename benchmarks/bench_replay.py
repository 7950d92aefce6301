"""Speed of `costsim compare --engine replay` on a paired runs log.

    python benchmarks/bench_replay.py [--tasks 30000] [--bootstrap 1000] [--repeat 3]

The log: the bundled medium-team workload (with a task variation) run by the three bundled
models, every task by each (``run`` = ``single:MODEL``), one row per attempt, simulated by
tests/logsim.py and written as CSV and Parquet. Timed (best of --repeat): reading the log into
attempt records, indexing them, replaying the bundled policies and every single model, the
bootstrap, and the whole `compare()` call.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import logsim  # noqa: E402
from costsim.api import compare, load_inputs, strategies_for  # noqa: E402
from costsim.engine.replay import bootstrap, max_attempts, prepare, replay_strategy  # noqa: E402
from costsim.engine.compile import strategy_handoff  # noqa: E402
from costsim.logs.attempts import read_attempts  # noqa: E402
from machine import describe  # noqa: E402

MODELS = ("deepseek-v4-flash", "claude-sonnet-5", "claude-opus-5")


def best(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=30_000)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    print(describe())
    wl = yaml.safe_load((ROOT / "workloads" / "medium-team.yaml").read_text())
    wl["variation"] = {"difficulty": 1.5, "tokens": 0.7, "tokens_follow_difficulty": 0.4}
    df = logsim.simulate_log(ROOT / "pricing" / "default.yaml", wl,
                             [f"single:{m}" for m in MODELS], tasks=args.tasks, seed=1,
                             rows="attempt", cost=True)
    print(f"{args.tasks:,} tasks x {len(MODELS)} runs: {len(df):,} rows")
    table, _, workload, _, pols = load_inputs()
    strategies = strategies_for(table, pols, MODELS)
    with tempfile.TemporaryDirectory() as tmp:
        for ext in ("csv", "parquet"):
            path = Path(tmp) / f"runs.{ext}"
            logsim.write_log(df, path)
            t_read, rec = best(lambda: read_attempts(path, table), args.repeat)
            t_prep, log = best(lambda: prepare(rec), args.repeat)
            K = max_attempts(log, None)

            def replay_all():
                return [replay_strategy(log, s, K, (lambda h: h[1] if h[0].mode == "summary"
                                                    else None)(strategy_handoff(s, workload)))
                        for s in strategies]

            t_rep, outs = best(replay_all, args.repeat)
            t_boot, _ = best(lambda: bootstrap(outs, args.bootstrap, 0), args.repeat)
            t_all, _ = best(lambda: compare(engine="replay", log=path,
                                            bootstrap=args.bootstrap), args.repeat)
            print(f"{ext}: read {t_read:.2f} s, index {t_prep:.2f} s, replay "
                  f"{len(strategies)} strategies {t_rep:.2f} s, bootstrap x{args.bootstrap} "
                  f"{t_boot:.2f} s; compare() in all {t_all:.2f} s")


if __name__ == "__main__":
    main()
