"""Correlated outcomes on real data: OpenHands cascades replayed against costsim's predictions.

    python benchmarks/fidelity_openhands.py [--data FILE] [--out docs/fidelity.md]
                                            [--max-pairs N] [--seed N]

The data (``--data``; default: ``openhands_instances_dev.csv`` of the shared data folder next to
the repository) hold one row per (benchmark, agent config, instance) with ``cost_usd`` and
``resolved``: every config ran the *same* instances. Any file of that shape works (held-out
benchmarks too).

For each benchmark:

1. The records become a runs log (one row per recorded run of an instance): ``run`` = ``model``
   = the config, ``task_id`` = the instance, ``task_type`` = the benchmark, one phase
   (``solve``), ``attempt`` 1, ``success`` = resolved, ``cost_usd`` = the recorded cost, token
   counts 0. Records without a cost or an outcome are left out, and so are configs whose
   recorded costs are all equal (no cost was recorded: 0.00 on every instance).
2. Configs are ordered by their mean recorded cost; every cheaper -> dearer pair (A, B) is a
   cascade policy: budget = A, premium = B, ``after_failures: 1``, ``retry_context: none``,
   2 attempts. On the instances both ran:
   - *replay* (ground truth): costsim's replay engine on that log (A's record; where A failed,
     B's record; cost = the sum). Checked against the same cascade computed directly from the
     records: they must agree to 1e-9 on every pair.
   - *independent coins*: what costsim's analytic engine predicts from each config's own rates
     (resolved share, mean cost) when outcomes are independent coins (no ``variation``).
3. Errors: predicted completion minus replayed completion, in points; predicted cost per
   completed task over the replayed one, minus 1. Medians (signed, and of the absolute value)
   over the pairs of each benchmark and over all pairs.

The report goes to its own section of ``--out`` (between the markers below): other sections of
the file are kept.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from costsim.engine.analytic import evaluate  # noqa: E402
from costsim.engine.compile import Strategy, compile_ladders  # noqa: E402
from costsim.engine.replay import prepare, replay_strategy  # noqa: E402
from costsim.logs.attempts import read_attempts  # noqa: E402
from costsim.models import Policy, PriceTable, Workload  # noqa: E402
from machine import describe  # noqa: E402

DATA_NAME = "openhands_instances_dev.csv"
START = "<!-- fidelity-openhands:start (written by benchmarks/fidelity_openhands.py) -->"
END = "<!-- fidelity-openhands:end -->"
PHASE = "solve"
TOKENS = 1_000_000      # nominal tokens per attempt of the coins workload: price = USD per run


def default_data() -> Path | None:
    for base in (ROOT.parent, ROOT.parent.parent, ROOT):
        p = base / "shared" / "data" / DATA_NAME
        if p.exists():
            return p
    return None


# --- data -> runs logs --------------------------------------------------------------------------

def load_records(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """The per-instance records with a cost and an outcome; configs without recorded costs out."""
    d = pd.read_csv(path)
    d = d.dropna(subset=["cost_usd", "resolved"]).copy()
    d["resolved"] = d["resolved"].astype(str).str.strip().str.lower().isin(["true", "1", "1.0"])
    spread = d.groupby(["benchmark", "config"])["cost_usd"].nunique()
    flat = spread[spread <= 1].index
    dropped = [f"{b}: {c}" for b, c in flat]
    keep = ~d.set_index(["benchmark", "config"]).index.isin(flat)
    return d[keep].reset_index(drop=True), dropped


def runs_log(records: pd.DataFrame) -> pd.DataFrame:
    """One benchmark's records as a runs log (one phase, one attempt per run)."""
    return pd.DataFrame({
        "run": records["config"], "task_id": records["instance"],
        "task_type": records["benchmark"], "phase": PHASE, "attempt": 1,
        "model": records["config"], "input_tokens": 0, "output_tokens": 0,
        "success": records["resolved"].map({True: "true", False: "false"}),
        "cost_usd": records["cost_usd"]})


def cascade_policy(cheap: str, dear: str, retry_context: str = "none") -> Policy:
    return Policy.model_validate({
        "version": 1, "name": "cascade", "tiers": {"budget": cheap, "premium": dear},
        "routes": {"default": "budget"},
        "escalation": {"after_failures": 1, "retry_context": retry_context}})


# --- predictions ----------------------------------------------------------------------------

