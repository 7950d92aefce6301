"""How long `costsim compare` takes: the bundled defaults end to end, with and without the size
and difficulty spread, and a large comparison (issue 13: 100 policies on a 50-task-type x
20-phase workload).

    python benchmarks/bench_compare.py [--runs 10] [--large-runs 3] [--large-only]

Prints the median wall time of the installed `costsim compare` (a fresh process each run, so
interpreter start-up and imports are included), the import time of the CLI module, the
in-process time of `costsim.compare()` on the defaults, and the in-process time of the large
comparison (files written to a temporary folder first; generated with a fixed seed). Beside
every wall time, the CPU time it took (user + system): on a shared machine that is what the
wall time would be with the cores to itself (compare runs on one core).
"""

from __future__ import annotations

import argparse
import copy
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from machine import describe

ROOT = Path(__file__).resolve().parent.parent
VARIATION = {"difficulty": 1.3, "tokens": 0.7, "tokens_follow_difficulty": 0.5}
# the spread measured on the public data, which the bundled workloads carry (docs/defaults.md)
MEASURED = {"difficulty": 3.24, "tokens": 0.75, "tokens_follow_difficulty": 0.24}


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def wall(cmd: list[str], runs: int) -> str:
    """Median wall time and median CPU time of ``runs`` fresh processes, in ms."""
    times, cpu = [], []
    for _ in range(runs):
        c = _child_cpu()
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
        cpu.append(_child_cpu() - c)
    return (f"{statistics.median(times) * 1000:.0f} ms wall, "
            f"{statistics.median(cpu) * 1000:.0f} ms CPU")


def timed(fn) -> tuple[float, float]:
    t, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def timed_threads(fn) -> tuple[float, float, float]:
    """Wall, CPU of the process (all threads) and CPU of the calling thread: the rest is the
    worker's. On a busy machine the wall time says little; on two idle cores it would be at
    least the larger of the two threads' CPU times."""
    t, c, m = time.perf_counter(), time.process_time(), time.thread_time()
    fn()
    return time.perf_counter() - t, time.process_time() - c, time.thread_time() - m


def with_variation(folder: Path, variation: dict | None = VARIATION) -> Path:
    """The bundled medium-team workload with a ``variation`` block (replaced or removed)."""
    w = yaml.safe_load((ROOT / "workloads" / "medium-team.yaml").read_text())
    w.pop("variation", None)
    if variation is not None:
        w["variation"] = variation
    out = folder / f"medium-team-{'var' if variation else 'plain'}.yaml"
    out.write_text(yaml.safe_dump(w, sort_keys=False))
    return out


