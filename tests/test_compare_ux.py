"""compare answers the whole question: monthly spend and savings against a stable baseline,
ties on the Pareto front, shares that stay shares, and a table that fits the terminal.

The hand-worked example: one phase of one call with 1,000,000 new input tokens and no output,
no system prompt, no cache, so an attempt costs exactly the model's input price per 1M, and a
retry also resends the failed attempt's 1M tokens:

- A (premium, $10): success 1.0. single:A spends $10, completes 1.0, $10/completed.
- B (budget, $1): success 0.5, 2 attempts. Attempt 2 costs $1 (resent) + $1 (new) = $2.
  single:B spends 1 + 0.5*2 = $2, completes 1 - 0.25 = 0.75, 2/0.75 = $2.6667/completed.
- P: B first, A after one failure. Spends 1 + 0.5*(10 + 10) = $11, completes 1.0, $11.
At 100 tasks a month: A $1,000, B $200, P $1,100.
Savings against single:A: B 1 - 2.6667/10 = 0.7333 and $800 a month; P -0.1 and -$100.
"""

import json

import pytest
from typer.testing import CliRunner

from costsim.api import StrategyResult, compare, mark_savings_and_pareto
from costsim.cli import app

from helpers import invoke_at_widths, model, policy, prices, workload, write

runner = CliRunner()


@pytest.fixture
def files(tmp_path):
    p = write(tmp_path, "prices.yaml", prices({
        "A": model(tier="premium", input=10.0, output=0.0, coding_score=90),
        "B": model(tier="budget", input=1.0, output=0.0, coding_score=50),
        "C": model(tier="premium", input=30.0, output=0.0, coding_score=95),
    }))
    w = write(tmp_path, "workload.yaml", workload([{
        "name": "t", "share": 1.0, "phases": [{
            "phase": "implement", "calls": 1, "input_tokens": 1_000_000, "output_tokens": 0,
            "success": {"A": 1.0, "B": 0.5, "C": 1.0}}]}], tasks_per_month=100))
    pol = write(tmp_path, "p.yaml", policy({"budget": "B", "premium": "A"}, {"default": "budget"},
                                           name="P", escalation={"after_failures": 1}))
    return p, w, pol


def by_name(result):
    return {s.name: s for s in result.strategies}


def test_monthly_spend_and_savings_by_hand(files):
    p, w, pol = files
    r = compare(p, [pol], w)
    s = by_name(r)
    assert r.baseline == "single:A" and r.tasks_per_month == 100
    assert s["single:A"].monthly_spend == pytest.approx(1000.0, rel=1e-12)
    assert s["single:B"].monthly_spend == pytest.approx(200.0, rel=1e-12)
    assert s["P"].monthly_spend == pytest.approx(1100.0, rel=1e-12)
    assert s["single:B"].cost_per_completed_task == pytest.approx(2 / 0.75, rel=1e-12)
    assert s["single:B"].savings == pytest.approx(1 - (2 / 0.75) / 10, rel=1e-12)
    assert s["single:B"].monthly_savings == pytest.approx(800.0, rel=1e-12)
    assert s["P"].savings == pytest.approx(-0.1, rel=1e-12)
    assert s["P"].monthly_savings == pytest.approx(-100.0, rel=1e-12)
    assert s["single:A"].savings is None and s["single:A"].savings_vs is None


def test_baseline_is_stable_when_strategies_are_added(files):
    p, w, pol = files
    # C is premium too, and dearer, but no policy names it: the baseline stays single:A.
    r = compare(p, [pol], w, models=["C"], pareto=[92])
    assert r.baseline == "single:A"
    assert by_name(r)["P"].savings == pytest.approx(-0.1, rel=1e-12)


def test_baseline_option_and_a_strategy_not_otherwise_compared(files):
    p, w, pol = files
    r = compare(p, [pol], w, baseline="single:C")
    s = by_name(r)
    assert r.baseline == "single:C" and r.baseline_chosen_by == "--baseline"
    assert "single:C" in s and s["single:C"].savings is None
    assert s["single:A"].savings == pytest.approx(1 - 10 / 30, rel=1e-12)
    assert s["P"].monthly_savings == pytest.approx(3000.0 - 1100.0, rel=1e-12)
    res = runner.invoke(app, ["compare", "--prices", str(p), "-w", str(w), "-p", str(pol),
                              "--baseline", "single:nope"])
    assert res.exit_code == 2 and "unknown model 'nope'" in res.stderr


