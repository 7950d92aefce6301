"""The variants real agent versions write, one fixture each (tests/fixtures/logs/*_variants/).

Every expected number is added up by hand from the fixture lines (the sums are spelled out),
never copied from the importer's output.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from costsim.logs.importer import import_logs

LOGS = Path(__file__).parent / "fixtures" / "logs"


def run(tmp_path, source, *paths, **kw):
    out = tmp_path / "runs.csv"
    res = import_logs(source, [LOGS / p for p in paths], out, **kw)
    with open(out, newline="") as fh:
        return res, list(csv.DictReader(fh))


def calls(rs):
    return [(r["task_id"][:4], r["model"], int(r["input_tokens"]),
             int(r["cached_input_tokens"]), int(r["output_tokens"])) for r in rs]


# --- Claude Code ----------------------------------------------------------------------------

def test_claude_code_variants(tmp_path):
    res, rs = run(tmp_path, "claude-code", "claude_code_variants")
    opus, sonnet = "claude-opus-4-5-20251101", "claude-sonnet-4-20250514"
    # 5c6d (version 1.0.30, costUSD): 1200/0/300 and 20+100+800 = 920 (800 cached) / 50.
    # 9a0c: msg_01A1 streamed 2 -> 57 -> 311 output tokens, the last (complete) copy counts:
    #   4 + 3000 (flat cache_creation_input_tokens; the nested 3000 + 0 is the same tokens)
    #   + 12000 = 15004; msg_01A2 has only the nested breakdown: 6 + 700 + 1200 + 15000 =
    #   16906; msg_01A3 (no requestId: deduplicated on message.id alone) 40 -> 120 out,
    #   3 + 500 + 16000 = 16503. The <synthetic> API error and the isApiErrorMessage line are
    #   not calls.
    # 1b2d (resumed from 9a0c): its copies of msg_01A1 / msg_01A2 stay with 9a0c (the file
    #   that is older); its own call 10 + 2000 + 20000 = 22010 / 400.
    assert calls(rs) == [
        ("1b2d", opus, 22010, 20000, 400),
        ("5c6d", sonnet, 1200, 0, 300),
        ("5c6d", sonnet, 920, 800, 50),
        ("9a0c", opus, 15004, 12000, 311),
        ("9a0c", opus, 16906, 15000, 95),
        ("9a0c", opus, 16503, 16000, 120),
    ]
    assert res.input_tokens == 22010 + 1200 + 920 + 15004 + 16906 + 16503
    assert res.output_tokens == 400 + 300 + 50 + 311 + 95 + 120
    # 11 usage lines: A1 x3, A2, A3 x2, B1, the copies of A1 and A2, C1, C2.
    assert res.records == 11 and res.duplicates == 5 and res.skipped == 0
    # costUSD, where an old version wrote it, is carried as the row's stated cost.
    assert [r["cost_usd"] for r in rs] == ["", "0.012345678", "0.000987654", "", "", ""]
    assert res.cost_usd == pytest.approx(0.012345678 + 0.000987654, abs=1e-12)
    assert res.tasks == 3


# --- Codex ----------------------------------------------------------------------------------

def test_codex_variants(tmp_path):
    res, rs = run(tmp_path, "codex", "codex_variants")
    got = sorted((r["task_id"][:4], r["model"], int(r["input_tokens"]),
                  int(r["cached_input_tokens"]), int(r["output_tokens"])) for r in rs)
    # 0a1b (0.63): info: null is a rate-limit update; totals only: 10000/4000/500 (logged
    #   twice: once), then on gpt-5.1-codex-max 25000-10000 = 15000, 16000-4000 = 12000,
    #   1300-500 = 800; then last_token_usage with cache_read_input_tokens for cached:
    #   7000/5000/200.
    # 5e6f (0.30, totals only): 5000/0/1000 read before the turn_context naming o4-mini;
    #   8000-5000 = 3000, 2000-0 = 2000, 1300-1000 = 300; then the total drops to 600/0/40:
    #   a count started again, all of it new.
    # 9d8c (flat token_count payloads, no model anywhere): gpt-5, 3000/1000/250, 4200/3000/90.
    assert got == sorted([
        ("0a1b", "gpt-5-codex", 10000, 4000, 500),
        ("0a1b", "gpt-5.1-codex-max", 15000, 12000, 800),
        ("0a1b", "gpt-5.1-codex-max", 7000, 5000, 200),
        ("5e6f", "o4-mini", 5000, 0, 1000),
        ("5e6f", "o4-mini", 3000, 2000, 300),
        ("5e6f", "o4-mini", 600, 0, 40),
        ("9d8c", "gpt-5", 3000, 1000, 250),
        ("9d8c", "gpt-5", 4200, 3000, 90),
    ])
    assert res.input_tokens == 10000 + 15000 + 7000 + 5000 + 3000 + 600 + 3000 + 4200
    assert res.cached_input_tokens == 4000 + 12000 + 5000 + 0 + 2000 + 0 + 1000 + 3000
    assert res.output_tokens == 500 + 800 + 200 + 1000 + 300 + 40 + 250 + 90
    assert res.duplicates == 1 and res.skipped == 0


# --- OpenTelemetry --------------------------------------------------------------------------

def test_otlp_variants(tmp_path):
    res, rs = run(tmp_path, "otlp", "otlp_variants")
    # traces.json.gz, pretty-printed, two services. Trace 5b8e (conv-900): the "agent run"
    # span totals its calls (21012 / 1300) and is not counted; the agent's Anthropic span
    # (12 + 8000 read + 500 written) has the gateway's span of the same call below it, which
    # counts: 8512 (8000 cached) / 700; the deprecated names on the gpt-4.1 span: prompt_tokens
    # 12500.0 (doubleValue), completion_tokens "600", cache_read_input_tokens "4000". Trace
    # 0af7 (no conversation id: the trace is the task): "3000" / 150.0. One model per attempt:
    # gpt-4.1 has more tokens, the Anthropic call is its own phase.
    got = [(r["task_id"][:8], r["phase"], r["model"], int(r["input_tokens"]),
            int(r["cached_input_tokens"]), int(r["output_tokens"]), r["timestamp"]) for r in rs]
    assert sorted(got) == sorted([
        ("conv-900", "builder@anthropic/claude-sonnet-4-5", "anthropic/claude-sonnet-4-5", 8512,
         8000, 700, "2026-03-31T23:33:21.100Z"),
        ("conv-900", "builder", "gpt-4.1", 12500, 4000, 600, "2026-03-31T23:33:40.000Z"),
        ("0af76519", "main", "gpt-4.1-mini", 3000, 0, 150, "2026-03-31T23:35:00.000Z"),
    ])
    assert res.input_tokens == 8512 + 12500 + 3000
    assert res.cached_input_tokens == 8000 + 4000
    assert res.output_tokens == 700 + 600 + 150
    assert res.skipped == 0 and res.duplicates == 0


# --- LiteLLM --------------------------------------------------------------------------------

def test_litellm_variants(tmp_path):
    res, rs = run(tmp_path, "litellm", "litellm_variants", task_by="tag:task")
    # 9a01: metadata, spend and request_tags as JSON strings; cache_creation_input_tokens 0
    #   beside prompt_tokens_details.cached_tokens 3000 (OpenAI): 5000 in, 3000 cached, 200 out.
    # 9a02: objects; Anthropic through LiteLLM (12050 already holds the 10000 read + 2000
    #   written): 12050 / 10000 / 310. 9a03: failed, token counts null or empty, $0: not a
    #   call. 9a04: failed but billed ($0.00041, 4000 / 50): kept. 9a05: a hit of LiteLLM's
    #   response cache: not a call. 9a06: no metadata; request_tags a Postgres array literal {agent:reviewer,nightly}
    #   (no task tag: the session is the task). 9a07: metadata not JSON.
    assert [(r["task_id"], r["phase"], r["model"], int(r["input_tokens"]),
             int(r["cached_input_tokens"]), int(r["output_tokens"]), float(r["cost_usd"]))
            for r in rs] == [
        ("T-9", "planner", "gpt-4.1", 5000, 3000, 200, 0.001234567),
        ("T-9", "coder", "claude-sonnet-4-5-20250929", 12050, 10000, 310, 0.0087654321),
        ("sess-Y", "main", "gpt-4.1", 4000, 0, 50, 0.00041),
        ("sess-Z", "reviewer", "gpt-4.1-mini", 700, 0, 30, 0.0000412),
    ]
    assert res.cost_usd == pytest.approx(0.001234567 + 0.0087654321 + 0.00041 + 0.0000412,
                                         abs=1e-12)
    assert res.skipped == 1 and "metadata: not JSON" in res.reasons[0]
    assert res.ignored == 2 and res.tasks_from_fallback == 2
    assert rs[0]["timestamp"] == "2026-04-05T10:00:00.250Z"


# --- OpenHands ------------------------------------------------------------------------------

def test_openhands_eval_variants(tmp_path):
    res, rs = run(tmp_path, "openhands", "openhands_variants")
    got = {r["task_id"]: (r["attempt"], r["success"], r["input_tokens"], r["cached_input_tokens"],
                          r["output_tokens"], r["cost_usd"], r["model"]) for r in rs}
    sonnet = "litellm_proxy/claude-sonnet-4-5"
    assert got == {
        # git_patch only: success unknown. 50000 >= 40000 read + 5000 written: both inside.
        "astropy__astropy-14995": ("1", "", "50000", "40000", "1200", "0.21", sonnet),
        # resolved at the top level. 300 < 20000 read: Anthropic's raw input, 300 + 20000 +
        # 3000 = 23300.
        "django__django-15851": ("1", "true", "23300", "20000", "900", "0.0456", sonnet),
        # report.resolved under test_result; 20000 <= 24000 < 20000 + 8000: the reads are
        # inside, the writes are not: 24000 + 8000 = 32000.
        "sympy__sympy-21612": ("2", "false", "32000", "20000", "700", "0.1", sonnet),
    }
    # pallets__flask-5063, metrics: null: neither tokens nor cost recorded, so nothing to bill:
    # skipped and counted (kept, its empty token counts made calibrate refuse the whole log).
    assert res.skipped == 2
    assert "output.jsonl:4: pallets__flask-5063: no cost and no token counts" in res.reasons[0]
    assert "instance_id: missing" in res.reasons[1]


# --- Aider ----------------------------------------------------------------------------------

def test_aider_variants(tmp_path):
    res, rs = run(tmp_path, "aider-bench", "aider_variants")
    got = [(r["task_id"], r["attempt"], r["success"], r["input_tokens"], r["output_tokens"])
           for r in rs]
    # zipper: an older file with no token counts, three tries: 0 tokens beside the stated cost
    # (a cost-only row, as calibrate reads it); react: no try recorded, one failed attempt
    # carrying all of the file's 4001 / 99 / $0.0123.
    assert got == [("python/react", "1", "false", "4001", "99"),
                   ("python/zipper", "1", "false", "0", "0"),
                   ("python/zipper", "2", "false", "0", "0"),
                   ("python/zipper", "3", "true", "0", "0")]
    zipper = [float(r["cost_usd"]) for r in rs if r["task_id"] == "python/zipper"]
    assert sum(zipper) == pytest.approx(0.0301, abs=1e-12) and len(set(zipper[:2])) == 1
    assert res.cost_usd == pytest.approx(0.0301 + 0.0123, abs=1e-12)


def test_otlp_claude_code_telemetry_events(tmp_path):
    res, rs = run(tmp_path, "otlp", "otlp_claude_code")
    # Claude Code's OTel log events: api_request counts are Anthropic's (cache apart):
    # 8 + 14000 + 1200 = 15208 in (14000 cached) / 420, $0.0123456 as Claude Code computed it
    # (sent twice: once); haiku 300 / 12, $0.00036. The user_prompt event is not a call.
    assert [(r["task_id"], r["phase"], r["model"], int(r["input_tokens"]),
             int(r["cached_input_tokens"]), int(r["output_tokens"]), float(r["cost_usd"]),
             r["timestamp"]) for r in rs] == [
        ("cc-sess-1", "main", "claude-sonnet-4-5-20250929", 15208, 14000, 420, 0.0123456,
         "2026-04-06T08:00:05.123Z"),
        ("cc-sess-1", "main@claude-haiku-4-5-20251001", "claude-haiku-4-5-20251001", 300, 0, 12,
         0.00036, "2026-04-06T08:00:10.000Z"),
    ]
    assert res.duplicates == 1 and res.skipped == 0


# --- Odd values never escape as a traceback -------------------------------------------------

_ODD = [None, "", "x", -1, 1.5, True, [], {}, [1, "a"], {"a": None}, "12", 10**20, "nan"]


def _scramble(obj, rng, p=0.2):
    if isinstance(obj, dict):
        return {k: rng.choice(_ODD) if rng.random() < p else _scramble(v, rng, p)
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [rng.choice(_ODD) if rng.random() < p else _scramble(v, rng, p) for v in obj]
    return obj


@pytest.mark.parametrize("source,folder", [
    ("claude-code", "claude_code_variants"), ("codex", "codex_variants"),
    ("otlp", "otlp_variants"), ("otlp", "otlp_claude_code"), ("litellm", "litellm_variants"),
    ("openhands", "openhands_variants"), ("aider-bench", "aider_variants")])
def test_scrambled_variants_are_skipped_not_raised(tmp_path, source, folder):
    """Every value of the variant fixtures replaced at random by one of another type: the
    import succeeds or fails with one CostsimError line, never a traceback."""
    import gzip
    import json
    import random

    from costsim.errors import CostsimError

    base = LOGS / folder
    for seed in range(4):
        rng = random.Random(seed)
        root = tmp_path / str(seed)
        for f in sorted(p for p in base.rglob("*") if p.is_file()):
            dst = root / f.relative_to(base)
            dst.parent.mkdir(parents=True, exist_ok=True)
            if f.suffix == ".gz":
                doc = _scramble(json.loads(gzip.decompress(f.read_bytes())), rng)
                dst.write_bytes(gzip.compress(json.dumps(doc).encode(), mtime=0))
                continue
            text = f.read_text()
            try:
                dst.write_text(json.dumps(_scramble(json.loads(text), rng)))
            except ValueError:
                dst.write_text("".join(json.dumps(_scramble(json.loads(line), rng)) + "\n"
                                       for line in text.splitlines() if line.strip()))
        try:
            import_logs(source, [root], root / "out.csv")
        except CostsimError:
            pass
