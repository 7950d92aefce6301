"""calibrate fits tasks_per_month from timestamps: {mean, cv} by maximum likelihood when the log
spans months and its monthly counts vary more than chance, one number otherwise. Logs come from
tests/logsim.py, whose months are gamma-Poisson with a known mean and cv."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import yaml

import logsim
from costsim.calibrate import calibrate
from costsim.calibrate.volume import LR_5PCT, fit_counts, fit_volume, month_table

K_SE = 4.0


def _docs(tpm):
    px = {"version": 1, "as_of": "2026-11-20", "currency": "USD",
          "models": {"m": {"provider": "p", "tier": "midrange", "input": 1.0, "output": 5.0,
                           "coding_score": 70}}}
    wl = {"version": 1, "name": "one", "tasks_per_month": tpm, "max_attempts": 2,
          "system_tokens": 500, "cache_hit_rate": 0.5, "feedback_gain": 0.3,
          "task_types": [{"name": "t", "share": 1.0, "phases": [
              {"phase": "implement", "calls": 1, "input_tokens": 800, "output_tokens": 200,
               "difficulty": 60}]}]}
    return px, wl


def _calibrate(tmp_path, tpm, *, months=None, days=61.0, start="2026-01-01T00:00:00Z",
               seed=0, base=None):
    px, wl = _docs(tpm)
    kw = dict(months=months) if months else dict(tasks=int(tpm if isinstance(tpm, int)
                                                           else tpm["mean"]), days=days)
    df = logsim.simulate_log(px, wl, "single:m", rows="attempt", seed=seed, start=start, **kw)
    log = tmp_path / "runs.csv"
    logsim.write_log(df, log)
    prices = tmp_path / "prices.yaml"
    prices.write_text(yaml.safe_dump(px))
    if base is not None:
        bp = tmp_path / "base.yaml"
        bp.write_text(yaml.safe_dump(base))
        base = str(bp)
    return df, calibrate(str(log), prices=str(prices), workload=base)


def test_many_months_recover_mean_and_cv_within_their_standard_errors(tmp_path):
    df, r = _calibrate(tmp_path, {"mean": 250, "cv": 0.4}, months=36, seed=3)
    tpm = r.workload_data["tasks_per_month"]
    info = r.fitted["tasks_per_month"]
    assert isinstance(tpm, dict) and info["varies"] and info["calendar_months"] == 36
    # the reported standard errors, checked against the formulas of the negative binomial:
    # Var(mean) ~ (mean + cv^2 mean^2) / months; Var(cv) of a sample cv ~ cv^2 / (2 months)
    # (plus the Poisson part, small here)
    assert info["mean_se"] == pytest.approx(math.sqrt((250 + 0.16 * 250 ** 2) / 36), rel=0.35)
    assert info["cv_se"] == pytest.approx(0.4 / math.sqrt(72), rel=0.4)
    assert abs(tpm["mean"] - 250) <= K_SE * info["mean_se"]
    assert abs(tpm["cv"] - 0.4) <= K_SE * info["cv_se"]
    # the fitted workload reads back, and the report says it
    assert r.workload.tasks_per_month.cv == pytest.approx(tpm["cv"])
    assert "tasks_per_month" in r.workload_yaml()


def test_fit_is_unbiased_and_its_standard_errors_honest_over_replicates():
    """Gamma-Poisson months drawn here (numpy, independent of logsim and of the fit): the mean
    of 200 fits lands on the truth within its own standard error, and the reported standard
    error matches the spread of the estimates."""
    rng = np.random.default_rng(7)
    mean, cv, M = 400.0, 0.3, 30
    est, ses = [], []
    for _ in range(200):
        lam = rng.gamma(1 / cv ** 2, mean * cv ** 2, size=M)
        f = fit_counts(rng.poisson(lam), np.ones(M))
        est.append((f.mean, f.cv))
        ses.append((f.se_mean, f.se_cv))
    est, ses = np.array(est), np.array(ses)
    sd = est.std(axis=0)
    assert abs(est[:, 0].mean() - mean) < K_SE * sd[0] / math.sqrt(200)
    # maximum likelihood of a spread is biased low by O(1/M): about cv / (2 M) here
    assert abs(est[:, 1].mean() - cv) < K_SE * sd[1] / math.sqrt(200) + cv / M
    assert ses[:, 0].mean() == pytest.approx(sd[0], rel=0.15)
    assert ses[:, 1].mean() == pytest.approx(sd[1], rel=0.15)


def test_poisson_months_give_one_number(tmp_path):
    df, r = _calibrate(tmp_path, 300, months=24, seed=5)
    tpm = r.workload_data["tasks_per_month"]
    info = r.fitted["tasks_per_month"]
    assert isinstance(tpm, int) and not info["varies"] and info["cv_source"] == "log"
    assert info["likelihood_ratio"] < LR_5PCT
    assert abs(tpm - 300) <= K_SE * math.sqrt(300 / 24) + 1
    # how often a Poisson log is mistaken for a varying one: the test's 5% level
    rng = np.random.default_rng(2)
    wrong = sum(fit_counts(rng.poisson(300, size=24), np.ones(24)).varies for _ in range(400))
    assert wrong / 400 < 0.05 + K_SE * math.sqrt(0.05 * 0.95 / 400)


def test_short_log_gives_a_plain_number(tmp_path):
    df, r = _calibrate(tmp_path, 2000, days=40.0)
    tpm = r.workload_data["tasks_per_month"]
    assert isinstance(tpm, int)
    # 2000 tasks over 40 days
    assert tpm == pytest.approx(2000 / 40 * 30.4375, rel=0.02)
    assert r.fitted["tasks_per_month"]["cv_source"] == "default"


def test_short_log_keeps_the_base_workloads_cv(tmp_path):
    _, base = _docs({"mean": 999, "cv": 0.25})
    df, r = _calibrate(tmp_path, 2000, days=40.0, base=base)
    tpm = r.workload_data["tasks_per_month"]
    assert tpm["cv"] == 0.25 and tpm["mean"] == pytest.approx(2000 / 40 * 30.4375, rel=0.02)
    assert "tasks_per_month.cv" in [f for f, _ in r.from_base]


def test_partial_first_and_last_months_count_for_their_exposure():
    """Tasks at a constant rate of 10 a day from 20 January to 10 July: the edge months count
    for the share of them covered, so the mean is the rate per calendar month (about 304) and
    not dragged down by the two partial counts."""
    start, end = pd.Timestamp("2026-01-20", tz="UTC"), pd.Timestamp("2026-07-10", tz="UTC")
    rng = np.random.default_rng(0)
    days = (end - start).days
    ts = start + pd.to_timedelta(np.sort(rng.random(10 * days)) * days * 86400, unit="s")
    n, f = month_table(ts)
    assert len(n) == 7 and f[0] == pytest.approx(12 / 31, abs=0.01)
    assert f[-1] == pytest.approx(9 / 31, abs=0.01) and (f[1:-1] == 1).all()
    r = fit_volume(ts)
    secs = (ts - pd.Timestamp(0, tz="UTC")).total_seconds()
    assert fit_volume(np.asarray(secs)).counts == r.counts        # epoch seconds read alike
    expect = 10 * sum(f * np.array([31, 28, 31, 30, 31, 30, 31])) / f.sum()
    assert abs(r.mean - expect) < K_SE * math.sqrt(expect / f.sum())
    assert not r.varies
    # slivers of an edge month (under a tenth of it) are left out
    n2, f2 = month_table(list(ts) + [pd.Timestamp("2026-08-01T12:00", tz="UTC")])
    assert len(n2) == 7 and (n2 == n).all() and f2[-1] == pytest.approx(1.0, abs=0.001)


def test_report_says_what_the_volume_fit_found_within_80_columns(tmp_path):
    import helpers as H
    from typer.testing import CliRunner

    from costsim.cli import app

    df, r = _calibrate(tmp_path, {"mean": 60, "cv": 0.6}, months=24, seed=3)
    tpm = r.workload_data["tasks_per_month"]
    out = H.invoke_at_widths(CliRunner(), app, ["calibrate", str(tmp_path / "runs.csv"),
                                                "--prices", str(tmp_path / "prices.yaml")],
                             widths=(80, 120))
    for text in out.values():
        flat = " ".join(text.split())
        assert f"Tasks per month: mean {tpm['mean']:,.0f}" in flat
        assert f"cv {tpm['cv']:.2f}" in flat and "24 calendar months" in flat


def test_budget_of_the_fitted_workload_varies_its_months(tmp_path):
    """calibrate -> budget: the written {mean, cv} is what budget simulates (a month's count
    varies by mean + (cv mean)^2, so the monthly spend's spread is far wider than a fixed
    count's)."""
    from costsim.budget import budget

    df, r = _calibrate(tmp_path, {"mean": 60, "cv": 0.6}, months=24, seed=3)
    wp = tmp_path / "fitted.yaml"
    r.write_workload(wp)
    tpm = r.workload_data["tasks_per_month"]
    kw = dict(prices=tmp_path / "prices.yaml", policies=[], workload=wp, strategy="single:m",
              months=2000, seed=1)
    varying, fixed = budget(**kw), budget(**kw, tasks=round(tpm["mean"]))
    assert varying.tasks_cv == tpm["cv"] and fixed.tasks_cv is None
    var_v, var_f = np.var(varying.monthly_spend), np.var(fixed.monthly_spend)
    # by hand: Var T = mean Var X + Var N m^2, Var N = mean + (cv mean)^2 against 0 for the
    # fixed count (m = spend per task, exact)
    m, mu, cv = fixed.spend_per_task, tpm["mean"], tpm["cv"]
    assert var_v - var_f == pytest.approx((mu + (cv * mu) ** 2) * m * m, rel=0.15)