def test_savings_do_not_vanish_for_a_small_completion_lead():
    """The old rule compared with the cheapest single model completing at least as often, so a
    policy 0.02 points ahead of every single model had no savings at all."""
    def sr(name, kind, cost, completion):
        return StrategyResult(name=name, kind=kind, spend_per_task=cost * completion,
                              completion_rate=completion, cost_per_completed_task=cost,
                              defect_rate=0.01, review_minutes=10, expected_attempts=1,
                              expected_retries=0, premium_share=0, spend_by_model={},
                              spend_by_provider={}, tokens={}, summary_calls=0, models=[])

    rs = [sr("single:top", "single", 3.0, 0.9900), sr("pol", "routed", 1.5, 0.9902),
          sr("single:cheap", "single", 0.5, 0.90)]
    mark_savings_and_pareto(rs, "single:top")
    pol = rs[1]
    assert pol.savings_vs == "single:top" and pol.savings == pytest.approx(0.5)


def test_identical_strategies_are_one_point_on_the_pareto_front(files):
    p, w, pol = files
    # Only A and C score >= 90; A is always the cheaper: pareto:90 is single:A in disguise.
    r = compare(p, [pol], w, pareto=[90])
    s = by_name(r)
    assert s["pareto:90"].cost_per_completed_task == pytest.approx(
        s["single:A"].cost_per_completed_task, rel=1e-12)
    assert s["single:A"].pareto is True
    assert s["pareto:90"].pareto is False and s["pareto:90"].same_as == "single:A"
    res = runner.invoke(app, ["compare", "--prices", str(p), "-w", str(w), "-p", str(pol),
                              "--pareto", "90", "--wide"])
    assert "pareto:90 has the same figures as single:A" in res.stdout


def test_premium_share_is_a_share():
    """large-team on claude-fable-5: spend by model summed one way and spend per task summed
    another differ in the last bit (1.0000000000000004 before)."""
    res = runner.invoke(app, ["compare", "-w", "large-team", "-p", "two-tier", "-m",
                              "claude-fable-5", "-f", "json"])
    assert res.exit_code == 0, res.output
    s = {x["name"]: x for x in json.loads(res.stdout)["strategies"]}
    assert s["single:claude-fable-5"]["premium_share"] == 1.0
    assert s["single:deepseek-v4-flash"]["premium_share"] == 0.0
    assert all(0.0 <= x["premium_share"] <= 1.0 for x in s.values())


def test_csv_has_monthly_figures_and_no_self_savings(files):
    p, w, pol = files
    res = runner.invoke(app, ["compare", "--prices", str(p), "-w", str(w), "-p", str(pol),
                              "-f", "csv"])
    import csv
    import io

    rows = {r["name"]: r for r in csv.DictReader(io.StringIO(res.stdout))}
    assert rows["single:A"]["savings"] == "" and rows["single:A"]["savings_vs"] == ""
    assert float(rows["P"]["monthly_spend"]) == pytest.approx(1100.0)
    assert float(rows["single:B"]["monthly_savings"]) == pytest.approx(800.0)


def test_table_fits_80_120_200_with_the_headline_figures_first():
    out = invoke_at_widths(runner, app, ["compare"])
    narrow = out[80]
    for header in ("strategy", "completed", "monthly", "completion", "defects", "savings"):
        assert header in narrow
    assert _bundled_opus_month() in narrow     # single:claude-opus-5 a month, whole number
    assert "--wide shows them" in narrow
    assert "pareto" in out[200] and "retries" in out[200]
    wide = runner.invoke(app, ["compare", "--wide"]).stdout
    assert "retries" in wide and "…" not in wide


def test_breakdown_and_montecarlo_tables_fit_too():
    invoke_at_widths(runner, app, ["compare", "-p", "two-tier", "--breakdown"], widths=(80, 120))
    invoke_at_widths(runner, app, ["compare", "-p", "two-tier", "--engine", "montecarlo",
                                   "--samples", "2000"], widths=(80,))


def _bundled_opus_month() -> str:
    """single:claude-opus-5's monthly spend on the bundled defaults, by the independent
    reference model (tests/reference_model.py), as the table prints it: whole dollars."""
    from pathlib import Path

    import yaml

    import reference_model as ref

    root = Path(__file__).parent.parent
    px = yaml.safe_load((root / "pricing" / "default.yaml").read_text())
    wl = yaml.safe_load((root / "workloads" / "medium-team.yaml").read_text())
    month = ref.evaluate(px, wl, model="claude-opus-5")["spend_per_task"] * wl["tasks_per_month"]
    return f"${round(month):,}"