def coins_prediction(cheap: str, dear: str, pa: float, pb: float, ca: float, cb: float,
                     variation: dict | None = None):
    """costsim's analytic engine with independent outcomes: one phase of TOKENS input tokens,
    each config priced so that an attempt costs its mean recorded cost, succeeding at its own
    resolved share. ``variation``: the same with tasks that differ (the workload's
    ``variation``: difficulty, tokens, tokens_follow_difficulty) -- what ``calibrate`` writes for
    a one-phase cost-only log, so the decomposition's oracles use the engine exactly as
    calibrate + compare do."""
    # The second attempt must cost what the dearer config's run cost: no resent context. With
    # every resent token read from a free cache, retry_context: full bills exactly that (the
    # engine on main does not take retry_context: none yet).
    table = PriceTable.model_validate({
        "version": 1, "as_of": "2026-06-30", "models": {
            cheap: {"provider": "x", "tier": "budget", "input": ca * 1e6 / TOKENS, "output": 0.0,
                    "cache_read": 0.0},
            dear: {"provider": "x", "tier": "premium", "input": cb * 1e6 / TOKENS,
                   "output": 0.0, "cache_read": 0.0}}})
    wl = Workload.model_validate({
        "version": 1, "name": "coins", "max_attempts": 2, "cache_hit_rate": 1.0,
        "task_types": [{"name": "t", "share": 1.0, "phases": [{
            "phase": PHASE, "calls": 1, "input_tokens": TOKENS, "output_tokens": 0,
            "success": {cheap: pa, dear: pb}}]}]}
        | ({"variation": variation} if variation else {}))
    pol = cascade_policy(cheap, dear, retry_context="full")
    m = evaluate(compile_ladders(table, Strategy.routed(pol), wl))
    return m.completion_rate, m.cost_per_completed_task


def base_workload(path: Path) -> Path:
    """The --workload calibrate takes what a benchmark log cannot show from: the bundled
    medium-team (its measured ``variation`` included) with ``max_attempts: 2``, the cascade's
    two attempts (one-shot benchmark runs show no ceiling)."""
    import yaml

    data = yaml.safe_load((ROOT / "workloads" / "medium-team.yaml").read_text())
    data["max_attempts"] = 2
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def cli(args: list[str]) -> str:
    """Run the costsim command line in this process (the same code as the `costsim` script),
    return its standard output; fail loudly on a non-zero exit."""
    from typer.testing import CliRunner

    from costsim.cli import app

    res = CliRunner().invoke(app, args)
    if res.exit_code != 0:
        raise RuntimeError(f"costsim {' '.join(args)}: exit {res.exit_code}: {res.output}"
                           f"{res.exception!r}")
    return res.stdout


VARIATION_KEYS = ("difficulty", "tokens", "tokens_follow_difficulty")


def bundled_variation() -> dict:
    """The bundled medium-team's ``variation`` (what an unpaired log falls back on)."""
    import yaml

    v = yaml.safe_load((ROOT / "workloads" / "medium-team.yaml").read_text())["variation"]
    return {k: float(v[k]) for k in VARIATION_KEYS}


def log_rates(log: pd.DataFrame, config: str) -> tuple[float, float]:
    """A config's resolved share and mean cost in a runs log (what calibrate fits for a
    one-attempt cost-only log)."""
    g = log[log["model"] == config]
    return float((g["success"] == "true").mean()), float(g["cost_usd"].mean())


def calibrated_prediction(log: pd.DataFrame, cheap: str, dear: str, tmp: Path, base: Path):
    """`costsim calibrate LOG --workload BASE --write-workload W --write-prices P`, then
    `costsim compare --prices P --workload W --policy CASCADE`: the cascade's completion and
    cost per completed task as costsim predicts them from the log, and the fitted variation."""
    import json

    import yaml

    lp, wp, pp, cp = (tmp / "log.csv", tmp / "fitted.yaml", tmp / "prices.yaml",
                      tmp / "cascade.yaml")
    log.to_csv(lp, index=False)
    cli(["calibrate", str(lp), "--workload", str(base), "--write-workload", str(wp),
         "--write-prices", str(pp), "--format", "json", "--out", str(tmp / "cal.json")])
    cp.write_text(yaml.safe_dump(cascade_policy(cheap, dear).model_dump(
        exclude_none=True, by_alias=True)))
    out = cli(["compare", "--prices", str(pp), "--workload", str(wp), "--policy", str(cp),
               "--format", "json"])
    got = {s["name"]: s for s in json.loads(out)["strategies"]}["cascade"]
    var = (yaml.safe_load(wp.read_text()).get("variation") or {})
    return (got["completion_rate"], got["cost_per_completed_task"],
            {k: float(var.get(k, 0.0)) for k in VARIATION_KEYS})


def paired_log(records: pd.DataFrame, cheap: str, dear: str, both) -> pd.DataFrame:
    """Both configs ran every instance."""
    sel = records[records["config"].isin([cheap, dear]) & records["instance"].isin(both)]
    return runs_log(sel)


def unpaired_log(records: pd.DataFrame, cheap: str, dear: str, both,
                 rng: np.random.Generator) -> pd.DataFrame:
    """Each config ran a different half of the instances (drawn with ``rng``)."""
    inst = np.array(sorted(both))
    rng.shuffle(inst)
    half = len(inst) // 2
    a, b = set(inst[:half]), set(inst[half:])
    sel = records[((records["config"] == cheap) & records["instance"].isin(a))
                  | ((records["config"] == dear) & records["instance"].isin(b))]
    return runs_log(sel)


