"""No command writes over a file it reads; images need an image name; bundled names work from
any directory; a typo in a policy's route or signal names is a located warning."""

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from costsim.cli import app
from costsim.paths import bundled_dir

FX = Path(__file__).parent / "fixtures"
runner = CliRunner()


@pytest.fixture
def inputs(tmp_path):
    out = {}
    for name in ("prices.yaml", "policy.yaml", "workload.yaml"):
        dst = tmp_path / name
        dst.write_bytes((FX / name).read_bytes())
        out[name.split(".")[0]] = dst
    return out


def args(i):
    return ["--prices", str(i["prices"]), "--policy", str(i["policy"]), "--workload",
            str(i["workload"])]


@pytest.mark.parametrize("target", ["workload", "policy", "prices"])
def test_compare_never_writes_over_an_input(inputs, target):
    before = inputs[target].read_bytes()
    res = runner.invoke(app, ["compare", *args(inputs), "-f", "json", "-o", str(inputs[target])])
    assert res.exit_code == 2
    assert "would overwrite" in res.stderr and f"--{target}" in res.stderr
    assert inputs[target].read_bytes() == before


def test_symlinks_and_hard_links_are_the_same_file(inputs, tmp_path):
    link = tmp_path / "link.json"
    link.symlink_to(inputs["workload"])
    res = runner.invoke(app, ["compare", *args(inputs), "-o", str(link)])
    assert res.exit_code == 2 and "would overwrite" in res.stderr
    hard = tmp_path / "hard.json"
    os.link(inputs["policy"], hard)
    res = runner.invoke(app, ["compare", *args(inputs), "-o", str(hard)])
    assert res.exit_code == 2 and "--policy" in res.stderr
    # the user price table in use is an input too, even when not named
    user = Path(os.environ["COSTSIM_HOME"]) / "prices.yaml"
    user.write_bytes((FX / "prices.yaml").read_bytes())
    res = runner.invoke(app, ["compare", "--policy", str(inputs["policy"]), "--workload",
                              str(inputs["workload"]), "-o", str(user)])
    assert res.exit_code == 2 and "--prices" in res.stderr


def test_budget_checks_its_outputs_before_simulating(inputs, monkeypatch, tmp_path):
    import costsim.budget

    def boom(*a, **k):
        raise AssertionError("the simulation ran before the outputs were checked")

    monkeypatch.setattr(costsim.budget, "budget", boom)
    res = runner.invoke(app, ["budget", *args(inputs), "--plot", str(tmp_path / "out.txt")])
    assert res.exit_code == 2 and "image file name" in res.stderr and "--plot" in res.stderr
    res = runner.invoke(app, ["budget", *args(inputs), "--plot", str(tmp_path / "x.png"),
                              "-o", str(tmp_path / "x.png")])
    assert res.exit_code == 2 and "also given to --out" in res.stderr
    res = runner.invoke(app, ["budget", *args(inputs), "-o", str(inputs["policy"])])
    assert res.exit_code == 2 and "would overwrite" in res.stderr


def test_an_image_needs_matplotlib_said_before_any_work(inputs, monkeypatch, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    res = runner.invoke(app, ["budget", *args(inputs), "--plot", str(tmp_path / "b.png")])
    assert res.exit_code == 2
    assert "pip install 'costsim[plot]'" in res.stderr
    assert not (tmp_path / "b.png").exists()


def test_calibrate_never_replaces_its_log(tmp_path):
    log = tmp_path / "runs.csv"
    log.write_bytes((bundled_dir("examples") / "calibrate-runs.csv").read_bytes())
    before = log.read_bytes()
    for opt in ("--write-workload", "--out"):
        res = runner.invoke(app, ["calibrate", str(log), opt, str(log)])
        assert res.exit_code == 2 and "would overwrite LOG" in res.stderr, res.output
        assert log.read_bytes() == before


def test_price_table_show_never_writes_over_its_table(tmp_path):
    t = tmp_path / "t.yaml"
    t.write_bytes((FX / "prices.yaml").read_bytes())
    res = runner.invoke(app, ["price-table", "show", "--table", str(t), "-f", "csv", "-o", str(t)])
    assert res.exit_code == 2 and "would overwrite" in res.stderr
    assert t.read_bytes() == (FX / "prices.yaml").read_bytes()


# --- bundled names ------------------------------------------------------------------------------

def test_bundled_names_from_an_empty_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["compare", "-w", "large-team", "-p", "cheapest-routing", "-p",
                              "two-tier", "--prices", "bundled", "-f", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["workload"]["name"] == "large-team"
    assert {s["name"] for s in data["strategies"] if s["kind"] == "routed"} == {
        "cheapest-routing", "two-tier"}
    res = runner.invoke(app, ["compare", "-w", "large-tem"])
    assert res.exit_code == 2
    assert res.stderr.strip() == ("large-tem: no such file, and not a bundled workload name "
                                  "(bundled: large-team, medium-team, small-team)")
    res = runner.invoke(app, ["budget", "--prices", "user"])
    assert res.exit_code == 2 and "no user price table yet" in res.stderr


def test_an_existing_file_wins_over_a_bundled_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "large-team").write_bytes((FX / "workload.yaml").read_bytes())
    res = runner.invoke(app, ["compare", "--prices", str(FX / "prices.yaml"), "-p",
                              str(FX / "policy.yaml"), "-w", "large-team", "-f", "json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["workload"]["name"] == "tiny"


# --- typos --------------------------------------------------------------------------------------

def test_unknown_route_and_signal_names_are_located_warnings(tmp_path):
    pol = tmp_path / "typo.yaml"
    pol.write_text((FX / "policy.yaml").read_text()
                   .replace("  search: budget", "  serch: budget")
                   .replace("  security_sensitive: {min_tier: premium, phases: [implement, review]}",
                            "  security_sensitve: {min_tier: premium, phases: [implemnt, review]}"))
    res = runner.invoke(app, ["compare", "--prices", str(FX / "prices.yaml"), "-p", str(pol),
                              "-w", str(FX / "workload.yaml"), "-f", "json"])
    assert res.exit_code == 0, res.output                   # warnings, not errors
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("warning: ")]
    assert len(lines) == 3, res.stderr
    route, signal, phase = lines
    assert route.startswith(f"warning: {pol}:9: routes.serch: workload 'tiny' has no phase "
                            "'serch' (its phases: search, implement, review, docs)")
    assert route.endswith("did you mean 'search'?")
    assert signal.startswith(f"warning: {pol}:14: signals.security_sensitve: workload 'tiny' "
                             "has no signal 'security_sensitve' (its signals: "
                             "security_sensitive, cross_file)")
    assert "signals.security_sensitve.phases[0]" in phase and "'implemnt'" in phase
    data = json.loads(res.stdout)
    assert any("routes.serch" in w for w in data["warnings"])


def test_canonical_names_a_workload_lacks_are_not_typos():
    # The bundled policies route `explain`, `plan`, ... which the tiny workload does not have.
    res = runner.invoke(app, ["compare", "--prices", "bundled", "-w",
                              str(FX / "workload.yaml"), "-p", "cheapest-routing", "-f", "csv"])
    assert res.exit_code == 0, res.output
    assert "routes." not in res.stderr and "signals." not in res.stderr
