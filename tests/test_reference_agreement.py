"""costsim's engine (compile.py + analytic.py, through ``costsim.compare``) against the independent
path-enumerating reference in tests/reference_model.py, on the fixtures, on hand-built variants
that each exercise one corner of SPEC §3, and on random small inputs."""

from __future__ import annotations

import copy
import datetime as dt
import math
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import costsim
from reference_model import evaluate as ref_evaluate

FIXTURES = Path(__file__).parent / "fixtures"
METRICS = ("spend_per_task", "completion_rate", "cost_per_completed_task", "defect_rate",
           "review_minutes", "expected_attempts")
REL = 1e-9


def _load(name: str) -> dict:
    return yaml.safe_load((FIXTURES / name).read_text())


def close(a: float, b: float, rel: float = REL) -> bool:
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= rel * max(abs(a), abs(b)) + 1e-15


def compare_docs(prices: dict, workload: dict, policies: list[dict] = (), models=()):
    """``costsim.compare`` on the three documents, written to YAML files first."""
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        pp, wp = d / "prices.yaml", d / "workload.yaml"
        pp.write_text(yaml.safe_dump(prices, sort_keys=False))
        wp.write_text(yaml.safe_dump(workload, sort_keys=False))
        pol_paths = []
        for i, pol in enumerate(policies):
            p = d / f"policy{i}.yaml"
            p.write_text(yaml.safe_dump(pol, sort_keys=False))
            pol_paths.append(p)
        return costsim.compare(pp, pol_paths, wp, models=list(models))


def run_both(prices: dict, workload: dict, policies: list[dict] = (), models=()):
    """``costsim.compare`` and the reference on the same documents.

    Returns ``[(strategy_result, reference_dict), ...]`` for every strategy costsim reports.
    """
    result = compare_docs(prices, workload, policies, models)
    by_name = {p["name"]: p for p in policies}
    out = []
    for s in result.strategies:
        if s.kind == "single":
            ref = ref_evaluate(prices, workload, model=s.name.split(":", 1)[1])
        else:
            ref = ref_evaluate(prices, workload, policy=by_name[s.name])
        out.append((s, ref))
    return out


def assert_agree(prices, workload, policies=(), models=(), *, expect=None):
    pairs = run_both(prices, workload, list(policies), models)
    if expect is not None:
        assert sorted(s.name for s, _ in pairs) == sorted(expect)
    for s, ref in pairs:
        for key in METRICS:
            assert close(getattr(s, key), ref[key]), (s.name, key, getattr(s, key), ref[key])
        assert close(s.expected_retries, ref["retries"]), (s.name, s.expected_retries, ref["retries"])
        spent = {m: v for m, v in ref["spend_by_model"].items() if v > 0}
        got = {m: v for m, v in s.spend_by_model.items() if v > 0}
        assert spent.keys() == got.keys(), (s.name, spent, got)
        for m in spent:
            assert close(got[m], spent[m]), (s.name, m, got[m], spent[m])
    return pairs


# --- building blocks --------------------------------------------------------------------------

def prices_doc(models: dict) -> dict:
    return {"version": 1, "as_of": dt.date(2026, 11, 20), "currency": "USD",
            "models": copy.deepcopy(models)}


BASE_MODELS = {
    "cheap": {"provider": "acme", "tier": "budget", "input": 1.0, "output": 2.0,
              "cache_read": 0.1, "coding_score": 50},
    "mid": {"provider": "acme", "tier": "midrange", "input": 3.0, "output": 15.0,
            "cache_read": 0.3, "coding_score": 70,
            # cache_read and output omitted: long-context cache_read = long-context input (6.0)
            "long_context": {"above": 9000, "input": 6.0}},
    "top": {"provider": "zenith", "tier": "premium", "input": 5.0, "output": 25.0,
            "cache_read": 0.5, "coding_score": 80,
            "long_context": {"above": 12000, "input": 10.0, "output": 37.5, "cache_read": 1.0}},
}


def wl_doc(task_types, **kw) -> dict:
    d = {"version": 1, "name": "w", "max_attempts": 3, "system_tokens": 1000,
         "cache_hit_rate": 0.6, "feedback_gain": 0.4, "handoff": {"mode": "full_history"},
         "task_types": task_types}
    d.update(kw)
    return d


