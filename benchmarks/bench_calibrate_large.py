"""`costsim calibrate` on a large Parquet runs log: wall time and peak memory.

    python benchmarks/bench_calibrate_large.py [--rows 50000000] [--keep DIR] [--engine E]

Writes the log with DuckDB straight to Parquet (never held in Python): tasks of 4 task types
x 4 phases, 3 models, up to 3 attempts per phase (a hash of the task decides each outcome, the
third attempt escalates), tokens and timestamps over 12 weeks, reviewer changes on review rows.
Then runs `calibrate` in a fresh process and reports its wall time and peak resident memory
(``ru_maxrss`` of that process: Python, pandas and DuckDB together).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PRICES = ROOT / "tests" / "fixtures" / "calibrate_prices.yaml"

CHILD = """
import json, sys, time
from costsim.calibrate import calibrate
t = time.perf_counter()
kw = {} if sys.argv[3] == "duckdb" else {"engine": sys.argv[3]}
res = calibrate(sys.argv[1], prices=sys.argv[2], **kw)
print(json.dumps({"seconds": time.perf_counter() - t, "tasks": res.overall["tasks"],
                  "completion": res.overall["completion_rate"],
                  "cost": res.overall["cost_per_completed_task"]}))
"""


def write_log(path: Path, rows: int) -> int:
    """About ``rows`` attempt rows (4 phases x ~1.3 attempts per task); returns the count."""
    import duckdb

    tasks = max(1, int(rows / 5.2))
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"""
        COPY (
          WITH t AS (SELECT range AS i FROM range({tasks})),
          ph AS (SELECT i, p FROM t, (VALUES (0), (1), (2), (3)) v(p)),
          pr AS (SELECT i, p,
                   -- attempt at which the phase succeeds (4: never, within 3 attempts)
                   CASE WHEN (hash(i, p, 1) % 1000)::BIGINT < [950, 450, 600, 900][p + 1] THEN 1
                        WHEN (hash(i, p, 2) % 1000)::BIGINT < 780 THEN 2
                        WHEN (hash(i, p, 3) % 1000)::BIGINT < 700 THEN 3 ELSE 4 END AS ok_at
                 FROM ph),
          -- a task stops at the first phase that ran out of attempts
          stop AS (SELECT i, MIN(CASE WHEN ok_at = 4 THEN p END) AS dead FROM pr GROUP BY i),
          a AS (SELECT pr.i, pr.p, pr.ok_at, unnest(range(1, LEAST(pr.ok_at, 3) + 1)) AS k
                FROM pr JOIN stop USING (i) WHERE stop.dead IS NULL OR pr.p <= stop.dead)
          SELECT 't' || i AS task_id,
                 ['bugfix', 'feature', 'refactor', 'docs'][(hash(i) % 4)::BIGINT + 1] AS task_type,
                 ['search', 'implement', 'test_repair', 'review'][p + 1] AS phase,
                 k AS attempt,
                 ['cheap', 'mid', 'top'][LEAST([0, 0, 1, 2][p + 1] + (k = 3)::INT, 2) + 1]
                   AS model,
                 1000 + (hash(i, p, k, 7) % 19000)::BIGINT AS input_tokens,
                 (hash(i, p, k, 8) % 1000)::BIGINT AS cached_input_tokens,
                 100 + (hash(i, p, k, 9) % 3900)::BIGINT AS output_tokens,
                 k = ok_at AS success,
                 CASE WHEN p = 3 THEN (hash(i, 11) % 3)::BIGINT END AS reviewer_changes,
                 TIMESTAMP '2026-01-05' + INTERVAL 1 SECOND * (i * 7257600 // {tasks})
                   + INTERVAL 1 MINUTE * (p * 10 + k) AS timestamp
          FROM a
        ) TO '{path}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 1000000)""")
    n = con.execute(f"SELECT count(*) FROM '{path}'").fetchone()[0]
    con.close()
    return n


def run(path: Path, engine: str) -> tuple[float, float, dict]:
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as so:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(PRICES), engine],
                                stdout=so)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status):
            raise SystemExit(f"calibrate failed ({os.waitstatus_to_exitcode(status)})")
        so.seek(0)
        text = so.read()
        got = json.loads(text[text.rindex('{"seconds"'):])
    return wall, usage.ru_maxrss / 1024, got


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=50_000_000)
    ap.add_argument("--keep", type=Path)
    ap.add_argument("--engine", default="duckdb")
    args = ap.parse_args()
    print(describe())
    with tempfile.TemporaryDirectory() as tmp:
        d = args.keep or Path(tmp)
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"runs-{args.rows}.parquet"
        t = time.perf_counter()
        if not path.exists():
            # in a process of its own: DuckDB's COPY grows this process to ~1.6 GB at 50M
            # rows, and a child forked from it starts its peak RSS (what wait4 reports) there
            out = subprocess.run(
                [sys.executable, "-c", "import sys; from pathlib import Path; "
                 f"sys.path.insert(0, {str(Path(__file__).resolve().parent)!r}); "
                 "from bench_calibrate_large import write_log; "
                 "print(write_log(Path(sys.argv[1]), int(sys.argv[2])))",
                 str(path), str(args.rows)], check=True, capture_output=True, text=True)
            n = int(out.stdout.split()[-1])
            print(f"wrote {n:,} rows ({path.stat().st_size / 1e6:,.0f} MB Parquet) in "
                  f"{time.perf_counter() - t:.0f} s")
        wall, peak, got = run(path, args.engine)
        print(f"calibrate ({args.engine}): {wall:.1f} s wall ({got['seconds']:.1f} s in "
              f"calibrate), peak RSS {peak:,.0f} MB; {got['tasks']:,} tasks, completion "
              f"{got['completion']:.3f}, cost/completed {got['cost']:.4f}")


if __name__ == "__main__":
    main()
