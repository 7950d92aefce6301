"""Measure how tasks differ on the public OpenHands data: the `variation` of the bundled workloads.

    python scripts/measure_variation.py [--data FILE]

The data (``openhands_instances_dev.csv`` of the shared data folder; see docs/defaults.md) hold
per-instance cost and outcome of ~40 agent configs that each ran the same instances of four
benchmarks. Each benchmark becomes a runs log exactly as benchmarks/fidelity_openhands.py builds
it (``run`` = ``model`` = the config, one phase, one attempt per run, the recorded cost), and
costsim's maximum-likelihood fit (costsim/calibrate/variation.py) measures, per benchmark:

- ``difficulty`` (s): how the configs' outcomes on one instance hang together;
- ``tokens`` (t): the spread of one run's size (its cost relative to the config's typical cost,
  on a log scale);
- ``tokens_follow_difficulty`` (r): the part of that spread that goes with difficulty.

The bundled workloads carry the mean over the three coding benchmarks (commit0,
swe-bench-multimodal, swt-bench; gaia, a general-assistant benchmark, is shown but left out).

With ``--aider FILE`` (``aider_polyglot_leaderboard.yml``) it also prints, for each row of the
"aider-strong" set (docs/defaults.md), the ``feedback_gain`` g that reproduces the row's
``pass_rate_2`` from its ``pass_rate_1`` when tasks differ by the measured difficulty spread: a
retry's rule value ``p1 + (1 - p1) g`` is a rate over all tasks, and the second try runs on the
tasks the first one failed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from costsim.logs.attempts import read_attempts  # noqa: E402
from costsim.calibrate.variation import fit_variation, tables_from_records  # noqa: E402
from fidelity_openhands import default_data, load_records, runs_log  # noqa: E402

CODING = ("commit0", "swe-bench-multimodal", "swt-bench")


def aider_gains(path: Path, s: float) -> list[tuple[str, float, float, float]]:
    """(row, pass_rate_1, pass_rate_2, g) for the aider-strong rows, with difficulty spread s."""
    import numpy as np
    import yaml
    from scipy.optimize import brentq

    rows = yaml.safe_load(path.read_text())
    sel = [r for r in rows if str(r.get("date")) >= "2025-05-01" and r["pass_rate_2"] >= 70
           and "architect" not in str(r.get("edit_format", ""))]
    z = np.linspace(-9, 9, 3601)
    w = np.exp(-z * z / 2)
    w /= w.sum()

    def sig(x):
        return 1 / (1 + np.exp(-x))

    def b_of(p):      # the per-task intercept whose average over tasks is p
        return brentq(lambda b: w @ sig(b - s * z) - p, -60, 60)

    out = []
    for r in sel:
        p1, p2 = r["pass_rate_1"] / 100, r["pass_rate_2"] / 100
        f1 = 1 - sig(b_of(p1) - s * z)
        g = brentq(lambda g: 1 - w @ (f1 * (1 - sig(b_of(p1 + (1 - p1) * g) - s * z))) - p2,
                   0.0, 1 - 1e-9)
        out.append((str(r["model"]), p1, p2, g))
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=default_data())
    ap.add_argument("--aider", type=Path, default=None,
                    help="aider_polyglot_leaderboard.yml: also print feedback_gain per row")
    args = ap.parse_args(argv)
    if args.data is None or not args.data.exists():
        sys.exit("no data: pass --data FILE (openhands_instances_dev.csv)")
    records, _ = load_records(args.data)
    fits = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, g in records.groupby("benchmark", sort=True):
            path = Path(tmp) / "log.csv"
            runs_log(g).to_csv(path, index=False)
            outcomes, sizes = tables_from_records(read_attempts(path).frame)
            fits[name] = f = fit_variation(outcomes, sizes)
            print(f"| {name} | {g['config'].nunique()} | {g['instance'].nunique()} | "
                  f"{f.difficulty:.2f} ± {f.se_difficulty:.2f} | {f.tokens:.2f} | "
                  f"{f.tokens_follow_difficulty:.2f} |")
    coding = [fits[b] for b in CODING if b in fits]
    if coding:
        mean = {k: sum(getattr(f, k) for f in coding) / len(coding)
                for k in ("difficulty", "tokens", "tokens_follow_difficulty")}
        print(f"| mean of {', '.join(b for b in CODING if b in fits)} | | | "
              f"{mean['difficulty']:.2f} | {mean['tokens']:.2f} | "
              f"{mean['tokens_follow_difficulty']:.2f} |")
        if args.aider is not None:
            gains = aider_gains(args.aider, round(mean["difficulty"], 2))
            for name, p1, p2, g in gains:
                print(f"| {name} | {100 * p1:.1f} | {100 * p2:.1f} | {g:.3f} |")
            gs = sorted(g for *_, g in gains)
            print(f"feedback_gain over {len(gs)} rows: mean {sum(gs) / len(gs):.3f}, "
                  f"median {gs[len(gs) // 2]:.3f}")


if __name__ == "__main__":
    main()