# The decomposition of the unpaired error: costsim's engine on the cascade with each input
# either as the unpaired log gives it or as the full paired records do. "full": each config's
# resolved share and mean cost over all the instances (the replay's); "half": over the half it
# ran in the unpaired log. Variation: "own" = fitted from the paired log (s, t, r),
# "bundled s" = the bundled difficulty spread, "unpaired" = what calibrate fits from the
# unpaired log (the bundled s, t and r from the half-logs' costs and outcomes).
ORACLES = {
    "full_own": ("full", "own"),                 # the model's own error (== paired, checked)
    "full_bundled_s": ("full", "bundled s"),     # + (a) the bundled difficulty spread
    "full_unpaired": ("full", "unpaired"),       # + (c) t, r as the unpaired log fits them
    "half_own": ("half", "own"),                 # (b) half-log sampling noise alone
    "half_unpaired": ("half", "unpaired"),       # everything: == the unpaired prediction
}


def decomposition(a: str, b: str, full: tuple, half: tuple, own: dict, unpaired: dict,
                  bundled: dict) -> dict:
    """Each oracle's (completion, cost per completed task), from the engine."""
    var = {"own": own, "unpaired": unpaired,
           "bundled s": dict(own, difficulty=bundled["difficulty"])}
    rates = {"full": full, "half": half}
    return {k: coins_prediction(a, b, *rates[r], variation=var[v])
            for k, (r, v) in ORACLES.items()}


def mean_estimators(log: pd.DataFrame, configs, costs) -> tuple[tuple, tuple]:
    """Each config's mean cost estimated from its half of ``log``, relative to its mean over
    all the instances (``costs``): the sample mean and the lognormal maximum-likelihood mean
    (log cost's mean and variance over the priced instances; the unpriced ones as zeros,
    weighted by their share)."""
    sample, lognormal = [], []
    for cfg, full in zip(configs, costs):
        x = log.loc[log["model"] == cfg, "cost_usd"].to_numpy(float)
        full = float(np.mean(full))
        pos = x[x > 0]
        sample.append(x.mean() / full - 1)
        if pos.size >= 2:
            ly = np.log(pos)
            lognormal.append(np.exp(ly.mean() + ly.var() / 2) * pos.size / x.size / full - 1)
        else:
            lognormal.append(math.nan)
    return tuple(sample), tuple(lognormal)


def _own_rng(*key: str) -> np.random.Generator:
    """A generator of its own for a pair (the shadow log's draw leaves the main generator, and
    so the other pairs' unpaired halves, as they were)."""
    import zlib

    return np.random.default_rng(zlib.crc32("|".join(key).encode()))


PROFILE_S = (1.0, 2.0, 3.24, 5.0, 8.0)     # difficulty spreads the likelihood is profiled at


def spread_profile(log: pd.DataFrame, path: Path) -> float:
    """How much the log's own likelihood (success patterns and sizes jointly, with each
    config's rates and the size fit re-fitted at every spread) varies over PROFILE_S: the
    largest minus the smallest log-likelihood. A log that shows the spread gives tens of units;
    one that cannot, a fraction of one."""
    from costsim.calibrate.variation import (fit_sizes, fit_success, patterns,
                                             tables_from_records)

    log.to_csv(path, index=False)
    outcomes, sizes = tables_from_records(read_attempts(path).frame)
    P = patterns(outcomes)
    ll = [fit_sizes(sizes, P, fit_success(P, s_fixed=s)).loglik for s in PROFILE_S]
    return float(max(ll) - min(ll))


SHADOW = 0.2       # share of the instances the shadow log runs on both configs


def shadow_log(records: pd.DataFrame, cheap: str, dear: str, both,
               rng: np.random.Generator, share: float = SHADOW) -> pd.DataFrame:
    """An unpaired log with a shadow sample: ``share`` of the instances (drawn with ``rng``) ran
    on both configs, the rest split in halves as in :func:`unpaired_log`."""
    inst = np.array(sorted(both))
    rng.shuffle(inst)
    k = int(round(share * len(inst)))
    rest = inst[k:]
    half = len(rest) // 2
    a = set(inst[:k]) | set(rest[:half])
    b = set(inst[:k]) | set(rest[half:])
    sel = records[((records["config"] == cheap) & records["instance"].isin(a))
                  | ((records["config"] == dear) & records["instance"].isin(b))]
    return runs_log(sel)


@dataclass
class PairResult:
    benchmark: str
    cheap: str
    dear: str
    instances: int
    completion: float
    cost_per_completed: float
    coins_completion: float
    coins_cost_per_completed: float
    paired_completion: float = math.nan
    paired_cost_per_completed: float = math.nan
    paired_s: float = math.nan
    unpaired_completion: float = math.nan
    unpaired_cost_per_completed: float = math.nan
    unpaired_s: float = math.nan
    # spread_profile of each log: how much its likelihood varies over the spread
    paired_profile: float = math.nan
    unpaired_profile: float = math.nan
    shadow_completion: float = math.nan
    shadow_cost_per_completed: float = math.nan
    shadow_s: float = math.nan
    # the fitted variation of each log
    paired_t: float = math.nan
    paired_r: float = math.nan
    unpaired_t: float = math.nan
    unpaired_r: float = math.nan
    # decomposition of the unpaired error: the engine with chosen inputs (see ORACLES)
    oracles: dict = None
    # a config's mean cost from its half against its mean over all the instances, relative
    # error: the sample mean (what calibrate uses) and the lognormal maximum-likelihood mean
    # exp(mean log + var log / 2); one entry per config of the pair
    mean_err_sample: tuple = ()
    mean_err_lognormal: tuple = ()


