"""An imported usage log calibrates: tasks without an outcome are measured apart.

Spend figures are worked by hand from the Claude Code fixture (tests/fixtures/logs/claude_code)
at the prices below, per 1M tokens: uncached input (input - cached) at `input`, cached at
`cache_read`, output at `output`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from costsim.cli import app
from costsim.errors import CostsimError
from costsim.logs.importer import import_logs

LOGS = Path(__file__).parent / "fixtures" / "logs"
SESSION_A = "0b7d3c2e-5f1a-4c8e-9d2b-7e6f5a4b3c21"
runner = CliRunner()

PRICES = """version: 1
as_of: 2026-11-20
currency: USD
models:
  claude-sonnet-4-5: {provider: anthropic, tier: midrange, input: 3.0, output: 15.0,
                      cache_read: 0.3, coding_score: 60}
  claude-haiku-4-5: {provider: anthropic, tier: budget, input: 1.0, output: 5.0,
                     cache_read: 0.1, coding_score: 40}
"""
# Session A, sonnet: (18253*3 + 412*15) + (1216*3 + 18250*0.3 + 655*15)
#   + (894*3 + 19460*0.3 + 128*15) = 60939 + 18948 + 10440; haiku (title, explore x2):
#   (310 + 9*5) + (11320 + 96*5) + (2140 + 9800*0.1 + 205*5) = 355 + 11800 + 4145.
SPEND_A = (60939 + 18948 + 10440 + 355 + 11800 + 4145) / 1e6
# Session B, sonnet: (2405*3 + 15800*0.3 + 88*15) + (647*3 + 18200*0.3 + 301*15).
SPEND_B = (13275 + 11916) / 1e6


@pytest.fixture
def prices(tmp_path):
    p = tmp_path / "prices.yaml"
    p.write_text(PRICES)
    return p


def _calibrate(args):
    res = runner.invoke(app, ["calibrate", *args, "--format", "json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout), res.stderr


def test_imported_log_with_one_outcome_calibrates(tmp_path, prices):
    oc = tmp_path / "outcomes.csv"
    oc.write_text(f"task_id,success\n{SESSION_A},true\n")
    out = tmp_path / "runs.csv"
    import_logs("claude-code", [LOGS / "claude_code"], out, outcomes=oc, prices=prices)
    data, err = _calibrate([str(out), "--prices", str(prices)])
    overall = data["overall"]
    assert overall["tasks"] == 1 and overall["completed"] == 1
    assert overall["spend"] == pytest.approx(SPEND_A, abs=1e-12)
    assert overall["cost_per_completed_task"] == pytest.approx(SPEND_A, abs=1e-12)
    assert overall["tasks_without_outcome"] == 1
    assert overall["spend_without_outcome"] == pytest.approx(SPEND_B, abs=1e-12)
    assert "1 tasks have no outcome" in err


def test_calibrate_source_in_one_step(tmp_path, prices):
    oc = tmp_path / "outcomes.jsonl"
    oc.write_text(json.dumps({"task_id": SESSION_A, "success": False}) + "\n"
                  + json.dumps({"task_id": "5e8a1d90-2c3b-4f7e-8a6d-1b2c3d4e5f60",
                                "success": True}) + "\n")
    data, err = _calibrate(["--source", "claude-code", str(LOGS / "claude_code"),
                            "--outcomes", str(oc), "--prices", str(prices)])
    overall = data["overall"]
    assert (overall["tasks"], overall["completed"], overall["tasks_without_outcome"]) == (2, 1, 0)
    assert overall["spend"] == pytest.approx(SPEND_A + SPEND_B, abs=1e-12)
    assert overall["cost_per_completed_task"] == pytest.approx(SPEND_A + SPEND_B, abs=1e-12)
    assert "claude-sonnet-4-5-20250929 -> claude-sonnet-4-5" in err


def test_a_log_without_any_outcome_says_how_to_get_one(tmp_path, prices):
    out = tmp_path / "runs.csv"
    import_logs("claude-code", [LOGS / "claude_code"], out, prices=prices)
    res = runner.invoke(app, ["calibrate", str(out), "--prices", str(prices)])
    assert res.exit_code == 2
    assert "no task in the log has an outcome" in res.stderr and "--outcomes" in res.stderr


def test_a_task_with_an_outcome_needs_it_on_every_attempt(tmp_path):
    from costsim.logs.runslog import read_log

    log = tmp_path / "runs.csv"
    log.write_text("task_id,task_type,phase,attempt,model,input_tokens,output_tokens,success\n"
                   "t1,bugfix,plan,1,m,10,1,true\n"
                   "t1,bugfix,implement,1,m,10,1,\n"
                   "t2,bugfix,plan,1,m,10,1,\n")
    with pytest.raises(CostsimError, match=r"runs.csv:3: success: required value missing"):
        read_log(log).close()
