import csv
import io
import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

import costsim
from costsim.cli import app

FX = Path(__file__).parent / "fixtures"
runner = CliRunner()
ARGS = ["--prices", str(FX / "prices.yaml"), "--policy", str(FX / "policy.yaml"),
        "--workload", str(FX / "workload.yaml")]


def run_json(*extra):
    res = runner.invoke(app, ["compare", *ARGS, "--format", "json", *extra])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_defaults_run_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["compare", "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["version"] == 1
    assert data["workload"]["name"] == "medium-team"
    names = {s["name"] for s in data["strategies"]}
    assert "cheapest-routing" in names and "single:claude-opus-5" in names
    kinds = {s["kind"] for s in data["strategies"]}
    assert kinds == {"routed", "single"}


def test_json_fields_and_sorting():
    data = run_json()
    strategies = data["strategies"]
    assert [s["name"] for s in strategies] == ["single:cheap", "single:mid", "three-tier",
                                               "single:top"]
    costs = [s["cost_per_completed_task"] for s in strategies]
    assert costs == sorted(costs)
    for s in strategies:
        for key in ("name", "kind", "spend_per_task", "completion_rate", "cost_per_completed_task",
                    "defect_rate", "review_minutes", "expected_attempts", "expected_retries",
                    "spend_by_model", "spend_by_provider", "tokens", "premium_share", "pareto",
                    "savings", "savings_vs"):
            assert key in s
        assert s["cost_per_completed_task"] == pytest.approx(s["spend_per_task"]
                                                             / s["completion_rate"])
        assert sum(s["spend_by_provider"].values()) == pytest.approx(s["spend_per_task"])


def test_strategies_cover_policy_models_and_extra_models(tmp_path):
    data = run_json("--model", "mid")["strategies"]
    assert sorted(s["name"] for s in data if s["kind"] == "single") == [
        "single:cheap", "single:mid", "single:top"]          # no duplicate single:mid
    # A policy naming only `mid`, plus --model top: single strategies are exactly those two.
    pol = tmp_path / "p.yaml"
    pol.write_text("version: 1\nname: only-mid\ntiers: {midrange: mid}\n"
                   "routes: {default: midrange}\n")
    res = runner.invoke(app, ["compare", "--prices", str(FX / "prices.yaml"), "--policy", str(pol),
                              "--workload", str(FX / "workload.yaml"), "--model", "top",
                              "-f", "json"])
    names = sorted(s["name"] for s in json.loads(res.stdout)["strategies"])
    assert names == ["only-mid", "single:mid", "single:top"]


def test_savings_against_the_top_tier_single_model_by_default():
    data = run_json()
    s = {x["name"]: x for x in data["strategies"]}
    # The policy's premium tier is `top`: "premium for everything" is the default baseline.
    assert data["baseline"]["strategy"] == "single:top"
    top = s["single:top"]
    assert top["savings"] is None and top["savings_vs"] is None    # not 0.0 against itself
    assert top["monthly_savings"] is None
    for name, x in s.items():
        if name == "single:top":
            continue
        assert x["savings_vs"] == "single:top"
        assert x["savings"] == pytest.approx(
            1 - x["cost_per_completed_task"] / top["cost_per_completed_task"], rel=1e-12)
        assert x["monthly_savings"] == pytest.approx(top["monthly_spend"] - x["monthly_spend"],
                                                     rel=1e-12)
        assert x["monthly_spend"] == pytest.approx(100 * x["spend_per_task"], rel=1e-12)


def test_pareto_marks_non_dominated():
    data = run_json()["strategies"]
    for a in data:
        dominated = any(
            b["cost_per_completed_task"] <= a["cost_per_completed_task"]
            and b["completion_rate"] >= a["completion_rate"]
            and b["defect_rate"] <= a["defect_rate"] and b is not a
            and (b["cost_per_completed_task"], b["completion_rate"], b["defect_rate"])
            != (a["cost_per_completed_task"], a["completion_rate"], a["defect_rate"])
            for b in data)
        assert a["pareto"] == (not dominated)


def test_breakdown_sums_to_total():
    data = run_json("--breakdown")
    for s in data["strategies"]:
        phases = s["breakdown"]["phases"]
        assert sum(p["spend"] for p in phases) == pytest.approx(s["spend_per_task"])
        models = s["breakdown"]["models"]
        assert sum(m["spend"] for m in models) == pytest.approx(s["spend_per_task"])


def test_table_markdown_csv():
    res = runner.invoke(app, ["compare", *ARGS])
    assert res.exit_code == 0
    assert "three-tier" in res.stdout and "completed" in res.stdout
    md = runner.invoke(app, ["compare", *ARGS, "-f", "markdown"]).stdout
    assert "| strategy | cost per completed | monthly spend |" in md
    out = runner.invoke(app, ["compare", *ARGS, "-f", "csv"]).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["name"] for r in rows][2] == "three-tier"
    js = {s["name"]: s for s in run_json()["strategies"]}
    for r in rows:
        assert float(r["cost_per_completed_task"]) == pytest.approx(
            js[r["name"]]["cost_per_completed_task"], rel=1e-12)


