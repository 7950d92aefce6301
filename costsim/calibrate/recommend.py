"""Recommendations (raise/lower a route) and their projections by the analytic engine; the
fit check (measured vs the engine on the fitted workload)."""

from __future__ import annotations

import math

from ..errors import CostsimError
from ..models import TIER_CLASSES, Policy, PriceTable, Workload
from .measure import _attempt_table, _Frames, wilson


# --- routes, ladders and projections --------------------------------------------------------

def _has_success_info(table: PriceTable, ph, model: str) -> bool:
    mp = table.models[model]
    if ph.success and (model in ph.success or mp.tier in ph.success):
        return True
    return ph.difficulty is not None and mp.coding_score is not None


def ladders_for_routes(table: PriceTable, wl: Workload, routes: dict[tuple[str, str], list[str]]):
    """Ladders where (task type, phase) uses ``routes[(task_type, phase)][k-1]`` at attempt k
    (the last entry repeats).

    Built from ``compile_ladders(single:M)`` for every model M named: an attempt's cost, success,
    tokens, defect and catch rates depend only on the model, the phase and the attempt index
    (SPEC §3.2–3.3), so each (cell, phase, attempt) slice is copied from M's ladder. This lets a
    route differ per task type, which a policy (routes by phase) cannot express.
    """
    from ..engine.compile import Rates, Strategy, compile_ladders

    models = sorted({m for seq in routes.values() for m in seq})
    for (tt, ph_name), seq in routes.items():
        t = next(t for t in wl.task_types if t.name == tt)
        ph = next(p for p in t.phases if p.phase == ph_name)
        for m in dict.fromkeys(seq):
            if m not in table.models:
                raise CostsimError(f"unknown model '{m}' (not in the price table)",
                                   path=f"{tt}/{ph_name}")
            if not _has_success_info(table, ph, m):
                raise CostsimError(f"cannot tell how often '{m}' succeeds on {tt}/{ph_name}: "
                                   f"the log has no attempts by it there and the price table "
                                   f"gives it no coding_score")
    # Compile each model on a copy of the workload where phases that lack data for it get a
    # placeholder p (never read: those slices are taken from another model's ladder).
    singles = {}
    for m in models:
        w2 = wl.model_copy(deep=True)
        for t in w2.task_types:
            for ph in t.phases:
                if not _has_success_info(table, ph, m):
                    ph.success = dict(ph.success or {})
                    ph.success[m] = 0.5
        singles[m] = compile_ladders(table, Strategy.single(m), w2)
    base = singles[models[0]]
    idx = {m: i for i, m in enumerate(models)}
    arrays = {k: getattr(base, k).copy() for k in ("model", "cost", "p", "summ_cost", "defect",
                                                   "catch", "tokens", "summ_tokens")}
    for c, cell in enumerate(base.cells):
        t = wl.task_types[cell.task]
        Kt = t.max_attempts or wl.max_attempts
        for i, ph in enumerate(t.phases):
            seq = routes[(t.name, ph.phase)]
            for k in range(Kt):
                m = seq[min(k, len(seq) - 1)]
                S = singles[m]
                arrays["model"][c, i, k] = idx[m]
                for name in ("cost", "p", "summ_cost", "defect", "tokens", "summ_tokens"):
                    arrays[name][c, i, k] = getattr(S, name)[c, i, k]
                if ph.phase == "review":
                    arrays["catch"][c, k] = S.catch[c, k]
    from dataclasses import replace

    rates = Rates.from_table(table, models)
    L = replace(base, strategy=Strategy(name="calibrated routes", kind="routed"), rates=rates,
                summ_model=-1, **arrays)
    return L


def _metrics(L) -> dict:
    """Workload-wide and per-task-type E, C, cost per completed task, defects (SPEC §3.4)."""
    import numpy as np

    from ..engine.analytic import cell_stats

    s = cell_stats(L)
    w = L.weight
    out = {}
    task = np.array([c.task for c in L.cells])

    def pack(mask):
        ww = w[mask]
        tot = ww.sum()
        E = float(ww @ s.E[mask]) / tot
        C = float(ww @ s.C[mask]) / tot
        D = float(ww @ (s.C * s.defect)[mask]) / (C * tot) if C > 0 else 0.0
        return {"spend_per_task": E, "completion_rate": C,
                "cost_per_completed_task": E / C if C > 0 else math.inf, "defect_rate": D}

    out["workload"] = pack(np.ones(len(w), bool))
    for ti, t in enumerate(L.workload.task_types):
        out[t.name] = pack(task == ti)
    return out


