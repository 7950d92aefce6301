"""`costsim optimize` with tasks that differ (variation) and retry_context: none: every point of
the vectorised search against compile_ladders + analytic.evaluate, at several spreads, and the
winner's numbers against `costsim compare`'s."""

import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from costsim.cli import app
from costsim.engine.analytic import evaluate
from costsim.engine.compile import Strategy, compile_ladders
from costsim.search.optimize import Search, optimize, policy_from_doc

from test_optimize import random_inputs

runner = CliRunner()


def with_variation(tmp_path, seed, variation, retry_context=None, per_type=None):
    p, pol, w = random_inputs(tmp_path, seed)
    wd = yaml.safe_load(w.read_text())
    wd["variation"] = variation
    if per_type is not None:
        wd["task_types"][1]["variation"] = per_type
    w.write_text(yaml.safe_dump(wd, sort_keys=False))
    if retry_context:
        pd = yaml.safe_load(pol.read_text())
        pd["escalation"] = {"after_failures": 2, "retry_context": retry_context}
        pol.write_text(yaml.safe_dump(pd, sort_keys=False))
    return p, pol, w


def engine(S, flat):
    doc = S.policy_doc(flat)
    return evaluate(compile_ladders(S.table, Strategy.routed(policy_from_doc(doc)), S.wl))


SPREADS = [
    # difficulty only (one rule), size only (one node, lognormal size), both with long-context
    # thresholds in reach (two rules: with and without long-context calls), a per-type block
    ({"difficulty": 0.6}, None),
    ({"tokens": 0.8}, None),
    ({"difficulty": 1.3, "tokens": 0.7, "tokens_follow_difficulty": 0.5}, None),
    ({"difficulty": 2.5, "tokens": 1.2, "tokens_follow_difficulty": 0.8},
     {"difficulty": 0.4}),
]


@pytest.mark.parametrize("spread,per_type", SPREADS)
@pytest.mark.parametrize("seed", [1, 4])
def test_every_point_matches_the_engine_with_variation(tmp_path, seed, spread, per_type):
    p, pol, w = with_variation(tmp_path, seed, spread, per_type=per_type)
    S = Search(p, pol, w, after_failures=(1, 2), handoffs=("summary", "full_history"))
    assert not S.approx
    g = S.grid()
    rng = np.random.default_rng(seed)
    for flat in rng.choice(S.size, 25, replace=False):
        m = engine(S, flat)
        assert g["spend"][flat] == pytest.approx(m.spend_per_task, rel=1e-12)
        assert g["completion"][flat] == pytest.approx(m.completion_rate, rel=1e-12)
        assert g["cost"][flat] == pytest.approx(m.cost_per_completed_task, rel=1e-12)
        assert g["defect"][flat] == pytest.approx(m.defect_rate, rel=1e-11, abs=1e-15)
        assert g["review"][flat] == pytest.approx(m.review_minutes, rel=1e-12)


def test_long_context_picks_the_rule_per_point(tmp_path):
    # a spread whose long-context steps are steeper than its difficulty (step width
    # sqrt(1 - r^2) / r = 0.75, so the engine narrows its panels when a policy's calls can
    # reach long-context rates): some points of the space call a model with a long_context
    # block, some do not -- both rules must be in use, each where the engine uses it
    p, pol, w = with_variation(tmp_path, 2, {"difficulty": 0.5, "tokens": 1.0,
                                             "tokens_follow_difficulty": 0.8})
    S = Search(p, pol, w, after_failures=(1,), handoffs=("full_history",))
    two = [tp for tp in S.prep if len(tp.variants) == 2]
    assert two, "the draw has long-context models"
    assert len(two[0].variants[0].wq) != len(two[0].variants[1].wq)
    g = S.grid()
    rng = np.random.default_rng(0)
    for flat in rng.choice(S.size, 40, replace=False):
        m = engine(S, flat)
        assert g["cost"][flat] == pytest.approx(m.cost_per_completed_task, rel=1e-12)


@pytest.mark.parametrize("spread", [None, {"difficulty": 1.3, "tokens": 0.7,
                                           "tokens_follow_difficulty": 0.5}])
def test_retry_context_none_matches_the_engine(tmp_path, spread):
    p, pol, w = with_variation(tmp_path, 3, spread, retry_context="none")
    S = Search(p, pol, w, after_failures=(1, 2), handoffs=("summary", "full_history"))
    g = S.grid()
    rng = np.random.default_rng(3)
    for flat in rng.choice(S.size, 25, replace=False):
        doc = S.policy_doc(flat)
        assert doc["escalation"]["retry_context"] == "none"
        m = engine(S, flat)
        assert g["cost"][flat] == pytest.approx(m.cost_per_completed_task, rel=1e-12)
        assert g["defect"][flat] == pytest.approx(m.defect_rate, rel=1e-11, abs=1e-15)


def test_steep_size_steps_agree_with_the_reference(tmp_path):
    # sizes that follow difficulty almost exactly: the engine puts panel edges at each
    # policy's own long-context steps; the search uses every step of the space at once, so it
    # is checked against the independent reference model (integrated to ~1e-14) instead
    import reference_model as ref

    p, pol, w = with_variation(tmp_path, 2, {"difficulty": 1.0, "tokens": 1.0,
                                             "tokens_follow_difficulty": 0.999})
    S = Search(p, pol, w, after_failures=(1,), handoffs=("full_history",))
    assert S.approx
    g = S.grid()
    load = lambda x: yaml.safe_load(x.read_text())  # noqa: E731
    rng = np.random.default_rng(1)
    for flat in rng.choice(S.size, 4, replace=False):
        want = ref.evaluate(load(p), load(w), S.policy_doc(flat))
        assert g["cost"][flat] == pytest.approx(want["cost_per_completed_task"], rel=1e-7)
        assert g["completion"][flat] == pytest.approx(want["completion_rate"], rel=1e-7)
    r = optimize(p, pol, w, min_completion=0.5)
    m = evaluate(compile_ladders(S.table, Strategy.routed(policy_from_doc(r.best_policy)),
                                 S.wl))
    assert r.best.cost_per_completed_task == m.cost_per_completed_task      # engine's numbers


@pytest.mark.parametrize("spread", [{"difficulty": 0.5},
                                    {"difficulty": 1.3, "tokens": 0.7,
                                     "tokens_follow_difficulty": 0.5},
                                    {"difficulty": 3.0, "tokens": 1.5,
                                     "tokens_follow_difficulty": 0.3}])
def test_the_winner_has_compares_numbers(tmp_path, spread):
    p, pol, w = with_variation(tmp_path, 5, spread)
    out = tmp_path / "best.yaml"
    res = runner.invoke(app, ["optimize", "--prices", str(p), "--policy", str(pol),
                              "--workload", str(w), "--min-completion", "0.6", "--out",
                              str(out), "-f", "json"])
    assert res.exit_code == 0, res.output
    best = json.loads(res.stdout)["best"]
    res = runner.invoke(app, ["compare", "--prices", str(p), "--policy", str(out),
                              "--workload", str(w), "-f", "json"])
    assert res.exit_code == 0, res.output
    name = yaml.safe_load(out.read_text())["name"]
    s = next(x for x in json.loads(res.stdout)["strategies"] if x["name"] == name)
    for k in ("cost_per_completed_task", "spend_per_task", "completion_rate", "defect_rate",
              "review_minutes"):
        assert best[k] == pytest.approx(s[k], rel=1e-9, abs=1e-15), k
