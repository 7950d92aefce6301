"""`costsim optimize`: hand-worked optima, brute force through the engine, the written YAML,
infeasible targets, and the pareto:SCORE baseline. Prices are USD per 1M tokens."""

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from costsim.engine.analytic import evaluate
from costsim.cli import app
from costsim.engine.compile import Strategy, compile_ladders
from costsim.errors import CostsimError
from costsim.loader import load_policy, load_prices, load_workload
from costsim.search.optimize import Search, optimize, policy_from_doc

from helpers import model, policy, prices, workload, write

FIX = Path(__file__).parent / "fixtures"
runner = CliRunner()


# --- a space small enough to solve by hand ---------------------------------------------------
#
# Two tiers: budget = cheap ($1/M in and out), premium = top ($10/M). No system prompt, no cache.
# One task type, max_attempts 1 (so after_failures changes nothing; ties keep after_failures=1):
#   search:    1 call, 1000 input tokens, 0 output; succeeds always.
#   implement: 1 call, 1000 input tokens, 0 output; budget succeeds half the time, premium always.
# full_history: implement resends search's 1000-token transcript -> 2000 input tokens.
# summary (100 tokens, summarizer: budget): after search, the summarizer reads 1000 tokens and
#   writes 100 -> (1000 + 100) * $1/M = $0.0011; implement reads 100 + 1000 = 1100 tokens.
#
#   routes (search, implement)  handoff       E                         C    cost/completed
#   budget, budget              full_history  0.001 + 0.002   = 0.003    0.5  0.006   <- best
#   budget, budget              summary       0.001+0.0011+0.0011=0.0032 0.5  0.0064
#   budget, premium             full_history  0.001 + 0.020   = 0.021    1    0.021
#   budget, premium             summary       0.001+0.0011+0.011=0.0131  1    0.0131  <- best, C>=0.9
#   premium, budget             full_history  0.010 + 0.002   = 0.012    0.5  0.024
#   premium, premium            full_history  0.010 + 0.020   = 0.030    1    0.030

def small(tmp_path, *, extra_models=None, implement_premium=1.0, defects=None):
    models = {"cheap": model(tier="budget", input=1.0, output=1.0),
              "top": model(tier="premium", input=10.0, output=10.0)}
    models.update(extra_models or {})
    ph = [{"phase": "search", "calls": 1, "input_tokens": 1000, "output_tokens": 0,
           "success": {"budget": 1.0, "premium": 1.0}},
          {"phase": "implement", "calls": 1, "input_tokens": 1000, "output_tokens": 0,
           "success": {"budget": 0.5, "premium": implement_premium}}]
    w = workload([{"name": "t", "share": 1.0, "phases": ph}], max_attempts=1)
    if defects:
        w["defects"] = defects
    pol = policy({"budget": "cheap", "premium": "top"}, {"default": "budget"},
                 handoff={"mode": "summary", "summary_tokens": 100, "summarizer": "budget"})
    return (write(tmp_path, "p.yaml", prices(models)), write(tmp_path, "pol.yaml", pol),
            write(tmp_path, "w.yaml", w))


def test_hand_worked_optimum_without_targets(tmp_path):
    p, pol, w = small(tmp_path)
    r = optimize(p, pol, w, fixed_tiers=True)
    assert r.evaluated == 2 * 2 * 3 * 2          # routes x after_failures x handoffs
    assert r.best.routes == {"search": "budget", "implement": "budget"}
    assert r.best.handoff == "full_history"
    assert r.best.after_failures == 1
    assert r.best.cost_per_completed_task == pytest.approx(0.006, rel=1e-12)
    assert r.best.completion_rate == pytest.approx(0.5)


def test_hand_worked_optimum_with_completion_target(tmp_path):
    p, pol, w = small(tmp_path)
    r = optimize(p, pol, w, fixed_tiers=True, min_completion=0.9)
    assert r.best.routes == {"search": "budget", "implement": "premium"}
    assert r.best.handoff == "summary"
    assert r.best.cost_per_completed_task == pytest.approx(0.0131, rel=1e-12)
    assert r.best.spend_per_task == pytest.approx(0.0131, rel=1e-12)
    # frontier of cost vs completion: exactly the two corners worked out above
    assert [(round(x.cost_per_completed_task, 10), x.completion_rate)
            for x in r.frontier_all] == [(0.006, 0.5), (0.0131, 1.0)]