def _delta(before: dict, after: dict) -> dict:
    b, a = before["cost_per_completed_task"], after["cost_per_completed_task"]
    d = a - b if math.isfinite(a) and math.isfinite(b) else None
    return {
        "cost_per_completed_task_before": b, "cost_per_completed_task_after": a,
        "delta": d, "delta_pct": (d / b if d is not None and b > 0 else None),
        "completion_rate_before": before["completion_rate"],
        "completion_rate_after": after["completion_rate"],
        "spend_per_task_before": before["spend_per_task"],
        "spend_per_task_after": after["spend_per_task"],
        "defect_rate_before": before["defect_rate"], "defect_rate_after": after["defect_rate"],
    }


def _tier_index(table: PriceTable, model: str) -> int | None:
    mp = table.models.get(model)
    return TIER_CLASSES.index(mp.tier) if mp is not None else None


def _blended(table: PriceTable, model: str) -> float:
    mp = table.models[model]
    return mp.input + mp.output



def _fit_check(engine: dict | None, overall: dict, by_task_type: list[dict]) -> list[dict]:
    """Measured vs the engine on the fitted workload with the current routes: how well the
    calibrated workload replays the log (token growth on retries is the engine's, §3.2)."""
    if engine is None:
        return []
    rows = []
    for name, r in [("all tasks", overall)] + [(t["task_type"], t) for t in by_task_type]:
        e = engine["workload" if name == "all tasks" else name]
        rows.append({"scope": name,
                     "measured_completion_rate": r["completion_rate"],
                     "engine_completion_rate": e["completion_rate"],
                     "measured_cost_per_completed_task": r["cost_per_completed_task"],
                     "engine_cost_per_completed_task": e["cost_per_completed_task"]})
    return rows


def _observed_routes(fr: _Frames, wl: Workload) -> dict[tuple[str, str], list[str]]:
    """Per (task type, phase): the model seen most often at each attempt index."""
    att = _attempt_table(fr)
    att = att.sort_values(["task_type", "phase", "attempt", "n", "model"],
                          ascending=[True, True, True, False, True])
    top = att.drop_duplicates(["task_type", "phase", "attempt"], keep="first")
    routes: dict[tuple[str, str], list[str]] = {}
    for tt, ph, a, m in zip(top["task_type"], top["phase"], top["attempt"], top["model"]):
        seq = routes.setdefault((str(tt), str(ph)), [])
        while len(seq) < int(a) - 1:          # an attempt index nobody reached: repeat
            seq.append(seq[-1] if seq else str(m))
        seq.append(str(m))
    return {(t.name, ph.phase): routes[(t.name, ph.phase)] for t in wl.task_types
            for ph in t.phases}


def _policy_routes(policy: Policy, wl: Workload) -> dict[tuple[str, str], list[str]]:
    from ..engine.compile import start_tier, tier_of_attempt

    tiers = list(policy.tiers.values())
    last = len(tiers) - 1
    out = {}
    for t in wl.task_types:
        Kt = t.max_attempts or wl.max_attempts
        for ph in t.phases:
            start = start_tier(policy, ph.phase, ())
            out[(t.name, ph.phase)] = [
                tiers[tier_of_attempt(start, k, policy.escalation.after_failures, last)]
                for k in range(1, Kt + 1)]
    return out


def _inferred_tiers(fr: _Frames, table: PriceTable) -> dict[str, str]:
    """Tier class -> the model of that class with the most attempts in the log."""
    counts = fr.df["model"].value_counts()
    out: dict[str, str] = {}
    for cls in TIER_CLASSES:
        best = None
        for m, n in counts.items():
            mp = table.models.get(str(m))
            if mp is not None and mp.tier == cls and n > 0:
                if best is None or n > best[1] or (n == best[1] and str(m) < best[0]):
                    best = (str(m), n)
        if best:
            out[cls] = best[0]
    return out