def large_case(folder: Path, *, types: int = 50, phases: int = 20, policies: int = 100,
               variation: dict | None = None, seed: int = 13) -> tuple[Path, list[Path]]:
    """A workload of ``types`` task types x ``phases`` phases (the bundled signals: 16 cells per
    type) and ``policies`` routed policies over the bundled table's models, drawn at random."""
    rng = random.Random(seed)
    names = ["search", "summarize", "plan", "implement", "test_repair", "review", "docs",
             "explain"] + [f"step{i}" for i in range(max(0, phases - 8))]
    base = yaml.safe_load((ROOT / "workloads" / "medium-team.yaml").read_text())
    tts = []
    for t in range(types):
        ph = []
        for i in range(phases):
            d = {"phase": names[i], "calls": rng.randint(1, 8),
                 "input_tokens": rng.randint(500, 4000), "output_tokens": rng.randint(100, 1500),
                 "difficulty": round(rng.uniform(30, 80), 1)}
            if names[i] == "review":
                d["success"] = {"budget": 0.9, "midrange": 0.95, "premium": 0.97}
            ph.append(d)
        tts.append({"name": f"type{t}", "share": 1.0 / types, "phases": ph})
    w = {k: copy.deepcopy(base[k]) for k in ("version", "tasks_per_month", "max_attempts",
                                             "system_tokens", "cache_hit_rate", "feedback_gain",
                                             "signals", "defects")}
    w.update(name="large", handoff={"mode": "full_history"}, task_types=tts)
    if variation is not None:
        w["variation"] = variation
    wp = folder / "large.yaml"
    wp.write_text(yaml.safe_dump(w, sort_keys=False))
    table = yaml.safe_load((ROOT / "pricing" / "default.yaml").read_text())
    by_tier = {tier: sorted(m for m, v in table["models"].items()
                            if v["tier"] == tier and v.get("coding_score") is not None)
               for tier in ("budget", "midrange", "premium")}
    tiers = ("budget", "midrange", "premium")
    paths = []
    for k in range(policies):
        pol = {"version": 1, "name": f"p{k}",
               "tiers": {tier: rng.choice(by_tier[tier]) for tier in tiers},
               "routes": {"default": rng.choice(tiers),
                          **{n: rng.choice(tiers) for n in rng.sample(names[:phases], 6)}},
               "escalation": {"after_failures": rng.randint(1, 3),
                              "retry_context": rng.choice(["full", "none"])},
               "signals": {"security_sensitive": {"min_tier": "premium"},
                           "cross_file": {"raise": 1}},
               "handoff": rng.choice([{"mode": "full_history"},
                                      {"mode": "summary", "summary_tokens": 1500,
                                       "summarizer": "budget"}])}
        p = folder / f"p{k}.yaml"
        p.write_text(yaml.safe_dump(pol, sort_keys=False))
        paths.append(p)
    return wp, paths


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--large-runs", type=int, default=3)
    ap.add_argument("--large-only", action="store_true",
                    help="only the large comparison at the measured spread (s 3.24)")
    args = ap.parse_args()
    if args.large_only:
        print(f"machine: {describe()}")
        large(args, [(f"with variation {MEASURED}", MEASURED)])
        return
    exe = shutil.which("costsim")
    cli = [exe, "compare"] if exe else [sys.executable, "-m", "costsim.cli", "compare"]
    print(f"machine: {describe()}")
    tmp = Path(tempfile.mkdtemp())
    var = with_variation(tmp)
    plain = with_variation(tmp, None)
    (tmp / "m").mkdir()
    meas = with_variation(tmp / "m", MEASURED)
    print(f"median of {args.runs} runs")
    print(f"costsim compare, bundled workload without variation: "
          f"{wall(cli + ['--workload', str(plain)], args.runs)}")
    print(f"costsim compare, bundled workload with variation {VARIATION}: "
          f"{wall(cli + ['--workload', str(var)], args.runs)}")
    print(f"costsim compare, bundled workload with variation {MEASURED}: "
          f"{wall(cli + ['--workload', str(meas)], args.runs)}")
    print(f"costsim compare (defaults as shipped): {wall(cli, args.runs)}")
    print(f"costsim compare --format json:         {wall(cli + ['--format', 'json'], args.runs)}")
    print(f"python -c pass (interpreter alone):    "
          f"{wall([sys.executable, '-c', 'pass'], args.runs)}")
    print(f"import costsim.cli:                    "
          f"{wall([sys.executable, '-c', 'import costsim.cli'], args.runs)}")
    import costsim

    for label, wl in (("without variation", plain), (f"with variation {VARIATION}", var),
                      (f"with variation {MEASURED}", meas)):
        costsim.compare(workload=wl)  # warm
        n = 10
        res = [timed(lambda: costsim.compare(workload=wl)) for _ in range(n)]
        r = costsim.compare(workload=wl)
        print(f"costsim.compare() in process, {label} ({len(r.strategies)} strategies): "
              f"{statistics.median(x[0] for x in res) * 1000:.1f} ms wall, "
              f"{statistics.median(x[1] for x in res) * 1000:.1f} ms CPU")

    large(args, [("without variation", None), (f"with variation {VARIATION}", VARIATION),
                 (f"with variation {MEASURED}", MEASURED)])


def large(args, cases) -> None:
    """The large comparison (issue 13) with each ``(label, variation)``."""
    import costsim
    from costsim import limits
    from costsim.errors import CostsimError
    from costsim.loader import load_workload

    for label, v in cases:
        d = Path(tempfile.mkdtemp())
        wp, pols = large_case(d, variation=v)
        load = os.getloadavg()[0]
        note = ""
        saved = limits.MAX_VARIED_WORK
        try:
            load_workload(wp)
        except CostsimError as e:
            # the workload is over the variation work limit: say so, and measure past it
            print(f"large compare {label}: refused: {e}")
            limits.MAX_VARIED_WORK = 10 ** 9
            note = "; past the variation work limit"
        try:
            res = [timed_threads(lambda: costsim.compare(workload=wp, policies=pols))
                   for _ in range(args.large_runs)]
        finally:
            limits.MAX_VARIED_WORK = saved
        main_cpu = statistics.median(x[2] for x in res)
        cpu = statistics.median(x[1] for x in res)
        print(f"large compare {label}: {len(pols)} policies + singles on 50 task types x 20 "
              f"phases (800 cells): {statistics.median(x[0] for x in res):.2f} s wall, "
              f"{cpu:.2f} s CPU (all threads: {main_cpu:.2f} s compiling and evaluating on "
              f"the calling thread, {cpu - main_cpu:.2f} s on the worker; median of "
              f"{len(res)}; load {load:.1f} -> {os.getloadavg()[0]:.1f}{note}); peak RSS so "
              f"far {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