def test_tier_models_are_searched(tmp_path):
    # cheap2 is a budget model at half the price of cheap (same success via the tier class):
    # search 0.0005 + summary (1000 + 100) * 0.5/M = 0.00055 + implement on top 0.011 = 0.01205.
    p, pol, w = small(tmp_path, extra_models={"cheap2": model(tier="budget", input=0.5,
                                                                output=0.5)})
    fixed = optimize(p, pol, w, fixed_tiers=True, min_completion=0.9)
    full = optimize(p, pol, w, min_completion=0.9, prune=False)
    assert full.evaluated == 2 * fixed.evaluated
    assert full.best.tiers == {"budget": "cheap2", "premium": "top"}
    assert full.best.cost_per_completed_task == pytest.approx(0.01205, rel=1e-12)
    # cheap2 succeeds exactly as often as cheap and is never dearer: cheap leaves the space,
    # and the answer is the same
    free = optimize(p, pol, w, min_completion=0.9)
    assert free.space["tier_models"]["budget"] == ["cheap2"]
    assert free.evaluated == fixed.evaluated
    assert any("cheap (by cheap2)" in n for n in free.notes)
    assert free.best.tiers == {"budget": "cheap2", "premium": "top"}
    assert free.best.cost_per_completed_task == pytest.approx(0.01205, rel=1e-12)
    only = optimize(p, pol, w, candidates=["cheap", "top"], min_completion=0.9)
    assert only.best.tiers == {"budget": "cheap", "premium": "top"}


def test_infeasible_target_says_which_and_best_value(tmp_path):
    p, pol, w = small(tmp_path, implement_premium=0.8)
    r = optimize(p, pol, w, fixed_tiers=True, min_completion=0.9)
    assert not r.feasible and r.best_policy is None
    assert len(r.infeasible) == 1
    inf = r.infeasible[0]
    assert inf.constraint == "min_completion" and inf.best_alone == pytest.approx(0.8)
    assert "completion >= 0.9 cannot be met" in inf.message and "0.8" in inf.message
    with pytest.raises(CostsimError):
        r.policy_yaml()


def test_infeasible_only_together(tmp_path):
    # implement: budget succeeds 0.5 but ships a defect 10% of the time; premium succeeds 0.45
    # and never ships one. Completion >= 0.5 needs budget (defect 0.1), defect <= 0.05 needs
    # premium (completion 0.45): each target alone is reachable, both together are not.
    d = {"phases": ["implement"], "rate": {"budget": 0.1, "premium": 0.0}}
    p, pol, w = small(tmp_path, implement_premium=0.45, defects=d)
    r = optimize(p, pol, w, fixed_tiers=True, min_completion=0.5, max_defect_rate=0.05)
    assert not r.feasible
    msgs = " | ".join(i.message for i in r.infeasible)
    assert "together with" in msgs
    comp = next(i for i in r.infeasible if i.constraint == "min_completion")
    assert comp.best_alone == pytest.approx(0.5) and comp.best_with_others == pytest.approx(0.45)


def test_cli_infeasible_exit_1_no_traceback(tmp_path):
    p, pol, w = small(tmp_path, implement_premium=0.8)
    out = tmp_path / "best.yaml"
    res = runner.invoke(app, ["optimize", "--prices", str(p), "--policy", str(pol),
                              "--workload", str(w), "--fixed-tiers", "--min-completion", "0.9",
                              "--out", str(out)])
    assert res.exit_code == 1
    assert "completion >= 0.9 cannot be met" in res.output
    assert "Traceback" not in res.output
    assert not out.exists()
    res = runner.invoke(app, ["optimize", "--prices", str(p), "--policy", str(pol),
                              "--workload", str(w), "--fixed-tiers", "--min-completion", "0.9",
                              "-f", "json"])
    assert res.exit_code == 1
    body = res.stdout[:res.stdout.rindex("}") + 1]
    d = json.loads(body)
    assert d["version"] == 1 and d["feasible"] is False and d["best"] is None


def test_bad_target_is_a_user_error(tmp_path):
    p, pol, w = small(tmp_path)
    res = runner.invoke(app, ["optimize", "--prices", str(p), "--policy", str(pol),
                              "--workload", str(w), "--min-completion", "1.5"])
    assert res.exit_code == 2 and "--min-completion" in res.output


