"""Issue 13, point 7: well-formed nonsense gets a warning instead of silence; results stay in
their ranges; nothing raw (numpy warnings, "nan%") reaches the user."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import yaml

import costsim
import helpers as H
from costsim.api import mark_savings_and_pareto
from reliability import FX, run_main

PRICES, POLICY, WORKLOAD = FX / "prices.yaml", FX / "policy.yaml", FX / "workload.yaml"


def write(tmp_path: Path, name: str, data: dict) -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def loaded(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def compare_warnings(prices=PRICES, workload=WORKLOAD, policy=POLICY) -> list[str]:
    r = run_main("compare", "--prices", prices, "--policy", policy, "--workload", workload,
                 "--format", "json").check(codes=(0,))
    assert "RuntimeWarning" not in r.err and "nan" not in r.out.lower()
    printed = [ln.removeprefix("warning: ") for ln in r.err.splitlines()]
    assert printed == json.loads(r.out)["warnings"]
    return printed


def test_sound_inputs_give_no_warning():
    assert compare_warnings() == []
    assert run_main("compare").check(codes=(0,)).err == ""      # the bundled defaults


def test_zero_tokens_everywhere(tmp_path):
    w = loaded(WORKLOAD)
    w["system_tokens"] = 0
    for t in w["task_types"]:
        for ph in t["phases"]:
            ph["input_tokens"] = ph["output_tokens"] = 0
    path = write(tmp_path, "w.yaml", w)
    zero = ("workload 'tiny': every phase uses 0 tokens and system_tokens is 0: attempts cost $0 "
            "(only summaries, if any, cost money)")
    assert compare_warnings(workload=path) == [zero]      # the policy's summaries still cost
    single = costsim.compare(PRICES, [], path, models=["mid"])
    assert single.warnings == [zero, "every strategy costs $0 per task"]


def test_every_price_zero_and_a_free_premium_model(tmp_path):
    p = loaded(PRICES)
    for m in p["models"].values():
        for f in ("input", "output", "cache_read"):
            if f in m:
                m[f] = 0.0
        m.pop("long_context", None)
    got = compare_warnings(prices=write(tmp_path, "p.yaml", p))
    assert got == ["every price in the table is 0: every cost will be $0",
                   "top: a premium model with input and output prices of 0 (free?)",
                   "every strategy costs $0 per task"]


def test_success_list_longer_than_max_attempts(tmp_path):
    text = WORKLOAD.read_text().replace("premium: [0.9, 0.95]", "premium: [0.9, 0.95, 0.97, 1]")
    p = tmp_path / "w.yaml"
    p.write_text(text)
    assert compare_warnings(workload=p) == [
        "task_types[0].phases[2].success.premium: 4 values for at most 3 attempts; the last "
        "value is never used"]


def test_signal_shares_that_cannot_all_hold_as_separate_tasks(tmp_path):
    w = loaded(WORKLOAD)
    w["signals"]["security_sensitive"]["share"] = 0.7
    assert compare_warnings(workload=write(tmp_path, "w.yaml", w)) == [
        "signals: shares sum to 1.2; signals are independent, so tasks carry several at once "
        "(as shares of separate tasks they cannot all hold)"]


def test_cache_read_above_input_warns_in_compare_as_in_validate(tmp_path):
    p = loaded(PRICES)
    p["models"]["cheap"]["cache_read"] = 3.0
    path = write(tmp_path, "p.yaml", p)
    assert compare_warnings(prices=path) == ["cheap: cache_read 3 is above input 1"]
    r = run_main("price-table", "validate", path).check(codes=(0,))
    assert "warning: cheap: cache_read 3 is above input 1" in r.err.splitlines()


def test_compare_warns_only_about_the_models_it_uses(tmp_path):
    p = loaded(PRICES)
    p["models"]["noscore"]["cache_read"] = 3.0         # no strategy here calls noscore
    assert compare_warnings(prices=write(tmp_path, "p.yaml", p)) == []


def test_huge_price_is_an_error_and_a_dear_one_a_warning(tmp_path):
    """1e308 would overflow every cost (shown before as "never completes" at 99.88% completion,
    with "nan%" and raw numpy warnings); 5,000 per 1M is legal but suspicious."""
    p = loaded(PRICES)
    p["models"]["top"]["output"] = 1e308
    r = run_main("compare", "--prices", write(tmp_path, "p.yaml", p), "--policy", POLICY,
                 "--workload", WORKLOAD).check(codes=(2,))
    assert "models.top.output: input should be less than or equal to 1000000" in r.err
    p["models"]["top"]["output"] = 5000.0
    got = compare_warnings(prices=write(tmp_path, "p.yaml", p))
    assert got == ["top: output $5,000.00 per 1M tokens is above $1,000 (a price per token or "
                   "per 1K written as per 1M?)"]


def test_success_zero_everywhere_no_strategy_is_pareto_efficient(tmp_path):
    w = loaded(WORKLOAD)
    for t in w["task_types"]:
        for ph in t["phases"]:
            ph["success"] = {"budget": 0.0, "midrange": 0.0, "premium": 0.0}
    path = write(tmp_path, "w.yaml", w)
    assert compare_warnings(workload=path) == [
        "no strategy ever completes a task: every success probability is 0?"]
    res = costsim.compare(PRICES, [POLICY], path)
    assert [s.pareto for s in res.strategies] == [False] * 4
    r = run_main("compare", "--prices", PRICES, "--policy", POLICY, "--workload", path,
                 "--engine", "montecarlo", "--samples", 1000, "--format", "json")
    assert [s["pareto"] for s in json.loads(r.check(codes=(0,)).out)["strategies"]] == [False] * 4
    assert all(s.completion_rate == 0 and s.cost_per_completed_task == float("inf")
               for s in res.strategies)


def test_pareto_ignores_only_the_strategies_that_never_complete():
    from costsim.api import StrategyResult

    def sr(name, cost, done):
        return StrategyResult(name=name, kind="single", spend_per_task=1.0, completion_rate=done,
                              cost_per_completed_task=cost, defect_rate=0.0, review_minutes=0,
                              expected_attempts=1, expected_retries=0, premium_share=0,
                              spend_by_model={}, spend_by_provider={}, tokens={},
                              summary_calls=0, models=[])

    rs = [sr("a", 2.0, 0.5), sr("b", 1.0, 0.4), sr("never", float("inf"), 0.0)]
    mark_savings_and_pareto(rs, "a")
    assert [r.pareto for r in rs] == [True, True, False]


def test_completion_is_clamped_to_one(tmp_path):
    """Task-type shares of 0.1 x 10 sum to 0.9999999999999999 or 1.0000000000000002 in floats;
    with success 1 everywhere every rate must be exactly 1."""
    p = H.prices({"x": H.model("acme", "budget", 1.0, 2.0)})
    tts = [{"name": f"t{i}", "share": 0.1, "phases": [
        {"phase": "implement", "calls": 1, "input_tokens": 10, "output_tokens": 10,
         "success": {"x": 1.0}}]} for i in range(10)]
    w = H.workload(tts, signals={"a": {"share": 0.3}, "b": {"share": 0.7}})
    table, wl, _ = H.load_all(tmp_path, p, w)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = costsim.compare(table, [], wl, models=["x"])
    s = res.strategies[0]
    assert s.completion_rate == 1.0 and s.defect_rate == 0.0
    assert all(ph["success_rate"] <= 1.0 and ph["reach_rate"] <= 1.0 for ph in s.phases)
    assert 0.0 <= s.premium_share <= 1.0
