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


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("extra", [[], ["--wide"]])
def test_tables_fit_the_terminal_without_cutting_numbers(log, monkeypatch, columns, extra):
    monkeypatch.setenv("COLUMNS", str(columns))
    res = runner.invoke(app, ["calibrate", str(log), "--prices", str(PRICES), *extra])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    if not extra:
        assert max(len(line) for line in lines) <= columns
    assert not any("…" in line for line in lines)
    text = res.stdout
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


def test_markdown_and_help(log):
    res = runner.invoke(app, ["calibrate", str(log), "--prices", str(PRICES), "-f",
                              "markdown"])
    assert res.exit_code == 0
    assert "#### Fit check (log → engine)" in res.stdout and "| scope |" in res.stdout
    h = runner.invoke(app, ["calibrate", "--help"])
    assert h.exit_code == 0
    assert "--write-policy" in h.stdout and "SPEC" not in h.stdout
