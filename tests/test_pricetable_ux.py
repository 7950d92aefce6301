"""Adding a model is easy: globs that match what users type, one entry per model, scores from
OpenRouter or a file, new tables from the bundled one, the bundled table by name, YAML export,
a short report, comments kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from costsim.cli import app
from costsim.loader import load_prices
from costsim.paths import bundled_prices_path
from costsim.pricetable.pick import model_name

from helpers import assert_fits

FIX = Path(__file__).parent / "fixtures"
OPENROUTER = FIX / "openrouter_excerpt.json"
runner = CliRunner()


def pt(*args):
    return runner.invoke(app, ["price-table", *map(str, args)])


def entry(provider, inp=1e-07, out=5e-07):
    return {"litellm_provider": provider, "mode": "chat", "input_cost_per_token": inp,
            "output_cost_per_token": out}


@pytest.fixture
def litellm(tmp_path) -> Path:
    """One model sold by its maker and three resellers (LiteLLM's layout), and a second
    model sold only by resellers."""
    data = {
        "claude-haiku-5-5": entry("anthropic"),
        "bedrock_mantle/anthropic.claude-haiku-5-5": entry("bedrock_mantle", 1.1e-07),
        "azure_ai/claude-haiku-5-5": entry("azure_ai", 1.2e-07),
        "vertex_ai/claude-haiku-5-5": entry("vertex_ai"),
        "fireworks_ai/kimi-k9": entry("fireworks_ai", 6e-07, 2.5e-06),
        "together_ai/moonshotai/kimi-k9": entry("together_ai", 5e-07, 2.5e-06),
        "claude-opus-5": entry("anthropic", 5e-06, 2.5e-05),
    }
    p = tmp_path / "litellm.json"
    p.write_text(json.dumps(data))
    return p


@pytest.fixture
def small(tmp_path) -> Path:
    p = tmp_path / "mine.yaml"
    p.write_text("""\
# our negotiated prices
version: 1
as_of: 2026-11-01
currency: USD
models:
  # the one we use most
  claude-opus-5:
    provider: anthropic
    tier: premium
    input: 6.0     # before the discount ran out
    output: 25.0
    coding_score: 78.0
""")
    return p


def test_model_names_strip_provider_region_and_version():
    assert model_name("bedrock_mantle/us.anthropic.claude-haiku-5-5-v1:0") == "claude-haiku-5-5"
    assert model_name("gemini/gemini-3.7-flash") == "gemini-3.7-flash"
    assert model_name("us.openai.gpt-5.6-luna") == "gpt-5.6-luna"
    assert model_name("dashscope/qwen3.8-max") == "qwen3.8-max"
    assert model_name("minimax/MiniMax-M3") == "minimax-m3"


def test_add_takes_one_entry_per_model_from_its_maker(litellm, small):
    r = pt("update", "--source", "litellm", "--from", litellm, "--table", small,
           "--add", "claude-haiku-5-5")
    assert r.exit_code == 0, r.output
    t = load_prices(small)
    assert [m for m in t.models if "haiku" in m] == ["claude-haiku-5-5"]
    assert t.models["claude-haiku-5-5"].provider == "anthropic"
    assert t.models["claude-haiku-5-5"].input == 0.1
    assert "anthropic's own entry; 3 other providers left out" in r.stdout


def test_other_providers_on_request(litellm, small):
    r = pt("update", "--source", "litellm", "--from", litellm, "--table", small,
           "--add", "claude-haiku-*", "--provider", "azure_ai", "--dry-run", "-f", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["added_models"] == ["azure_ai/claude-haiku-5-5"]
    r = pt("update", "--source", "litellm", "--from", litellm, "--table", small,
           "--add", "claude-haiku-*", "--provider", "all", "--dry-run", "-f", "json")
    assert len(json.loads(r.stdout)["added_models"]) == 4


def test_provider_slash_glob_matches_litellm_bare_keys(litellm, small):
    # LiteLLM keys Anthropic's own models without a prefix; 'anthropic/*' still finds them.
    r = pt("update", "--source", "litellm", "--from", litellm, "--table", small,
           "--add", "anthropic/*", "--dry-run", "-f", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["added_models"] == ["claude-haiku-5-5"]


def test_a_model_only_resellers_sell_needs_a_provider(litellm, small):
    # kimi is Moonshot's; the source has it only from resellers: left out unless asked for
    r = pt("update", "--source", "litellm", "--from", litellm, "--table", small,
           "--add", "kimi-*", "--dry-run", "-f", "json")
    assert r.exit_code == 2
    assert ("--add 'kimi-*' matched only models their maker does not sell in this source "
            "(fireworks_ai/kimi-k9, together_ai/moonshotai/kimi-k9); --provider NAME (e.g. "
            "fireworks_ai) or --provider all imports them") == r.stderr.strip()
    r = pt("update", "--source", "litellm", "--from", litellm, "--table", small,
           "--add", "kimi-*", "--provider", "together_ai", "--dry-run", "-f", "json")
    assert json.loads(r.stdout)["added_models"] == ["together_ai/moonshotai/kimi-k9"]


def test_a_model_of_an_unknown_maker_takes_one_entry(tmp_path, small):
    src = tmp_path / "l.json"
    src.write_text(json.dumps({"groq/zeta-9": entry("groq"), "zeta-9": entry("zetaco"),
                               "together_ai/zeta-9": entry("together_ai")}))
    r = pt("update", "--source", "litellm", "--from", src, "--table", small,
           "--add", "zeta-*", "--dry-run", "-f", "json")
    d = json.loads(r.stdout)
    assert d["added_models"] == ["zeta-9"]                 # the bare key
    assert any("no entry from its maker, took zeta-9" in n for n in d["notes"])


def test_a_glob_matching_nothing_says_what_exists(litellm, small):
    before = small.read_bytes()
    r = pt("update", "--source", "litellm", "--from", litellm, "--table", small,
           "--add", "claude-haiku-5")
    assert r.exit_code == 2
    err = r.stderr.strip()
    assert err.startswith("--add 'claude-haiku-5' matched no model of the litellm source; "
                          "close ids: claude-haiku-5-5")
    assert "'anthropic/*'" in err and len(err.splitlines()) == 1
    r = pt("update", "--source", "litellm", "--from", litellm, "--table", small,
           "--add", "claude-opus-5")
    assert r.exit_code == 2 and "already in the table" in r.stderr
    assert small.read_bytes() == before


def test_update_keeps_comments_and_quiet_is_short(litellm, small):
    r = pt("update", "--source", "litellm", "--from", litellm, "--table", small, "--quiet")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == [
        "1 model changed, 0 added, 0 removed, 0 unchanged",
        f"wrote {small} (previous table kept as {small}.bak)"]
    text = small.read_text()
    assert text.startswith("# our negotiated prices\n")
    assert "  # the one we use most\n  claude-opus-5:\n" in text
    assert "    input: 5.0  # before the discount ran out\n" in text
    assert load_prices(small).models["claude-opus-5"].input == 5.0


def test_report_is_short_and_names_unscored_models(litellm, small):
    r = pt("update", "--source", "litellm", "--from", litellm, "--table", small,
           "--add", "claude-haiku-5-5")
    assert len(r.stdout.splitlines()) <= 14, r.stdout
    assert ("1 model has no coding_score (claude-haiku-5-5): compare needs one unless a "
            f"workload gives success rates; add scores with `costsim price-table scores "
            f"--table {small}`") in r.stdout


def test_scores_from_openrouter_by_model_name(litellm, small):
    pt("update", "--source", "litellm", "--from", litellm, "--table", small, "--add",
       "claude-haiku-5-5")
    t = small.read_text().replace("    coding_score: 78.0\n", "")
    small.write_text(t)
    r = pt("scores", "--table", small, "--from", OPENROUTER)
    assert r.exit_code == 0, r.output
    table = load_prices(small)
    assert table.models["claude-opus-5"].coding_score == 78.0     # anthropic/claude-opus-5
    assert table.models["claude-haiku-5-5"].coding_score is None   # not in the excerpt
    assert "1 model still without a coding_score, not in the source: claude-haiku-5-5" in r.stdout
    assert "# the one we use most" in small.read_text()
    assert any(s.note == "coding_score only (costsim price-table scores)" for s in table.sources)


def test_scores_from_a_yaml_a_csv_or_another_table(tmp_path, small):
    mine = tmp_path / "scores.yaml"
    mine.write_text("claude-opus-5: 80.5\n")
    assert pt("scores", "--table", small, "--from", mine).exit_code == 0
    assert load_prices(small).models["claude-opus-5"].coding_score == 80.5
    csv = tmp_path / "scores.csv"
    csv.write_text("model,coding_score\nclaude-opus-5,81\n")
    r = pt("scores", "--table", small, "--from", csv, "--missing-only")
    assert r.exit_code == 0 and "nothing to change" in r.stdout
    assert load_prices(small).models["claude-opus-5"].coding_score == 80.5
    assert pt("scores", "--table", small, "--from", csv).exit_code == 0
    assert load_prices(small).models["claude-opus-5"].coding_score == 81.0
    # another price table: the bundled one by name
    r = pt("scores", "--table", small, "--from", bundled_prices_path())
    assert r.exit_code == 0 and load_prices(small).models["claude-opus-5"].coding_score == 78.0
    bad = tmp_path / "bad.yaml"
    bad.write_text("claude-opus-5: 180\n")
    r = pt("scores", "--table", small, "--from", bad)
    assert r.exit_code == 2 and "a coding_score is 0-100, got 180" in r.stderr


def test_scores_never_write_the_bundled_table():
    before = bundled_prices_path().read_bytes()
    r = pt("scores", "--from", OPENROUTER)
    assert r.exit_code == 2 and "bundled table" in r.stderr
    assert bundled_prices_path().read_bytes() == before


def test_show_exports_yaml_that_loads_back(tmp_path):
    out = tmp_path / "premium.yaml"
    r = pt("show", "--tier", "premium", "--format", "yaml", "-o", out)
    assert r.exit_code == 0, r.output
    t = load_prices(out)
    bundled = load_prices(bundled_prices_path())
    assert set(t.models) == {m for m, e in bundled.models.items() if e.tier == "premium"}
    assert t.models["claude-opus-5"] == bundled.models["claude-opus-5"]
    assert t.as_of == bundled.as_of


def test_diff_names_the_bundled_table(small):
    r = pt("diff", "bundled", small)
    assert r.exit_code == 0, r.output
    assert "~ claude-opus-5  input $5.00 → $6.00 (+20%)" in r.stdout
    assert "- deepseek-v4-flash" in r.stdout


def test_show_fits_80_columns():
    for w in (80, 120):
        r = runner.invoke(app, ["price-table", "show"], env={"COLUMNS": str(w)})
        assert r.exit_code == 0
        assert_fits(r.stdout, w)
        assert "claude-opus-5" in r.stdout and "$25.00" in r.stdout and "78" in r.stdout
