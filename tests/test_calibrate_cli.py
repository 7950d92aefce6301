"""`costsim calibrate` at the command line: readable at 80 and 120 columns, files written."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from calibrate_logs import PRICES, ROOT
from costsim.cli import app
from costsim.loader import load_policy, load_workload

runner = CliRunner()


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    from logsim import simulate_log, write_log

    p = tmp_path_factory.mktemp("cli") / "runs.csv"
    write_log(simulate_log(PRICES, ROOT / "workloads" / "medium-team.yaml",
                           ROOT / "policies" / "cheapest-routing.yaml", tasks=3_000, seed=7,
                           rows="call"), p)
    return p


@pytest.fixture(scope="module")
def result(log):
    from costsim.calibrate import calibrate

    return calibrate(log, prices=PRICES)


def test_the_command_prints_the_report(log, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    res = runner.invoke(app, ["calibrate", str(log), "--prices", str(PRICES)])
    assert res.exit_code == 0, res.output
    assert max(len(line) for line in res.stdout.splitlines()) <= 80
    assert "Fit check, log → engine" in res.stdout


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("wide", [False, True])
def test_tables_fit_the_terminal_without_cutting_numbers(result, monkeypatch, columns, wide):
    from costsim.calibrate.render import render_calibration

    monkeypatch.setenv("COLUMNS", str(columns))
    text = render_calibration(result, "table", wide=wide)
    lines = text.splitlines()
    if not wide:
        assert max(len(line) for line in lines) <= columns
    assert not any("…" in line for line in lines)
    for heading in ("What the log shows", "Fit check, log → engine", "Per task type, phase"):
        assert heading in text
    # model names are never cut
    assert "claude-sonnet-5" in text and "deepseek-v4-flash" in text


def test_writes_the_workload_and_the_policy(log, tmp_path):
    w, p = tmp_path / "fitted.yaml", tmp_path / "inferred.yaml"
    res = runner.invoke(app, ["calibrate", str(log), "--prices", str(PRICES),
                              "--write-workload", str(w), "--write-policy", str(p), "-f",
                              "json"])
    assert res.exit_code == 0, res.output
    assert f"wrote {w}" in res.stderr and f"wrote {p}" in res.stderr
    data = json.loads(res.stdout)
    assert data["version"] == 1 and data["fit"] and "from_workload" in data
    wl = load_workload(w)
    pol = load_policy(p)
    assert pol.name == "inferred" and wl.name == "calibrated-runs"
    assert yaml.safe_load(p.read_text())["handoff"]["mode"] == "summary"
    out = runner.invoke(app, ["compare", "--prices", str(PRICES), "--workload", str(w),
                              "--policy", str(p)])
    assert out.exit_code == 0, out.output


def test_markdown_and_help(result):
    from costsim.calibrate.render import render_calibration

    md = render_calibration(result, "markdown")
    assert "#### Fit check (log → engine)" in md and "| scope |" in md
    h = runner.invoke(app, ["calibrate", "--help"])
    assert h.exit_code == 0
    assert "--write-policy" in h.stdout and "SPEC" not in h.stdout


def test_the_docs_example_log_runs(tmp_path):
    """The per-call example of docs/calibrate.md is a valid log, read as documented."""
    import re

    from costsim.calibrate import calibrate

    doc = (ROOT / "docs" / "calibrate.md").read_text()
    block = re.search(r"```csv\n(.*?)```", doc, re.S).group(1)
    p = tmp_path / "example.csv"
    p.write_text(block)
    res = calibrate(p, prices=PRICES)
    assert res.rows == 5 and res.tasks == 1
    assert res.summaries[0]["mean_output_tokens"] == 1500
    assert res.fitted["runs"][""]["handoff"] == "summary"


def test_the_report_says_how_tasks_differ(result, monkeypatch):
    """The fitted variation is in the report, and what came from --workload says so."""
    from costsim.calibrate.render import render_calibration

    monkeypatch.setenv("COLUMNS", "200")
    var = result.fitted["variation"]
    text = " ".join(render_calibration(result, "table").split())
    assert f"How tasks differ (variation): difficulty {var['difficulty']:.2f}" in text
    for k in ("difficulty", "tokens", "tokens_follow_difficulty"):
        shown = f"{k.replace('_', ' ')} {var[k]:.2f}"
        assert shown in text
        assert (f"{shown} from --workload" in text) == (var["source"][k] != "log")


def test_a_log_that_cannot_show_the_spread_says_how_to_measure_it(tmp_path, monkeypatch):
    """One outcome per task (two configs of the OpenHands excerpt, each on its own half of the
    instances): the spread comes from --workload, and the report says what would measure it.
    The same instances run by both configs measure it, and the hint is gone."""
    import pandas as pd

    from costsim.calibrate import calibrate
    from costsim.calibrate.render import render_calibration

    monkeypatch.setenv("COLUMNS", "80")
    d = pd.read_csv(ROOT / "tests" / "fixtures" / "openhands_excerpt.csv")
    d = d[d["config"].str.contains("DeepSeek|opus")]
    inst = sorted(d["instance"].unique())
    even = d["instance"].isin(inst[::2])
    cheap = d["config"].str.contains("DeepSeek")
    texts = {}
    for name, rows in (("unpaired", d[even == cheap]), ("paired", d)):
        log = pd.DataFrame({"task_id": rows["instance"], "task_type": "swt", "phase": "main",
                            "attempt": 1, "model": rows["model"], "input_tokens": 0,
                            "cached_input_tokens": 0, "output_tokens": 0,
                            "cost_usd": rows["cost_usd"], "success": rows["resolved"],
                            "run": rows["config"]})
        log.to_csv(tmp_path / f"{name}.csv", index=False)
        res = calibrate(tmp_path / f"{name}.csv")
        texts[name] = (res.fitted["variation"]["source"]["difficulty"],
                       render_calibration(res, "table"))
    hint = "run a sample of tasks (a few dozen or more) on two models too"
    src, text = texts["unpaired"]
    assert src != "log" and "0 of them with more than one outcome" in " ".join(text.split())
    assert hint in " ".join(text.split())
    assert max(len(line) for line in text.splitlines()) <= 80
    src, text = texts["paired"]
    assert src == "log" and hint not in " ".join(text.split())


def test_one_shot_runs_keep_one_attempt_unless_a_base_says_more(tmp_path):
    """A log whose runs made one attempt per phase (benchmark results; usage logs, one session
    per task) stopped every failed phase after one attempt: without --workload the fitted
    workload allows 1, and each run's completion under the engine is the log's own (7 of 10,
    8 of 10 here). With --workload, its max_attempts is what strategies may use (a two-step
    cascade: 2)."""
    import pandas as pd
    import yaml

    from costsim.calibrate import calibrate

    rows = []
    for run, model, wins in (("cheap", "m-cheap", 7), ("dear", "m-dear", 8)):
        for i in range(10):
            rows.append({"task_id": f"{run}-{i}", "task_type": "t", "phase": "main",
                         "attempt": 1, "model": model, "input_tokens": 0,
                         "cached_input_tokens": 0, "output_tokens": 0,
                         "cost_usd": 0.1 if run == "cheap" else 0.5, "success": i < wins,
                         "run": run})
    log = tmp_path / "oneshot.csv"
    pd.DataFrame(rows).to_csv(log, index=False)
    res = calibrate(log)
    assert res.workload.max_attempts == 1 and res.workload_data["max_attempts"] == 1
    assert any("max_attempts 1" in n for n in res.notes)
    fit = {(r["run"], r["scope"]): r for r in res.fit}
    for run, want in (("cheap", 0.7), ("dear", 0.8)):
        row = fit[(run, "all tasks")]
        assert row["measured_completion_rate"] == want
        assert abs(row["engine_completion_rate"] - want) < 1e-9
        assert row["flag"] is None
    base = yaml.safe_load((ROOT / "workloads" / "medium-team.yaml").read_text())
    base["max_attempts"] = 2
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    res = calibrate(log, workload=tmp_path / "base.yaml")
    assert res.workload.max_attempts == 2
    assert "max_attempts" in [f for f, _ in res.from_base]
    # the fit check still takes the one-shot runs as they ran, with one attempt: no gap
    for (run, scope), row in {(r["run"], r["scope"]): r for r in res.fit}.items():
        assert abs(row["engine_completion_rate"] - fit[(run, scope)]["engine_completion_rate"]) \
            < 1e-9 and row["flag"] is None
    # while the workload gives the strategies to project two attempts: a second try of the
    # same model completes more than one did
    from costsim.api import compare
    from costsim.models import PriceTable
    two = compare(prices=PriceTable.model_validate(res.prices_data), policies=[],
                  workload=res.workload, models=["m-cheap"])
    assert two.strategies[0].completion_rate > 0.7 + 0.05


def test_per_run_table_names_each_strategy_once(tmp_path, monkeypatch):
    """Two runs, one named after its strategy (single:claude-sonnet-5) and one whose policy is
    inferred (two-tier): at 80 columns the table says "= run" and "inferred" instead of
    repeating the run's name, so no name is folded; the JSON keeps the full names."""
    from logsim import simulate_log, write_log

    from costsim.calibrate import calibrate
    from costsim.calibrate.render import render_calibration

    p = tmp_path / "runs.csv"
    write_log(simulate_log(PRICES, ROOT / "workloads" / "medium-team.yaml",
                           [ROOT / "policies" / "two-tier.yaml", "single:claude-sonnet-5"],
                           tasks=600, seed=5, rows="attempt", assign="split"), p)
    res = calibrate(p, prices=PRICES)
    monkeypatch.setenv("COLUMNS", "80")
    text = render_calibration(res, "table")
    lines = text[text.index("Per run"):].splitlines()
    # title, blank, header, rule, then a row per run up to the next blank line
    rows = lines[4:next(k for k, line in enumerate(lines[4:], 4) if not line.strip())]
    rows = {line.split()[0]: line.split()[1] for line in rows}
    assert rows == {"single:claude-sonnet-5": "=", "two-tier": "inferred"}
    assert max(len(line) for line in text.splitlines()) <= 80
    names = {s["run"]: s["name"] for s in res.to_dict()["strategies"]}
    assert names == {"single:claude-sonnet-5": "single:claude-sonnet-5",
                     "two-tier": "inferred-two-tier"}


