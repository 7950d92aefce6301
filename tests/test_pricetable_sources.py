"""Parsing LiteLLM and OpenRouter into price-table entries.

Every expected number below was worked by hand from the entry in tests/fixtures/ (per-token
price x 1,000,000), not computed by the code under test.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from costsim.pricetable.sources import (
    SourceError,
    classify_tier,
    parse_litellm,
    parse_openrouter,
    per_million,
)

FIX = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def litellm_raw():
    return json.loads((FIX / "litellm_excerpt.json").read_text())


@pytest.fixture(scope="module")
def litellm(litellm_raw):
    return parse_litellm(litellm_raw)


@pytest.fixture(scope="module")
def openrouter_raw():
    return json.loads((FIX / "openrouter_excerpt.json").read_text())


@pytest.fixture(scope="module")
def openrouter(openrouter_raw):
    return parse_openrouter(openrouter_raw)


# --- exact conversion ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "per_token, per_1m",
    [
        (3e-06, 3.0),
        (5e-06, 5.0),
        (2.5e-05, 25.0),
        (6.25e-06, 6.25),
        (5e-07, 0.5),
        (6e-09, 0.006),  # deepseek-v4-flash cache read
        (1.2e-06, 1.2),
        (3.75e-06, 3.75),
        (7.5e-08, 0.075),
        (1.32e-06, 1.32),
        (4.4e-08, 0.044),
        (2.6e-07, 0.26),
        (1.0000000000000001e-07, 0.1),  # float noise in LiteLLM's own file
        (5.0000000000000004e-08, 0.05),
        ("0.000003", 3.0),
        ("0.0000025", 2.5),
        ("0.000003125", 3.125),
        ("0.0000225", 22.5),
        ("0.0000000208333333333333", 0.0208333333333333),
        ("0.0000000798", 0.0798),
        ("0", 0.0),
        (0, 0.0),
    ],
)
def test_per_million_is_exact(per_token, per_1m):
    assert per_million(per_token) == per_1m
    assert repr(per_million(per_token)) == repr(per_1m)


@pytest.mark.parametrize(
    "per_token, naive, exact",
    [
        (3.3e-06, 3.3000000000000003, 3.3),
        (1e-07, 0.09999999999999999, 0.1),
        (5e-08, 0.049999999999999996, 0.05),
        (6.25e-09, 0.0062499999999999995, 0.00625),
    ],
)
def test_naive_float_multiplication_would_be_wrong(per_token, naive, exact):
    # The reason per_million exists: the obvious float product is off in the last digit for
    # 229 distinct per-token prices of the LiteLLM map these fixtures come from.
    assert per_token * 1_000_000 == naive
    assert per_million(per_token) == exact


def _prices(obj):
    """Every per-token price in a LiteLLM entry or OpenRouter pricing block, recursively."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list)):
                yield from _prices(v)
            elif ("cost_per_token" in k or "token_cost" in k) and isinstance(v, (int, float)):
                yield v
    elif isinstance(obj, list):
        for v in obj:
            yield from _prices(v)


def test_every_fixture_price_converts_without_noise(litellm_raw, openrouter_raw):
    """On all real per-token prices in the fixtures: the per-1M value has exactly the digits of
    the decimal the source wrote, shifted by six places (noise beyond 15 digits dropped)."""
    values = [v for v in _prices(litellm_raw) if not isinstance(v, bool)]
    strings = [
        v
        for m in openrouter_raw["data"]
        for k, v in m["pricing"].items()
        if isinstance(v, str) and k != "web_search"
    ]
    assert len(values) > 100 and len(strings) > 30
    for v in values:
        expected = Decimal(repr(v)).normalize()
        if len(expected.as_tuple().digits) > 15:  # float noise: 1.0000000000000001e-07
            expected = Decimal(f"{v:.15g}")
        assert per_million(v) == float(expected.scaleb(6)), v
        assert Decimal(repr(per_million(v))) == expected.scaleb(6), v
    for s in strings:
        assert per_million(s) == float(Decimal(s).scaleb(6)), s


@given(
    digits=st.integers(min_value=1, max_value=99_999_999),
    exponent=st.integers(min_value=-14, max_value=-3),
)
def test_per_million_matches_decimal_arithmetic(digits, exponent):
    text = f"{digits}e{exponent}"
    exact = Decimal(text).scaleb(6)
    assert per_million(float(text)) == float(exact)
    assert per_million(format(Decimal(text), "f")) == float(exact)


@pytest.mark.parametrize("bad", [True, None, "abc", float("nan"), float("inf"), "Infinity", []])
def test_per_million_rejects_non_numbers(bad):
    with pytest.raises(ValueError):
        per_million(bad)


