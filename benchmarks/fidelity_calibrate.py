"""Round trips of `costsim calibrate` over the full matrix, for docs/fidelity.md.

    python benchmarks/fidelity_calibrate.py [--tasks 30000] [--quick]
    python benchmarks/fidelity_calibrate.py --seeds 1-8 --case small-team/cheapest-routing/attempt

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

With ``--ab``: A/B logs instead, each bundled workload with two strategies that split the tasks
between them (two-tier and single:claude-sonnet-5, each on its own half: ``assign="split"``),
per-call and per-attempt rows, both calibrated without --policy; both strategies are "own"
(the worse of the two is shown).

With ``--seeds``: one case (workload/policy/rows; ``attempt`` rows are calibrated with --policy,
``call`` rows without) on logs of several seeds, to tell a bias from noise: per seed the fitted
feedback gain and difficulty spread, and the own policy's completion error taken apart into the
log's own sampling error (the log's plain completion rate minus the true one) and the fit's
(fitted minus the log's); then the mean, sd and standard error of each over the seeds.
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


def _seed_list(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def seeds_study(case: str, seeds: list[int], tasks: int) -> None:
    """One case over several seeds (see the module docstring)."""
    import statistics as st

    from logsim import measure_log

    from calibrate_logs import PRICES
    from costsim.api import compare
    from costsim.loader import load_policy

    wname, pname, rows = case.split("/")
    w = (CAL_FIXTURES / "workload_maps.yaml" if wname == "workload_maps"
         else ROOT / "workloads" / f"{wname}.yaml")
    p = (CAL_FIXTURES / "policy_fast.yaml" if pname == "policy_fast"
         else ROOT / "policies" / f"{pname}.yaml")
    name = load_policy(p).name
    truth = compare(prices=PRICES, policies=[p], workload=w, models=[]).get(name)
    print("| seed | feedback_gain | variation.difficulty | own completion: fitted - true | "
          "log - true | fitted - log | own cost |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    cols: dict = {k: [] for k in ("gain", "s", "comp", "log", "fit", "cost")}
    for seed in seeds:
        d = Path(tempfile.mkdtemp())
        res, out, paths = roundtrip(d, w, p, rows=rows, tasks=tasks, seed=seed,
                                    with_policy=rows == "attempt", single_models=[],
                                    policies=[])
        own = next(r for r in out if r["own"])
        log = measure_log(paths["log"], PRICES)["completion_rate"] - truth.completion_rate
        v = res.workload.variation
        row = {"gain": res.fitted["feedback_gain"], "s": v.difficulty if v else 0.0,
               "comp": 100 * own["completion"], "log": 100 * log,
               "fit": 100 * (own["completion"] - log), "cost": 100 * own["cost"]}
        for k, x in row.items():
            cols[k].append(x)
        print(f"| {seed} | {row['gain']:.4f} | {row['s']:.3f} | {row['comp']:+.2f} | "
              f"{row['log']:+.2f} | {row['fit']:+.2f} | {row['cost']:+.2f}% |", flush=True)
    if len(seeds) > 1:
        for label, f in (("mean", st.mean), ("sd", st.stdev),
                         ("se", lambda x: st.stdev(x) / len(x) ** 0.5)):
            v = {k: f(x) for k, x in cols.items()}
            print(f"| {label} | {v['gain']:.4f} | {v['s']:.3f} | {v['comp']:+.2f} | "
                  f"{v['log']:+.2f} | {v['fit']:+.2f} | {v['cost']:+.2f}% |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=30_000)
    ap.add_argument("--quick", action="store_true", help="every fifth case only")
    ap.add_argument("--ab", action="store_true",
                    help="A/B logs: two strategies splitting the tasks, per bundled workload")
    ap.add_argument("--seeds", help="one case over these seeds, e.g. 1-8 or 1,3,5")
    ap.add_argument("--case", default="small-team/cheapest-routing/attempt",
                    help="with --seeds: workload/policy/rows (call or attempt)")
    args = ap.parse_args()
    from machine import describe

    if args.seeds:
        print(f"machine: {describe()}; {args.tasks:,} tasks per log; {args.case}\n")
        seeds_study(args.case, _seed_list(args.seeds), args.tasks)
        return

    print(f"machine: {describe()}; {args.tasks:,} tasks per log\n")
    print("| workload | log's policy | rows | --policy | own cost | own completion | "
          "own defects | others: worst cost | others: worst completion | within |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|---|")
    worst = {"own_cost": 0.0, "own_comp": 0.0, "own_def": 0.0, "cost": 0.0, "comp": 0.0}
    n_ok = n = 0
    t0 = time.perf_counter()
    todo = cases(args.quick)
    if args.ab:
        todo = [(ROOT / "workloads" / f"{w}-team.yaml",
                 [ROOT / "policies" / "two-tier.yaml", "single:claude-sonnet-5"])
                for w in ("small", "medium", "large")]
    for case, (w, p) in enumerate(todo):
        for rows, with_policy in (("call", False), ("attempt", not args.ab)):
            seed = 2 * case + (rows == "attempt")
            d = Path(tempfile.mkdtemp())
            _, res, _ = roundtrip(d, w, p, rows=rows, tasks=args.tasks, seed=seed,
                                  with_policy=with_policy,
                                  **({"assign": "split"} if args.ab else {}))
            own = max((r for r in res if r["own"]), key=lambda r: abs(r["completion"]))
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
            name = (" / ".join(Path(str(x)).stem if not str(x).startswith("single:") else str(x)
                               for x in p) + " (A/B)") if args.ab else p.stem
            print(f"| {w.stem} | {name} | {rows} | {'yes' if with_policy else 'no'} | "
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