# --- brute force through the engine on the fixtures ------------------------------------------

FIXTURES = dict(prices=FIX / "prices.yaml", policy=FIX / "policy.yaml",
                workload=FIX / "workload.yaml")


def engine_metrics(table, wl, doc):
    m = evaluate(compile_ladders(table, Strategy.routed(policy_from_doc(doc)), wl))
    return m


def test_vectorised_equals_engine_on_a_random_sample():
    S = Search(**FIXTURES)            # tier models searched too (noscore is skipped)
    assert "noscore" not in S.sp.ids
    g = S.grid()
    assert g["cost"].size == S.size == 3 ** 4 * 3 * 2
    rng = np.random.default_rng(7)
    for flat in rng.choice(S.size, 40, replace=False):
        m = engine_metrics(S.table, S.wl, S.policy_doc(flat))
        assert g["cost"][flat] == pytest.approx(m.cost_per_completed_task, rel=1e-12)
        assert g["spend"][flat] == pytest.approx(m.spend_per_task, rel=1e-12)
        assert g["completion"][flat] == pytest.approx(m.completion_rate, rel=1e-12)
        assert g["defect"][flat] == pytest.approx(m.defect_rate, rel=1e-12, abs=1e-15)
        assert g["review"][flat] == pytest.approx(m.review_minutes, rel=1e-12)


def test_vectorised_equals_engine_on_bundled_defaults_sample():
    S = Search()                      # bundled prices, cheapest-routing, medium-team
    assert S.size >= 500_000
    rng = np.random.default_rng(3)
    flats = rng.choice(S.size, 12, replace=False)
    want = {int(f): engine_metrics(S.table, S.wl, S.policy_doc(f)) for f in flats}
    seen = 0
    for b in S.blocks():          # the bundled workload's variation splits the route grid
        cp, dr, rv = Search.metrics(b.E, b.C, b.D, b.RV)
        flat = np.asarray(b.flat(np.arange(b.E.size)))
        for f, m in want.items():
            hit = np.flatnonzero(flat == f)
            if hit.size:
                i = int(hit[0])
                seen += 1
                assert cp.flat[i] == pytest.approx(m.cost_per_completed_task, rel=1e-12)
                assert dr.flat[i] == pytest.approx(m.defect_rate, rel=1e-12)
                assert b.C.flat[i] == pytest.approx(m.completion_rate, rel=1e-12)
    assert seen == len(want)


def brute_force(table, wl, base, tiers_options, *, minc=None, maxd=None, maxr=None):
    """Every policy through compile_ladders + evaluate, written out independently."""
    phases = list(dict.fromkeys(ph.phase for t in wl.task_types for ph in t.phases))
    tier_names = list(base.tiers)
    best = (math.inf, None)
    points = []
    for models in itertools.product(*tiers_options):
        for af in (1, 2, 3):
            for mode in ("summary", "full_history"):
                for route in itertools.product(tier_names, repeat=len(phases)):
                    doc = base.model_dump(by_alias=True, exclude_none=True)
                    doc.pop("description", None)
                    doc["tiers"] = dict(zip(tier_names, models))
                    doc["routes"] = dict(zip(phases, route))
                    doc["escalation"] = {"after_failures": af}
                    doc["handoff"] = {"mode": mode, "summary_tokens": base.handoff.summary_tokens,
                                      "summarizer": base.handoff.summarizer}
                    m = evaluate(compile_ladders(table, Strategy.routed(policy_from_doc(doc)),
                                                 wl))
                    points.append(m)
                    ok = ((minc is None or m.completion_rate >= minc)
                          and (maxd is None or m.defect_rate <= maxd)
                          and (maxr is None or m.review_minutes <= maxr))
                    if ok and m.cost_per_completed_task < best[0]:
                        best = (m.cost_per_completed_task, doc)
    return best, points


