"""The engine's view of a fitted workload: evaluation per task type, per-task-type variants of a
policy change, and the fit check (engine vs what the log measured).

All numbers come from the one compile step and the analytic engine (``compile_ladders`` +
``analytic.cell_stats``), exactly what ``costsim compare`` runs, so a fit-check row agrees with
``costsim compare --workload FITTED --policy P`` on the same files.
"""

from __future__ import annotations

import math
from dataclasses import replace

from ..errors import CostsimError

GAP = 0.05          # a relative gap above this is flagged in words


def engine_strategy(inferred, policy_obj=None):
    from ..engine.compile import Strategy

    if inferred is not None and inferred.kind == "single":
        return Strategy.single(inferred.model)
    return Strategy.routed(policy_obj)


def metrics_by_task_type(L) -> dict:
    """{"workload": {...}, task type: {...}}: spend per task, completion, cost per completed
    task, defect rate (§3.4), from one set of ladders."""
    import numpy as np

    from ..engine.analytic import cell_stats

    s = cell_stats(L)
    w = L.weight
    task = np.array([c.task for c in L.cells])

    def pack(mask):
        ww = w[mask]
        tot = ww.sum()
        E = float(ww @ s.E[mask]) / tot
        C = float(ww @ s.C[mask]) / tot
        D = float(ww @ (s.C * s.defect)[mask]) / (C * tot) if C > 0 else 0.0
        return {"spend_per_task": E, "completion_rate": C,
                "cost_per_completed_task": E / C if C > 0 else math.inf, "defect_rate": D}

    out = {"workload": pack(np.ones(len(w), bool))}
    for ti, t in enumerate(L.workload.task_types):
        out[t.name] = pack(task == ti)
    return out


def compile_for(table, strategy, wl):
    from ..engine.compile import compile_ladders

    return compile_ladders(table, strategy, wl)


def variant(before, after, task_type: str, phase: str):
    """Ladders equal to ``before`` except the cells of ``task_type`` in ``phase``, which come
    from ``after`` (both compiled from policies with the same tiers, so model indices agree).
    A policy routes by phase, not by task type: this is how a change for one task type is
    projected."""
    import numpy as np

    if before.rates.ids != after.rates.ids:
        raise CostsimError("internal: variant ladders with different models")
    ti = next(i for i, t in enumerate(before.workload.task_types) if t.name == task_type)
    names = before.phase_names[ti]
    if phase not in names:
        return before
    i = names.index(phase)
    cells = np.array([c.task == ti for c in before.cells])
    arrays = {}
    for name in ("model", "cost", "p", "summ_cost", "defect", "tokens", "summ_tokens"):
        a = getattr(before, name).copy()
        a[cells, i] = getattr(after, name)[cells, i]
        arrays[name] = a
    catch = before.catch.copy()
    if phase == "review":
        catch[cells] = after.catch[cells]
    arrays["catch"] = catch
    if before.variation is not None or after.variation is not None:
        arrays["variation"] = _variant_variation(before, after, ti, i, cells)
    return replace(before, **arrays)


def _variant_variation(before, after, ti: int, i: int, cells):
    """The §3.5 parts of :func:`variant`: the changed phase's intercepts ``b`` (each attempt's
    ``σ(b − s·z)`` averages to its own model's rate) come from ``after``, like its ``p``. The
    per-node cost tables are by model, the same in both. Without this, the projection kept
    the old models' intercepts beside the new models' costs: a raise looked dearer and no
    better."""
    from ..engine.compile import VariationLadders

    vb, va = before.variation, after.variation
    if vb is None or va is None:
        raise CostsimError("internal: variant ladders with and without variation")
    types = list(vb.types)
    tb, ta = types[ti], va.types[ti]
    if tb is not None:
        b = tb.b.copy()
        b[:, i] = ta.b[:, i]
        types[ti] = replace(tb, b=b)

    def pieces():
        pb, pa = vb.pieces, va.pieces
        out = {}
        for name in ("base", "delta", "theta", "summ_base", "summ_delta", "summ_theta", "b"):
            x = getattr(pb, name).copy()
            x[cells, i] = getattr(pa, name)[cells, i]
            out[name] = x
        return replace(pb, **out)

    return VariationLadders(types, pieces)


def delta(before: dict, after: dict) -> dict:
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


def _gap(measured, engine):
    if measured is None or engine is None:
        return None
    if not (math.isfinite(measured) and math.isfinite(engine)):
        return None
    if measured == 0:
        return 0.0 if engine == 0 else math.inf
    return (engine - measured) / measured


