"""Speed and peak memory of `costsim log import` on large synthetic logs.

    python benchmarks/bench_log_import.py [--rows 1000000] [--sources litellm,claude-code]
                                          [--keep DIR]

Writes a LiteLLM spend log (JSON Lines, one request per line, 1 in 10 exported twice) and/or a
Claude Code projects folder (sessions of 200 calls, each message on two lines as Claude Code
writes one line per content block), then runs the import in a fresh process per output format
and reports wall time and the child's peak resident memory (ru_maxrss: Python and DuckDB
together). Checks that the token totals came through exactly.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe  # noqa: E402

CHILD = """
import json, sys
from costsim.logs.importer import import_logs
res = import_logs(sys.argv[1], [sys.argv[2]], sys.argv[3])
print(json.dumps({"rows": res.rows, "dups": res.duplicates, "in": res.input_tokens,
                  "out": res.output_tokens}))
"""


def write_litellm(path: Path, rows: int) -> tuple[int, int]:
    rng = random.Random(1)
    tin = tout = 0
    with open(path, "w") as fh:
        for i in range(rows):
            p, o, r = rng.randrange(200_000), rng.randrange(8_000), rng.randrange(50_000)
            line = json.dumps({
                "request_id": f"chatcmpl-{i:09d}", "call_type": "acompletion",
                "spend": round(rng.random() * 0.2, 9), "prompt_tokens": p,
                "completion_tokens": o, "startTime": f"2026-03-{1 + i % 28:02d}T"
                f"{i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d}.{i % 1000:03d}Z",
                "model": rng.choice(["claude-sonnet-4-5", "gpt-4.1", "gpt-4.1-mini"]),
                "session_id": f"sess-{i // 40}", "request_tags": [f"agent:{i % 3}"],
                "metadata": {"usage_object": {"cache_read_input_tokens": r,
                                              "cache_creation_input_tokens": 0}},
                "status": "success"})
            fh.write(line + "\n")
            if i % 10 == 0:
                fh.write(line + "\n")
            tin += p + r
            tout += o
    return tin, tout


def write_claude_code(folder: Path, rows: int) -> tuple[int, int]:
    rng = random.Random(2)
    tin = tout = 0
    per_session = 200
    project = folder / "-home-dev-repo"
    project.mkdir(parents=True)
    for s in range((rows + per_session - 1) // per_session):
        sid = f"{s:08x}-0000-4000-8000-000000000000"
        with open(project / f"{sid}.jsonl", "w") as fh:
            for j in range(min(per_session, rows - s * per_session)):
                u = {"input_tokens": rng.randrange(1, 50), "cache_creation_input_tokens":
                     rng.randrange(0, 3000), "cache_read_input_tokens": rng.randrange(0, 90000),
                     "output_tokens": rng.randrange(1, 4000)}
                rec = {"type": "assistant", "sessionId": sid, "gitBranch": f"b{s % 50}",
                       "timestamp": f"2026-03-{1 + s % 28:02d}T10:{j // 60 % 60:02d}:"
                       f"{j % 60:02d}.000Z", "requestId": f"req_{s}_{j}", "isSidechain": False,
                       "message": {"id": f"msg_{s}_{j}", "model": "claude-sonnet-4-5",
                                   "content": [{"type": "text", "text": "ok"}], "usage": u}}
                line = json.dumps(rec) + "\n"
                fh.write(line + line)
                tin += u["input_tokens"] + u["cache_creation_input_tokens"] + \
                    u["cache_read_input_tokens"]
                tout += u["output_tokens"]
    return tin, tout


def run(source: str, path: Path, out: Path) -> tuple[float, float, dict]:
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as so:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, source, str(path), str(out)],
                                stdout=so)
        _, status, usage = os.wait4(proc.pid, 0)       # this child's own peak memory
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        if proc.returncode:
            raise SystemExit(f"import failed ({proc.returncode})")
        so.seek(0)
        got = json.loads(so.read().strip().splitlines()[-1])
    return wall, usage.ru_maxrss / 1024, got


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--sources", default="litellm,claude-code")
    ap.add_argument("--keep", type=Path)
    args = ap.parse_args()
    print(describe())
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        for source in args.sources.split(","):
            t0 = time.perf_counter()
            if source == "litellm":
                path = base / "spend.jsonl"
                want = write_litellm(path, args.rows)
            else:
                path = base / "projects"
                want = write_claude_code(path, args.rows)
            gen = time.perf_counter() - t0
            size = sum(f.stat().st_size for f in ([path] if path.is_file()
                                                   else path.rglob("*.jsonl")))
            print(f"\n{source}: {args.rows:,} calls, {size / 1e6:,.0f} MB of logs "
                  f"(generated in {gen:.1f} s)")
            for ext in ("csv", "parquet"):
                wall, peak, got = run(source, path, base / f"runs-{source}.{ext}")
                assert got["rows"] == args.rows, got
                assert (got["in"], got["out"]) == want, (got, want)
                print(f"  -> {ext:8s} {wall:6.1f} s  {args.rows / wall / 1e3:6.0f}k calls/s  "
                      f"peak RSS {peak:,.0f} MB  (duplicates removed: {got['dups']:,})")


if __name__ == "__main__":
    main()