def run_benchmark(name: str, records: pd.DataFrame, tmp: Path, max_pairs: int | None,
                  rng: np.random.Generator, calibrated: bool = True) -> list[PairResult]:
    path = tmp / f"{name}.csv"
    runs_log(records).to_csv(path, index=False)
    log = prepare(read_attempts(path))
    K = np.full(len(log.type_names), 2)
    task_index = {t: i for i, t in enumerate(log.tasks)}
    cost = records.pivot(index="instance", columns="config", values="cost_usd")
    ok = records.pivot(index="instance", columns="config", values="resolved")
    order = cost.mean().sort_values(kind="stable")
    configs = list(order.index)
    pairs = [(a, b) for i, a in enumerate(configs) for b in configs[i + 1:]
             if order[a] < order[b]]
    if max_pairs and len(pairs) > max_pairs:
        pairs = [pairs[i] for i in sorted(rng.choice(len(pairs), max_pairs, replace=False))]
    out = []
    for a, b in pairs:
        both = cost[a].notna() & cost[b].notna()
        if both.sum() < 2:
            continue
        idx = np.array([task_index[t] for t in cost.index[both]])
        rep = replay_strategy(log, Strategy.routed(cascade_policy(a, b)), K)
        assert rep.covered[idx].all()
        done = rep.completed[idx]
        spend = rep.spend[idx]
        if not done.any():
            continue
        # the same cascade computed directly from the records: the replay must reproduce it
        ca, cb = cost.loc[both, a].to_numpy(), cost.loc[both, b].to_numpy()
        ra, rb = ok.loc[both, a].astype(bool).to_numpy(), ok.loc[both, b].astype(bool).to_numpy()
        direct = ca + np.where(ra, 0.0, cb)
        assert np.allclose(spend, direct, rtol=1e-9, atol=1e-12), (a, b)
        assert (done == (ra | rb)).all(), (a, b)
        comp = float(done.mean())
        cpct = float(spend.sum() / done.sum())
        cc, ck = coins_prediction(a, b, float(ra.mean()), float(rb.mean()), float(ca.mean()),
                                  float(cb.mean()))
        row = PairResult(name, a, b, int(both.sum()), comp, cpct, cc, ck)
        if calibrated:
            inst = set(cost.index[both])
            base = base_workload(tmp / "base.yaml")
            row.paired_completion, row.paired_cost_per_completed, pv = calibrated_prediction(
                paired_log(records, a, b, inst), a, b, tmp, base)
            ulog = unpaired_log(records, a, b, inst, rng)
            row.unpaired_completion, row.unpaired_cost_per_completed, uv = \
                calibrated_prediction(ulog, a, b, tmp, base)
            row.paired_s, row.paired_t, row.paired_r = (pv[k] for k in VARIATION_KEYS)
            row.unpaired_s, row.unpaired_t, row.unpaired_r = (uv[k] for k in VARIATION_KEYS)
            full = (float(ra.mean()), float(rb.mean()), float(ca.mean()), float(cb.mean()))
            (hpa, hca), (hpb, hcb) = log_rates(ulog, a), log_rates(ulog, b)
            half = (hpa, hpb, hca, hcb)
            row.oracles = decomposition(a, b, full, half, pv, uv, bundled_variation())
            # with the unpaired log's own inputs the engine is calibrate + compare (the fitted
            # file rounds rates to 1e-6 and prices to 1e-10)
            hc, hk = row.oracles["half_unpaired"]
            assert abs(hc - row.unpaired_completion) < 1e-5, (a, b)
            got = row.unpaired_cost_per_completed
            got = math.inf if got is None else float(got)
            assert (not math.isfinite(got) and not math.isfinite(hk)
                    or abs(hk / got - 1) < 1e-4), (a, b, hk, got)
            row.paired_profile = spread_profile(paired_log(records, a, b, inst),
                                                tmp / "profile.csv")
            row.unpaired_profile = spread_profile(ulog, tmp / "profile.csv")
            row.mean_err_sample, row.mean_err_lognormal = mean_estimators(ulog, (a, b),
                                                                          (ca, cb))
            row.shadow_completion, row.shadow_cost_per_completed, sv = calibrated_prediction(
                shadow_log(records, a, b, inst, _own_rng(name, a, b)), a, b, tmp, base)
            row.shadow_s = sv["difficulty"]
        out.append(row)
    return out


# --- report ---------------------------------------------------------------------------------

