"""(a) A log built from Aider's published leaderboard: rates and cost must come back exactly."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from calibrate_logs import CAL_PRICES, TOKENS, aider_log, aider_rows, attempt_cost, slug
from costsim.calibrate import calibrate
from costsim.cli import app
from costsim.loader import load_workload

runner = CliRunner()


@pytest.fixture(scope="module")
def prices():
    return yaml.safe_load(CAL_PRICES.read_text())


@pytest.mark.parametrize("with_cost", [True, False], ids=["cost_usd", "priced"])
def test_rates_and_cost_match_the_published_table(tmp_path, prices, with_cost):
    log = tmp_path / "aider.csv"
    aider_log(with_cost).to_csv(log, index=False)
    res = runner.invoke(app, ["calibrate", str(log), "--prices", str(CAL_PRICES), "-f", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["version"] == 1
    by_model = {r["model"]: r for r in data["by_model"]}
    by_route = {r["route"]: r for r in data["by_route"]}
    for r in aider_rows():
        m = slug(r["model"])
        n, n1, n2 = r["test_cases"], r["pass_num_1"], r["pass_num_2"]
        row = by_model[m]
        # Published rates (rounded to 0.1 points) within 0.001; constructed counts exactly.
        assert row["first_attempt_success"] == pytest.approx(r["pass_rate_1"] / 100, abs=0.001)
        assert row["pass_rate_by_attempt"][1] == pytest.approx(r["pass_rate_2"] / 100, abs=0.001)
        assert row["first_attempts"] == n and row["retry_attempts"] == n - n1
        assert row["first_attempt_success"] == n1 / n
        assert row["retry_success"] == pytest.approx((n2 - n1) / (n - n1), abs=1e-12)
        route = by_route[m]
        assert route["tasks"] == n and route["completed"] == n2
        assert route["completion_rate"] == pytest.approx(r["pass_rate_2"] / 100, abs=0.001)
        if with_cost:
            expected = r["total_cost"] / n2
        else:
            expected = (2 * n - n1) * attempt_cost(prices, m) / n2
        assert route["cost_per_completed_task"] == pytest.approx(expected, rel=0.005)
        assert route["cost_per_completed_task"] == pytest.approx(expected, rel=1e-9)
        assert route["retries_per_task"] == pytest.approx((n - n1) / n)


def test_priced_row_by_hand(tmp_path, prices):
    """12k input of which 3k cached: 9k at $3, 3k at $0.30, 1.5k output at $15 per 1M (sonnet in
    the fixture)."""
    assert attempt_cost(prices, "claude-3-5-sonnet-20241022") == pytest.approx(
        (9_000 * 3.0 + 3_000 * 0.3 + 1_500 * 15.0) / 1e6)
    assert TOKENS == (12_000, 3_000, 1_500)
    log = tmp_path / "aider.csv"
    aider_log(False).to_csv(log, index=False)
    res = calibrate(log, prices=CAL_PRICES)
    row = next(r for r in res.by_model if r["model"] == "claude-3-5-sonnet-20241022")
    # 225 first attempts + 175 second attempts, each $0.0504
    assert row["spend"] == pytest.approx(400 * 0.0504)
    assert row["mean_input_tokens"] == 12_000 and row["mean_output_tokens"] == 1_500


def test_fitted_workload_replays_the_table(tmp_path):
    """The fitted first-try rates are the published ones, and `compare` on the fitted workload
    (tasks differ: later tries' values are rates over all tasks) completes single:M exactly as
    often as the leaderboard's pass_rate_2."""
    log = tmp_path / "aider.csv"
    aider_log(True).to_csv(log, index=False)
    out = tmp_path / "fitted.yaml"
    res = runner.invoke(app, ["calibrate", str(log), "--prices", str(CAL_PRICES),
                              "--write-workload", str(out), "-f", "json"])
    assert res.exit_code == 0, res.output
    wl = load_workload(out)
    (tt,) = wl.task_types
    (ph,) = tt.phases
    assert (tt.max_attempts or wl.max_attempts) == 2
    models = []
    for r in aider_rows():
        m = slug(r["model"])
        n, n1, n2 = r["test_cases"], r["pass_num_1"], r["pass_num_2"]
        # first tries run on every task: their rate is the raw one. A second try runs on the
        # tasks the first failed, the harder ones, so its map value (a rate over all tasks)
        # is at least the raw conditional rate; the completion check below pins it down
        first, second = ph.success[m]
        assert first == pytest.approx(n1 / n, abs=1e-6)
        assert second >= (n2 - n1) / (n - n1) - 1e-6
        models += ["--model", m]
    res = runner.invoke(app, ["compare", "--prices", str(CAL_PRICES), "--workload", str(out),
                              "--policy", str(_policy(tmp_path)), *models, "-f", "json"])
    assert res.exit_code == 0, res.output
    strategies = {s["name"]: s for s in json.loads(res.stdout)["strategies"]}
    for r in aider_rows():
        s = strategies[f"single:{slug(r['model'])}"]
        assert s["completion_rate"] == pytest.approx(r["pass_num_2"] / r["test_cases"], abs=1e-5)


def _policy(tmp_path):
    p = tmp_path / "pol.yaml"
    p.write_text(yaml.safe_dump({
        "version": 1, "name": "aider-tiers",
        "tiers": {"budget": "gpt-4.1-mini", "midrange": "claude-3-5-sonnet-20241022",
                  "premium": "o3"},
        "routes": {"default": "midrange"}}))
    return p
