"""Round trips of `costsim calibrate` over the full matrix, for docs/fidelity.md.

    python benchmarks/fidelity_calibrate.py [--tasks 30000] [--quick]

For every bundled workload x bundled policy (plus tests/fixtures/calibrate's workload and
policy, unlike the bundled ones), twice: per-call rows calibrated without --policy (the policy
is read back from the log) and per-attempt rows with --policy, each its own simulated log (the
same seed would give the same fit in both row modes: tests/test_calibrate_roundtrip.py checks
it). Simulate the log with tests/logsim.py (its own implementation of the cost model), calibrate it,
write the fitted workload, then `compare` every bundled policy, the log's policy and the single
models of the log's tiers on the fitted workload against the same strategies on the true one.
Prints one Markdown row per case: the log's policy's errors (cost per completed task,
completion, defect rate) and the largest errors over every other strategy, with the issue's
thresholds (own: 3% / 0.5 points / 15% or 0.3 points; others: 5% / 1 point).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from calibrate_logs import CAL_FIXTURES, misses, roundtrip  # noqa: E402


def cases(quick: bool):
    workloads = [ROOT / "workloads" / f"{w}-team.yaml" for w in ("small", "medium", "large")]
    policies = sorted((ROOT / "policies").glob("*.yaml"))
    out = []
    for w in workloads:
        for p in policies:
            out.append((w, p))
    out.append((CAL_FIXTURES / "workload_maps.yaml", CAL_FIXTURES / "policy_fast.yaml"))
    if quick:
        out = out[::5]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=30_000)
    ap.add_argument("--quick", action="store_true", help="every fifth case only")
    args = ap.parse_args()
    from machine import describe

    print(f"machine: {describe()}; {args.tasks:,} tasks per log\n")
    print("| workload | log's policy | rows | --policy | own cost | own completion | "
          "own defects | others: worst cost | others: worst completion | within |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|---|")
    worst = {"own_cost": 0.0, "own_comp": 0.0, "own_def": 0.0, "cost": 0.0, "comp": 0.0}
    n_ok = n = 0
    t0 = time.perf_counter()
    for case, (w, p) in enumerate(cases(args.quick)):
        for rows, with_policy in (("call", False), ("attempt", True)):
            seed = 2 * case + (rows == "attempt")
            d = Path(tempfile.mkdtemp())
            _, res, _ = roundtrip(d, w, p, rows=rows, tasks=args.tasks, seed=seed,
                                  with_policy=with_policy)
            own = next(r for r in res if r["own"])
            others = [r for r in res if not r["own"]]
            wc = max(others, key=lambda r: abs(r["cost"]))
            wp = max(others, key=lambda r: abs(r["completion"]))
            bad = misses(res)
            n += 1
            n_ok += not bad
            worst["own_cost"] = max(worst["own_cost"], abs(own["cost"]))
            worst["own_comp"] = max(worst["own_comp"], abs(own["completion"]))
            rel = abs(own["defect"]) / own["true_defect"] if own["true_defect"] else 0.0
            worst["own_def"] = max(worst["own_def"], rel)
            worst["cost"] = max(worst["cost"], abs(wc["cost"]))
            worst["comp"] = max(worst["comp"], abs(wp["completion"]))
            print(f"| {w.stem} | {p.stem} | {rows} | {'yes' if with_policy else 'no'} | "
                  f"{own['cost']:+.2%} | {100 * own['completion']:+.2f} | "
                  f"{100 * own['defect']:+.2f} pt ({rel:.0%}) | {wc['cost']:+.2%} "
                  f"({wc['name']}) | {100 * wp['completion']:+.2f} ({wp['name']}) | "
                  f"{'yes' if not bad else '; '.join(bad)} |", flush=True)
    print(f"\n{n_ok} of {n} cases within every threshold; worst: own cost "
          f"{worst['own_cost']:.2%}, own completion {100 * worst['own_comp']:.2f} points, own "
          f"defect rate {worst['own_def']:.0%}, others' cost {worst['cost']:.2%}, others' "
          f"completion {100 * worst['comp']:.2f} points; {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