def summarize(rows: list[PairResult]) -> pd.DataFrame:
    r = pd.DataFrame([vars(x) for x in rows])
    r["coins_points"] = 100 * (r["coins_completion"] - r["completion"])
    r["coins_cost"] = 100 * (r["coins_cost_per_completed"] / r["cost_per_completed"] - 1)
    for k in ("paired", "unpaired", "shadow"):
        r[f"{k}_points"] = 100 * (r[f"{k}_completion"] - r["completion"])
        r[f"{k}_cost"] = _cost_error(r[f"{k}_cost_per_completed"], r["cost_per_completed"])
    if "oracles" in r and r["oracles"].notna().any():
        for k in ORACLES:
            comp = np.array([o[k][0] if o else np.nan for o in r["oracles"]])
            cpct = np.array([o[k][1] if o else np.nan for o in r["oracles"]])
            r[f"{k}_points"] = 100 * (comp - r["completion"])
            r[f"{k}_cost"] = _cost_error(cpct, r["cost_per_completed"])
    return r


def _cost_error(predicted, replayed) -> np.ndarray:
    """Predicted cost per completed task over the replayed one, minus 1, in percent. A
    prediction of no completed task at all (a half-log where neither config resolved anything:
    cost per completed task undefined) is a miss beyond any target, +inf, not left out of the
    medians."""
    pred = np.asarray(pd.to_numeric(pd.Series(predicted), errors="coerce"), float)
    pred = np.where(np.isfinite(pred), pred, np.inf)
    with np.errstate(invalid="ignore"):
        return 100 * (pred / np.asarray(replayed, float) - 1)


TARGETS = {"paired": (1.5, 5.0), "unpaired": (3.0, 10.0)}
BIG = 100          # "large" benchmarks: pairs with at least this many instances

# the decomposition table's columns: (label, key of summarize's *_points / *_cost columns)
DECOMPOSITION = [
    ("model (paired log)", "paired"),
    ("(a) bundled spread, full-set rates", "full_bundled_s"),
    ("(a)+(c) and the unpaired size fit", "full_unpaired"),
    ("(b) half-log rates, own spread", "half_own"),
    ("all: unpaired log", "unpaired"),
]


def _cell(g: pd.DataFrame, k: str) -> str:
    return (f"{g[f'{k}_points'].abs().median():.2f} / "
            f"{g[f'{k}_cost'].abs().median():.1f}%")


def reading_lines(r: pd.DataFrame) -> list[str]:
    """What the calibrate rows mean, with the numbers of this run."""
    u = _cal_stats(r, "unpaired")
    text = ("Reading it. On a paired log the cascade's completion is reproduced to the "
            "hundredth of a point: with both configs' outcomes on every instance, the fitted "
            "difficulty spread carries exactly the correlation the replay sees. The cost error is "
            "the size model's: one size per task shared by both configs (`tokens`, "
            "`tokens_follow_difficulty`), where real runs of one instance differ in cost more "
            "than that. On an unpaired log nothing is biased overall (signed medians "
            f"{u['pts']:+.2f} points, {u['cost']:+.1f}%); the miss is the two parts taken apart "
            "above, the difficulty spread that one outcome per instance cannot show and the "
            "half-logs' sampling noise, and neither is an estimator's fault that `calibrate` "
            "could fix: the spread is not in such a log, and no estimator of one config's rates "
            "sees the instances the other config ran. What fixes it is data: more instances per "
            "config")
    big = r[r["instances"] >= BIG]
    if len(big):
        text += f" (pairs with {BIG}+ instances: {_cell(big, 'unpaired')})"
    if "shadow_points" in r:
        sh = _cal_stats(r, "shadow")
        capped = int((r["shadow_s"] >= 9.99).sum())
        text += (f", or a shadow sample, some instances run on both configs, from which "
                 f"`calibrate` fits the spread itself: with {SHADOW:.0%} of the instances on "
                 f"both (each config then ran {(1 + SHADOW) / 2:.0%} of them), "
                 f"{sh['pts_abs']:.2f} points and {sh['cost_abs']:.1f}%. It needs a few dozen "
                 f"shared instances: commit0's 1-3 are too few to fit anything (the spread "
                 f"stays the bundled one), and where the shared instances show only one kind "
                 f"of disagreement (the config that resolves fewer of them never resolves one "
                 f"the other fails) the likelihood keeps rising with the spread up to its cap "
                 f"of 10 ({capped} of {len(r)} pairs here).")
    else:
        text += ", or a log where some instances ran on both configs (a shadow sample)."
    return ["", text]


