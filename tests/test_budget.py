"""`costsim budget` and :func:`costsim.budget.budget`: percentiles ordered and consistent with
the exact expectation, per-provider figures adding up, the CI gate's exit code."""

from __future__ import annotations

import json
import math

import pytest
import yaml
from typer.testing import CliRunner

import helpers as H
from costsim.engine.analytic import evaluate
from costsim.api import load_inputs, parse_strategy
from costsim.budget import budget
from costsim.cli import app
from costsim.engine.compile import compile_ladders


@pytest.fixture
def files(fixtures):
    return dict(prices=fixtures / "prices.yaml", policies=[fixtures / "policy.yaml"],
                workload=fixtures / "workload.yaml")


def cli_args(fixtures, *extra):
    return ["budget", "--prices", str(fixtures / "prices.yaml"), "--policy",
            str(fixtures / "policy.yaml"), "--workload", str(fixtures / "workload.yaml"),
            "--months", "3000", *extra]


def analytic(files, name):
    table, _, wl, _, pols = load_inputs(files["prices"], files["policies"], files["workload"])
    return evaluate(compile_ladders(table, parse_strategy(name, table, pols), wl))


def test_budget_percentiles_and_expectation(files):
    r = budget(**files, strategy="three-tier", tasks=400, months=20_000, seed=1)
    m = analytic(files, "three-tier")
    assert r.expected == pytest.approx(400 * m.spend_per_task, rel=1e-12)
    # the simulated mean (8M tasks) lands within 1% of tasks x analytic spend per task
    assert r.simulated_mean == pytest.approx(r.expected, rel=0.01)
    assert abs(r.simulated_mean - r.expected) <= 4.5 * r.simulated_stderr
    assert r.p50 <= r.p90 <= r.p99
    assert r.at_confidence == r.p90                   # confidence 0.9
    # sum of 400 iid tasks is close to normal: P50 near the mean, P90 about 1.28 sd above it
    sd = r.simulated_stderr * math.sqrt(r.months)
    assert abs(r.p50 - r.expected) < 0.1 * sd
    assert r.p90 - r.p50 == pytest.approx(1.2816 * sd, rel=0.1)
    assert r.completed_expected == pytest.approx(400 * m.completion_rate, rel=1e-12)
    assert r.completed_low <= r.completed_expected <= 400


def test_per_provider_adds_up(files):
    r = budget(**files, strategy="three-tier", tasks=300, months=5000, seed=2)
    m = analytic(files, "three-tier")
    assert {p.provider for p in r.per_provider} == {"acme", "zenith"}
    assert sum(p.expected for p in r.per_provider) == pytest.approx(r.expected, rel=1e-12)
    assert sum(p.simulated_mean for p in r.per_provider) == pytest.approx(r.simulated_mean,
                                                                          rel=1e-9)
    for p in r.per_provider:
        assert p.expected == pytest.approx(300 * m.spend_by_provider[p.provider], rel=1e-12)
        assert p.credits >= p.simulated_mean * 0.99
    # buying each provider's own P90 covers the total P90
    assert sum(p.credits for p in r.per_provider) >= r.at_confidence


def test_defaults_cheapest_routed_policy_and_workload_tasks(tmp_path):
    pr = H.prices({"a": H.model("acme", "budget", 1.0, 2.0),
                   "b": H.model("beta", "premium", 10.0, 40.0)})
    w = H.workload([{"name": "t", "share": 1.0, "phases": [
        {"phase": "implement", "calls": 2, "input_tokens": 1000, "output_tokens": 200,
         "success": {"a": 0.6, "b": 0.9}}]}], tasks_per_month=321)
    cheap = H.policy({"budget": "a", "premium": "b"}, {"default": "budget"}, name="cheap")
    dear = H.policy({"budget": "a", "premium": "b"}, {"default": "premium"}, name="dear")
    paths = [H.write(tmp_path, n, d) for n, d in
             (("prices.yaml", pr), ("w.yaml", w), ("p1.yaml", dear), ("p2.yaml", cheap))]
    r = budget(paths[0], paths[2:], paths[1], months=500)
    assert r.strategy == "cheap" and r.tasks == 321
    r2 = budget(paths[0], paths[2:], paths[1], strategy="single:b", months=500)
    assert r2.strategy == "single:b" and r2.kind == "single"


def test_same_seed_same_result(files):
    a = budget(**files, months=2000, seed=5, budget_usd=20).to_dict()
    b = budget(**files, months=2000, seed=5, budget_usd=20).to_dict()
    c = budget(**files, months=2000, seed=6, budget_usd=20).to_dict()
    assert a == b
    assert a["p50"] != c["p50"]