# --- LiteLLM ------------------------------------------------------------------------------


def test_litellm_base_and_cache_prices(litellm):
    m = litellm.models["claude-opus-5"]
    # 5e-06, 2.5e-05, 5e-07, 6.25e-06 per token
    assert m["provider"] == "anthropic"
    assert (m["input"], m["output"], m["cache_read"], m["cache_write"]) == (5.0, 25.0, 0.5, 6.25)
    assert m["context_window"] == 1_000_000
    assert m["source"] == "litellm:claude-opus-5"
    assert "long_context" not in m
    assert m["tier"] == "premium"  # blended (3*5 + 25)/4 = 10 >= 7.5


def test_litellm_above_200k_becomes_long_context(litellm):
    m = litellm.models["xai/grok-4.6"]
    # input 2e-06 / output 6e-06 / cache read 5e-07; above 200k: 4e-06 / 1.2e-05 / 1e-06
    assert (m["input"], m["output"], m["cache_read"]) == (2.0, 6.0, 0.5)
    assert m["long_context"] == {"above": 200_000, "input": 4.0, "output": 12.0, "cache_read": 1.0}
    assert m["provider"] == "xai"


def test_litellm_above_272k_with_cache_write(litellm):
    m = litellm.models["gpt-5.6-luna"]
    assert (m["input"], m["output"], m["cache_read"], m["cache_write"]) == (0.2, 1.2, 0.02, 0.25)
    assert m["long_context"] == {
        "above": 272_000,
        "input": 0.4,
        "output": 1.8,
        "cache_read": 0.04,
        "cache_write": 0.5,
    }
    assert m["context_window"] == 922_000


def test_litellm_simple_tiered_pricing(litellm):
    m = litellm.models["dashscope/qwen-flash"]
    # tiers [0, 256000): 5e-08 / 4e-07; [256000, 1000000): 2.5e-07 / 2e-06
    assert (m["input"], m["output"]) == (0.05, 0.4)
    assert m["long_context"] == {"above": 256_000, "input": 0.25, "output": 2.0}
    assert "cache_read" not in m


def test_litellm_tiered_pricing_with_cache_and_float_noise(litellm):
    m = litellm.models["opencode_go/claude-haiku-5-5"]
    # 1.0000000000000001e-07 in the source is 0.1 per 1M
    assert (m["input"], m["output"], m["cache_read"], m["cache_write"]) == (0.1, 0.5, 0.01, 0.125)
    assert m["long_context"] == {
        "above": 100_000,
        "input": 0.5,
        "output": 2.5,
        "cache_read": 0.05,
        "cache_write": 0.625,
    }


def test_litellm_multi_tier_pricing_is_reported(litellm):
    m = litellm.models["dashscope/qwen3-max"]
    assert (m["input"], m["output"]) == (1.2, 6.0)
    assert m["long_context"] == {"above": 32_000, "input": 2.4, "output": 12.0}
    reasons = [r for r, ids in litellm.report.unrepresented.items() if "dashscope/qwen3-max" in ids]
    assert any("3 tiers" in r for r in reasons)


def test_litellm_long_context_keeps_base_cache_price(litellm):
    # MiniMax gives its own cache price above 512k; where a source gives none (cache_read base
    # only), the base price is written out so the table's default does not change it.
    m = litellm.models["minimax/MiniMax-M3"]
    assert m["long_context"] == {"above": 512_000, "input": 0.6, "output": 2.4, "cache_read": 0.12}


def test_litellm_zero_cache_write_and_time_windows(litellm):
    m = litellm.models["deepseek-v4-flash"]
    assert (m["input"], m["output"], m["cache_read"]) == (0.3, 1.2, 0.006)
    assert "cache_write" not in m  # 0 means "no separate charge", billed as input
    un = litellm.report.unrepresented
    assert "deepseek-v4-flash" in un["time-window (off-peak) prices"]
    assert any("cache write price 0" in r and "deepseek-v4-flash" in ids for r, ids in un.items())


def test_litellm_skips_and_reports(litellm):
    skipped = {k for ids in litellm.report.skipped.values() for k in ids}
    assert skipped == {"sample_spec", "text-embedding-3-small", "claude-opus-latest"}
    assert litellm.report.total == 13
    assert litellm.report.imported == 10 == len(litellm.models)
    un = litellm.report.unrepresented
    assert "claude-opus-5" in un["extended cache-write duration prices (above_1hr)"]
    assert "gpt-5.6-luna" in un["service-tier prices (_priority)"]
    assert "gpt-5.6-luna" in un["service-tier prices (_flex)"]
    assert "gpt-5.6-luna" in un["extended cache-write duration prices (above_12hr)"]
    assert any("embedding" in r for r in litellm.report.skipped)