def decomposition_lines(r: pd.DataFrame) -> list[str]:
    """The unpaired error taken apart (ORACLES), per benchmark; the size fit of each log; the
    mean-cost estimators on the half-logs."""
    big = r[r["instances"] >= BIG]
    groups = ([(b, g) for b, g in r.groupby("benchmark", sort=True)]
              + [(f"pairs with {BIG}+ instances", big), ("all pairs", r)])
    lines = ["", "### Why the unpaired log misses: its error taken apart", "",
             "The same pairs, predicted by costsim's analytic engine from chosen inputs (the "
             "script checks, on every pair, that with the unpaired log's own inputs the engine "
             "gives calibrate + compare's prediction to 1e-5). Inputs: each config's resolved "
             "share and mean cost either over **all** the instances (what the replay used: "
             "full-set rates) or over the **half** it ran in the unpaired log; the difficulty "
             "spread either the pair's **own** (fitted from its paired log) or the **bundled** "
             "3.24; the size spread t and its correlation with difficulty r either fitted from "
             "the paired log or from the unpaired one. Each cell: median |error| over the pairs, "
             "completion points / cost per completed task.", "",
             "| benchmark | pairs | " + " | ".join(lbl for lbl, _ in DECOMPOSITION) + " |",
             "|---|---:|" + "---:|" * len(DECOMPOSITION)]
    for name, g in groups:
        if len(g):
            lines.append(f"| {name} | {len(g)} | "
                         + " | ".join(_cell(g, k) for _, k in DECOMPOSITION) + " |")
    a = _cal_stats(r, "full_unpaired")
    b = _cal_stats(r, "half_own")
    u = _cal_stats(r, "unpaired")
    aa = _cal_stats(r, "full_bundled_s")
    ms = np.abs(np.concatenate([np.asarray(x, float) for x in r["mean_err_sample"]]))
    ml = np.abs(np.concatenate([np.asarray(x, float) for x in r["mean_err_lognormal"]]))
    ok = np.isfinite(ml)
    dt = (r["unpaired_t"] - r["paired_t"]).abs().median()
    dr = (r["unpaired_r"] - r["paired_r"]).abs().median()
    rho_r = r[["unpaired_r", "paired_r"]].corr(method="spearman").iloc[0, 1]
    lines += ["",
              f"- **(a) the difficulty spread.** With the replay's own rates and means, the "
              f"bundled spread alone misses by {aa['pts_abs']:.2f} points and "
              f"{aa['cost_abs']:.1f}% (the model's own error on a paired log: "
              f"{_cal_stats(r, 'paired')['pts_abs']:.2f} points, "
              f"{_cal_stats(r, 'paired')['cost_abs']:.1f}%). A log with one outcome per "
              f"instance cannot show the spread: what success rate a config has on hard "
              f"instances shows only where an instance has a second outcome. The pairs' own "
              f"spreads (median {r['paired_s'].median():.2f}, quartiles "
              f"{r['paired_s'].quantile(.25):.2f}-{r['paired_s'].quantile(.75):.2f}) scatter "
              f"around the bundled 3.24; signed, the bundled one puts completion "
              f"{aa['pts']:+.2f} points and cost {aa['cost']:+.1f}% off (median). Nor can "
              f"costs stand in for a second outcome: an unpaired log's joint likelihood of "
              f"costs and outcomes (rates and size fit re-fitted at each spread) varies by "
              f"{r['unpaired_profile'].median():.2f} log-likelihood units (median; at most "
              f"{r['unpaired_profile'].max():.1f}) over spreads "
              f"{PROFILE_S[0]:g}-{PROFILE_S[-1]:g}, the paired log's by "
              f"{r['paired_profile'].median():.1f}. How a config's cost differs between "
              f"the instances it resolved and those it did not shows about s*r, so such a log "
              f"only rules out a spread too small to carry that link; above it, any spread "
              f"fits equally well, r taking up the difference "
              f"(`tests/test_variation_fit.py` shows both on simulated logs of known truth).",
              f"- **(c) the size fit.** On an unpaired log `calibrate` already fits t and r by "
              f"maximum likelihood, jointly over each instance's cost and outcome with the "
              f"spread held: how a config's cost differs between the instances it resolved and "
              f"those it did not shows r. Median |unpaired - paired| over the pairs: t "
              f"{dt:.2f}, r {dr:.2f} (Spearman {rho_r:.2f} between the two fits of r). It moves "
              f"the cost error from {aa['cost_abs']:.1f}% to {a['cost_abs']:.1f}% and leaves "
              f"completion alone (sizes do not change outcomes).",
              f"- **(b) sampling noise of the half-logs.** With each pair's own spread and "
              f"size fit, the half-logs' rates and means alone miss by {b['pts_abs']:.2f} "
              f"points and {b['cost_abs']:.1f}%: each config's resolved share and mean cost come "
              f"from half the instances, while the replay runs on all of them. No estimator "
              f"of a config's rates removes it: the other half's outcomes belong to the other "
              f"config. For the mean cost, the lognormal maximum-likelihood mean "
              f"(exp(mean + variance / 2) of log cost) would be the efficient estimator if "
              f"costs were lognormal; on these half-logs it is off the full-set mean by "
              f"{100 * np.median(ml[ok]):.1f}% (median over {ok.sum()} config halves) against "
              f"{100 * np.median(ms[ok]):.1f}% for the sample mean that `calibrate` uses"
              + (": real costs are not lognormal enough for it to pay, so the sample mean "
                 "stays." if np.median(ml[ok]) >= np.median(ms[ok]) else "."),
              f"- **(d) how the unpaired log is built.** Each pair draws its own random split "
              f"(seeded) of the instances both configs ran: the cheaper config gets "
              f"floor(n/2) of them, the dearer the rest, so together the halves cover exactly "
              f"the replay's instances and neither config is favoured. Pairs where neither "
              f"config resolved anything in its half ({int((~np.isfinite(r['unpaired_cost'])).sum())} "
              f"here) predict no completed task; they count as misses (infinite cost error), "
              f"not left out.",
              "",
              f"So the unpaired error is the spread's with the size fit ((a)+(c): "
              f"{a['pts_abs']:.2f} points, "
              f"{a['cost_abs']:.1f}%) and the half-logs' noise ({b['pts_abs']:.2f} points, "
              f"{b['cost_abs']:.1f}%) together: added in quadrature they make "
              f"{math.hypot(a['pts_abs'], b['pts_abs']):.2f} points and "
              f"{math.hypot(a['cost_abs'], b['cost_abs']):.1f}%, against "
              f"{u['pts_abs']:.2f} and {u['cost_abs']:.1f}% measured. The noise alone takes "
              f"{b['cost_abs'] / TARGETS['unpaired'][1]:.0%} of the 10% cost target."]
    if len(big):
        lines[-1] += (f" On the pairs with {BIG}+ instances both parts shrink: noise "
                      f"{_cell(big, 'half_own')}, in all {_cell(big, 'unpaired')}.")
    return lines