def test_budget_coverage_is_consistent(files):
    r = budget(**files, strategy="three-tier", tasks=100, months=4000, budget_usd=20.0, seed=3)
    m = analytic(files, "three-tier")
    assert r.budget_method == "simulated"
    # fewer tasks than the budget buys on average, but not many fewer
    assert r.budget_tasks < 20.0 / m.spend_per_task
    assert r.budget_tasks > 0.85 * 20.0 / m.spend_per_task


def test_bad_confidence_is_a_user_error(files):
    from costsim.errors import CostsimError

    with pytest.raises(CostsimError, match="confidence"):
        budget(**files, confidence=1.5)


# --- CLI ----------------------------------------------------------------------------------

def test_cli_json_keys(fixtures):
    r = CliRunner().invoke(app, cli_args(fixtures, "--format", "json", "--budget", "30",
                                         "--tasks", "200"))
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["version"] == 1
    for k in ("expected", "p50", "p90", "p99", "per_provider", "completed", "budget"):
        assert k in d
    assert d["p50"] <= d["p90"] <= d["p99"]
    assert d["tasks"] == 200 and d["strategy"]["name"] == "three-tier"
    assert set(d["per_provider"]) == {"acme", "zenith"}
    assert set(d["per_provider"]["acme"]) >= {"expected", "credits"}
    assert d["completed"]["low_percentile"] == pytest.approx(10.0)
    assert d["budget"]["usd"] == 30.0 and d["budget"]["tasks"] > 0


def test_cli_table_has_histogram_and_markdown(fixtures):
    r = CliRunner().invoke(app, cli_args(fixtures, "--budget", "30"))
    assert r.exit_code == 0, r.output
    assert "P99" in r.stdout and "credits to buy" in r.stdout and "│█" in r.stdout
    assert "← P50" in r.stdout or "P50," in r.stdout
    md = CliRunner().invoke(app, cli_args(fixtures, "--format", "markdown"))
    assert md.exit_code == 0 and "| provider | expected |" in md.stdout


def test_fail_above_gate(fixtures):
    d = json.loads(CliRunner().invoke(app, cli_args(fixtures, "--format", "json")).stdout)
    below = CliRunner().invoke(app, cli_args(fixtures, "--fail-above", f"{d['p50'] * 0.98}"))
    assert below.exit_code == 1
    assert "above --fail-above" in below.stderr
    assert "Traceback" not in below.output
    assert "P99" in below.stdout                      # the report is still printed
    above = CliRunner().invoke(app, cli_args(fixtures, "--fail-above", f"{d['p99'] * 1.02}"))
    assert above.exit_code == 0, above.output


def test_cli_user_errors_exit_2(fixtures):
    r = CliRunner().invoke(app, cli_args(fixtures, "--strategy", "nope"))
    assert r.exit_code == 2 and "unknown strategy 'nope'" in r.stderr
    assert "Traceback" not in r.output
    r = CliRunner().invoke(app, cli_args(fixtures, "--confidence", "1"))
    assert r.exit_code == 2 and "confidence" in r.stderr


def test_cli_out_and_plot(fixtures, tmp_path):
    pytest.importorskip("matplotlib")
    out, png = tmp_path / "b.json", tmp_path / "b.png"
    r = CliRunner().invoke(app, cli_args(fixtures, "--format", "json", "--out", str(out),
                                         "--plot", str(png)))
    assert r.exit_code == 0, r.output
    assert json.loads(out.read_text())["version"] == 1
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- volumes that vary, tasks that differ, very large months -----------------------------

def _volume_files(tmp_path, fixtures, **changes):
    doc = yaml.safe_load((fixtures / "workload.yaml").read_text())
    doc.update(changes)
    w = tmp_path / "w.yaml"
    w.write_text(yaml.safe_dump(doc, sort_keys=False))
    return dict(prices=fixtures / "prices.yaml", policies=[fixtures / "policy.yaml"], workload=w)


def test_a_volume_that_varies_widens_the_spread(tmp_path, fixtures):
    """tasks_per_month {mean, cv}: months bring a gamma-Poisson number of tasks, so the
    monthly spend's standard deviation grows to about sqrt(N var(task) + (mean spend)^2 (N + cv^2
    N^2)); --tasks fixes the count again."""
    files = _volume_files(tmp_path, fixtures, tasks_per_month={"mean": 400, "cv": 0.3})
    fixed = budget(**files, strategy="three-tier", tasks=400, months=4000, seed=1)
    varying = budget(**files, strategy="three-tier", months=4000, seed=1)
    assert fixed.tasks_cv is None and varying.tasks_cv == 0.3
    assert varying.tasks == 400 and varying.expected == pytest.approx(fixed.expected, rel=1e-12)
    d = varying.to_dict()
    assert d["tasks_cv"] == 0.3 and "gamma-Poisson" in d["notes"][0]
    sd_fixed = fixed.simulated_stderr * math.sqrt(fixed.months)
    sd = varying.simulated_stderr * math.sqrt(varying.months)
    mu = fixed.spend_per_task
    want = math.sqrt(sd_fixed ** 2 + mu * mu * (400 + 0.09 * 400 ** 2))
    assert sd == pytest.approx(want, rel=0.06)
    assert varying.p99 - varying.p50 > 2 * (fixed.p99 - fixed.p50)
    assert abs(varying.simulated_mean - varying.expected) <= 4.5 * varying.simulated_stderr


