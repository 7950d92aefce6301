"""The YAML writer and the bundled table it produced."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from costsim.loader import load_prices, prices_from_text
from costsim.paths import bundled_prices_path
from costsim.pricetable.sources import classify_tier, parse_litellm, parse_openrouter
from costsim.pricetable.writer import dump_price_table, format_scalar

FIX = Path(__file__).parent / "fixtures"


def _table(models):
    return {
        "version": 1,
        "as_of": dt.date(2026, 11, 25),
        "currency": "USD",
        "sources": [{"name": "litellm", "ref": "a: b, c", "fetched": dt.date(2026, 11, 25)}],
        "models": models,
    }


@pytest.mark.parametrize(
    "parse, name",
    [(parse_litellm, "litellm_excerpt.json"), (parse_openrouter, "openrouter_excerpt.json")],
)
def test_round_trip_through_safe_load_and_loader(parse, name):
    parsed = parse(json.loads((FIX / name).read_text()))
    table = _table(parsed.models)
    text = dump_price_table(table, header="a header\nof two lines")
    assert yaml.safe_load(text) == table
    loaded = prices_from_text(text, "t.yaml")
    assert set(loaded.models) == set(parsed.models)
    assert dump_price_table(table, header="a header\nof two lines") == text  # deterministic


def test_layout_is_fixed_and_human_friendly():
    table = _table(
        {
            "zeta": {"output": 25.0, "input": 5.0, "tier": "premium", "provider": "p",
                     "source": "litellm:zeta", "long_context": {"input": 10.0, "above": 200000}},
            "alpha": {"provider": "p", "tier": "budget", "input": 1e-05, "output": 3,
                      "history": [{"source": "s", "input": 0.5, "date": dt.date(2026, 1, 2)}]},
        }
    )
    text = dump_price_table(table)
    assert text.splitlines() == [
        "version: 1",
        "as_of: 2026-11-25",
        "currency: USD",
        "sources:",
        '  - {name: litellm, ref: "a: b, c", fetched: 2026-11-25}',
        "models:",
        "  alpha:",
        "    provider: p",
        "    tier: budget",
        "    input: 0.00001",
        "    output: 3",
        "    history:",
        "      - {date: 2026-01-02, input: 0.5, source: s}",
        "  zeta:",
        "    provider: p",
        "    tier: premium",
        "    input: 5.0",
        "    output: 25.0",
        "    long_context:",
        "      above: 200000",
        "      input: 10.0",
        '    source: "litellm:zeta"',
    ]


@pytest.mark.parametrize(
    "value, text",
    [
        (3.0, "3.0"),
        (0.075, "0.075"),
        (1e-05, "0.00001"),
        (0.0208333333333333, "0.0208333333333333"),
        (1e16, "10000000000000000.0"),
        (-0.0, "0.0"),
        (7, "7"),
        (True, "true"),
        ("yes", '"yes"'),
        ("2026-01-01", '"2026-01-01"'),
        ("1.5", '"1.5"'),
        ("claude-opus-5", "claude-opus-5"),
        ("a #b", '"a #b"'),
        (dt.date(2026, 1, 1), "2026-01-01"),
    ],
)
def test_format_scalar(value, text):
    assert format_scalar(value) == text
    assert yaml.safe_load(f"k: {text}")["k"] == value


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False))
def test_floats_read_back_identically(x):
    assert yaml.safe_load(f"k: {format_scalar(x)}")["k"] == x


@given(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20))
def test_strings_read_back_identically(s):
    assert yaml.safe_load(f"k: {format_scalar(s)}")["k"] == s


def test_refuses_non_finite():
    with pytest.raises(ValueError):
        format_scalar(float("inf"))


def test_empty_table():
    text = dump_price_table({"version": 1, "as_of": dt.date(2026, 1, 1), "models": {}})
    assert yaml.safe_load(text) == {"version": 1, "as_of": dt.date(2026, 1, 1), "models": {}}


# --- the bundled table ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundled():
    return load_prices(bundled_prices_path())


def test_bundled_table_has_what_the_policies_need(bundled):
    tiers = {mid: m.tier for mid, m in bundled.models.items()}
    assert tiers["deepseek-v4-flash"] == "budget"
    assert tiers["claude-sonnet-5"] == "midrange"
    assert tiers["claude-opus-5"] == "premium"
    assert len(bundled.models) >= 15
    assert len({m.provider for m in bundled.models.values()}) >= 5
    assert bundled.as_of == dt.date(2026, 11, 25)
    assert {s.name for s in bundled.sources} == {"litellm", "openrouter"}


def test_bundled_table_is_consistent(bundled):
    for mid, m in bundled.models.items():
        assert "/" not in mid
        assert m.tier == classify_tier(m.input, m.output), mid  # the documented rule
        assert m.coding_score is not None, mid
        assert m.source and m.source.startswith("litellm:"), mid
        assert m.context_window, mid


def test_bundled_prices_hand_checked(bundled):
    # LiteLLM first-party entries: claude-opus-5 5e-06 / 2.5e-05 / 5e-07 / 6.25e-06;
    # gpt-5.6-sol above 272k 8e-06 / 3e-05; deepseek-v4-flash cache read 6e-09.
    opus = bundled.models["claude-opus-5"]
    assert (opus.input, opus.output, opus.cache_read, opus.cache_write) == (5.0, 25.0, 0.5, 6.25)
    assert opus.coding_score == 78.0
    sol = bundled.models["gpt-5.6-sol"]
    assert (sol.input, sol.long_context.above, sol.long_context.input) == (4.0, 272000, 8.0)
    assert bundled.models["deepseek-v4-flash"].cache_read == 0.006


def test_bundled_file_is_in_writer_layout():
    text = bundled_prices_path().read_text()
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#")) + "\n"
    assert dump_price_table(yaml.safe_load(text)) == body


def test_a_final_newline_is_quoted():
    """Found by the property above: ``$`` in a regex also matches before a final newline, so
    "A\\n" was written plain and read back as "A"."""
    assert format_scalar("A\n") == '"A\\n"'
    assert yaml.safe_load(f"k: {format_scalar('A' + chr(10))}")["k"] == "A\n"