def _cal_stats(g: pd.DataFrame, k: str) -> dict:
    return {"pts": g[f"{k}_points"].median(), "pts_abs": g[f"{k}_points"].abs().median(),
            "cost": g[f"{k}_cost"].median(), "cost_abs": g[f"{k}_cost"].abs().median(),
            "s": g[f"{k}_s"].median() if f"{k}_s" in g else math.nan}


def _stats(g: pd.DataFrame) -> dict:
    return {"pairs": len(g), "instances": int(g["instances"].median()),
            "cmp": g["coins_points"].median(), "cmp_abs": g["coins_points"].abs().median(),
            "cost": g["coins_cost"].median(), "cost_abs": g["coins_cost"].abs().median(),
            "replay_comp": 100 * g["completion"].median()}


def report(r: pd.DataFrame, dropped: list[str], data: Path, seconds: float,
           max_pairs: int | None, machine: str | None = None) -> str:
    lines = [START, "", "## Correlated outcomes: OpenHands cascades", "",
             "What a cheap-then-dear cascade really did on public benchmark data, against what "
             "costsim predicts. The data: per-instance cost and outcome of ~40 agent configs "
             f"that each ran the same instances of four benchmarks (`{data.name}`, from the "
             "OpenHands index). For every cheaper -> dearer pair of configs on a benchmark (by "
             "mean recorded cost), the cascade `budget` = cheaper, `premium` = dearer, "
             "`after_failures: 1`, `retry_context: none`, 2 attempts:", "",
             "- **replay** (ground truth): `costsim compare --engine replay` on a runs log of the "
             "records (one phase, one attempt per run, `run` = `model` = the config): the "
             "cheaper config's recorded outcome and cost, and where it failed the dearer one's. "
             "The script checks it against the same cascade computed directly from the records "
             "on every pair (equal to 1e-9).",
             "- **independent coins**: costsim's analytic engine with each config's own resolved "
             "share and mean cost and no task variation, i.e. treating the two runs as "
             "independent coins.", "",
             "Error = prediction minus replay: completion in points, cost per completed task in "
             "percent. Medians over the pairs (signed: the bias; |abs|: the typical miss).", "",
             "| benchmark | pairs | instances | replayed completion (median) | coins: completion "
             "error, points | abs | coins: cost per completed error | abs |",
             "|---|---|---|---|---|---|---|---|"]
    groups = [(b, _stats(g)) for b, g in r.groupby("benchmark", sort=True)]
    groups.append(("all pairs", _stats(r)))
    for name, s in groups:
        lines.append(f"| {name} | {s['pairs']:,} | {s['instances']} | {s['replay_comp']:.1f}% | "
                     f"{s['cmp']:+.1f} | {s['cmp_abs']:.1f} | {s['cost']:+.1f}% | "
                     f"{s['cost_abs']:.1f}% |")
    if "paired_points" in r and r["paired_points"].notna().any():
        lines += ["", "### calibrate + compare against the replay", "",
                  "What a team gets from its own log: `costsim calibrate LOG --workload BASE "
                  "--write-workload W --write-prices P`, then `costsim compare --prices P "
                  "--workload W --policy CASCADE` (the command line, run in-process). BASE is "
                  "the bundled medium-team with `max_attempts: 2` (what the one-shot runs cannot "
                  "show, the bundled `variation` included, comes from it). Three logs per pair, "
                  "on the instances both configs ran: **paired** (both configs ran every "
                  "instance: the difficulty spread is fitted from how their outcomes hang "
                  "together), **unpaired** (each ran a different half, drawn with the seed: "
                  "one outcome per instance, so the spread is the bundled 3.24) and "
                  f"**unpaired + {SHADOW:.0%} shadow** (a random {SHADOW:.0%} of the instances "
                  "ran on both configs, the rest is split in halves: what a team gets by "
                  "running a sample of its tasks on both models; `calibrate` fits the spread "
                  "when at least 10 instances show both outcomes). Targets, "
                  "median over pairs of the absolute error: paired within 1.5 points of "
                  "completion and 5% of cost per completed task, unpaired within 3 points and "
                  "10%.", "",
                  "| benchmark | log | completion error, points (median) | abs | cost per "
                  "completed error | abs | fitted difficulty (median) |",
                  "|---|---|---|---|---|---|---|"]
        groups = [(b, g) for b, g in r.groupby("benchmark", sort=True)] + [("all pairs", r)]
        for name, g in groups:
            for k in [k for k in ("paired", "unpaired", "shadow") if f"{k}_points" in g]:
                s = _cal_stats(g, k)
                label = f"unpaired + {SHADOW:.0%} shadow" if k == "shadow" else k
                lines.append(f"| {name} | {label} | {s['pts']:+.2f} | {s['pts_abs']:.2f} | "
                             f"{s['cost']:+.1f}% | {s['cost_abs']:.1f}% | {s['s']:.2f} |")
        lines.append("")
        for k, (tp, tc) in TARGETS.items():
            s = _cal_stats(r, k)
            ok = s["pts_abs"] <= tp and s["cost_abs"] <= tc
            lines.append(f"- **{k}**: median |error| {s['pts_abs']:.2f} points (target {tp}) "
                         f"and {s['cost_abs']:.1f}% (target {tc:g}%): "
                         f"{'met' if ok else 'MISSED'}.")
        if "shadow_points" in r:
            s = _cal_stats(r, "shadow")
            tp, tc = TARGETS["unpaired"]
            ok = s["pts_abs"] <= tp and s["cost_abs"] <= tc
            lines.append(f"- unpaired + {SHADOW:.0%} shadow, against the unpaired targets: "
                         f"{s['pts_abs']:.2f} points and {s['cost_abs']:.1f}%: "
                         f"{'met' if ok else 'missed'}.")
        c = _stats(r)
        lines.append(f"- independent coins on the same pairs: {c['cmp_abs']:.1f} points and "
                     f"{c['cost_abs']:.1f}%.")
        if "half_own_points" in r:
            lines += decomposition_lines(r)
        lines += reading_lines(r)
    lines += ["", "Independent coins overstate the cascade's completion and understate its cost "
              "per completed task on every benchmark: the instances the cheaper config fails "
              "are the hard ones, on which the dearer config also fails more often and spends "
              "more.", ""]
    if dropped:
        lines += [f"Left out (no cost recorded: the same cost on every instance): "
                  f"{', '.join(f'`{d}`' for d in dropped)}.", ""]
    lines += ["The same check on other data of this shape (one row per benchmark, config and "
              "instance with `cost_usd` and `resolved`, every config on the same instances): "
              "`python benchmarks/fidelity_openhands.py --data FILE --out FILE.md`. Its runs "
              "logs are ordinary costsim runs logs; `costsim compare --engine replay --log` "
              "replays any cascade on them.", ""]
    lines += [f"Produced by `python benchmarks/fidelity_openhands.py"
              f"{f' --max-pairs {max_pairs}' if max_pairs else ''}` in {seconds:.0f} s "
              f"({machine or describe()}).", "", END]
    return "\n".join(lines) + "\n"