def test_tasks_that_differ_widen_the_spread(tmp_path, fixtures):
    plain = _volume_files(tmp_path, fixtures)
    (tmp_path / "v").mkdir()
    varied = _volume_files(tmp_path / "v", fixtures,
                           variation={"difficulty": 1.5, "tokens": 0.8,
                                      "tokens_follow_difficulty": 0.5})
    a = budget(**plain, strategy="three-tier", tasks=300, months=3000, seed=2)
    b = budget(**varied, strategy="three-tier", tasks=300, months=3000, seed=2)
    assert (b.p99 - b.p50) / b.expected > 1.5 * (a.p99 - a.p50) / a.expected
    assert abs(b.simulated_mean - b.expected) <= 4.5 * b.simulated_stderr
    assert any("variation" in n for n in b.notes)


@pytest.mark.parametrize("variation", [None, {"difficulty": 1.3, "tokens": 0.7,
                                               "tokens_follow_difficulty": 0.5}])
def test_a_billion_tasks_a_month(tmp_path, fixtures, variation):
    """Months this large are built from outcome counts (issue 13: no answer in 120 s before):
    the simulated mean lands on tasks x spend per task to its standard error, and the spread
    is sqrt(N) times the per-task one."""
    from costsim.engine.moments import task_spend_variance

    files = _volume_files(tmp_path, fixtures, **({"variation": variation} if variation else {}))
    N = 10 ** 9
    r = budget(**files, strategy="three-tier", tasks=N, months=2000, seed=3)
    assert r.method == ("cells" if variation else "outcomes")
    assert abs(r.simulated_mean - r.expected) <= 4.5 * r.simulated_stderr
    table, _, wl, _, pols = load_inputs(files["prices"], files["policies"], files["workload"])
    _, var = task_spend_variance(compile_ladders(table, parse_strategy("three-tier", table, pols),
                                                 wl))
    sd = r.simulated_stderr * math.sqrt(r.months)
    assert sd == pytest.approx(math.sqrt(N * var), rel=0.06)
    assert r.completed_low <= r.completed_expected <= N


def test_fail_above_and_plot_are_refused_before_the_simulation(fixtures, monkeypatch):
    import costsim.engine.montecarlo as mc

    def boom(*a, **k):
        raise AssertionError("simulated before checking the options")

    monkeypatch.setattr(mc, "simulate_months", boom)
    r = CliRunner().invoke(app, cli_args(fixtures, "--fail-above", "-5"))
    assert r.exit_code == 2, r.output
    assert r.stderr.strip() == "--fail-above: must be a non-negative amount, got -5.0"
    r = CliRunner().invoke(app, cli_args(fixtures, "--fail-above", "nan"))
    assert r.exit_code == 2 and "--fail-above" in r.stderr
    r = CliRunner().invoke(app, cli_args(fixtures, "--plot", "chart.foo"))
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1, r.output
    assert "--plot" in r.stderr and "Traceback" not in r.output
    r = CliRunner().invoke(app, cli_args(fixtures, "--budget", "-1"))
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1, r.output


def test_own_price_table_without_policy_leaves_the_bundled_policies_out():
    """As compare does: your own price table (models 'cheap', 'mid', 'top', none of the bundled
    policies') and no --policy: the bundled policies cannot run, so they are left out with one
    warning line and --strategy single:MODEL still runs (before, budget stopped at the first
    bundled policy with 'unknown model' though the user asked for none of them); a bundled
    policy asked for by name must run."""
    from pathlib import Path

    fx = Path(__file__).parent / "fixtures"
    common = ["budget", "--prices", str(fx / "prices.yaml"), "--workload",
              str(fx / "workload.yaml"), "--months", "50", "--format", "json"]
    runner = CliRunner()
    res = runner.invoke(app, common + ["--strategy", "single:mid"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["strategy"]["name"] == "single:mid"
    left = [ln for ln in res.stderr.splitlines() if "bundled policies left out" in ln]
    assert len(left) == 1 and "two-tier" in left[0] and "unknown model" in left[0]
    res = runner.invoke(app, common)
    assert res.exit_code == 2 and "no routing policy to choose from" in res.stderr
    for named in (["--strategy", "two-tier"], ["--policy", "two-tier"]):
        res = runner.invoke(app, common + named)
        assert res.exit_code == 2, res.output
        assert "two-tier.yaml:" in res.stderr and "unknown model" in res.stderr
        assert "Traceback" not in res.output