def test_no_file_is_written_when_one_of_them_cannot_be(tmp_path):
    """--write-policy on a single-model log (no policy to write) fails with one line and exit
    2 before --write-workload writes anything: a file the user already has stays as it was."""
    import pandas as pd

    log = tmp_path / "single.csv"
    pd.DataFrame([{"task_id": f"t{i}", "task_type": "bugfix", "phase": "implement",
                   "attempt": 1, "model": "claude-sonnet-5", "input_tokens": 2000,
                   "output_tokens": 500, "success": i % 3 > 0} for i in range(12)]
                 ).to_csv(log, index=False)
    wl, pol = tmp_path / "fitted.yaml", tmp_path / "policy.yaml"
    wl.write_text("mine\n")
    res = runner.invoke(app, ["calibrate", str(log), "--prices", str(PRICES),
                              "--write-workload", str(wl), "--write-policy", str(pol)])
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines()[-1] == (
        "--write-policy: the log's strategy is a single model: there is no policy to write")
    assert wl.read_text() == "mine\n" and not pol.exists()
    res = runner.invoke(app, ["calibrate", str(log), "--prices", str(PRICES),
                              "--write-workload", str(wl), "--write-prices",
                              str(tmp_path / "p.yaml")])
    assert res.exit_code == 2 and "no effective prices to write" in res.stderr
    assert wl.read_text() == "mine\n"
    res = runner.invoke(app, ["calibrate", str(log), "--prices", str(PRICES),
                              "--write-workload", str(wl)])
    assert res.exit_code == 0 and load_workload(wl).task_types[0].name == "bugfix"