def test_fixed_tiers_optimum_equals_brute_force_and_meets_targets(tmp_path):
    table = load_prices(FIXTURES["prices"])
    wl = load_workload(FIXTURES["workload"])
    base = load_policy(FIXTURES["policy"])
    minc, maxd = 0.97, 0.03
    (bf_cost, bf_doc), points = brute_force(table, wl, base, [[m] for m in base.tiers.values()],
                                            minc=minc, maxd=maxd)
    assert len(points) == 3 ** 4 * 3 * 2
    # the targets bind: the unconstrained optimum is cheaper and misses them
    assert min(p.cost_per_completed_task for p in points) < bf_cost
    r = optimize(table, base, wl, fixed_tiers=True, min_completion=minc, max_defect_rate=maxd)
    assert r.best.cost_per_completed_task <= bf_cost * (1 + 1e-12)
    assert r.best.cost_per_completed_task == pytest.approx(bf_cost, rel=1e-12)
    # frontier of cost vs completion == the brute-force one (steps below 1e-12 are rounding:
    # two evaluation orders of one number may differ in the last bit)
    def staircase(pts):
        out = []
        for c, v in sorted(pts, key=lambda x: (x[0], -x[1])):
            if not out or v > out[-1][1] + 1e-12:
                out.append((c, v))
        return out

    bf_front = staircase([(p.cost_per_completed_task, p.completion_rate) for p in points
                          if p.defect_rate <= maxd])
    got = staircase([(x.cost_per_completed_task, x.completion_rate)
                     for x in r.frontier_completion])
    assert len(got) == len(bf_front)
    for (a, b), (c, d) in zip(got, bf_front):
        assert a == pytest.approx(c, rel=1e-12) and b == pytest.approx(d, rel=1e-12)

    # written YAML: loadable, re-evaluated by the engine it meets the targets at that cost
    out = tmp_path / "best.yaml"
    r.write_policy(out)
    pol = load_policy(out)
    m = evaluate(compile_ladders(table, Strategy.routed(pol), wl))
    assert m.cost_per_completed_task == pytest.approx(bf_cost, rel=1e-12)
    assert m.completion_rate >= minc and m.defect_rate <= maxd
    # every phase routed explicitly, handoff spelled out
    assert set(pol.routes) >= {"search", "implement", "review", "docs"}
    assert pol.handoff.mode in ("summary", "full_history")
    assert pol.handoff.summary_tokens == base.handoff.summary_tokens
    assert pol.signals == base.signals


def test_written_policy_matches_independent_reference(tmp_path):
    import reference_model as ref

    r = optimize(**FIXTURES, min_completion=0.97, max_defect_rate=0.03)
    out = tmp_path / "best.yaml"
    r.write_policy(out)
    load = lambda p: yaml.safe_load(Path(p).read_text())  # noqa: E731
    got = ref.evaluate(load(FIXTURES["prices"]), load(FIXTURES["workload"]), load(out))
    assert got["cost_per_completed_task"] == pytest.approx(r.best.cost_per_completed_task,
                                                           rel=1e-9)
    assert got["completion_rate"] >= 0.97 and got["defect_rate"] <= 0.03


