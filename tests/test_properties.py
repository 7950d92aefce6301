"""Properties of the cost model (SPEC §3) that hold for any input, checked on random small
price tables, workloads and policies through ``costsim.compare``."""

from __future__ import annotations

import copy
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_reference_agreement import compare_docs, scenarios

HEADLINE = ("spend_per_task", "completion_rate", "cost_per_completed_task", "defect_rate",
            "review_minutes", "expected_attempts", "expected_retries")
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def le(a: float, b: float) -> bool:
    """a <= b up to float rounding."""
    return a <= b + 1e-12 * max(abs(a), abs(b)) + 1e-15


def close(a: float, b: float, rel: float = 1e-12) -> bool:
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= rel * max(abs(a), abs(b)) + 1e-15


def _effective(m: dict, field: str) -> float:
    """The rate a field stands for when the table omits it (SPEC §2.1)."""
    if field in ("input", "output"):
        return m[field]
    if field in ("cache_read", "cache_write"):
        return m[field] if m.get(field) is not None else m["input"]
    lc = m["long_context"]
    key = field.split(".", 1)[1]
    if lc.get(key) is not None:
        return lc[key]
    if key == "cache_read":
        return _effective(m, "long_context.input")
    return m[key]


@st.composite
def cheaper_price(draw):
    prices, wl, pol = draw(scenarios())
    mid = draw(st.sampled_from(sorted(prices["models"])))
    m = prices["models"][mid]
    fields = ["input", "output", "cache_read", "cache_write"]
    if m.get("long_context"):
        fields += ["long_context.input", "long_context.output", "long_context.cache_read"]
    field = draw(st.sampled_from(fields))
    old = _effective(m, field)
    new = round(old * draw(st.floats(0.0, 1.0)), 4)
    if new > old:           # rounding
        new = old
    cheaper = copy.deepcopy(prices)
    target = cheaper["models"][mid]
    if field.startswith("long_context."):
        target["long_context"][field.split(".", 1)[1]] = new
    else:
        target[field] = new
    return prices, cheaper, wl, pol, (mid, field, old, new)


@SETTINGS
@given(cheaper_price())
def test_cheaper_price_never_raises_cost(case):
    prices, cheaper, wl, pol, what = case
    before = {s.name: s for s in compare_docs(prices, wl, [pol]).strategies}
    after = {s.name: s for s in compare_docs(cheaper, wl, [pol]).strategies}
    assert before.keys() == after.keys()
    for name, b in before.items():
        a = after[name]
        assert le(a.spend_per_task, b.spend_per_task), (name, what, a.spend_per_task, b.spend_per_task)
        assert le(a.cost_per_completed_task, b.cost_per_completed_task), (name, what)
        # prices never change who succeeds
        assert a.completion_rate == b.completion_rate
        assert a.defect_rate == b.defect_rate


def test_cheaper_price_lowers_cost_when_it_is_used():
    """Not only 'never raises': a price the strategy pays really moves the figure."""
    prices, wl, pol = _small()
    before = compare_docs(prices, wl, [pol]).get("single:a").spend_per_task
    prices["models"]["a"]["output"] = 1.0
    after = compare_docs(prices, wl, [pol]).get("single:a").spend_per_task
    assert after < before


@SETTINGS
@given(scenarios())
def test_certain_success_means_one_attempt_per_phase(scn):
    prices, wl, pol = scn
    wl = copy.deepcopy(wl)
    for tt in wl["task_types"]:
        for ph in tt["phases"]:
            ph["success"] = {"budget": 1.0, "midrange": [1.0], "premium": 1.0}
    phases = sum(tt["share"] * len(tt["phases"]) for tt in wl["task_types"])
    for s in compare_docs(prices, wl, [pol]).strategies:
        assert close(s.expected_attempts, phases), (s.name, s.expected_attempts, phases)
        assert s.expected_retries == 0.0, s.name
        assert close(s.completion_rate, 1.0), s.name
        assert close(s.cost_per_completed_task, s.spend_per_task), s.name


@st.composite
def single_tier_policies(draw):
    prices, wl, _ = draw(scenarios())
    wl = copy.deepcopy(wl)
    m = draw(st.sampled_from(sorted(prices["models"])))
    tier = draw(st.sampled_from(["budget", "premium", "only"]))
    routes = {"default": tier}
    for tt in wl["task_types"]:
        for ph in tt["phases"]:
            if draw(st.booleans()):
                routes[ph["phase"]] = tier
    pol = {"version": 1, "name": "all-to-m", "tiers": {tier: m}, "routes": routes,
           "escalation": {"after_failures": draw(st.integers(1, 3))}}
    # single:M summarizes with M and uses the workload's handoff: so must the policy
    h = wl["handoff"]
    if h["mode"] == "summary":
        h.pop("summarizer", None)
        if draw(st.booleans()):
            h["summarizer"] = m
        if draw(st.booleans()):
            pol["handoff"] = {**h, "summarizer": draw(st.sampled_from([tier, m]))}
    return prices, wl, pol, m


@SETTINGS
@given(single_tier_policies())
def test_routing_everything_to_one_model_equals_single(case):
    prices, wl, pol, m = case
    res = compare_docs(prices, wl, [pol])
    routed, single = res.get("all-to-m"), res.get(f"single:{m}")
    for key in HEADLINE:
        assert close(getattr(routed, key), getattr(single, key)), (key, getattr(routed, key),
                                                                   getattr(single, key))
    assert routed.spend_by_model.keys() == single.spend_by_model.keys()
    for k, v in single.spend_by_model.items():
        assert close(routed.spend_by_model[k], v)


def _small():
    import datetime as dt

    prices = {"version": 1, "as_of": dt.date(2026, 11, 20), "models": {
        "a": {"provider": "p", "tier": "budget", "input": 1.0, "output": 4.0, "coding_score": 60},
        "b": {"provider": "q", "tier": "premium", "input": 5.0, "output": 25.0,
              "coding_score": 85}}}
    wl = {"version": 1, "name": "w", "max_attempts": 2, "feedback_gain": 0.2,
          "task_types": [{"name": "t", "share": 1.0, "phases": [
              {"phase": "implement", "calls": 2, "input_tokens": 1000, "output_tokens": 500,
               "difficulty": 50}]}]}
    pol = {"version": 1, "name": "two", "tiers": {"budget": "a", "premium": "b"},
           "routes": {"default": "budget"}}
    return prices, wl, pol
