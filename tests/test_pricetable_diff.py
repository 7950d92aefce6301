"""`price-table diff`: the diff model, its infracost-style text and its JSON."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from costsim.cli import app
from costsim.pricetable.diff import Change, diff_tables, format_price, render_diff_text
from costsim.pricetable.merge import update_table

FIX = Path(__file__).parent / "fixtures"
runner = CliRunner()


def _m(**kw):
    base = {"provider": "acme", "tier": "midrange", "input": 3.0, "output": 15.0}
    base.update(kw)
    return base


OLD = {
    "version": 1,
    "as_of": dt.date(2026, 10, 1),
    "models": {
        "a": _m(),
        "b": _m(input=1.0, output=2.0, tier="budget"),
        "gone": _m(input=10.0, output=50.0, cache_read=1.0, tier="premium"),
        "same": _m(),
    },
}
NEW = copy.deepcopy(OLD)
NEW["models"]["a"].update(input=2.0, cache_read=0.3, long_context={"above": 200000, "input": 6.0})
NEW["models"]["b"]["coding_score"] = 55.5
del NEW["models"]["gone"]
NEW["models"]["fresh"] = _m(input=0.5, output=1.5, cache_read=0.05, provider="zen", tier="budget")


def test_diff_model():
    d = diff_tables(OLD, NEW)
    assert d.changed == [
        Change("a", "input", 3.0, 2.0),
        Change("a", "cache_read", None, 0.3),
        Change("a", "long_context.above", None, 200000),
        Change("a", "long_context.input", None, 6.0),
        Change("b", "coding_score", None, 55.5),
    ]
    assert d.added_models == ["fresh"] and d.removed_models == ["gone"]
    assert d.unchanged == 1
    assert Change("fresh", "input", None, 0.5) in d.added
    assert Change("gone", "cache_read", 1.0, None) in d.removed
    assert d.changed[0].pct == pytest.approx(-100 / 3)


def test_diff_text_golden():
    text = render_diff_text(diff_tables(OLD, NEW))
    assert text == (
        "Legend: ~ changed, + added, - removed\n"
        "\n"
        "~ a  input $3.00 → $2.00 (-33%)\n"
        "~ a  cache_read (none) → $0.30\n"
        "~ a  long_context.above (none) → 200,000\n"
        "~ a  long_context.input (none) → $6.00\n"
        "~ b  coding_score (none) → 55.5\n"
        "+ fresh  input $0.50, output $1.50, cache_read $0.05 (budget, zen)\n"
        "- gone  input $10.00, output $50.00, cache_read $1.00 (premium, acme)\n"
        "\n"
        "2 models changed (5 fields), 1 added, 1 removed, 1 unchanged\n"
    )


def test_no_differences():
    text = render_diff_text(diff_tables(OLD, OLD))
    assert "(no differences)" in text
    assert text.endswith("0 models changed (0 fields), 0 added, 0 removed, 4 unchanged\n")


def test_format_price():
    assert format_price(3.0) == "$3.00"
    assert format_price(0.075) == "$0.075"
    assert format_price(0.0208333333333333) == "$0.0208333333333333"
    assert format_price(1234.5) == "$1,234.50"
    assert format_price(0) == "$0.00"


def test_cli_diff_between_two_dates(tmp_path):
    """Two LiteLLM dumps of different dates, each imported with --all: the diff names the
    models whose prices moved, the added and the removed ones."""
    later = json.loads((FIX / "litellm_excerpt.json").read_text())
    later["claude-opus-5"]["input_cost_per_token"] = 4e-06  # $5 -> $4
    later["xai/grok-4.6"]["output_cost_per_token_above_200k_tokens"] = 1.5e-05  # $12 -> $15
    del later["dashscope/qwen-flash"]
    later["dashscope/qwen-flash-2"] = copy.deepcopy(
        json.loads((FIX / "litellm_excerpt.json").read_text())["dashscope/qwen-flash"])
    src = tmp_path / "later.json"
    src.write_text(json.dumps(later))
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    update_table("litellm", str(FIX / "litellm_excerpt.json"), table=a, import_all=True,
                 today=dt.date(2026, 10, 1), empty=True, providers=["all"])
    update_table("litellm", str(src), table=b, import_all=True, today=dt.date(2026, 11, 25),
                 empty=True, providers=["all"])

    r = runner.invoke(app, ["price-table", "diff", str(a), str(b)])
    assert r.exit_code == 0, r.stderr
    out = r.stdout
    assert "(as of 2026-10-01)" in out and "(as of 2026-11-25)" in out
    assert "~ claude-opus-5  input $5.00 → $4.00 (-20%)" in out
    assert "~ xai/grok-4.6  long_context.output $12.00 → $15.00 (+25%)" in out
    assert "+ dashscope/qwen-flash-2  input $0.05, output $0.40" in out
    assert "- dashscope/qwen-flash  input $0.05, output $0.40" in out
    assert out.rstrip().endswith("2 models changed (2 fields), 1 added, 1 removed, 7 unchanged")

    r = runner.invoke(app, ["price-table", "diff", str(a), str(b), "--format", "json"])
    d = json.loads(r.stdout)
    assert d["version"] == 1
    assert d["changed"] == [
        {"model": "claude-opus-5", "field": "input", "old": 5.0, "new": 4.0},
        {"model": "xai/grok-4.6", "field": "long_context.output", "old": 12.0, "new": 15.0},
    ]
    assert {"model": "dashscope/qwen-flash-2", "field": "input", "old": None, "new": 0.05} in (
        d["added"])
    assert {"model": "dashscope/qwen-flash", "field": "output", "old": 0.4, "new": None} in (
        d["removed"])


def test_cli_diff_bad_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nas_of: 2026-01-01\nmodels:\n  x: {provider: p}\n")
    r = runner.invoke(app, ["price-table", "diff", str(bad), str(bad)])
    assert r.exit_code == 2
    assert r.stderr.strip().startswith(f"{bad}:4: models.x")
    assert "Traceback" not in r.output