def _recommend(fr: _Frames, by_model: list[dict], table: PriceTable, wl: Workload,
               policy: Policy | None, settings: dict):
    from ..loader import check_policy_against

    notes: list[str] = []
    if policy is not None:
        check_policy_against(policy, table, wl)
        base_routes = _policy_routes(policy, wl)
        tiers = dict(policy.tiers)
        baseline = f"policy {policy.name}"
    else:
        base_routes = _observed_routes(fr, wl)
        tiers = _inferred_tiers(fr, table)
        baseline = "observed routes"
    tier_names = list(tiers)
    tier_models = list(tiers.values())
    stats = {(r["task_type"], r["phase"], r["model"]): r for r in by_model}
    n_min = settings["min_samples"]

    def tier_pos(model: str) -> int | None:
        if policy is not None:
            return tier_models.index(model) if model in tier_models else None
        ti = _tier_index(table, model)
        if ti is None:
            return None
        classes = [TIER_CLASSES.index(c) for c in tier_names]
        # position of the model's class among the classes present
        return classes.index(ti) if ti in classes else None

    # reviewer changes of tasks whose review phase started with model M
    review_changes = _review_changes(fr)

    try:
        before_L = ladders_for_routes(table, wl, base_routes)
        before = _metrics(before_L)
    except CostsimError as exc:
        notes.append(f"no projections: the current routes cannot be evaluated ({exc})")
        before = None

    recs = []
    for t in wl.task_types:
        for ph in t.phases:
            key = (t.name, ph.phase)
            route = base_routes[key]
            M = route[0]
            pos = tier_pos(M)
            if pos is None:
                continue
            s = stats.get((t.name, ph.phase, M))
            raise_rec = lower_rec = None
            # raise: the route model reworks often
            if (s and pos < len(tier_models) - 1 and s["first_attempts"] >= n_min
                    and s["first_attempt_success"] < settings["raise_below"]):
                to = tier_models[pos + 1]
                raise_rec = {
                    "action": "raise", "task_type": t.name, "phase": ph.phase,
                    "from_model": M, "to_model": to,
                    "from_tier": tier_names[pos], "to_tier": tier_names[pos + 1],
                    "reason": (f"{M} succeeds at the first attempt in {s['first_attempt_success']:.0%}"
                               f" of {s['first_attempts']} {t.name}/{ph.phase} attempts "
                               f"(threshold {settings['raise_below']:.0%})"),
                    "evidence": _evidence_route(s, stats.get((t.name, ph.phase, to)), to),
                }
            # lower (a): a cheaper model does as well on the same work
            if s and pos > 0 and s["first_attempts"] >= n_min:
                cands = []
                for (tt2, ph2, m), r in stats.items():
                    if tt2 != t.name or ph2 != ph.phase or m == M:
                        continue
                    ti, tM = _tier_index(table, m), _tier_index(table, M)
                    if ti is None or tM is None or ti >= tM or r["first_attempts"] < n_min:
                        continue
                    gap = s["first_attempt_success"] - r["first_attempt_success"]
                    if gap <= settings["lower_max_gap"] and \
                            r["first_attempt_ci95"][1] >= s["first_attempt_ci95"][0]:
                        cands.append((ti, _blended(table, m), m, r, gap))
                if cands:
                    # The cheapest tier step down that holds up: nearest class first, then price.
                    cands.sort(key=lambda c: (-c[0], c[1], c[2]))
                    ti, _, m, r, gap = cands[0]
                    lower_rec = {
                        "action": "lower", "task_type": t.name, "phase": ph.phase,
                        "from_model": M, "to_model": m,
                        "from_tier": table.models[M].tier, "to_tier": table.models[m].tier,
                        "reason": (f"{m} succeeds at the first attempt in "
                                   f"{r['first_attempt_success']:.0%} of {r['first_attempts']} "
                                   f"attempts vs {s['first_attempt_success']:.0%} of "
                                   f"{s['first_attempts']} for {M} (gap {gap:+.1%}, "
                                   f"intervals overlap)"),
                        "evidence": _evidence_pair(s, r, gap, settings["lower_max_gap"]),
                    }
            # lower (b): premium reviews rarely lead to changes
            if lower_rec is None and pos > 0 and ph.phase == "review":
                rc = review_changes.get((t.name, M))
                if rc and rc[0] >= n_min and rc[1] / rc[0] < settings["review_changes_below"]:
                    to = tier_models[pos - 1]
                    lo, hi = wilson(rc[1], rc[0])
                    lower_rec = {
                        "action": "lower", "task_type": t.name, "phase": ph.phase,
                        "from_model": M, "to_model": to,
                        "from_tier": tier_names[pos], "to_tier": tier_names[pos - 1],
                        "reason": (f"reviews by {M} led to reviewer changes in "
                                   f"{rc[1] / rc[0]:.0%} of {rc[0]} tasks (threshold "
                                   f"{settings['review_changes_below']:.0%})"),
                        "evidence": {"counts": {"reviewed_tasks": rc[0], "changed": rc[1]},
                                     "rates": {"reviewer_change_rate": rc[1] / rc[0]},
                                     "ci95": {"reviewer_change_rate": [lo, hi]},
                                     "rule": "review_changes_below"},
                    }
            rec = raise_rec or lower_rec
            if raise_rec and lower_rec:
                notes.append(f"{t.name}/{ph.phase}: a 'lower' to {lower_rec['to_model']} was "
                             f"suppressed because the route also qualifies for 'raise'")
            if rec is None:
                continue
            rec["projected"] = _project(table, wl, policy, base_routes, before, rec, notes)
            recs.append(rec)
    return recs, notes, tiers, baseline, before