def pol_doc(name, tiers, routes, **kw) -> dict:
    return {"version": 1, "name": name, "tiers": tiers, "routes": routes, **kw}


PHASES = [
    {"phase": "search", "calls": 2, "input_tokens": 1500, "output_tokens": 200, "difficulty": 30},
    {"phase": "implement", "calls": 3, "input_tokens": 2000, "output_tokens": 700, "difficulty": 65},
    {"phase": "test_repair", "calls": 2, "input_tokens": 1200, "output_tokens": 400, "difficulty": 55},
    {"phase": "review", "calls": 1, "input_tokens": 2500, "output_tokens": 300, "difficulty": 45},
]
THREE = pol_doc("three", {"budget": "cheap", "midrange": "mid", "premium": "top"},
                {"default": "midrange", "search": "budget", "review": "premium"},
                escalation={"after_failures": 2},
                signals={"security_sensitive": {"min_tier": "premium", "phases": ["implement"]},
                         "cross_file": {"raise": 1}})


# --- the fixtures -----------------------------------------------------------------------------

def test_fixtures_agree():
    pairs = assert_agree(_load("prices.yaml"), _load("workload.yaml"), [_load("policy.yaml")],
                         expect=["three-tier", "single:cheap", "single:mid", "single:top"])
    # the numbers are not trivially zero
    routed = next(s for s, _ in pairs if s.kind == "routed")
    assert 0 < routed.completion_rate < 1 and routed.defect_rate > 0


def test_fixtures_with_summary_handoff_for_singles():
    wl = _load("workload.yaml")
    wl["handoff"] = {"mode": "summary", "summary_tokens": 700}
    assert_agree(_load("prices.yaml"), wl, [_load("policy.yaml")])


# --- variants ---------------------------------------------------------------------------------

@pytest.mark.parametrize("handoff", [
    {"mode": "full_history"},
    {"mode": "summary", "summary_tokens": 800},
    {"mode": "summary", "summary_tokens": 800, "summarizer": "top"},    # model id
    {"mode": "summary", "summary_tokens": 0, "summarizer": "premium"},  # tier name
    {"mode": "summary"},                                                # default 1500, no summarizer
])
def test_handoff_modes(handoff):
    wl = wl_doc([{"name": "t", "share": 1.0, "phases": copy.deepcopy(PHASES)}])
    pol = copy.deepcopy(THREE)
    pol["handoff"] = handoff
    wl_summary = copy.deepcopy(wl)
    wl_summary["handoff"] = {"mode": "summary", "summary_tokens": 1200, "summarizer": "budget"}
    pol2 = copy.deepcopy(THREE)
    pol2["name"] = "inherits"   # no handoff: the workload's (summary, tier-class summarizer)
    assert_agree(prices_doc(BASE_MODELS), wl, [pol])
    assert_agree(prices_doc(BASE_MODELS), wl_summary, [pol, pol2])


def test_summary_and_full_history_differ():
    """Guard against a test that would pass whatever the handoff does."""
    wl = wl_doc([{"name": "t", "share": 1.0, "phases": copy.deepcopy(PHASES)}])
    full = ref_evaluate(prices_doc(BASE_MODELS), wl, policy=THREE)
    pol = copy.deepcopy(THREE)
    pol["handoff"] = {"mode": "summary", "summary_tokens": 800, "summarizer": "budget"}
    summ = ref_evaluate(prices_doc(BASE_MODELS), wl, policy=pol)
    assert summ["spend_per_task"] != pytest.approx(full["spend_per_task"])


@pytest.mark.parametrize("above", [1, 2500, 4000, 5200, 7800, 9000, 11000, 30000, 10**7])
def test_long_context_thresholds_crossed_mid_phase(above):
    """Thresholds that split a phase's calls, a retry, or only the summarizer call."""
    models = copy.deepcopy(BASE_MODELS)
    models["cheap"]["long_context"] = {"above": above, "output": 3.0}   # input omitted -> base
    models["mid"]["long_context"]["above"] = above
    models["top"]["long_context"]["above"] = above + 777
    for mode in ("full_history", "summary"):
        wl = wl_doc([{"name": "t", "share": 1.0, "phases": copy.deepcopy(PHASES)}],
                    handoff={"mode": mode, "summary_tokens": 3000})
        pol = copy.deepcopy(THREE)
        pol["handoff"] = {"mode": mode, "summary_tokens": 3000, "summarizer": "midrange"}
        assert_agree(prices_doc(models), wl, [pol])


