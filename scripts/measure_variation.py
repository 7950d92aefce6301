"""Measure how tasks differ on the public OpenHands data: the `variation` of the bundled workloads.

    python scripts/measure_variation.py [--data FILE]

The data (``openhands_instances_dev.csv`` of the shared data folder; see docs/defaults.md) hold
per-instance cost and outcome of ~40 agent configs that each ran the same instances of four
benchmarks. Each benchmark becomes a runs log exactly as benchmarks/fidelity_openhands.py builds
it (``run`` = ``model`` = the config, one phase, one attempt per run, the recorded cost), and
costsim's maximum-likelihood fit (costsim/variation_fit.py) measures, per benchmark:

- ``difficulty`` (s): how the configs' outcomes on one instance hang together;
- ``tokens`` (t): the spread of one run's size (its cost relative to the config's typical cost,
  on a log scale);
- ``tokens_follow_difficulty`` (r): the part of that spread that goes with difficulty.

The bundled workloads carry the mean over the three coding benchmarks (commit0,
swe-bench-multimodal, swt-bench; gaia, a general-assistant benchmark, is shown but left out).
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
from costsim.variation_fit import fit_variation, tables_from_records  # noqa: E402
from fidelity_openhands import default_data, load_records, runs_log  # noqa: E402

CODING = ("commit0", "swe-bench-multimodal", "swt-bench")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=default_data())
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


if __name__ == "__main__":
    main()
