"""`costsim init [DIR]`: editable copies of the bundled files, never overwriting a file."""

import json
from pathlib import Path

from typer.testing import CliRunner

from costsim.cli import app
from costsim.loader import load_policy, load_prices, load_workload
from costsim.paths import bundled_policy_paths, bundled_prices_path

runner = CliRunner()


def test_init_writes_copies_that_give_the_bundled_numbers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["init", "team"])
    assert res.exit_code == 0, res.output
    d = tmp_path / "team"
    assert sorted(p.name for p in (d / "policies").iterdir()) == sorted(
        p.name for p in bundled_policy_paths())
    assert "What to change first" in (d / "README.md").read_text()
    prices = (d / "prices.yaml").read_text()
    assert prices.startswith("# Your copy of costsim's bundled price table")
    assert "edit that script, not this file" not in prices
    assert load_prices(d / "prices.yaml").models == load_prices(bundled_prices_path()).models
    assert load_workload(d / "workload.yaml").name == "medium-team"
    assert load_policy(d / "policies" / "two-tier.yaml").name == "two-tier"
    assert (d / "runs-example.csv").read_text().startswith("task_id,task_type,phase,attempt")
    assert "run" in (d / "replay-example.csv").read_text().splitlines()[0].split(",")
    # The copies (a policy folder) and the bundled defaults give the same comparison.
    mine = runner.invoke(app, ["compare", "--prices", "team/prices.yaml", "--workload",
                               "team/workload.yaml", "--policy", "team/policies", "-f", "json"])
    default = runner.invoke(app, ["compare", "-f", "json"])
    assert mine.exit_code == 0, mine.output
    strip = lambda out: [{k: v for k, v in s.items() if k != "source"}   # noqa: E731
                         for s in json.loads(out)["strategies"]]
    assert strip(mine.stdout) == strip(default.stdout)


def test_init_never_overwrites(tmp_path):
    (tmp_path / "policies").mkdir()
    (tmp_path / "workload.yaml").write_text("mine\n")
    (tmp_path / "policies" / "two-tier.yaml").write_text("also mine\n")
    res = runner.invoke(app, ["init", str(tmp_path), "--workload", "large-team"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "workload.yaml").read_text() == "mine\n"
    assert (tmp_path / "policies" / "two-tier.yaml").read_text() == "also mine\n"
    assert f"kept {tmp_path / 'workload.yaml'} (exists; not overwritten)" in res.stdout
    assert (tmp_path / "prices.yaml").exists()
    again = runner.invoke(app, ["init", str(tmp_path)])
    assert "nothing to do: every file exists" in again.stdout
    assert not any(p.name.endswith(".tmp") for p in tmp_path.rglob("*"))


def test_init_other_workload_and_bad_arguments(tmp_path):
    res = runner.invoke(app, ["init", str(tmp_path / "big"), "-w", "large-team"])
    assert res.exit_code == 0
    assert load_workload(tmp_path / "big" / "workload.yaml").name == "large-team"
    f = tmp_path / "file"
    f.write_text("x")
    res = runner.invoke(app, ["init", str(f)])
    assert res.exit_code == 2 and "not a directory" in res.output
    res = runner.invoke(app, ["init", str(tmp_path / "x"), "-w", "huge-team"])
    assert res.exit_code == 2 and "bundled: large-team, medium-team, small-team" in res.stderr