def write_section(out: Path, section: str) -> None:
    text = out.read_text() if out.exists() else "# Fidelity\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        tail = rest.split(END, 1)[1]
        text = head + section.rstrip("\n") + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(out)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=default_data())
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "fidelity.md")
    ap.add_argument("--max-pairs", type=int, default=None,
                    help="at most this many pairs per benchmark (drawn at random)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rows", type=Path, default=None,
                    help="also write the per-pair results (a pandas pickle, one row per "
                         "pair); --report-from rebuilds the report from it")
    ap.add_argument("--report-from", type=Path, default=None,
                    help="write the report from the per-pair results of an earlier --rows "
                         "instead of running the pairs")
    ap.add_argument("--no-calibrate", action="store_true",
                    help="skip the calibrate + compare columns (replay and coins only)")
    args = ap.parse_args(argv)
    if args.data is None or not args.data.exists():
        sys.exit(f"no data: pass --data FILE ({DATA_NAME} of the shared data folder)")
    t0 = time.perf_counter()
    if args.report_from:
        import pickle

        saved = pickle.loads(args.report_from.read_bytes())
        section = report(saved["rows"], saved["dropped"], args.data, saved["seconds"],
                         saved["max_pairs"], machine=saved["machine"])
        write_section(args.out, section)
        print(section)
        return
    machine = describe()            # its load average is the one at the start
    records, dropped = load_records(args.data)
    rng = np.random.default_rng(args.seed)
    rows: list[PairResult] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, g in records.groupby("benchmark", sort=True):
            rows += run_benchmark(name, g, Path(tmp), args.max_pairs, rng,
                                  calibrated=not args.no_calibrate)
            print(f"{name}: {sum(x.benchmark == name for x in rows)} pairs", file=sys.stderr)
    r = summarize(rows)
    seconds = time.perf_counter() - t0
    if args.rows:
        import pickle

        args.rows.write_bytes(pickle.dumps({"rows": r, "dropped": dropped, "seconds": seconds,
                                            "max_pairs": args.max_pairs, "machine": machine}))
    section = report(r, dropped, args.data, seconds, args.max_pairs, machine=machine)
    write_section(args.out, section)
    print(section)


if __name__ == "__main__":
    main()
