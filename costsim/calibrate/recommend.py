"""Recommendations: raise or lower a route, each projected by the engine on the fitted workload.

Candidates come from evidence in the log:

- **raise**: the model that starts a (task type, phase) has at least ``min_samples`` first
  attempts there and succeeds at the first attempt less often than ``raise_below``;
- **compare** (A/B arms, a policy change mid-log, shadow runs): another model started the same
  (task type, phase) on comparable tasks (tasks without signals) at least ``min_samples`` times.
  A cheaper one whose first-try success is at most ``lower_max_gap`` lower (95% intervals
  overlapping) is a *lower* candidate; a dearer one that does clearly better is a *raise*
  candidate;
- **review**: reviews by the route model led to reviewer changes in fewer than
  ``review_changes_below`` of at least ``min_samples`` completed tasks: a *lower* candidate.

Each candidate is projected by the engine (the policy with ``routes.PHASE`` moved, applied to that
task type only, see :func:`.check.variant`) and kept only if it pays: cheaper per completed task
without losing more than ``COMPLETION_TOLERANCE`` of completion or adding more than
``DEFECT_TOLERANCE`` of defect rate; or dearer but buying at least ``COMPLETION_GAIN`` of
completion (without adding a point of defect rate), or cutting the defect rate by at least
``DEFECT_GAIN`` and ``DEFECT_GAIN_REL`` of itself (without losing completion). The trade is said
in the evidence ("+8.0% cost for +2.1 points completion").
"""

from __future__ import annotations

import math

from ..errors import CostsimError
from ..models import TIER_CLASSES, PriceTable
from .check import compile_for, delta, metrics_by_task_type, variant
from .measure import canon_signals, wilson

COMPLETION_TOLERANCE = 0.005      # a cheaper change may lose at most 0.5 points of completion
DEFECT_TOLERANCE = 0.002          # ... and add at most 0.2 points of defect rate
COMPLETION_GAIN = 0.01            # a dearer change must buy 1 point of completion
DEFECT_GAIN = 0.005               # ... or cut the defect rate by 0.5 points
DEFECT_GAIN_REL = 0.2             #     and by a fifth of itself


def _class_rank(table: PriceTable, model: str) -> int | None:
    mp = table.models.get(model)
    return TIER_CLASSES.index(mp.tier) if mp is not None else None


def _first_tries(ms) -> dict:
    """(tt, phase) -> model -> (first attempts, first-try successes) on comparable tasks (tasks
    without signals), all runs pooled."""
    a = ms.attempts
    a = a[a["attempt"] == 1]
    out: dict = {}
    for tt, ph, m, s, n, k in zip(a["task_type"], a["phase"], a["model"], a["signals"], a["n"],
                                  a["k"]):
        if canon_signals(s) != "":
            continue
        d = out.setdefault((str(tt), str(ph)), {})
        x = d.get(str(m), (0, 0))
        d[str(m)] = (x[0] + int(n), x[1] + int(k))
    return out


def trade_words(d: dict) -> str:
    cost = d["delta_pct"]
    dc = 100 * (d["completion_rate_after"] - d["completion_rate_before"])
    dd = 100 * (d["defect_rate_after"] - d["defect_rate_before"])
    parts = [f"{cost:+.1%} cost per completed task" if cost is not None else "cost n/a"]
    gains = []
    if abs(dc) >= 0.05:
        gains.append(f"{dc:+.1f} points completion")
    if abs(dd) >= 0.05:
        gains.append(f"{dd:+.1f} points defect rate")
    if cost is not None and cost > 0 and gains:
        return f"{parts[0]} for " + " and ".join(gains)
    return ", ".join(parts + gains) if gains else f"{parts[0]}, quality unchanged"