def test_litellm_ids_are_the_source_keys(litellm):
    assert "azure/gpt-5.6-sol" in litellm.models
    assert litellm.models["azure/gpt-5.6-sol"]["provider"] == "azure"
    assert litellm.lookup("grok-4.6") == "xai/grok-4.6"
    assert litellm.lookup("minimax-m3") == "minimax/MiniMax-M3"
    assert litellm.lookup("x", source_ref="litellm:gemini/gemini-3.7-flash") == (
        "gemini/gemini-3.7-flash"
    )
    assert litellm.lookup("no-such-model") is None


def test_litellm_report_renders(litellm):
    text = "\n".join(litellm.report.lines())
    assert "13 entries, 10 imported, 3 skipped" in text
    d = litellm.report.to_dict()
    assert sum(s["count"] for s in d["skipped"]) == 3


@pytest.mark.parametrize("bad", [[], "x", 3, {"a": 1, "b": "c"}])
def test_litellm_rejects_documents_of_the_wrong_shape(bad):
    with pytest.raises(SourceError):
        parse_litellm(bad)


def test_litellm_bad_entry_is_skipped_not_fatal():
    parsed = parse_litellm(
        {
            "good": {"mode": "chat", "litellm_provider": "p", "input_cost_per_token": 1e-06,
                     "output_cost_per_token": 2e-06},
            "bad": {"mode": "chat", "litellm_provider": "p", "input_cost_per_token": "lots",
                    "output_cost_per_token": 2e-06},
            "negative": {"mode": "chat", "litellm_provider": "p", "input_cost_per_token": -1,
                         "output_cost_per_token": 2e-06},
        }
    )
    assert list(parsed.models) == ["good"]
    assert parsed.report.skipped_count == 2


# --- OpenRouter ----------------------------------------------------------------------------


def test_openrouter_prices_and_score(openrouter):
    m = openrouter.models["anthropic/claude-opus-5"]
    # "0.000005" / "0.000025" / "0.0000005" / "0.00000625"; coding_index 78
    assert (m["input"], m["output"], m["cache_read"], m["cache_write"]) == (5.0, 25.0, 0.5, 6.25)
    assert m["coding_score"] == 78.0
    assert m["context_window"] == 1_000_000
    assert m["provider"] == "anthropic"
    assert m["source"] == "openrouter:anthropic/claude-opus-5"


def test_openrouter_min_prompt_tokens_override(openrouter):
    m = openrouter.models["x-ai/grok-4.6"]
    # override min_prompt_tokens 200000: "0.000004" / "0.000012" / "0.000001"
    assert m["long_context"] == {"above": 200_000, "input": 4.0, "output": 12.0, "cache_read": 1.0}
    assert m["coding_score"] == 76.8


def test_openrouter_override_with_cache_write(openrouter):
    m = openrouter.models["anthropic/claude-sonnet-4.5"]
    assert (m["input"], m["output"], m["cache_read"], m["cache_write"]) == (3.0, 15.0, 0.3, 3.75)
    assert m["long_context"] == {
        "above": 200_000,
        "input": 6.0,
        "output": 22.5,
        "cache_read": 0.6,
        "cache_write": 7.5,
    }


def test_openrouter_repeating_decimal(openrouter):
    m = openrouter.models["google/gemini-3.7-flash"]
    assert (m["input"], m["output"], m["cache_read"]) == (0.375, 1.875, 0.0375)
    assert m["cache_write"] == 0.0208333333333333


def test_openrouter_time_windows_reported_not_applied(openrouter):
    m = openrouter.models["deepseek/deepseek-v4-pro"]
    assert (m["input"], m["output"], m["cache_read"]) == (0.66, 1.98, 0.022)
    assert "long_context" not in m
    assert openrouter.report.unrepresented["time-window price overrides (utc_start/utc_end)"] == [
        "deepseek/deepseek-v4-pro"
    ]


def test_openrouter_skips_router_free_and_batch(openrouter):
    sk = openrouter.report.skipped
    assert sk["router entry (priced -1)"] == ["openrouter/auto"]
    assert sk["free variant (:free)"] == ["qwen/qwen3-coder-next:free"]
    assert list(sk["batch-API variant (:batch, half price, not interactive)"]) == [
        "anthropic/claude-opus-5:batch"
    ]
    assert openrouter.report.total == 9
    assert openrouter.report.imported == 6
    assert "qwen/qwen3-coder-next" in openrouter.models
    assert openrouter.lookup("claude-opus-5") == "anthropic/claude-opus-5"