def test_long_context_changes_cost():
    """The threshold really bites in these variants (else the test above proves little)."""
    wl = wl_doc([{"name": "t", "share": 1.0, "phases": copy.deepcopy(PHASES)}])
    lo = copy.deepcopy(BASE_MODELS)
    lo["mid"]["long_context"]["above"] = 5200
    a = ref_evaluate(prices_doc(lo), wl, model="mid")["spend_per_task"]
    b = ref_evaluate(prices_doc(BASE_MODELS | {"mid": {**BASE_MODELS["mid"], "long_context": None}}),
                     wl, model="mid")["spend_per_task"]
    assert a > b


@pytest.mark.parametrize("success", [
    {"budget": 0.5},
    {"budget": [0.2, 0.6], "premium": [0.9]},
    {"cheap": 0.3, "budget": 0.9},                   # model id first
    {"midrange": [0.1, 0.2, 0.95], "top": 1.0},
    {"mid": 0.0},                                    # a phase mid can never do
    {"premium": [0.5, 0.7]},                         # cheap/mid fall back to coding_score
])
def test_success_maps(success):
    phases = copy.deepcopy(PHASES)
    phases[1]["success"] = success
    phases[3]["success"] = {"premium": [0.8, 0.99], "budget": 0.4}
    wl = wl_doc([{"name": "t", "share": 1.0, "phases": phases}],
                signals={"security_sensitive": {"share": 0.2, "difficulty": 10},
                         "cross_file": {"share": 0.4, "difficulty": 5}})
    assert_agree(prices_doc(BASE_MODELS), wl, [THREE])


def test_task_type_overrides_and_two_defect_phases():
    defects = {"phases": ["implement", "test_repair"],
               "rate": {"budget": 0.2, "midrange": 0.1, "top": 0.03},
               "catch_rate": {"budget": 0.1, "mid": 0.45, "premium": 0.8},
               "review_minutes": {"base": 12, "per_defect": 40}}
    other = {"phases": ["implement"], "rate": {"budget": 0.3}, "catch_rate": {"premium": 0.5},
             "review_minutes": {"base": 3, "per_defect": 7}}
    wl = wl_doc(
        [{"name": "bugfix", "share": 0.5, "phases": copy.deepcopy(PHASES)},
         {"name": "feature", "share": 0.3, "max_attempts": 2, "defects": other,
          "signals": {"cross_file": {"share": 0.9, "difficulty": 12},
                      "architecture": {"share": 0.25, "difficulty": 3}},
          "phases": copy.deepcopy(PHASES[:2]) + [copy.deepcopy(PHASES[3])]},
         {"name": "docs", "share": 0.2, "max_attempts": 5, "signals": {},
          "phases": [{"phase": "docs", "calls": 1, "input_tokens": 500, "output_tokens": 900,
                      "difficulty": 10}]}],
        signals={"security_sensitive": {"share": 0.15, "difficulty": 10},
                 "cross_file": {"share": 0.35, "difficulty": 8}},
        defects=defects)
    pol = copy.deepcopy(THREE)
    pol["signals"]["architecture"] = {"min_tier": "premium", "phases": ["review"]}
    pairs = assert_agree(prices_doc(BASE_MODELS), wl, [pol])
    assert all(s.defect_rate > 0 for s, _ in pairs)


def test_review_before_defect_phase_and_review_as_defect_phase():
    phases = [copy.deepcopy(PHASES[3]), copy.deepcopy(PHASES[1])]
    wl = wl_doc([{"name": "t", "share": 1.0, "phases": phases}],
                defects={"phases": ["implement", "review"],
                         "rate": {"budget": 0.2, "midrange": 0.1, "premium": 0.05},
                         "catch_rate": {"budget": 0.1, "midrange": 0.4, "premium": 0.9},
                         "review_minutes": {"base": 5, "per_defect": 20}})
    pol = pol_doc("esc1", {"budget": "cheap", "midrange": "mid", "premium": "top"},
                  {"default": "budget"}, escalation={"after_failures": 1})
    assert_agree(prices_doc(BASE_MODELS), wl, [pol])


