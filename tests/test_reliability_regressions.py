"""Issue 13's reproducers for runs logs, `budget` at 10^9 tasks a month and `optimize` on a
3,000-model table.

Each asserts the same contract as the fuzzer (exit 0 or 2, one line, no `internal error`,
bounded time and memory). Runs get a 2 GB address-space cap (and, in a child
process, a timeout), so a case that would take gigabytes or minutes costs the suite seconds.
"""

from __future__ import annotations

import gzip
import io
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reliability import ENTRY, Run, memory_cap, run_main

ROOT = Path(__file__).parent.parent
LOG = (ROOT / "docs" / "examples" / "calibrate-runs.csv").read_text().splitlines()[:25]
HEADER = LOG[0]


def child(*argv, timeout: float = 20.0, cap_mb: int = 2048) -> Run:
    """costsim ARGV in a child with an address-space cap; a timeout counts as a failure."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (cap_mb * 1024 * 1024, resource.RLIM_INFINITY))

    t0 = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, "-c", ENTRY, *map(str, argv)], capture_output=True,
                           text=True, timeout=timeout, preexec_fn=limit)
    except subprocess.TimeoutExpired:
        return Run(-1, "", f"timed out after {timeout:g} s", time.perf_counter() - t0)
    return Run(p.returncode, p.stdout, p.stderr, time.perf_counter() - t0)


def calibrate(path: Path) -> Run:
    """In this process (fast), with a memory cap."""
    with memory_cap(2048):
        return run_main("calibrate", path, "--min-samples", 1).check()


def csv_log(tmp_path: Path, lines: list[str], name: str = "runs.csv") -> Path:
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


def jsonl_rows() -> list[dict]:
    import csv

    return [dict(r) for r in csv.DictReader(io.StringIO("\n".join(LOG)))]


# --- runs logs --------------------------------------------------------------------------------

def test_example_log_is_fine(tmp_path):
    """The control: the unmodified excerpt calibrates."""
    calibrate(csv_log(tmp_path, LOG))


def test_zip_that_is_not_a_zip(tmp_path):
    p = tmp_path / "runs.csv.zip"
    p.write_text("\n".join(LOG))
    assert calibrate(p).code == 2


def test_zst_log(tmp_path):
    p = tmp_path / "runs.csv.zst"
    p.write_bytes(b"\x28\xb5\x2f\xfd" + "\n".join(LOG).encode())
    calibrate(p)


def test_truncated_gz(tmp_path):
    p = tmp_path / "runs.csv.gz"
    p.write_bytes(gzip.compress(("\n".join(LOG) + "\n").encode())[:-12])
    r = calibrate(p)
    assert r.code == 2 and "Aborted" not in r.err


def test_csv_field_over_131072_characters(tmp_path):
    lines = list(LOG)
    lines[1] = lines[1].replace("deepseek-v4-flash", "m" * 200_000)
    calibrate(csv_log(tmp_path, lines))


@pytest.mark.parametrize("odd", ["true", "null", "[1,2]"])
def test_jsonl_line_that_is_not_an_object(tmp_path, odd):
    rows = [json.dumps(r) for r in jsonl_rows()]
    rows.insert(3, odd)
    p = tmp_path / "runs.jsonl"
    p.write_text("\n".join(rows) + "\n")
    assert calibrate(p).code == 2


def test_jsonl_nested_1000_deep(tmp_path):
    rows = [json.dumps(r) for r in jsonl_rows()]
    rows.insert(3, '{"task_id": ' + "[" * 1000 + "]" * 1000 + "}")
    p = tmp_path / "runs.jsonl"
    p.write_text("\n".join(rows) + "\n")
    assert calibrate(p).code == 2


@pytest.mark.parametrize("kind", ["list", "binary"])
def test_parquet_list_or_binary_column(tmp_path, kind):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = jsonl_rows()
    table = pa.Table.from_pylist(rows)
    col = table.column("model").to_pylist()
    new = [[m] for m in col] if kind == "list" else [m.encode() for m in col]
    table = table.set_column(table.schema.get_field_index("model"), "model", pa.array(new))
    p = tmp_path / "runs.parquet"
    pq.write_table(table, p)
    calibrate(p)


def test_lone_surrogate_in_a_log(tmp_path):
    rows = jsonl_rows()
    rows[2]["task_id"] = "b\ud800"
    p = tmp_path / "runs.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    calibrate(p)


@pytest.mark.parametrize("attempt", [10_000_000, 1_000_000_000, 10**12])
def test_huge_attempt_fails_fast(tmp_path, attempt):
    lines = list(LOG)
    col = HEADER.split(",").index("attempt")
    cells = lines[2].split(",")
    cells[col] = str(attempt)
    lines[2] = ",".join(cells)
    r = child("calibrate", csv_log(tmp_path, lines), "--min-samples", 1, timeout=10).check()
    assert r.code == 2 and r.seconds < 10
    assert "attempt" in r.err and "ceiling" in r.err


def test_row_with_one_extra_field(tmp_path):
    lines = list(LOG)
    lines[5] += ",extra"
    calibrate(csv_log(tmp_path, lines))


def test_repeated_first_column(tmp_path):
    lines = [HEADER.replace("task_id,", "task_id,task_id,", 1)]
    lines += [ln.split(",", 1)[0] + "," + ln for ln in LOG[1:]]
    calibrate(csv_log(tmp_path, lines))


# --- budget and optimize at scale ------------------------------------------------------------

def test_budget_with_a_billion_tasks_a_month():
    r = child("budget", "--tasks", 10**9, "--format", "json", timeout=10).check(codes=(0,))
    assert json.loads(r.out)["version"] == 1


def test_optimize_on_a_3000_model_table(tmp_path):
    """Every model has a score, so every one is a candidate: the answer (or a clear "narrow
    it") must come in seconds, not after building every combination."""
    lines = ["version: 1", "as_of: 2026-11-20", "models:"]
    for i in range(3000):
        tier = ("budget", "midrange", "premium")[i % 3]
        lines.append(f"  m{i}: {{provider: p{i % 7}, tier: {tier}, input: {1 + i % 50}.0, "
                     f"output: {2 + i % 70}.0, coding_score: {40 + i % 55}}}")
    table = tmp_path / "big.yaml"
    table.write_text("\n".join(lines) + "\n")
    child("optimize", "--prices", table, timeout=20).check()
