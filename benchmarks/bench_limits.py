"""Issue 13's tiny-file resource cases: wall time, peak memory and outcome of each.

    python benchmarks/bench_limits.py [--timeout 120]

Each case is a small file that used to take minutes or gigabytes (or never finished). Every
case runs `costsim ...` in a fresh process with a timeout; the peak resident memory comes from
the kernel (getrusage of the child). Owners: the YAML, workload and price-table cases are the
reliability branch's; runs logs, budget scale, optimize on a big table and compare with 100
policies belong to the calibrate, engine and search engineers, whose fixes land separately.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from machine import describe

ROOT = Path(__file__).resolve().parent.parent
FX = ROOT / "tests" / "fixtures"
ENTRY = "from costsim.cli import main; main()"


def alias_bomb() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{cur}: &{cur} [" + ",".join(f"*{prev}" for _ in range(9)) + "]")
    return "\n".join(lines) + "\n"


def cases(d: Path) -> list[tuple[str, list]]:
    P, POL, W = FX / "prices.yaml", FX / "policy.yaml", FX / "workload.yaml"
    base = ["--prices", P, "--policy", POL]
    out = []

    bomb = d / "bomb.yaml"
    bomb.write_text(alias_bomb())
    out.append((f"YAML alias bomb ({len(alias_bomb())} bytes), price-table validate",
                ["price-table", "validate", bomb]))
    deep = d / "deep.yaml"
    deep.write_text("version: 1\nname: w\ntask_types: " + "[" * 100_000 + "]" * 100_000 + "\n")
    out.append(("YAML nested 100,000 deep, compare", ["compare", *base, "--workload", deep]))
    big = d / "bigint.yaml"
    big.write_text(W.read_text().replace("tasks_per_month: 100",
                                         "tasks_per_month: " + "9" * 5000))
    out.append(("integer of 5,000 digits, compare", ["compare", *base, "--workload", big]))
    ma = d / "max_attempts.yaml"
    ma.write_text(W.read_text().replace("max_attempts: 3", "max_attempts: 100000"))
    out.append(("max_attempts: 100000, compare", ["compare", *base, "--workload", ma]))
    diff = d / "difficulty.yaml"
    diff.write_text(W.read_text().replace("difficulty: 20}", "difficulty: 8000}"))
    out.append(("difficulty: 8000, compare", ["compare", *base, "--workload", diff]))
    sig = d / "signals.yaml"
    wl = yaml.safe_load(W.read_text())
    wl["signals"] = {f"s{i}": {"share": 0.5} for i in range(30)}
    sig.write_text(yaml.safe_dump(wl))
    out.append(("30 signals (2^30 combinations), compare", ["compare", *base, "--workload", sig]))
    lim = d / "at_limits.yaml"
    lim.write_text(yaml.safe_dump({
        "version": 1, "name": "limits", "max_attempts": 20,
        "signals": {f"s{i}": {"share": 0.5} for i in range(10)},
        "task_types": [{"name": "t", "share": 1.0, "phases": [
            {"phase": f"p{i}", "calls": 1, "input_tokens": 1, "output_tokens": 1,
             "difficulty": 10} for i in range(48)]}]}))
    out.append(("at the limits: 1,024 cells x 48 phases x 20 attempts, compare (4 strategies)",
                ["compare", *base, "--workload", lim, "--format", "csv"]))

    var = d / "variation_calls.yaml"
    var.write_text(yaml.safe_dump({
        "version": 1, "name": "varied", "max_attempts": 5,
        "variation": {"difficulty": 10, "tokens": 5, "tokens_follow_difficulty": 1},
        "task_types": [{"name": "t", "share": 1.0, "phases": [
            {"phase": "implement", "calls": 1000, "input_tokens": 10000, "output_tokens": 1000,
             "difficulty": 60}]}]}))
    out.append(("variation 10 with 1,000 calls x 5 attempts, compare",
                ["compare", *base, "--workload", var]))
    var_lim = d / "variation_limit.yaml"
    var_lim.write_text(yaml.safe_dump({
        "version": 1, "name": "varied", "max_attempts": 5,
        "variation": {"difficulty": 10, "tokens": 5, "tokens_follow_difficulty": 1},
        "task_types": [{"name": "t", "share": 1.0, "phases": [
            {"phase": "implement", "calls": 130, "input_tokens": 10000, "output_tokens": 1000,
             "difficulty": 60}]}]}))
    out.append(("at the variation limit: 604 nodes x 5 attempts x 130 calls, compare",
                ["compare", *base, "--workload", var_lim, "--format", "csv"]))

    log = d / "runs.csv"
    lines = (ROOT / "docs" / "examples" / "calibrate-runs.csv").read_text().splitlines()[:25]
    col = lines[0].split(",").index("attempt")
    cells = lines[2].split(",")
    cells[col] = "10000000"
    lines[2] = ",".join(cells)
    log.write_text("\n".join(lines) + "\n")
    out.append(("runs log with attempt 10,000,000, calibrate",
                ["calibrate", log, "--min-samples", 1]))
    out.append(("budget --tasks 10^9", ["budget", "--tasks", 10**9]))
    table = d / "big.yaml"
    rows = ["version: 1", "as_of: 2026-11-20", "models:"]
    for i in range(3000):
        tier = ("budget", "midrange", "premium")[i % 3]
        rows.append(f"  m{i}: {{provider: p{i % 7}, tier: {tier}, input: {1 + i % 50}.0, "
                    f"output: {2 + i % 70}.0, coding_score: {40 + i % 55}}}")
    table.write_text("\n".join(rows) + "\n")
    out.append(("optimize on a 3,000-model table", ["optimize", "--prices", table]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--timeout", type=float, default=120.0)
    args = ap.parse_args()
    print(describe())
    print()
    print("| case | outcome | seconds | peak RSS (MB) |")
    print("|---|---|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for label, argv in cases(Path(tmp)):
            # A fresh interpreter per case, so each peak RSS is that case's own.
            code = ("import resource, subprocess, sys, time, json\n"
                    "t0 = time.perf_counter()\n"
                    "try:\n"
                    f"    p = subprocess.run({[sys.executable, '-c', ENTRY] + list(map(str, argv))!r},"
                    " stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,"
                    f" timeout={args.timeout})\n"
                    "    out = f'exit {p.returncode}' + (' (internal error)' if 'internal error'"
                    " in p.stderr else '')\n"
                    "except subprocess.TimeoutExpired:\n"
                    f"    out = 'no answer in {args.timeout:g} s'\n"
                    "print(json.dumps([out, time.perf_counter() - t0,"
                    " resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024]))\n")
            res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            outcome, seconds, rss = json.loads(res.stdout)
            print(f"| {label} | {outcome} | {seconds:.2f} | {rss:.0f} |", flush=True)


if __name__ == "__main__":
    main()
