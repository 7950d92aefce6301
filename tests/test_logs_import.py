"""`costsim log import` as a whole: outcomes, determinism, formats, bad input, the CLI."""

from __future__ import annotations

import csv
import gzip
import json
import os
import random
import shutil
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from costsim.cli import app
from costsim.errors import CostsimError
from costsim.logs.importer import import_logs

LOGS = Path(__file__).parent / "fixtures" / "logs"
runner = CliRunner()


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# --- outcomes -------------------------------------------------------------------------------

def _outcomes(tmp_path, text: str, name="outcomes.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_outcomes_join_last_attempt_and_counts(tmp_path):
    oc = _outcomes(tmp_path, "task_id,success,reviewer_changes,task_type,signals\n"
                             "0b7d3c2e-5f1a-4c8e-9d2b-7e6f5a4b3c21,false,2,bugfix,cross_file\n"
                             "not-in-the-logs,true,0,docs,\n")
    out = tmp_path / "runs.csv"
    res = import_logs("claude-code", [LOGS / "claude_code"], out, outcomes=oc)
    rs = rows(out)
    a = [r for r in rs if r["task_id"].startswith("0b7d")]
    b = [r for r in rs if r["task_id"].startswith("5e8a")]
    # The task's last call is the haiku title call, in a phase of its own (main@haiku): aside
    # from it the last call is sonnet's in phase main, whose attempt carries the outcome
    # (false); the explore subagent and the title call ended and handed on: they succeeded.
    assert {r["success"] for r in a if r["phase"] == "main"} == {"false"}
    assert {r["success"] for r in a if r["phase"] == "explore"} == {"true"}
    assert {r["success"] for r in a if r["phase"].startswith("main@")} == {"true"}
    assert {r["task_type"] for r in a} == {"bugfix"} and {r["signals"] for r in a} == {
        "cross_file"}
    # reviewer_changes only on the task's last row (the last call of phase main).
    last = max((r for r in a if r["phase"] == "main"), key=lambda r: r["timestamp"])
    assert [r["reviewer_changes"] for r in a if r is not last] == [""] * (len(a) - 1)
    assert last["reviewer_changes"] == "2"
    # The other session has no outcome: success empty, task type the default; counted apart.
    assert {r["success"] for r in b} == {""} and {r["task_type"] for r in b} == {"default"}
    assert (res.tasks, res.tasks_with_outcome, res.tasks_without_outcome) == (2, 1, 1)
    assert res.outcomes_unmatched == 1 and res.outcomes_unmatched_examples == ["not-in-the-logs"]


def test_outcome_overrides_benchmark_last_try_keeps_earlier_tries(tmp_path):
    oc = _outcomes(tmp_path, '{"task_id": "python/bowling", "success": false}\n',
                   name="o.jsonl")
    out = tmp_path / "runs.csv"
    import_logs("aider-bench", [LOGS / "aider"], out, outcomes=oc)
    bowling = [r for r in rows(out) if r["task_id"] == "python/bowling"]
    assert [r["success"] for r in bowling] == ["false", "false"]
    other = [r for r in rows(out) if r["task_id"] == "rust/anagram"]
    assert [r["success"] for r in other] == ["false", "false"]       # the source's own


@pytest.mark.parametrize("text, message", [
    ("task_id,success\na,true\na,false\n", "line 2"),
    ("task_id,success\na,maybe\n", "success: expected true or false"),
    ("task,success\na,true\n", "missing column task_id"),
    ("task_id,success,reviewer_changes\na,true,-1\n", "reviewer_changes"),
])
def test_outcomes_file_errors_are_located(tmp_path, text, message):
    oc = _outcomes(tmp_path, text)
    with pytest.raises(CostsimError) as err:
        import_logs("codex", [LOGS / "codex"], tmp_path / "r.csv", outcomes=oc)
    assert message in str(err.value) and str(err.value).startswith(str(oc))


# --- output ---------------------------------------------------------------------------------

def test_same_input_same_bytes_and_parquet_matches_csv(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    outs = []
    for i in range(2):
        for ext in ("csv", "parquet", "jsonl"):
            p = tmp_path / f"r{i}.{ext}"
            import_logs("claude-code", [LOGS / "claude_code"], p)
            outs.append(p.read_bytes())
    assert outs[0] == outs[3] and outs[1] == outs[4] and outs[2] == outs[5]
    table = pq.read_table(tmp_path / "r0.parquet").to_pylist()
    csv_rows = rows(tmp_path / "r0.csv")
    assert [r["input_tokens"] for r in table] == [int(r["input_tokens"]) for r in csv_rows]
    assert [r["task_id"] for r in table] == [r["task_id"] for r in csv_rows]
    assert [json.loads(line)["call"] for line in (tmp_path / "r0.jsonl").read_text().splitlines()
            ] == [int(r["call"]) for r in csv_rows]


def test_file_order_and_compression_do_not_change_the_output(tmp_path):
    src = LOGS / "claude_code" / "-home-dev-shop"
    a = tmp_path / "a"
    shutil.copytree(src, a)
    b = tmp_path / "b"
    shutil.copytree(src, b)
    for f in list(b.rglob("*.jsonl")):
        lines = f.read_bytes().splitlines(keepends=True)
        with gzip.open(str(f) + ".gz", "wb") as fh:
            fh.write(b"".join(reversed(lines)))      # the duplicate copies now come first
        f.unlink()
    import_logs("claude-code", [a], tmp_path / "a.csv")
    import_logs("claude-code", [b], tmp_path / "b.csv")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_never_writes_over_an_input(tmp_path):
    log = tmp_path / "spend.csv"
    shutil.copy(LOGS / "litellm" / "spend_logs.csv", log)
    before = log.read_bytes()
    with pytest.raises(CostsimError, match="would overwrite an input"):
        import_logs("litellm", [log], log)
    assert log.read_bytes() == before
    # An output inside the folder being read is not read back as an input next time.
    out = tmp_path / "runs.csv"
    first = import_logs("litellm", [tmp_path], out)
    second = import_logs("litellm", [tmp_path], out)
    # spend_logs.csv: 7f1e0a01, 7f1e0a02 (7f1e0a03 malformed, 7f1e0a04 a failed request that
    # billed nothing: not a call).
    assert first.rows == second.rows == 2


def test_failed_import_leaves_the_old_output(tmp_path):
    out = tmp_path / "runs.csv"
    out.write_text("precious\n")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    with pytest.raises(CostsimError, match="no claude-code usage records"):
        import_logs("claude-code", [bad], out)
    assert out.read_text() == "precious\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_output_is_written_like_every_user_file(tmp_path):
    """--out follows a symlink to its target, refuses a read-only file, and removes the temp
    file a killed run left next to it."""
    spend = LOGS / "litellm" / "spend_logs.csv"
    target = tmp_path / "real.csv"
    target.write_text("old\n")
    os.chmod(target, 0o640)
    link = tmp_path / "runs.csv"
    link.symlink_to(target)
    # A killed run's temp file (pid 2**22 + 1 is above Linux's pid_max default, so not alive).
    stale = tmp_path / f".real.csv.costsim-{2**22 + 1}-deadbeef.tmp"
    stale.write_text("partial")
    import_logs("litellm", [spend], link)
    assert link.is_symlink() and len(rows(target)) == 2   # 7f1e0a01, 7f1e0a02 (see above)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["real.csv", "runs.csv"]
    ro = tmp_path / "ro.csv"
    ro.write_text("keep\n")
    os.chmod(ro, 0o444)
    with pytest.raises(CostsimError, match="read-only"):
        import_logs("litellm", [spend], ro)
    assert ro.read_text() == "keep\n"


# --- scale: an independent tally of a generated spend log -----------------------------------

def test_generated_spend_log_carries_every_token_and_cent(tmp_path):
    rng = random.Random(7)
    log = tmp_path / "spend.jsonl"
    want_in = want_cached = want_out = 0
    want_cost = 0.0
    n = 20_000
    with open(log, "w") as fh:
        for i in range(n):
            fresh, out = rng.randrange(0, 200_000), rng.randrange(0, 8_000)
            reads, writes = rng.randrange(0, 50_000), rng.randrange(0, 5_000)
            prompt = fresh + reads + writes     # LiteLLM's prompt_tokens counts the cache too
            spend = round(rng.random() * 0.5, 9)
            rec = {"request_id": f"r{i}", "spend": spend, "prompt_tokens": prompt,
                   "completion_tokens": out, "model": rng.choice(["m1", "m2"]),
                   "session_id": f"s{i % 997}", "startTime": f"2026-03-{1 + i % 28:02d}T"
                   f"{i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d}Z",
                   "metadata": {"usage_object": {"cache_read_input_tokens": reads,
                                                 "cache_creation_input_tokens": writes}}}
            fh.write(json.dumps(rec) + "\n")
            if i % 10 == 3:                 # a duplicate export of the same request
                fh.write(json.dumps(rec) + "\n")
            want_in += prompt
            want_cached += reads
            want_out += out
            want_cost += spend
    out = tmp_path / "runs.csv"
    res = import_logs("litellm", [log], out)
    assert res.rows == n and res.duplicates == n // 10
    got = rows(out)
    assert sum(int(r["input_tokens"]) for r in got) == want_in
    assert sum(int(r["cached_input_tokens"]) for r in got) == want_cached
    assert sum(int(r["output_tokens"]) for r in got) == want_out
    assert abs(sum(float(r["cost_usd"]) for r in got) - want_cost) < 1e-9
    assert len({r["task_id"] for r in got}) == 997


# --- bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["log", "import", "-s", "codex", "nope/", "--out", "r.csv"], "nope: no such file"),
    (["log", "import", "-s", "codex", "{logs}/aider", "--out", "r.csv"], "no codex log files"),
    (["log", "import", "-s", "codex", "{logs}/litellm", "--out", "r.csv"],
     "no codex usage records found in 1 file (2 records of other kinds, 0 malformed)"),
    (["log", "import", "-s", "codex", "{logs}/codex", "--out", "r.xlsx"], "unknown runs-log"),
    (["log", "import", "-s", "codex", "{logs}/codex", "--out", "r.csv", "--task-by", "user"],
     "--task-by: expected session, branch or tag:NAME"),
    (["log", "import", "-s", "codex", "{logs}/codex", "--out", "r.csv", "--phase-by", "tag:"],
     "--phase-by"),
])
def test_cli_errors_are_one_line_exit_2(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    args = [a.replace("{logs}", str(LOGS)) for a in args]
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err


def test_garbage_files_are_skipped_not_a_traceback(tmp_path):
    d = tmp_path / "logs"
    d.mkdir()
    (d / "binary.jsonl").write_bytes(bytes(range(256)) * 4)
    (d / "empty.jsonl").write_bytes(b"")
    (d / "truncated.jsonl.gz").write_bytes(gzip.compress(
        (LOGS / "claude_code" / "-home-dev-shop" /
         "5e8a1d90-2c3b-4f7e-8a6d-1b2c3d4e5f60.jsonl").read_bytes())[:-30])
    shutil.copy(LOGS / "claude_code" / "-home-dev-shop" /
                "5e8a1d90-2c3b-4f7e-8a6d-1b2c3d4e5f60.jsonl", d / "good.jsonl")
    res = runner.invoke(app, ["log", "import", "-s", "claude-code", str(d), "--out",
                              str(tmp_path / "r.csv")])
    assert res.exit_code == 0, res.output
    assert "malformed records skipped" in res.stdout
    assert "binary.jsonl:1:" in res.stdout
    got = rows(tmp_path / "r.csv")
    assert len(got) >= 2                      # good.jsonl; the truncated gz may add its lines
    assert sum(int(r["output_tokens"]) for r in got if r["timestamp"]) >= 88 + 301


def test_cli_summary_and_json(tmp_path):
    out = tmp_path / "runs.parquet"
    pytest.importorskip("pyarrow")
    res = runner.invoke(app, ["log", "import", "--source", "litellm", str(LOGS / "litellm"),
                              "--out", str(out), "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    # The failed $0 request (7f1e0a04) is passed over, not a call.
    assert data["version"] == 1 and data["rows"] == 3 and data["duplicates"] == 1
    assert data["ignored"] == 1
    assert data["input_tokens"] == 22700 + 8000 + 3900
    res = runner.invoke(app, ["log", "import", "--source", "litellm", str(LOGS / "litellm"),
                              "--out", str(out)])
    assert "3 calls of 2 tasks" in res.stdout and "duplicates removed: 1" in res.stdout


# --- calibrate in one step ------------------------------------------------------------------

def test_calibrate_source_imports_then_calibrates(tmp_path):
    run_dir = tmp_path / "tmp.benchmarks"
    shutil.copytree(LOGS / "aider" / "tmp.benchmarks" / "2026-01-10-12-00-00--sonnet-diff",
                    run_dir / "2026-01-10-12-00-00--sonnet-diff")
    prices = tmp_path / "p.yaml"
    prices.write_text("version: 1\nas_of: 2026-11-20\ncurrency: USD\nmodels:\n"
                      "  claude-sonnet-4-5: {provider: anthropic, tier: midrange, input: 3.0, "
                      "output: 15.0, coding_score: 60}\n")
    res = runner.invoke(app, ["calibrate", "--source", "aider-bench", str(run_dir),
                              "--prices", str(prices), "--format", "json"])
    assert res.exit_code == 0, res.output
    assert "imported " in res.stderr and "5 attempts of 3 tasks" in res.stderr
    # The logged id is matched to the table's, so the fitted workload can name it.
    assert "anthropic/claude-sonnet-4-5-20250929 -> claude-sonnet-4-5" in res.stderr
    overall = json.loads(res.stdout)["overall"]
    # python/anagram passes at try 1, python/bowling at try 2, rust/anagram fails both: 2 of 3
    # complete; the files state $0.0213 + $0.0877 + $0.1 = $0.209 in all.
    assert overall["tasks"] == 3
    assert overall["completion_rate"] == pytest.approx(2 / 3)
    assert overall["cost_per_completed_task"] == pytest.approx(0.209 / 2, abs=1e-9)


def test_calibrate_outcomes_need_a_source(tmp_path):
    oc = _outcomes(tmp_path, "task_id,success\na,true\n")
    res = runner.invoke(app, ["calibrate", str(LOGS / "litellm" / "spend_logs.csv"),
                              "--outcomes", str(oc)])
    assert res.exit_code == 2 and "--outcomes needs --source" in res.stderr


def test_prices_match_logged_model_ids(tmp_path):
    prices = tmp_path / "p.yaml"
    prices.write_text("version: 1\nas_of: 2026-11-20\ncurrency: USD\nmodels:\n"
                      "  claude-sonnet-4-5: {provider: anthropic, tier: midrange, input: 3.0, "
                      "output: 15.0}\n")
    out = tmp_path / "r.csv"
    res = import_logs("claude-code", [LOGS / "claude_code"], out, prices=prices)
    assert res.models_matched == {"claude-sonnet-4-5-20250929": "claude-sonnet-4-5"}
    models = [r["model"] for r in rows(out)]
    assert models.count("claude-sonnet-4-5") == 5               # 3 + 2 sonnet calls
    assert models.count("claude-haiku-4-5-20251001") == 3       # not in the table: as logged


@pytest.mark.parametrize("source, folder", [("claude-code", "claude_code"), ("otlp", "otlp")])
def test_import_summary_fits_80_columns(tmp_path, monkeypatch, source, folder):
    """The summary an import prints is read in a terminal: every line fits 80 columns but the
    first (it names the output file) and the indented file:line reasons (they name the input
    files); between them these fixtures show every other line the summary has (tokens, stated
    cost, outcomes, calls moved, duplicates, the --task-by fallback, malformed records)."""
    from typer.testing import CliRunner

    from costsim.cli import app

    monkeypatch.setenv("COLUMNS", "80")
    fixtures = Path(__file__).parent / "fixtures" / "logs" / folder
    res = CliRunner().invoke(app, ["log", "import", "--source", source, str(fixtures),
                                   "--out", str(tmp_path / "o.csv")])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0].startswith("wrote ") and any(x.startswith("stated cost: ") for x in lines)
    wide = [x for x in lines[1:] if len(x) > 80 and not x.startswith("  ")]
    assert not wide, wide