@pytest.mark.parametrize("after", [1, 2, 3])
@pytest.mark.parametrize("tiers", [
    {"budget": "cheap", "premium": "top"},
    {"lo": "mid", "hi": "top"},
    {"budget": "cheap", "midrange": "mid", "premium": "top"},
    {"only": "mid"},
])
def test_escalation_and_tier_counts(after, tiers):
    names = list(tiers)
    routes = {"default": names[0], "review": names[-1]}
    signals = {"cross_file": {"raise": 1, "phases": ["implement", "test_repair"]},
               "security_sensitive": {"min_tier": names[-1], "phases": ["review", "implement"]},
               "ambiguous": {"raise": 2}}
    pol = pol_doc(f"p{after}", tiers, routes, escalation={"after_failures": after},
                  signals=signals)
    wl = wl_doc([{"name": "t", "share": 1.0, "phases": copy.deepcopy(PHASES)}], max_attempts=4,
                signals={"security_sensitive": {"share": 0.2, "difficulty": 10},
                         "cross_file": {"share": 0.5, "difficulty": 6},
                         "workload_only": {"share": 0.3, "difficulty": 20}},
                defects={"phases": ["implement"], "rate": {"budget": 0.1, "midrange": 0.05},
                         "catch_rate": {"premium": 0.6}})
    assert_agree(prices_doc(BASE_MODELS), wl, [pol])


# --- random small inputs ----------------------------------------------------------------------

PHASE_NAMES = ["search", "plan", "implement", "review", "docs"]
SIGNALS = ["security_sensitive", "cross_file", "ambiguous"]
probs = st.floats(0.0, 1.0).map(lambda x: round(x, 3))
price = st.floats(0.0, 20.0).map(lambda x: round(x, 2))


@st.composite
def model_docs(draw):
    n = draw(st.integers(1, 3))
    models = {}
    for i in range(n):
        inp = draw(price)
        m = {"provider": draw(st.sampled_from(["a", "b"])),
             "tier": draw(st.sampled_from(["budget", "midrange", "premium"])),
             "input": inp, "output": draw(price), "coding_score": draw(st.integers(20, 95))}
        if draw(st.booleans()):
            m["cache_read"] = draw(price)
        if draw(st.booleans()):
            lc = {"above": draw(st.integers(1, 20000))}
            for key in ("input", "output", "cache_read"):
                if draw(st.booleans()):
                    lc[key] = draw(price)
            m["long_context"] = lc
        models[f"m{i}"] = m
    return models


@st.composite
def success_maps(draw, model_ids):
    keys = draw(st.lists(st.sampled_from(list(model_ids) + ["budget", "midrange", "premium"]),
                         max_size=2, unique=True))
    out = {}
    for k in keys:
        out[k] = draw(probs | st.lists(probs, min_size=1, max_size=3))
    return out or None


@st.composite
def task_types(draw, model_ids, n):
    shares = [0.25, 0.75] if n == 2 else [1.0]
    tts = []
    for t in range(n):
        names = draw(st.lists(st.sampled_from(PHASE_NAMES), min_size=1, max_size=3, unique=True))
        phases = []
        for name in names:
            ph = {"phase": name, "calls": draw(st.integers(1, 3)),
                  "input_tokens": draw(st.integers(0, 3000)),
                  "output_tokens": draw(st.integers(0, 1500)),
                  "difficulty": draw(st.integers(0, 90))}
            sm = draw(success_maps(model_ids))
            if sm:
                ph["success"] = sm
            phases.append(ph)
        tt = {"name": f"t{t}", "share": shares[t], "phases": phases}
        if draw(st.booleans()):
            tt["max_attempts"] = draw(st.integers(1, 3))
        if draw(st.integers(0, 3)) == 0:
            tt["signals"] = draw(signal_blocks())
        if draw(st.integers(0, 3)) == 0:
            tt["defects"] = draw(defect_blocks(model_ids))
        tts.append(tt)
    return tts


@st.composite
def signal_blocks(draw):
    names = draw(st.lists(st.sampled_from(SIGNALS), max_size=2, unique=True))
    return {n: {"share": draw(probs), "difficulty": draw(st.integers(-10, 20))} for n in names}