def _review_changes(fr: _Frames) -> dict[tuple[str, str], tuple[int, int]]:
    """(task type, model that started the review phase) -> (tasks with a reviewer_changes
    value, tasks with changes > 0)."""
    df = fr.df
    ph_names = list(df["phase"].cat.categories)
    if "review" not in ph_names:
        return {}
    runs = fr.runs
    r = runs[runs["phase"] == ph_names.index("review")]
    tasks = fr.tasks
    t = tasks.iloc[r["task"].to_numpy()]
    sel = t["has_changes"].to_numpy()
    g = (r.assign(changed=t["changed"].to_numpy())[sel]
         .groupby(["task_type", "start_model"]).agg(n=("changed", "size"),
                                                    k=("changed", "sum")))
    tt_names = list(df["task_type"].cat.categories)
    m_names = list(df["model"].cat.categories)
    return {(tt_names[a], m_names[b]): (int(n), int(k))
            for (a, b), n, k in zip(g.index, g["n"], g["k"])}


def _evidence_route(s: dict, to: dict | None, to_model: str) -> dict:
    ev = {
        "counts": {"first_attempts": s["first_attempts"], "retry_attempts": s["retry_attempts"],
                   "phase_runs": s["phase_runs_started"]},
        "rates": {"first_attempt_success": s["first_attempt_success"],
                  "retry_success": s["retry_success"]},
        "ci95": {"first_attempt_success": s["first_attempt_ci95"],
                 "retry_success": s["retry_ci95"]},
        "rule": "raise_below",
    }
    if to is not None and to["first_attempts"]:
        ev["to_model"] = {"model": to_model, "first_attempts": to["first_attempts"],
                          "first_attempt_success": to["first_attempt_success"],
                          "ci95": to["first_attempt_ci95"]}
    return ev


def _evidence_pair(s: dict, r: dict, gap: float, max_gap: float) -> dict:
    return {
        "counts": {"from_first_attempts": s["first_attempts"],
                   "to_first_attempts": r["first_attempts"]},
        "rates": {"from_first_attempt_success": s["first_attempt_success"],
                  "to_first_attempt_success": r["first_attempt_success"],
                  "from_retry_success": s["retry_success"], "to_retry_success": r["retry_success"],
                  "gap": gap, "max_gap": max_gap},
        "ci95": {"from_first_attempt_success": s["first_attempt_ci95"],
                 "to_first_attempt_success": r["first_attempt_ci95"]},
        "rule": "lower_max_gap",
    }


def _project(table, wl, policy, base_routes, before, rec, notes) -> dict | None:
    key = (rec["task_type"], rec["phase"])
    routes = dict(base_routes)
    if policy is not None:
        changed = policy.model_copy(deep=True)
        changed.routes = dict(changed.routes)
        changed.routes[rec["phase"]] = rec["to_tier"]
        routes[key] = _policy_routes(changed, wl)[key]
        how = (f"policy {policy.name} with routes.{rec['phase']}: {rec['to_tier']}, applied to "
               f"task type {rec['task_type']} only")
    else:
        routes[key] = [rec["to_model"] if m == rec["from_model"] else m for m in routes[key]]
        how = f"{rec['from_model']} replaced by {rec['to_model']} on {key[0]}/{key[1]}"
    if before is None:
        return None
    try:
        after = _metrics(ladders_for_routes(table, wl, routes))
    except CostsimError as exc:
        notes.append(f"{key[0]}/{key[1]}: no projection ({exc})")
        return None
    out = _delta(before[rec["task_type"]], after[rec["task_type"]])
    out["scope"] = f"task type {rec['task_type']}"
    out["route_after"] = routes[key]
    out["route_before"] = base_routes[key]
    out["change"] = how
    out["workload"] = _delta(before["workload"], after["workload"])
    out["monthly_spend_delta"] = wl.monthly_tasks * (
        after["workload"]["spend_per_task"] - before["workload"]["spend_per_task"])
    return out