def test_cli_writes_policy_every_command_loads(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "best.yaml"
    plot = tmp_path / "front.png"
    args = ["--prices", str(FIXTURES["prices"]), "--workload", str(FIXTURES["workload"])]
    res = runner.invoke(app, ["optimize", *args, "--policy", str(FIXTURES["policy"]),
                              "--candidates", "cheap,mid", "--candidates", "top",
                              "--min-completion", "0.97", "--max-review-minutes", "11",
                              "--out", str(out), "--plot", str(plot), "--name", "found"])
    assert res.exit_code == 0, res.output
    assert "Pareto frontier" in res.output and "Routes of the best policy" in res.output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = runner.invoke(app, ["compare", *args, "--policy", str(out), "-f", "json"])
    assert res.exit_code == 0, res.output
    s = next(x for x in json.loads(res.stdout)["strategies"] if x["name"] == "found")
    assert s["completion_rate"] >= 0.97 and s["review_minutes"] <= 11


def test_cli_json_and_markdown():
    args = ["optimize", "--prices", str(FIXTURES["prices"]), "--workload",
            str(FIXTURES["workload"]), "--policy", str(FIXTURES["policy"]), "--fixed-tiers"]
    res = runner.invoke(app, args + ["-f", "json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["version"] == 1 and d["feasible"] and d["evaluated"] == 486
    assert d["best"]["cost_per_completed_task"] == pytest.approx(
        min(p["cost_per_completed_task"] for p in d["frontier_all"]))
    res = runner.invoke(app, args + ["-f", "markdown"])
    assert res.exit_code == 0 and "| cost per completed |" in res.stdout


# --- pareto:SCORE -----------------------------------------------------------------------------

def test_pareto_picks_cheapest_model_above_score():
    table = load_prices(FIXTURES["prices"])
    wl = load_workload(FIXTURES["workload"])
    # scores: cheap 50, mid 70, top 80, noscore none (skipped)
    s = Strategy.pareto(60, table)
    assert s.name == "pareto:60" and s.models() == ["mid", "top"]
    L = compile_ladders(table, s, wl)
    assert {L.rates.ids[m] for m in L.model[L.valid]} == {"mid"}     # mid is cheaper than top
    # ... so pareto:60 is single:mid, number for number
    a = evaluate(L)
    b = evaluate(compile_ladders(table, Strategy.single("mid"), wl))
    assert a.cost_per_completed_task == pytest.approx(b.cost_per_completed_task, rel=1e-12)
    assert Strategy.pareto(0, table).models() == ["cheap", "mid", "top"]
    with pytest.raises(CostsimError, match="highest is 80"):
        Strategy.pareto(90, table)


def test_pareto_chooses_per_attempt(tmp_path):
    # A is cheaper per token but bills long context (above 1500 tokens) at 100x: attempt 1
    # (1000 + 100 tokens) goes to A, attempt 2 resends 1100 more -> 2100 > 1500 -> B.
    models = {"A": model(tier="budget", input=1.0, output=1.0, coding_score=70,
                         long_context={"above": 1500, "input": 100.0, "output": 100.0}),
              "B": model(tier="budget", input=2.0, output=2.0, coding_score=75),
              "C": model(tier="budget", input=0.1, output=0.1, coding_score=40)}
    w = workload([{"name": "t", "share": 1.0, "phases": [
        {"phase": "implement", "calls": 1, "input_tokens": 1000, "output_tokens": 100,
         "difficulty": 50}]}], max_attempts=2)
    table = load_prices(write(tmp_path, "p.yaml", prices(models)))
    wl = load_workload(write(tmp_path, "w.yaml", w))
    L = compile_ladders(table, Strategy.pareto(70, table), wl)
    assert [L.rates.ids[m] for m in L.model[0, 0]] == ["A", "B"]
    # attempt 1 on A: 1000 * 1 + 100 * 1 = 1100 / 1M; attempt 2 on B: (2100 + 100) * 2 / 1M
    assert L.cost[0, 0].tolist() == pytest.approx([0.0011, 0.0044])


def test_compare_with_pareto_option():
    args = ["compare", "--prices", str(FIXTURES["prices"]), "--workload",
            str(FIXTURES["workload"]), "--policy", str(FIXTURES["policy"]), "-f", "json",
            "--pareto", "60", "--pareto", "75"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    by = {s["name"]: s for s in json.loads(res.stdout)["strategies"]}
    assert by["pareto:60"]["kind"] == "pareto"
    assert by["pareto:60"]["cost_per_completed_task"] == pytest.approx(
        by["single:mid"]["cost_per_completed_task"], rel=1e-12)
    assert by["pareto:75"]["cost_per_completed_task"] == pytest.approx(
        by["single:top"]["cost_per_completed_task"], rel=1e-12)
    res = runner.invoke(app, args[:-4] + ["--pareto", "99"])
    assert res.exit_code == 2 and "coding_score >= 99" in res.output


# --- random small workloads: every point against the engine ----------------------------------

def random_inputs(tmp_path, seed):
    rng = np.random.default_rng(seed)
    models = {}
    for tier, n in (("budget", 2), ("midrange", 1), ("premium", 2)):
        for j in range(n):
            kw = {"coding_score": float(rng.uniform(40, 90)), "cache_read": 0.1}
            if rng.random() < 0.3:
                kw["long_context"] = {"above": int(rng.integers(3000, 20000)), "input": 9.0}
            models[f"{tier}{j}"] = model(tier=tier, input=float(rng.uniform(0.1, 5)),
                                         output=float(rng.uniform(0.5, 20)), **kw)
    names = ["search", "plan", "implement", "review", "docs"]

    def phases(k):
        chosen = sorted(rng.choice(len(names), k, replace=False))
        out = []
        for i in chosen:
            ph = {"phase": names[i], "calls": int(rng.integers(1, 4)),
                  "input_tokens": int(rng.integers(100, 3000)),
                  "output_tokens": int(rng.integers(10, 800)),
                  "difficulty": float(rng.uniform(20, 80))}
            if names[i] == "review" and rng.random() < 0.5:
                ph["success"] = {"budget": [0.6, 0.8], "premium": 0.95}
            out.append(ph)
        return out

    tts = [{"name": "a", "share": 0.6, "phases": phases(4)},
           {"name": "b", "share": 0.4, "phases": phases(3), "max_attempts": 2,
            "signals": {"cross_file": {"share": 0.5, "difficulty": 3}},
            # review as a defect phase too: its own defect and its catch come from one attempt
            "defects": {"phases": ["implement", "plan", "review"], "rate": {"premium": 0.01,
                                                                  "budget0": 0.2},
                        "catch_rate": {"premium": 0.9},
                        "review_minutes": {"base": 5, "per_defect": 60}}}]
    w = workload(tts, max_attempts=3, system_tokens=500, cache_hit_rate=0.5,
                 feedback_gain=0.4,
                 signals={"cross_file": {"share": 0.3, "difficulty": 6},
                          "security_sensitive": {"share": 0.2, "difficulty": 9}},
                 defects={"phases": ["implement"], "rate": {"budget": 0.1, "midrange": 0.05,
                                                           "premium": 0.02},
                          "catch_rate": {"budget": 0.3, "premium": 0.7},
                          "review_minutes": {"base": 10, "per_defect": 30}})
    pol = policy({"budget": "budget0", "midrange": "midrange0", "premium": "premium0"},
                 {"default": "midrange"},
                 signals={"security_sensitive": {"min_tier": "premium",
                                                 "phases": ["implement", "review"]},
                          "cross_file": {"raise": 1}},
                 handoff={"mode": "summary", "summary_tokens": 700, "summarizer": "budget"})
    return (write(tmp_path, "p.yaml", prices(models)), write(tmp_path, "pol.yaml", pol),
            write(tmp_path, "w.yaml", w))


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_random_workloads_every_point_matches_engine(tmp_path, seed):
    p, pol, w = random_inputs(tmp_path, seed)
    S = Search(p, pol, w, after_failures=(1, 2), handoffs=("summary", "full_history"))
    g = S.grid()
    rng = np.random.default_rng(seed)
    for flat in rng.choice(S.size, 60, replace=False):
        m = engine_metrics(S.table, S.wl, S.policy_doc(flat))
        assert g["spend"][flat] == pytest.approx(m.spend_per_task, rel=1e-12)
        assert g["completion"][flat] == pytest.approx(m.completion_rate, rel=1e-12)
        assert g["defect"][flat] == pytest.approx(m.defect_rate, rel=1e-12, abs=1e-15)
        assert g["review"][flat] == pytest.approx(m.review_minutes, rel=1e-12)


@pytest.mark.parametrize("a", [0, 1, 2, 3, 4])
def test_every_split_of_the_phases_gives_the_engines_numbers(tmp_path, monkeypatch, a):
    """The sum over cells is a product of a first run of phases (A) by the rest (B), with the
    defect phases and review either all in B (one more block of the product) or partly in A (one
    product per route combination of those): force every split, review a defect phase or not,
    and compare with the engine."""
    import costsim.search.tables as tables

    monkeypatch.setattr(tables, "_split", lambda width, X: min(a, len(width)))
    p, pol, w = random_inputs(tmp_path, 7)
    wd = yaml.safe_load(w.read_text())       # several defect phases besides review in type a
    wd["defects"]["phases"] = ["search", "plan", "implement", "docs"]
    w.write_text(yaml.safe_dump(wd, sort_keys=False))
    S = Search(p, pol, w, after_failures=(1, 3), handoffs=("summary", "full_history"))
    g = S.grid()
    rng = np.random.default_rng(a)
    for flat in rng.choice(S.size, 12, replace=False):
        m = engine_metrics(S.table, S.wl, S.policy_doc(flat))
        assert g["spend"][flat] == pytest.approx(m.spend_per_task, rel=1e-12)
        assert g["completion"][flat] == pytest.approx(m.completion_rate, rel=1e-12)
        assert g["defect"][flat] == pytest.approx(m.defect_rate, rel=1e-11, abs=1e-15)
        assert g["review"][flat] == pytest.approx(m.review_minutes, rel=1e-12)
