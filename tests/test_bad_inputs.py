"""Every broken file gives one line naming the file (and line), exit status 2, no traceback."""

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from costsim.cli import app

FX = Path(__file__).parent / "fixtures"
BAD = FX / "bad"
runner = CliRunner()

# file -> (expected line or None, text the message must contain)
CASES = {
    "policy_malformed.yaml": (4, "not valid YAML"),
    "policy_duplicate_key.yaml": (6, "routes.default: duplicate key 'default' (first at line 5)"),
    "policy_unknown_key.yaml": (5, "escalaton: unknown field"),
    "policy_unknown_tier.yaml": (7, "routes.plan: unknown tier 'premum' (tiers: budget)"),
    "policy_unknown_model.yaml": (4, "tiers.budget: unknown model 'gpt-nonexistent'"),
    "policy_uncovered_phase.yaml": (5, "no route for phase 'implement'"),
    "policy_wrong_type.yaml": (5, "escalation.after_failures"),
    "policy_version.yaml": (1, "unsupported version 2"),
    "policy_no_version.yaml": (None, "missing 'version: 1'"),
    "policy_list.yaml": (1, "expected a YAML mapping"),
    "policy_empty.yaml": (None, "file is empty"),
    "policy_binary.yaml": (None, "not a text file"),
    "prices_negative.yaml": (7, "models.cheap.input: input should be greater than or equal to 0"),
    "prices_bad_tier.yaml": (6, "models.cheap.tier"),
    "workload_prob.yaml": (3, "cache_hit_rate: input should be less than or equal to 1"),
    "workload_shares.yaml": (3, "task_types: task type shares sum to 0.8, not 1"),
    "workload_success_prob.yaml": (11, "task_types[0].phases[0].success.budget"),
    "workload_unknown_success_key.yaml": (11, "success.premum: unknown model or tier"),
    "workload_calls_zero.yaml": (7, "task_types[0].phases[0].calls"),
}


def _args(name: str) -> list[str]:
    f = str(BAD / name)
    args = ["compare", "--prices", str(FX / "prices.yaml"), "--policy", str(FX / "policy.yaml"),
            "--workload", str(FX / "workload.yaml")]
    kind = name.split("_", 1)[0]
    flag = {"policy": "--policy", "prices": "--prices", "workload": "--workload"}[kind]
    i = args.index(flag)
    args[i + 1] = f
    return args


@pytest.mark.parametrize("name", sorted(CASES))
def test_broken_file_gives_one_line_and_exit_2(name):
    line, text = CASES[name]
    res = runner.invoke(app, _args(name))
    assert res.exit_code == 2, res.output
    err = res.stderr.strip()
    assert "Traceback" not in res.output and res.exception is None or isinstance(res.exception, SystemExit)
    assert len(err.splitlines()) == 1, err
    assert err.startswith(str(BAD / name)), err
    if line is not None:
        assert err.startswith(f"{BAD / name}:{line}: "), err
    assert text in err, err


def test_every_bad_fixture_is_covered():
    assert {p.name for p in BAD.iterdir()} == set(CASES)


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    res = runner.invoke(app, ["compare", "--workload", str(missing)])
    assert res.exit_code == 2
    assert res.stderr.strip() == f"{missing}: file not found"


def test_directory_instead_of_file(tmp_path):
    res = runner.invoke(app, ["compare", "--prices", str(FX / "prices.yaml"),
                              "--policy", str(FX / "policy.yaml"), "--workload", str(tmp_path)])
    assert res.exit_code == 2
    assert "is a directory" in res.stderr or "directory" in res.output


def test_unknown_model_option():
    res = runner.invoke(app, ["compare", "--prices", str(FX / "prices.yaml"), "--policy",
                              str(FX / "policy.yaml"), "--workload", str(FX / "workload.yaml"),
                              "--model", "gpt-9"])
    assert res.exit_code == 2
    assert res.stderr.strip().startswith("--model: unknown model 'gpt-9'")


def test_missing_score_is_a_clear_error(tmp_path):
    res = runner.invoke(app, ["compare", "--prices", str(FX / "prices.yaml"), "--policy",
                              str(FX / "policy.yaml"), "--workload", str(FX / "workload.yaml"),
                              "--model", "noscore"])
    assert res.exit_code == 2
    err = res.stderr.strip()
    # The fix goes in the price table: the error points there, names the phase that needs the
    # score (with its place in the workload) and the ways out.
    assert err.startswith(f"{FX / 'prices.yaml'}:29: models.noscore: 'noscore' has no "
                          "coding_score"), err
    assert f"bugfix/search ({FX / 'workload.yaml'}:21)" in err
    assert "costsim price-table scores --table" in err and "success rate" in err
    assert len(err.splitlines()) == 1


def test_two_policies_with_one_name(tmp_path):
    res = runner.invoke(app, ["compare", "--prices", str(FX / "prices.yaml"), "--policy",
                              str(FX / "policy.yaml"), "--policy", str(FX / "policy.yaml"),
                              "--workload", str(FX / "workload.yaml")])
    assert res.exit_code == 2
    assert "two policies are named 'three-tier'" in res.stderr


def test_main_entry_point_exits_2_without_traceback(tmp_path, capsys):
    from costsim.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["compare", "--prices", str(BAD / "prices_negative.yaml")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "prices_negative.yaml:7:" in err


def test_workload_summarizer_tier_missing_from_policy(tmp_path):
    wl = tmp_path / "w.yaml"
    wl.write_text((FX / "workload.yaml").read_text().replace(
        "handoff: {mode: full_history}", "handoff: {mode: summary, summarizer: budget}"))
    pol = tmp_path / "p.yaml"
    pol.write_text("version: 1\nname: p\ntiers: {midrange: mid}\nroutes: {default: midrange}\n")
    res = runner.invoke(app, ["compare", "--prices", str(FX / "prices.yaml"), "--policy", str(pol),
                              "--workload", str(wl)])
    assert res.exit_code == 2
    assert res.stderr.startswith(f"{wl}:7: handoff.summarizer: 'budget' is neither a tier")
