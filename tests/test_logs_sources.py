"""Each log source imported from hand-written fixtures (tests/fixtures/logs/<source>/).

Every expected number below was added up by hand from the fixture lines (the sums are spelled
out), never copied from the importer's output.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from costsim.logs.importer import import_logs, output_columns

LOGS = Path(__file__).parent / "fixtures" / "logs"


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def run(tmp_path, source, *paths, **kw):
    out = tmp_path / "runs.csv"
    res = import_logs(source, [LOGS / p for p in paths], out, **kw)
    return res, rows(out)


def col(rs, name, cast=int):
    return [cast(r[name]) if r[name] != "" else None for r in rs]


# --- Claude Code ----------------------------------------------------------------------------

def test_claude_code_tokens_dedup_and_subagent_phase(tmp_path):
    res, rs = run(tmp_path, "claude-code", "claude_code")
    # Session 0b7d...: msg first (2 lines, one call) 3+18250+0 in / 412 out; second
    # 6+1210+18250 / 655 (cached 18250); third (a truncated copy, then the full line)
    # 4+890+19460 / 128 (cached 19460); haiku title 310 / 9. Explore subagent: SUBone
    # 1520+9800+0 / 96; SUBtwo (partial line with 1 output token, then 205) 40+2100+9800 / 205
    # (cached 9800). Session 5e8a...: 5+2400+15800 / 88 and 7+640+18200 / 301.
    assert res.rows == len(rs) == 8
    assert res.input_tokens == sum(col(rs, "input_tokens")) == (
        18253 + 19466 + 20354 + 310 + 11320 + 11940 + 18205 + 18847)
    assert res.cached_input_tokens == sum(col(rs, "cached_input_tokens")) == (
        0 + 18250 + 19460 + 0 + 0 + 9800 + 15800 + 18200)
    assert res.output_tokens == sum(col(rs, "output_tokens")) == (
        412 + 655 + 128 + 9 + 96 + 205 + 88 + 301)
    assert res.duplicates == 2           # msg_01ABCfirst twice, msg_01SUBtwo twice
    assert res.skipped == 2              # the truncated line, input_tokens "many"
    assert any(":7: not JSON" in r for r in res.reasons)
    assert any(":11: message.usage.input_tokens" in r for r in res.reasons)
    # <synthetic> notices are not calls; no stated cost anywhere.
    assert "<synthetic>" not in {r["model"] for r in rs}
    assert res.rows_with_cost == 0 and all(r["cost_usd"] == "" for r in rs)
    explore = [r for r in rs if r["phase"] == "explore"]
    assert [(int(r["call"]), int(r["output_tokens"])) for r in explore] == [(1, 96), (2, 205)]
    main = [r for r in rs if r["task_id"].startswith("0b7d") and r["phase"] == "main"]
    # Calls numbered by time (09:14:07.5, 09:15:41.25, 09:16:02), one model per attempt: the
    # haiku title call is its own phase.
    assert [(r["call"], r["output_tokens"]) for r in main] == [("1", "412"), ("2", "655"),
                                                               ("3", "128")]
    assert {r["model"] for r in main} == {"claude-sonnet-4-5-20250929"}
    (haiku,) = [r for r in rs if r["phase"] == "main@claude-haiku-4-5-20251001"]
    assert (haiku["call"], haiku["input_tokens"]) == ("1", "310")
    assert res.calls_moved == 1
    assert list(rs[0]) == output_columns(per_call=True)
    assert {r["success"] for r in rs} == {""}         # no outcomes: unknown, not false
    assert res.tasks == 2 and res.tasks_without_outcome == 2


def test_claude_code_task_by_branch_and_phase_by_tag(tmp_path):
    res, rs = run(tmp_path, "claude-code", "claude_code", task_by="branch",
                  phase_by="tag:version")
    assert {r["task_id"] for r in rs} == {"fix-cart-rounding", "docs-readme"}
    assert {r["phase"] for r in rs} == {"2.0.61", "2.0.61@claude-haiku-4-5-20251001"}
    # One phase now (plus the phase of each second model): sonnet calls 1..3, haiku 1..3.
    assert sorted((r["phase"], int(r["call"])) for r in rs
                  if r["task_id"] == "fix-cart-rounding") == [
        ("2.0.61", 1), ("2.0.61", 2), ("2.0.61", 3), ("2.0.61@claude-haiku-4-5-20251001", 1),
        ("2.0.61@claude-haiku-4-5-20251001", 2), ("2.0.61@claude-haiku-4-5-20251001", 3)]


# --- Codex ----------------------------------------------------------------------------------

def test_codex_last_usage_cumulative_delta_and_gz(tmp_path):
    res, rs = run(tmp_path, "codex", "codex", task_by="branch")
    # feat-export: 12000/0/800 (logged twice), 15500/11000/650, then only totals:
    # 45500-27500 = 18000 in, 25000-11000 = 14000 cached, 2100-1450 = 650 out, on gpt-5 (the
    # second turn_context). fix-flaky-test (.jsonl.gz): 8000/6000/400 on gpt-5-mini.
    assert [(r["task_id"], r["phase"], r["model"], int(r["input_tokens"]),
             int(r["cached_input_tokens"]), int(r["output_tokens"])) for r in rs] == [
        ("feat-export", "main", "gpt-5-codex", 12000, 0, 800),
        ("feat-export", "main", "gpt-5-codex", 15500, 11000, 650),
        ("feat-export", "main@gpt-5", "gpt-5", 18000, 14000, 650),   # switched mid-session
        ("fix-flaky-test", "main", "gpt-5-mini", 8000, 6000, 400),
    ]
    assert res.duplicates == 1 and res.skipped == 1
    assert "input_tokens: expected a token count >= 0, got -5" in res.reasons[0]
    assert res.ignored >= 5     # session_meta, turn_context x2, response items, rate limits


# --- OpenTelemetry --------------------------------------------------------------------------

def test_otlp_document_and_span_lines(tmp_path):
    res, rs = run(tmp_path, "otlp", "otlp")
    # traces.json: the planner's invoke_agent span totals its two chat spans (not counted
    # again): 5200 (4096 cached) / 310 and 6100 (5120) / 420; coder: 15000 (12000) / 1800.
    # spans.jsonl: 3000 / 200 and 4500 (2048) / 350 (logged twice); cached 900 > input 100:
    # counted apart (the Anthropic way), so 100 + 900 = 1000 in / 5; the cut-off line is
    # malformed.
    assert res.input_tokens == 5200 + 6100 + 15000 + 3000 + 4500 + 1000
    assert res.cached_input_tokens == 4096 + 5120 + 12000 + 0 + 2048 + 900
    assert res.output_tokens == 310 + 420 + 1800 + 200 + 350 + 5
    assert res.duplicates == 1 and res.skipped == 1
    by = {(r["task_id"], r["phase"], r["call"]): r for r in rs}
    assert set(by) == {("conv-100", "planner", "1"), ("conv-100", "planner", "2"),
                       ("conv-100", "coder", "1"), ("conv-200", "coder", "1"),
                       ("conv-200", "coder", "2"),
                       ("0x7f3a9c2d8e1b4f6a0c5d2e9f8a7b6c5d", "main", "1")}   # by trace id
    assert by[("conv-100", "planner", "1")]["model"] == "gpt-4.1"       # the request model
    assert by[("conv-200", "coder", "2")]["model"] == "gpt-4.1-mini"   # not the dated reply
    assert by[("conv-100", "planner", "1")]["timestamp"] == "2026-03-07T10:00:01.250Z"
    # Evaluation events: conv-100 passed (span event), conv-200 failed (log record line).
    assert {r["success"] for r in rs if r["task_id"] == "conv-100"} == {"true"}
    assert {r["success"] for r in rs if r["task_id"] == "conv-200"} == {"false"}
    assert res.tasks_with_outcome == 2


def test_otlp_task_by_branch_from_resource(tmp_path):
    res, rs = run(tmp_path, "otlp", "otlp/traces.json", task_by="branch")
    assert {r["task_id"] for r in rs} == {"fix-refunds"}


# --- LiteLLM --------------------------------------------------------------------------------

def test_litellm_spend_exact_and_cache_tokens(tmp_path):
    res, rs = run(tmp_path, "litellm", "litellm")
    # 7f1e0a01 (Anthropic through LiteLLM: prompt_tokens 22700 already counts the 20000 read and
    # 1500 written, as LiteLLM's usage does): 22700 in, 20000 cached. 7f1e0a02 (OpenAI:
    # cached_tokens inside prompt_tokens) 8000 in, 6400 cached; in both files: one row.
    # 7f1e0a03: spend "n/a", skipped. 7f1e0a04: a request that failed (429) with no tokens and
    # $0: not a call, passed over. 7f1e0a05: prompt_tokens 900 is less than the 3000 read from
    # cache, so it is Anthropic's raw input_tokens (cache counted apart): 900 + 3000 = 3900 in,
    # 3000 cached.
    got = {r["model"] + "/" + r["input_tokens"]: r for r in rs}
    assert set(got) == {"claude-sonnet-4-5-20250929/22700", "gpt-4.1/8000",
                        "claude-haiku-4-5-20251001/3900"}
    assert [int(r["cached_input_tokens"]) for r in rs] == [20000, 6400, 3000]
    assert [float(r["cost_usd"]) for r in rs] == [0.0123456789, 0.00456, 0.000987654321]
    assert abs(res.cost_usd - (0.0123456789 + 0.00456 + 0.000987654321)) < 1e-12
    assert res.duplicates == 1 and res.skipped == 1
    assert [r["phase"] for r in rs] == ["coder", "reviewer", "main"]
    assert [r["timestamp"] for r in rs][:2] == ["2026-03-09T08:00:01.123Z",
                                                 "2026-03-09T08:00:12.500Z"]


def test_litellm_task_by_tag(tmp_path):
    # (The row without a task tag was the failed request, passed over: see
    # test_logs_variants for the fallback to the session.)
    res, rs = run(tmp_path, "litellm", "litellm", task_by="tag:task")
    assert [r["task_id"] for r in rs] == ["T-1", "T-1", "T-2"]
    assert res.tasks_from_fallback == 0


# --- OpenHands ------------------------------------------------------------------------------

def test_openhands_index_runs_are_configs(tmp_path):
    res, rs = run(tmp_path, "openhands", "openhands/index")
    assert list(rs[0]) == output_columns(per_call=False)
    got = {(r["run"], r["task_id"]): (r["model"], r["cost_usd"], r["success"]) for r in rs}
    assert got == {
        ("acp-claude/claude-opus-4-6", "astropy__astropy-12907"):
            ("claude-opus-4-6", "1.2609801666666667", "true"),
        ("acp-claude/claude-opus-4-6", "django__django-11099"): ("claude-opus-4-6", "0.8731",
                                                                 "false"),
        ("gpt-5", "astropy__astropy-12907"): ("gpt-5", "0.52", "false"),
        ("gpt-5", "django__django-11099"): ("gpt-5", "0.31", "true"),
    }
    # cost "free": malformed; sympy__sympy-20590 (cost and resolved null: never ran) has
    # nothing to bill: skipped too (kept, it made calibrate refuse the whole log).
    assert res.skipped == 2 and "'free'" in " ".join(res.reasons)
    assert any("sympy__sympy-20590: no cost and no token counts" in r for r in res.reasons)
    assert res.files == 2                                        # README.md is not read
    # The index records no tokens: 0 beside the stated cost, a cost-only row for calibrate.
    assert {(r["input_tokens"], r["cached_input_tokens"], r["output_tokens"]) for r in rs} == {
        ("0", "0", "0")}


def test_openhands_eval_output_attempts(tmp_path):
    res, rs = run(tmp_path, "openhands", "openhands/eval")
    assert res.files == 1                                        # metadata.json is not read
    dj = [r for r in rs if r["task_id"] == "django__django-11099"]
    # prompt_tokens already holds the cache reads (98000 <= 120500): not added again.
    assert [(r["attempt"], r["calls"], r["input_tokens"], r["cached_input_tokens"],
             r["output_tokens"], r["cost_usd"], r["success"]) for r in dj] == [
        ("1", "2", "120500", "98000", "3400", "0.4127315", "false"),
        ("2", "1", "61000", "50000", "2100", "0.2051", "true")]
    (astro,) = [r for r in rs if r["task_id"] == "astropy__astropy-12907"]
    assert astro["success"] == "" and astro["attempt"] == "1"
    assert res.skipped == 1 and "accumulated_cost" in res.reasons[0]


# --- Aider ----------------------------------------------------------------------------------

def test_aider_tries_split_exactly(tmp_path):
    res, rs = run(tmp_path, "aider-bench", "aider")
    bowling = [r for r in rs if r["task_id"] == "python/bowling"]
    # 21003 prompt tokens over 2 tries: 10501 + 10502; 2507 out: 1253 + 1254; $0.0877 halved.
    assert [(r["attempt"], r["success"], int(r["input_tokens"]), int(r["output_tokens"]))
            for r in bowling] == [("1", "false", 10501, 1253), ("2", "true", 10502, 1254)]
    assert sum(float(r["cost_usd"]) for r in bowling) == pytest.approx(0.0877, abs=1e-12)
    # Every file's totals are carried exactly: 5210+21003+30001+6000 in, 431+2507+3001+1200
    # out, $0.0213+0.0877+0.1+0.0042 (bank-account has an unreadable try: skipped whole).
    assert res.input_tokens == 5210 + 21003 + 30001 + 6000
    assert res.output_tokens == 431 + 2507 + 3001 + 1200
    assert res.cost_usd == pytest.approx(0.0213 + 0.0877 + 0.1 + 0.0042, abs=1e-12)
    assert res.skipped == 1
    assert {r["run"] for r in rs} == {"2026-01-10-12-00-00--sonnet-diff",
                                      "2026-01-11-09-30-00--gpt-5-mini-whole"}
    # The same exercise in two languages is two tasks; in two runs, the same task twice.
    assert sorted({r["task_id"] for r in rs}) == ["python/anagram", "python/bowling",
                                                  "rust/anagram"]
