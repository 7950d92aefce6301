"""Write docs/examples/replay-runs.csv: the runnable example log of `costsim compare --engine
replay` (README, docs/replay.md).

Three models each ran the same 300 bugfix tasks (one run per model, `run` = single:MODEL), so
the log pairs their outcomes. The rows are simulated by tests/logsim.py (the project's
independent simulator of the cost model) from the bundled price table and the small workload
below, with task variation, so that cheap failures are the hard tasks, as in real benchmark
data. Deterministic: rerun it and the file does not change.

    python scripts/make_replay_example.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import logsim  # noqa: E402

WORKLOAD = {
    "version": 1, "name": "replay-example", "max_attempts": 3, "system_tokens": 4000,
    "cache_hit_rate": 0.6, "feedback_gain": 0.3,
    "signals": {"cross_file": {"share": 0.3, "difficulty": 8}},
    "variation": {"difficulty": 1.5, "tokens": 0.6, "tokens_follow_difficulty": 0.5},
    "task_types": [{"name": "bugfix", "share": 1.0, "phases": [
        {"phase": "implement", "calls": 6, "input_tokens": 2500, "output_tokens": 900,
         "difficulty": 60}]}],
}
MODELS = ("deepseek-v4-flash", "claude-sonnet-5", "claude-opus-5")


def main() -> None:
    df = logsim.simulate_log(ROOT / "pricing" / "default.yaml", WORKLOAD,
                             [f"single:{m}" for m in MODELS], tasks=300, seed=2026,
                             rows="attempt", cost=True, changes_on="none")
    df["cost_usd"] = df["cost_usd"].round(6)
    out = ROOT / "docs" / "examples" / "replay-runs.csv"
    logsim.write_log(df, out)
    print(f"wrote {out} ({len(df):,} rows)")


if __name__ == "__main__":
    main()