@st.composite
def defect_blocks(draw, model_ids):
    keys = list(model_ids) + ["budget", "midrange", "premium"]
    return {"phases": draw(st.lists(st.sampled_from(PHASE_NAMES), max_size=3, unique=True)),
            "rate": {k: draw(probs) for k in draw(st.lists(st.sampled_from(keys), max_size=3,
                                                           unique=True))},
            "catch_rate": {k: draw(probs) for k in draw(st.lists(st.sampled_from(keys),
                                                                 max_size=3, unique=True))},
            "review_minutes": {"base": draw(st.integers(0, 20)),
                               "per_defect": draw(st.integers(0, 50))}}


@st.composite
def handoffs(draw, summarizers):
    if draw(st.booleans()):
        return {"mode": "full_history"}
    h = {"mode": "summary", "summary_tokens": draw(st.integers(0, 4000))}
    s = draw(st.none() | st.sampled_from(summarizers))
    if s is not None:
        h["summarizer"] = s
    return h


@st.composite
def scenarios(draw):
    models = draw(model_docs())
    ids = list(models)
    wl = {"version": 1, "name": "w", "max_attempts": draw(st.integers(1, 3)),
          "system_tokens": draw(st.integers(0, 3000)), "cache_hit_rate": draw(probs),
          "feedback_gain": draw(probs), "handoff": draw(handoffs(ids)),
          "signals": draw(signal_blocks()),
          "task_types": draw(task_types(ids, draw(st.integers(1, 2))))}
    if draw(st.booleans()):
        wl["defects"] = draw(defect_blocks(ids))
    n_tiers = draw(st.integers(1, 3))
    tier_names = ["budget", "midrange", "premium"][:n_tiers] if draw(st.booleans()) \
        else [f"tier{i}" for i in range(n_tiers)]
    tiers = {t: draw(st.sampled_from(ids)) for t in tier_names}
    routes = {"default": draw(st.sampled_from(tier_names))}
    for name in draw(st.lists(st.sampled_from(PHASE_NAMES), max_size=3, unique=True)):
        routes[name] = draw(st.sampled_from(tier_names))
    pol = {"version": 1, "name": "rnd", "tiers": tiers, "routes": routes,
           "escalation": {"after_failures": draw(st.integers(1, 3))}}
    sigs = {}
    for name in draw(st.lists(st.sampled_from(SIGNALS), max_size=3, unique=True)):
        s = {}
        if draw(st.booleans()):
            s["min_tier"] = draw(st.sampled_from(tier_names))
        if draw(st.booleans()):
            s["raise"] = draw(st.integers(0, 2))
        if draw(st.booleans()):
            s["phases"] = draw(st.lists(st.sampled_from(PHASE_NAMES), max_size=2, unique=True))
        sigs[name] = s
    if sigs:
        pol["signals"] = sigs
    if draw(st.booleans()):
        pol["handoff"] = draw(handoffs(tier_names + ids))
    elif wl["handoff"].get("summarizer") not in (None, *ids):
        # the workload's handoff names a tier class the policy may not have: keep to names the
        # engine resolves (a policy tier or a model id; see reference_model.py R4)
        if wl["handoff"]["summarizer"] not in tier_names:
            del wl["handoff"]["summarizer"]
    return prices_doc(models), wl, pol


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_random_scenarios_agree(scn):
    prices, wl, pol = scn
    assert_agree(prices, wl, [pol])


def test_no_defect_source_gives_exactly_zero_defect_rate():
    """A review phase but nothing that can carry a defect: the defect rate is 0, not rounding
    noise (an outside check by relative error against 0 would fail on 1e-15)."""
    prices = prices_doc({"m0": {"provider": "a", "tier": "budget", "input": 1.0, "output": 2.0,
                                "coding_score": 20}})
    # p = 1/(1+e^4.2) and P = 1 - (1 - p) differ in the last bit, so the review attempt's
    # conditional weight p/P is not exactly 1
    wl = wl_doc([{"name": "t", "share": 1.0, "phases": [
        {"phase": "review", "calls": 1, "input_tokens": 10, "output_tokens": 10,
         "difficulty": 62}]}], max_attempts=1)
    pol = pol_doc("one", {"t0": "m0"}, {"default": "t0"}, escalation={"after_failures": 1})
    for s, _ in assert_agree(prices, wl, [pol]):
        assert s.defect_rate == 0.0 and s.review_minutes == 0.0
    wl["defects"] = {"phases": ["review"], "rate": {"premium": 0.5}}   # names no model used
    for s, _ in assert_agree(prices, wl, [pol]):
        assert s.defect_rate == 0.0
