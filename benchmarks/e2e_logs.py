"""Issue 12's check at a size where the fit can be judged: logs of every source written from a
known truth (tests/sessions_sim.py), then `costsim log import`, `calibrate` and `compare` as a
user runs them, each figure set beside the truth.

    python benchmarks/e2e_logs.py [--tasks 400] [--seed 11]

Per source: whether the imported log carries the truth exactly (tokens per run, task and model;
stated cost to 1e-9; duplicates, malformed lines); calibrate's measured figures against the
truth (tasks, completion, spend, cost per completed task, tasks without outcome); compare's
figures for the log's own strategy on the fitted workload against the log's, in standard errors
of the log's own measurement (binomial for completion, the ratio estimator's linearisation for
cost per completed task); and the seconds each step took. tests/test_logs_e2e.py runs the same
chain on ~12 tasks per source; the figures of this script are in docs/logs.md.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import pyarrow.parquet as pq  # noqa: E402
import sessions_sim as sim  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from costsim.cli import app  # noqa: E402

runner = CliRunner()


def invoke(args):
    t0 = time.perf_counter()
    res = runner.invoke(app, [str(a) for a in args])
    if res.exit_code != 0:
        raise SystemExit(f"{' '.join(map(str, args))}\n{res.output}")
    return res, time.perf_counter() - t0


def exact_import(truth, rows) -> bool:
    want, got = sim.truth_totals(truth), sim.row_totals(rows)
    return sorted(got) == sorted(want) and all(
        got[k][:3] == w[:3] and abs(got[k][3] - w[3]) < 1e-9 for k, w in want.items())


def errors(tasks) -> tuple[float, float]:
    known = [t for t in tasks if t.outcome is not None]
    n, k = len(known), sum(t.outcome for t in known)
    p = (k + 1) / (n + 2)
    r = sum(t.spend() for t in known) / k
    return (math.sqrt(p * (1 - p) / n),
            math.sqrt(sum((t.spend() - r * t.outcome) ** 2 for t in known)) / k)


def one(name: str, n: int, seed: int, root: Path) -> list[dict]:
    truth = sim.SOURCES[name](root / "in", n=n, seed=seed)
    prices = root / "prices.yaml"
    prices.write_text(sim.prices_yaml())
    out = root / "runs.parquet"
    args = ["log", "import", "--source", truth.source, *truth.paths, "--out", out,
            "--prices", prices, "--format", "json"]
    if truth.outcomes:
        args += ["--outcomes", truth.outcomes]
    res, t_import = invoke(args)
    summary = json.loads(res.stdout)
    rows = pq.read_table(out).to_pylist()
    exact = (exact_import(truth, rows) and summary["duplicates"] == truth.duplicates
             and summary["skipped"] == truth.malformed)
    cost_only = all(c.input == c.out == 0 for t in truth.tasks for c in t.calls)
    cal = ["calibrate", out, "--prices", prices, "--format", "json",
           "--write-workload", root / "fitted.yaml"]
    if cost_only:
        cal += ["--write-prices", root / "fitted-prices.yaml"]
    res, t_cal = invoke(cal)
    report = json.loads(res.stdout)
    want = sim.expected_calibrate(truth)
    o, w = report["overall"], want["overall"]
    cal_ok = (o["tasks"] == w["tasks"] and o["completed"] == w["completed"]
              and abs(o["spend"] - w["spend"]) < 1e-9
              and abs(o["cost_per_completed_task"] - w["cost_per_completed_task"]) < 1e-9
              and o["tasks_without_outcome"] == w["tasks_without_outcome"])
    files, strategies = sim.compare_policies(report, root)
    cmp = ["compare", "--workload", root / "fitted.yaml", "--format", "json", "--prices",
           root / "fitted-prices.yaml" if cost_only else prices]
    cmp += [x for f in files for x in ("--policy", f)]
    res, t_cmp = invoke(cmp)
    got = {s["name"]: s for s in json.loads(res.stdout)["strategies"]}
    out_rows = []
    for strategy, run in strategies.items():
        se_c, se_r = errors(truth.by_run()[run])
        s, lw = got[strategy], want["by_run"][run]
        out_rows.append({
            "source": name, "run": run if len(strategies) > 1 else "", "tasks": lw["tasks"],
            "rows": summary["rows"], "exact": exact, "calibrate": cal_ok,
            "no_outcome": w["tasks_without_outcome"],
            "completion": (lw["completion_rate"], s["completion_rate"],
                           (s["completion_rate"] - lw["completion_rate"]) / se_c),
            "cpct": (lw["cost_per_completed_task"], s["cost_per_completed_task"],
                     (s["cost_per_completed_task"] - lw["cost_per_completed_task"]) / se_r),
            "seconds": (t_import, t_cal, t_cmp)})
    return out_rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=400)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--sources", nargs="*", default=list(sim.SOURCES))
    a = ap.parse_args()
    print(f"{a.tasks} tasks per source (per run for benchmark results), seed {a.seed}\n")
    print("| source | run | tasks | rows | import exact | calibrate = truth | no outcome "
          "| completion log → compare (z) | cost/completed log → compare (z) "
          "| import / calibrate / compare s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in a.sources:
        with tempfile.TemporaryDirectory(prefix=f"e2e-{name}-") as tmp:
            for r in one(name, a.tasks, a.seed, Path(tmp)):
                c, k = r["completion"], r["cpct"]
                print(f"| {r['source']} | {r['run']} | {r['tasks']} | {r['rows']} "
                      f"| {'yes' if r['exact'] else 'NO'} | {'yes' if r['calibrate'] else 'NO'} "
                      f"| {r['no_outcome']} | {c[0]:.1%} → {c[1]:.1%} ({c[2]:+.2f}) "
                      f"| ${k[0]:.4f} → ${k[1]:.4f} ({k[2]:+.2f}) "
                      f"| {' / '.join(f'{s:.2f}' for s in r['seconds'])} |", flush=True)


if __name__ == "__main__":
    main()