def test_out_writes_file_atomically(tmp_path):
    target = tmp_path / "result.json"
    res = runner.invoke(app, ["compare", *ARGS, "-f", "json", "--out", str(target)])
    assert res.exit_code == 0
    assert json.loads(target.read_text())["version"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_python_api_matches_cli_and_has_a_frame():
    r = costsim.compare(FX / "prices.yaml", [FX / "policy.yaml"], FX / "workload.yaml")
    cli = {s["name"]: s for s in run_json()["strategies"]}
    for s in r.strategies:
        assert s.cost_per_completed_task == pytest.approx(cli[s.name]["cost_per_completed_task"],
                                                          rel=1e-12)
    df = r.to_frame()
    assert list(df.index) == [s.name for s in r.strategies]
    assert df.loc["three-tier", "completion_rate"] == pytest.approx(
        r.get("three-tier").completion_rate)


def test_help_mentions_every_option():
    res = runner.invoke(app, ["compare", "--help"])
    assert res.exit_code == 0
    for opt in ("--prices", "--workload", "--policy", "--model", "--breakdown", "--format",
                "--out", "--engine", "--samples", "--seed"):
        assert opt in res.stdout


def test_own_price_table_without_policy_leaves_the_bundled_policies_out(tmp_path):
    """Your own price table (models 'cheap', 'mid', 'top', none of the bundled policies'): with
    no --policy the bundled policies cannot run, so they are left out with one warning line
    and --model still compares; with nothing left to compare it is one error line; a bundled
    policy asked for by name must run."""
    prices = Path(__file__).parent / "fixtures" / "prices.yaml"
    workload = Path(__file__).parent / "fixtures" / "workload.yaml"
    res = runner.invoke(app, ["compare", "--prices", str(prices), "--workload", str(workload),
                              "--model", "mid", "--format", "json"])
    assert res.exit_code == 0, res.output
    assert [s["name"] for s in json.loads(res.stdout)["strategies"]] == ["single:mid"]
    warns = [ln for ln in res.stderr.splitlines() if ln.startswith("warning: ")]
    left = [ln for ln in warns if "bundled policies left out" in ln]
    assert len(left) == 1 and "two-tier" in left[0] and "unknown model" in left[0]
    res = runner.invoke(app, ["compare", "--prices", str(prices), "--workload", str(workload)])
    assert res.exit_code == 2
    assert res.stderr.strip() == ("--policy: nothing to compare: no bundled policy runs with "
                                  "this price table (they name models it lacks); give --policy "
                                  "or --model")
    res = runner.invoke(app, ["compare", "--prices", str(prices), "--workload", str(workload),
                              "--policy", "two-tier", "--model", "mid"])
    assert res.exit_code == 2 and "unknown model" in res.stderr and "Traceback" not in res.output


def test_baseline_naming_a_bundled_policy_left_out_gives_its_error():
    """--baseline two-tier with your own price table (no --policy): two-tier was left out, and
    naming it must fail as naming it with --policy does (its file:line, 'unknown model'), not
    with 'unknown strategy (known: single:MODEL, pareto:SCORE)', which hid why."""
    fx = Path(__file__).parent / "fixtures"
    res = runner.invoke(app, ["compare", "--prices", str(fx / "prices.yaml"), "--workload",
                              str(fx / "workload.yaml"), "--model", "mid",
                              "--baseline", "two-tier"])
    assert res.exit_code == 2, res.output
    assert "two-tier.yaml:" in res.stderr and "unknown model" in res.stderr
    assert "Traceback" not in res.output
    # the same in --engine replay (a log of the fixture table's model 'mid')
    log = Path(__file__).parent.parent / "docs" / "examples" / "replay-runs.csv"
    assert log.exists()
    res = runner.invoke(app, ["compare", "--engine", "replay", "--log", str(log), "--prices",
                              str(fx / "prices.yaml"), "--model", "mid",
                              "--baseline", "two-tier"])
    assert res.exit_code == 2, res.output
    assert "two-tier.yaml:" in res.stderr and "unknown model" in res.stderr
