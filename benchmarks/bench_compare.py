"""How long `costsim compare` takes on the bundled defaults, end to end and by part.

    python benchmarks/bench_compare.py [--runs 10]

Prints the median wall time of the installed `costsim compare` (a fresh process each run,
so interpreter start-up and imports are included), the import time of the CLI module, and
the in-process time of `costsim.compare()` on the defaults.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time

from machine import describe


def wall(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    exe = shutil.which("costsim")
    cli = [exe, "compare"] if exe else [sys.executable, "-m", "costsim.cli", "compare"]
    print(f"machine: {describe()}")
    print(f"costsim compare (table), median of {args.runs}: {wall(cli, args.runs) * 1000:.0f} ms")
    print(f"costsim compare --format json:            "
          f"{wall(cli + ['--format', 'json'], args.runs) * 1000:.0f} ms")
    print(f"python -c pass (interpreter alone):       "
          f"{wall([sys.executable, '-c', 'pass'], args.runs) * 1000:.0f} ms")
    print(f"import costsim.cli:                       "
          f"{wall([sys.executable, '-c', 'import costsim.cli'], args.runs) * 1000:.0f} ms")
    import costsim

    costsim.compare()  # warm
    t = time.perf_counter()
    n = 20
    for _ in range(n):
        r = costsim.compare()
    dt = (time.perf_counter() - t) / n
    print(f"costsim.compare() in process ({len(r.strategies)} strategies): {dt * 1000:.1f} ms")


if __name__ == "__main__":
    main()