def pays(d: dict) -> tuple[bool, str]:
    """Whether a projected change is worth recommending, and why not when it is not."""
    cost = d["delta"]
    dc = d["completion_rate_after"] - d["completion_rate_before"]
    dd = d["defect_rate_after"] - d["defect_rate_before"]
    if cost is None:
        return (dc >= COMPLETION_TOLERANCE), "cost not finite"
    if cost < 0:
        if dc < -COMPLETION_TOLERANCE:
            return False, "cheaper but loses completion"
        if dd > DEFECT_TOLERANCE:
            return False, "cheaper but ships more defects"
        return True, ""
    before = d["defect_rate_before"]
    buys_defects = dd <= -DEFECT_GAIN and -dd >= DEFECT_GAIN_REL * before
    if dc >= COMPLETION_GAIN:
        if dd > 5 * DEFECT_TOLERANCE:
            return False, "dearer, and the completion it buys ships a point more defects"
        return True, ""
    if buys_defects:
        if dc < -COMPLETION_TOLERANCE:
            return False, "dearer, and the defects it saves cost completion"
        return True, ""
    return False, ("dearer per completed task without buying a point of completion or a fifth "
                   "of the defects")


def recommend(table: PriceTable, wl, policy, ms, settings: dict) -> tuple[list, list]:
    """Recommendations against ``policy`` (a validated Policy: the log's own or the inferred
    one). Returns (recommendations, notes)."""
    from ..engine.compile import Strategy, start_tier

    notes: list[str] = []
    if policy is None:
        return [], ["no recommendations: the log's strategy is a single model (no tiers to "
                    "move between)"]
    tier_names = list(policy.tiers)
    tier_models = list(policy.tiers.values())
    last = len(tier_names) - 1
    try:
        L0 = compile_for(table, Strategy.routed(policy), wl)
        before = metrics_by_task_type(L0)
    except CostsimError as exc:
        return [], [f"no recommendations: the engine cannot evaluate the current policy "
                    f"({exc.message})"]
    stats = {(r["task_type"], r["phase"], r["model"]): r for r in ms.by_model}
    n_min = settings["min_samples"]
    review = _review_counts(ms)
    first_tries = _first_tries(ms)
    cache: dict = {}

    def project(phase: str, to_tier: str, tt: str):
        key = (phase, to_tier)
        if key not in cache:
            p2 = policy.model_copy(deep=True)
            p2.routes = dict(p2.routes)
            p2.routes[phase] = to_tier
            try:
                L1 = compile_for(table, Strategy.routed(p2), wl)
                cache[key] = (L1, metrics_by_task_type(L1))
            except CostsimError as exc:
                cache[key] = (None, str(exc))
        L1, whole = cache[key]
        if L1 is None:
            return None, whole
        Lv = variant(L0, L1, tt, phase)
        after = metrics_by_task_type(Lv)
        out = delta(before[tt], after[tt])
        out["scope"] = f"task type {tt}"
        out["change"] = f"routes.{phase}: {to_tier}, applied to task type {tt} only"
        out["workload"] = delta(before["workload"], after["workload"])
        out["policy_wide"] = delta(before["workload"], whole["workload"])
        out["monthly_spend_delta"] = wl.monthly_tasks * (
            after["workload"]["spend_per_task"] - before["workload"]["spend_per_task"])
        return out, None

    recs = []
    for t in wl.task_types:
        for ph in t.phases:
            s = start_tier(policy, ph.phase, ())
            M = tier_models[s]
            st = stats.get((t.name, ph.phase, M))
            cands = []
            if st and s < last and st["first_attempts"] >= n_min and \
                    st["first_attempt_success"] < settings["raise_below"]:
                cands.append(("raise", s + 1, "raise_below",
                              f"{M} succeeds at the first attempt in "
                              f"{st['first_attempt_success']:.0%} of {st['first_attempts']:,} "
                              f"{t.name}/{ph.phase} attempts (threshold "
                              f"{settings['raise_below']:.0%})", _evidence_route(st)))
            # A/B: other models that started this phase on comparable tasks.
            ft = first_tries.get((t.name, ph.phase), {})
            mine = ft.get(M)
            if mine and mine[0] >= n_min:
                for m, (n2, k2) in sorted(ft.items()):
                    if m == M or n2 < n_min or m not in tier_models:
                        continue
                    j = tier_models.index(m)
                    p_m, p_o = mine[1] / mine[0], k2 / n2
                    lo_m, hi_m = wilson(mine[1], mine[0])
                    lo_o, hi_o = wilson(k2, n2)
                    gap = p_m - p_o
                    ev = {"counts": {"from_first_attempts": mine[0], "to_first_attempts": n2},
                          "rates": {"from_first_attempt_success": p_m,
                                    "to_first_attempt_success": p_o, "gap": gap,
                                    "max_gap": settings["lower_max_gap"]},
                          "ci95": {"from_first_attempt_success": [lo_m, hi_m],
                                   "to_first_attempt_success": [lo_o, hi_o]},
                          "rule": "compare"}
                    if j < s and gap <= settings["lower_max_gap"]:
                        cands.append(("lower", j, "compare",
                                      f"{m} succeeds at the first attempt in {p_o:.0%} of "
                                      f"{n2:,} comparable {t.name}/{ph.phase} tasks vs "
                                      f"{p_m:.0%} of {mine[0]:,} for {M}", ev))
                    elif j > s and -gap > settings["lower_max_gap"] and lo_o > hi_m:
                        cands.append(("raise", j, "compare",
                                      f"{m} succeeds at the first attempt in {p_o:.0%} of "
                                      f"{n2:,} comparable {t.name}/{ph.phase} tasks vs "
                                      f"{p_m:.0%} of {mine[0]:,} for {M}", ev))
            if ph.phase == "review" and s > 0:
                rc = review.get((t.name, M))
                if rc and rc[0] >= n_min and rc[1] / rc[0] < settings["review_changes_below"]:
                    lo, hi = wilson(rc[1], rc[0])
                    cands.append(("lower", s - 1, "review_changes_below",
                                  f"reviews by {M} led to reviewer changes in "
                                  f"{rc[1] / rc[0]:.0%} of {rc[0]:,} tasks (threshold "
                                  f"{settings['review_changes_below']:.0%})",
                                  {"counts": {"reviewed_tasks": rc[0], "changed": rc[1]},
                                   "rates": {"reviewer_change_rate": rc[1] / rc[0]},
                                   "ci95": {"reviewer_change_rate": [lo, hi]},
                                   "rule": "review_changes_below"}))
            kept = []
            for action, j, rule, reason, ev in cands:
                proj, err = project(ph.phase, tier_names[j], t.name)
                if proj is None:
                    notes.append(f"{t.name}/{ph.phase}: no projection for {action} to "
                                 f"{tier_models[j]} ({err})")
                    continue
                ok, why = pays(proj)
                ev = dict(ev)
                ev["trade"] = trade_words(proj)
                if not ok:
                    notes.append(f"{t.name}/{ph.phase}: not recommending {action} to "
                                 f"{tier_models[j]}: {why} ({ev['trade']})")
                    continue
                kept.append({
                    "action": action, "task_type": t.name, "phase": ph.phase,
                    "from_model": M, "to_model": tier_models[j],
                    "from_tier": tier_names[s], "to_tier": tier_names[j],
                    "reason": reason, "evidence": ev, "projected": proj})
            if not kept:
                continue
            raises = [r for r in kept if r["action"] == "raise"]
            best = min(raises or kept,
                       key=lambda r: r["projected"]["cost_per_completed_task_after"])
            for r in kept:
                if r is not best and r["action"] != best["action"]:
                    notes.append(f"{t.name}/{ph.phase}: a '{r['action']}' to {r['to_model']} "
                                 f"was suppressed: the route also qualifies for "
                                 f"'{best['action']}'")
            recs.append(best)
    return recs, notes


def _review_counts(ms) -> dict:
    """(task type, model that succeeded in review) -> (completed tasks with a
    reviewer_changes value, those with changes > 0)."""
    d = ms.defects
    if d is None or d.empty or "rv" not in d.columns:
        return {}
    out: dict = {}
    for (tt, rv), g in d.groupby(["task_type", "rv"]):
        n = int(g["n"].sum())
        k = int(g.loc[g["changes"] > 0, "n"].sum())
        out[(str(tt), str(rv))] = (n, k)
    return out


def _evidence_route(s: dict) -> dict:
    return {
        "counts": {"first_attempts": s["first_attempts"], "retry_attempts": s["retry_attempts"],
                   "phase_runs": s["phase_runs_started"]},
        "rates": {"first_attempt_success": s["first_attempt_success"],
                  "retry_success": s["retry_success"]},
        "ci95": {"first_attempt_success": s["first_attempt_ci95"],
                 "retry_success": s["retry_ci95"]},
        "rule": "raise_below",
    }


__all__ = ["recommend", "pays", "trade_words", "math"]
