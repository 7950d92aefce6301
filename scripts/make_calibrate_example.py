"""Regenerate docs/examples/calibrate-runs.csv, the example runs log of docs/calibrate.md.

    python scripts/make_calibrate_example.py

120 tasks of the bundled medium-team workload run under the bundled cheapest-routing policy,
simulated by tests/logsim.py (the test suite's own implementation of the cost model): one row
per call, summarizer calls, signals, reviewer changes and timestamps over two weeks.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from logsim import simulate_log, write_log  # noqa: E402


def main() -> None:
    df = simulate_log(ROOT / "pricing" / "default.yaml", ROOT / "workloads" / "medium-team.yaml",
                      ROOT / "policies" / "cheapest-routing.yaml", tasks=120, seed=2026,
                      rows="call", start="2026-10-05T09:00:00Z", days=14.0)
    out = ROOT / "docs" / "examples" / "calibrate-runs.csv"
    write_log(df, out)
    print(f"wrote {out}: {len(df):,} rows, {df['task_id'].nunique()} tasks")


if __name__ == "__main__":
    main()