def test_openrouter_accepts_bare_list_and_rejects_garbage(openrouter_raw):
    assert parse_openrouter(openrouter_raw["data"]).models.keys() == (
        parse_openrouter(openrouter_raw).models.keys()
    )
    with pytest.raises(SourceError):
        parse_openrouter({"models": []})
    parsed = parse_openrouter({"data": [{"id": "a/b"}, "junk", {"id": "c/d", "pricing": {
        "prompt": "x", "completion": "1"}}]})
    assert parsed.models == {}
    assert parsed.report.skipped_count == 3


# --- tiers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "inp, out, tier",
    [
        (0.3, 1.2, "budget"),  # deepseek-v4-flash: (0.9 + 1.2) / 4 = 0.525
        (2.0, 10.0, "midrange"),  # claude-sonnet-5: (6 + 10) / 4 = 4.0
        (5.0, 25.0, "premium"),  # claude-opus-5: (15 + 25) / 4 = 10.0
        (1.0, 6.0, "budget"),  # (3 + 6) / 4 = 2.25
        (2.0, 4.0, "midrange"),  # (6 + 4) / 4 = 2.50: no longer budget
        (2.5, 22.5, "premium"),  # exactly 7.50 is premium
        (2.5, 22.4, "midrange"),
    ],
)
def test_classify_tier(inp, out, tier):
    assert classify_tier(inp, out) == tier


# --- robustness: odd entries are skipped or reported, never a crash --------------------------

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**7), st.floats(allow_nan=True),
    st.sampled_from(["", "0", "-1", "0.000003", "abc", "1e-6", "chat", "NaN"]),
)
_values = st.one_of(_scalars, st.lists(_scalars, max_size=3),
                    st.dictionaries(st.sampled_from(["range", "input_cost_per_token"]), _scalars,
                                    max_size=2))
_ll_keys = st.sampled_from([
    "mode", "litellm_provider", "input_cost_per_token", "output_cost_per_token",
    "cache_read_input_token_cost", "cache_creation_input_token_cost", "max_input_tokens",
    "input_cost_per_token_above_0k_tokens", "input_cost_per_token_above_200k_tokens",
    "output_cost_per_reasoning_token", "tiered_pricing", "input_cost_per_token_priority",
    "alias_of", "off_peak_pricing",
])


@given(st.dictionaries(st.text(max_size=8), st.dictionaries(_ll_keys, _values, max_size=8),
                       max_size=4))
def test_litellm_odd_entries_never_crash(data):
    from costsim.models import ModelPrice

    for entry in data.values():
        entry.setdefault("mode", "chat")
        entry.setdefault("litellm_provider", "p")
    parsed = parse_litellm(data)
    for m in parsed.models.values():
        ModelPrice.model_validate(m)
    assert parsed.report.imported + parsed.report.skipped_count == len(data)


_or_pricing = st.dictionaries(
    st.sampled_from(["prompt", "completion", "input_cache_read", "input_cache_write", "request",
                     "image", "internal_reasoning", "overrides"]),
    st.one_of(_scalars, st.lists(st.dictionaries(
        st.sampled_from(["min_prompt_tokens", "utc_start", "prompt", "completion"]), _scalars,
        max_size=3), max_size=2)),
    max_size=6,
)


@given(st.lists(st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=12), "pricing": _or_pricing},
    optional={"context_length": _scalars, "benchmarks": _values}), max_size=5))
def test_openrouter_odd_entries_never_crash(items):
    from costsim.models import ModelPrice

    parsed = parse_openrouter({"data": items})
    for m in parsed.models.values():
        ModelPrice.model_validate(m)


def test_litellm_zero_threshold_and_overlapping_tiers_are_reported():
    parsed = parse_litellm({
        "z": {"mode": "chat", "litellm_provider": "p", "input_cost_per_token": 1e-06,
              "output_cost_per_token": 2e-06, "input_cost_per_token_above_0k_tokens": 3e-06},
        "t": {"mode": "chat", "litellm_provider": "p", "tiered_pricing": [
            {"range": [0, 100], "input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06},
            {"range": [0, 200], "input_cost_per_token": 2e-06, "output_cost_per_token": 4e-06}]},
    })
    assert "long_context" not in parsed.models["z"]
    assert "long_context" not in parsed.models["t"]
    assert parsed.report.unrepresented["tiered_pricing with overlapping ranges"] == ["t"]
