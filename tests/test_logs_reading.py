"""Value parsing shared by the log sources: timestamps, token counts, costs."""

import pytest

from costsim.logs.reading import Malformed, count, dig, money, timestamp


@pytest.mark.parametrize("value, iso", [
    ("2026-03-02T09:14:07.500Z", "2026-03-02T09:14:07.500Z"),         # already the form
    ("2026-03-02T09:14:07Z", "2026-03-02T09:14:07.000Z"),
    ("2026-03-02T09:14:07.5Z", "2026-03-02T09:14:07.500Z"),
    ("2026-03-09 08:00:01.123", "2026-03-09T08:00:01.123Z"),          # Postgres, no zone: UTC
    ("2026-03-02T09:14:07.123456789+02:00", "2026-03-02T07:14:07.123Z"),   # ns, offset
    ("2026-03-02T09:14:07.5-05:30", "2026-03-02T14:44:07.500Z"),
    (1772877600000000000, "2026-03-07T10:00:00.000Z"),                # OTLP nanoseconds
    ("1772877601250000000", "2026-03-07T10:00:01.250Z"),
    (1772877600.25, "2026-03-07T10:00:00.250Z"),                      # epoch seconds
    (1772877600123, "2026-03-07T10:00:00.123Z"),                      # epoch milliseconds
    ("2026-13-02T09:14:07.500Z", None), ("soon", None), (None, None), ("", None),
])
def test_timestamps_become_utc_milliseconds(value, iso):
    assert timestamp(value) == iso


def test_counts_and_costs():
    assert count("1200", "x") == 1200 and count(3.0, "x") == 3 and count(None, "x") == 0
    for bad in (-1, 2.5, "many", True):
        with pytest.raises(Malformed):
            count(bad, "x")
    with pytest.raises(Malformed, match="x: missing"):
        count(None, "x", default=None)
    assert money("0.0123456789", "spend") == 0.0123456789 and money(None, "spend") is None
    with pytest.raises(Malformed):
        money(-0.5, "spend")
    assert dig({"a": {"b": 1}, "c.d": 2}, "a.b") == 1 and dig({"c.d": 2}, "c.d") == 2


def test_model_ids_match_the_price_table_only_where_it_has_them():
    from costsim.logs.model_ids import match_models

    table = {"claude-sonnet-4-5", "gpt-4.1", "gpt-4.1-2025-04-14-special", "deepseek-v4-flash"}
    logged = ["claude-sonnet-4-5-20250929", "anthropic/claude-sonnet-4-5",
              "litellm_proxy/openrouter/gpt-4.1", "openai/gpt-4.1-2025-04-14", "gpt-4.1",
              "gpt-4.1-2025-04-14-special", "DeepSeek-V4-Flash", "mystery-model-20250101"]
    assert match_models(logged, table) == {
        "claude-sonnet-4-5-20250929": "claude-sonnet-4-5",
        "anthropic/claude-sonnet-4-5": "claude-sonnet-4-5",
        "litellm_proxy/openrouter/gpt-4.1": "gpt-4.1",
        "openai/gpt-4.1-2025-04-14": "gpt-4.1",
        "DeepSeek-V4-Flash": "deepseek-v4-flash",
    }
