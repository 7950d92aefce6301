"""A model the price table lacks, in a log whose rows state their costs (benchmark results and
spend logs name models as the provider does: ``openai/gpt-5-mini``): calibrate fits its rates
to those costs, so the fitted workload can name it, and ``--write-prices`` writes them.

The rows here are billed at known rates (USD per 1M uncached input, cached input and output
tokens), which the fit must find, and under which compare must give the log's own cost per
completed task."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from calibrate_logs import PRICES
from costsim.cli import app

runner = CliRunner()
RATES = (1.25, 0.125, 10.0)        # the truth: input, cached input, output per 1M tokens


def _log(path, n=300, seed=5):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        inp = int(rng.integers(5_000, 60_000))
        cached = int(rng.integers(0, inp // 2))
        out = int(rng.integers(300, 4_000))
        cost = ((inp - cached) * RATES[0] + cached * RATES[1] + out * RATES[2]) / 1e6
        rows.append({"task_id": f"t{i}", "task_type": "bugfix", "phase": "implement",
                     "attempt": 1, "model": "acme/coder-1", "input_tokens": inp,
                     "cached_input_tokens": cached, "output_tokens": out,
                     "cost_usd": round(cost, 12), "success": bool(rng.random() < 0.6)})
    d = pd.DataFrame(rows)
    d.to_csv(path, index=False)
    return d


def test_rates_are_read_from_the_costs(tmp_path):
    from costsim.calibrate import calibrate
    from costsim.loader import load_prices

    d = _log(tmp_path / "runs.csv")
    res = calibrate(tmp_path / "runs.csv", prices=PRICES)
    entry = res.prices_data["models"]["acme/coder-1"]
    assert (entry["input"], entry["cache_read"], entry["output"]) == pytest.approx(RATES,
                                                                                   rel=1e-6)
    assert entry["provider"] == "log" and entry["tier"] in ("budget", "midrange", "premium")
    assert any("acme/coder-1 is not in the price table" in n for n in res.notes)
    # the written table is a valid price table, the bundled models kept
    res.write_prices(tmp_path / "p.yaml")
    table = load_prices(tmp_path / "p.yaml")
    assert "acme/coder-1" in table.models and set(load_prices(PRICES).models) < set(table.models)
    # the engine bills the fitted workload what the log cost
    done = d["success"]
    row = next(r for r in res.fit if r["scope"] == "all tasks")
    assert row["measured_cost_per_completed_task"] == pytest.approx(
        d["cost_usd"].sum() / done.sum(), rel=1e-9)
    assert row["flag"] is None


def test_compare_on_the_written_files(tmp_path):
    d = _log(tmp_path / "runs.csv", n=400, seed=9)
    w, p = tmp_path / "w.yaml", tmp_path / "p.yaml"
    res = runner.invoke(app, ["calibrate", str(tmp_path / "runs.csv"), "--prices", str(PRICES),
                              "--write-workload", str(w), "--write-prices", str(p)])
    assert res.exit_code == 0, res.output
    out = runner.invoke(app, ["compare", "--prices", str(p), "--workload", str(w),
                              "--model", "acme/coder-1", "--format", "json"])
    assert out.exit_code == 0, out.output
    got = next(s for s in json.loads(out.stdout)["strategies"]
               if s["name"] == "single:acme/coder-1")
    log_cpc = d["cost_usd"].sum() / d["success"].sum()
    # the fitted workload's mean tokens under the fitted rates: the log's mean cost exactly;
    # completion is the log's (one attempt per task), so cost per completed task matches
    assert got["completion_rate"] == pytest.approx(d["success"].mean(), abs=1e-9)
    assert got["cost_per_completed_task"] == pytest.approx(log_cpc, rel=0.01)


def test_fit_rates_from_hand_made_sums():
    """Two token kinds that always move together (output = input / 4): any split of the cost
    between them bills the rows, and the fit bills them exactly; cached input never seen is
    billed as input."""
    from costsim.calibrate.unpriced import fit_rates

    u = np.array([0.01, 0.02, 0.04])           # millions of tokens
    o = u / 4
    y = 2.0 * u + 8.0 * o                      # 4 USD per 1M input-equivalent
    c = np.zeros(3)
    m = pd.DataFrame([{"model": "x", "n": 3, "y": y.sum(), "yy": (y * y).sum(),
                       "su": u.sum(), "sc": 0.0, "so": o.sum(), "uu": (u * u).sum(),
                       "uc": 0.0, "uo": (u * o).sum(), "cc": (c * c).sum(), "co": 0.0,
                       "oo": (o * o).sum(), "uy": (u * y).sum(), "cy": 0.0,
                       "oy": (o * y).sum()}])
    r = fit_rates(m)
    billed = r.input["x"] * u + r.output["x"] * o
    assert billed == pytest.approx(y, rel=1e-9)
    assert r.input["x"] >= 0 and r.output["x"] >= 0
    assert r.cache_read["x"] == r.input["x"] and r.error["x"] < 1e-9


def test_models_shown_by_cost_only_stay_with_the_cost_only_prices(tmp_path):
    """Rows with a cost and no tokens (benchmark results) are priced by the cost-only path: no
    fitted-rates note for their models, and their tier is the third of the effective prices
    (the cheaper of two configs: budget), not the nearest tier of a rate of 0."""
    from costsim.calibrate import calibrate

    rows = []
    for model, cost in (("cfg-cheap", 0.05), ("cfg-dear", 0.9)):
        for i in range(20):
            rows.append({"task_id": f"i{i}", "task_type": "t", "phase": "main", "attempt": 1,
                         "model": model, "input_tokens": 0, "cached_input_tokens": 0,
                         "output_tokens": 0, "cost_usd": cost * (1 + i % 3), "success": i % 2,
                         "run": model})
    pd.DataFrame(rows).to_csv(tmp_path / "bench.csv", index=False)
    res = calibrate(tmp_path / "bench.csv", prices=PRICES)
    assert not any("not in the price table" in n for n in res.notes)
    models = res.prices_data["models"]
    assert models["cfg-cheap"]["tier"] == "budget" and models["cfg-cheap"]["output"] == 0.0
    # its mean cost (0.05 x (7 x 1 + 7 x 2 + 6 x 3) / 20) per 1M nominal tokens
    assert models["cfg-cheap"]["input"] == pytest.approx(0.0975, rel=1e-9)


def test_rows_shown_by_cost_only_stay_out_of_the_rates_fit(tmp_path):
    """A model the table lacks with tokens in one phase and a cost alone (0 tokens) in another:
    its rates are fitted to the rows that show tokens (which they bill exactly), and the note
    counts and measures those rows; before, the 0-token rows, which no rate can bill, were
    counted in (600 rows, 'they bill those rows to 70%')."""
    from costsim.calibrate import calibrate

    d = _log(tmp_path / "tok.csv", n=200, seed=3)
    review = d.assign(phase="review", input_tokens=0, cached_input_tokens=0, output_tokens=0)
    pd.concat([d, review]).to_csv(tmp_path / "runs.csv", index=False)
    res = calibrate(tmp_path / "runs.csv", prices=PRICES)
    note = next(n for n in res.notes if "acme/coder-1 is not in the price table" in n)
    assert "its 200 rows ($1.25 input, $0.125 cached, $10 output" in note
    assert "they bill those rows to 0.0%" in note