def fit_check(table, wl, strategies: list, measured: dict, names: dict,
              one_shot: frozenset = frozenset()) -> tuple[list, list]:
    """Rows of (run, scope) with the log's and the engine's completion, cost per completed task
    and defect rate, and the words for every gap over 5%. ``strategies``: [(run, engine
    Strategy or None, why)]; ``measured``: {(run, scope): summary}; ``names``: run -> label.
    ``one_shot``: runs that made one attempt per phase (benchmark results, one session per
    task): checked as they ran, with one attempt, whatever ``max_attempts`` the workload gives
    the strategies it will project (a two-step cascade's 2)."""
    rows, flags = [], []
    wl_one = None
    for run, strategy, why in strategies:
        label = names.get(run, run)
        if strategy is None:
            flags.append(f"{label}: no fit check ({why})")
            continue
        run_wl = wl
        if run in one_shot and (wl.max_attempts != 1
                                or any(t.max_attempts not in (None, 1) for t in wl.task_types)):
            if wl_one is None:
                wl_one = wl.model_copy(update={
                    "max_attempts": 1,
                    "task_types": [t.model_copy(update={"max_attempts": None})
                                   for t in wl.task_types]})
            run_wl = wl_one
        try:
            L = compile_for(table, strategy, run_wl)
        except CostsimError as exc:
            flags.append(f"{label}: no fit check: the engine cannot evaluate "
                         f"{strategy.name} ({exc.message})")
            continue
        eng = metrics_by_task_type(L)
        scopes = ["all tasks"] + [t.name for t in wl.task_types]
        for scope in scopes:
            m = measured.get((run, scope))
            if m is None:
                continue
            e = eng["workload" if scope == "all tasks" else scope]
            row = {"run": run, "strategy": strategy.name, "scope": scope, "tasks": m["tasks"],
                   "measured_completion_rate": m["completion_rate"],
                   "engine_completion_rate": e["completion_rate"],
                   "measured_cost_per_completed_task": m["cost_per_completed_task"],
                   "engine_cost_per_completed_task": e["cost_per_completed_task"],
                   "measured_defect_rate": m.get("defect_rate"),
                   "engine_defect_rate": e["defect_rate"]}
            gaps = {"cost per completed task": _gap(m["cost_per_completed_task"],
                                                    e["cost_per_completed_task"]),
                    "completion": _gap(m["completion_rate"], e["completion_rate"])}
            # The log's own sampling error: a gap within 2.5 standard errors is noise.
            n = max(m["tasks"], 1)
            pc = m["completion_rate"] or 0.0
            se = {"cost per completed task": m.get("cost_per_completed_task_se"),
                  "completion": math.sqrt(max(pc * (1 - pc), 1.0 / n) / n)}
            if m.get("defect_rate") is not None and m.get("reviewed_tasks", 0) >= 1:
                dm, de = m["defect_rate"], e["defect_rate"]
                rv = m["reviewed_tasks"]
                if abs(de - dm) > 0.003:       # small rates: judge by points as well
                    gaps["defect rate"] = _gap(dm, de)
                    se["defect rate"] = math.sqrt(max(dm * (1 - dm), 1.0 / rv) / rv)
            row["gaps"] = {k: v for k, v in gaps.items() if v is not None}
            words, noise = [], True
            for what, g in row["gaps"].items():
                if g is None or abs(g) <= GAP:
                    continue
                side = "above" if g > 0 else "below"
                base_v = {"cost per completed task": m["cost_per_completed_task"],
                          "completion": m["completion_rate"],
                          "defect rate": m.get("defect_rate")}[what]
                e_v = {"cost per completed task": e["cost_per_completed_task"],
                       "completion": e["completion_rate"], "defect rate": e["defect_rate"]}[what]
                s = se.get(what)
                within = s is not None and s > 0 and abs(e_v - base_v) <= 2.5 * s
                noise = noise and within
                size = (f"{abs(g):.1%} {side} the log's" if math.isfinite(g) else
                        f"{e_v:.2%} where the log's is 0")
                words.append(f"the engine's {what} is {size}"
                             + (" (within the log's sampling error)" if within else ""))
            row["flag"] = "; ".join(words) or None
            row["flag_significant"] = bool(words) and not noise
            if words:
                where = scope if scope != "all tasks" else "all tasks"
                flags.append(f"{label}, {where} ({m['tasks']:,} tasks): " + "; ".join(words))
            rows.append(row)
    return rows, flags
