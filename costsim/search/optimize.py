"""`costsim optimize`: an exact search of routing policies for the cheapest that meets targets.

The space is described in :mod:`costsim.search.space`, the exact vectorised evaluation in
:mod:`costsim.search.tables`, the frontiers in :mod:`costsim.search.frontier` and the result
objects in :mod:`costsim.search.result`. This module prepares a search (:class:`Search`) and runs
it (:func:`optimize`). Every point of the space is evaluated; nothing is pruned. The winner (and
any point within 1e-9 of it) is then re-evaluated through ``compile_ladders`` + ``evaluate`` from
the policy that is written out, and those engine numbers are what is reported.
"""

from __future__ import annotations

import math
import time
from typing import Iterable, Sequence

import numpy as np

from .. import paths
from ..engine.compile import Rates, Strategy, compile_ladders
from ..errors import CostsimError
from ..models import Policy
from .frontier import _chunk_frontier, _frontier
from .result import (RESULT_VERSION, Baseline, Infeasible, OptimizeResult, PolicyPoint,  # noqa: F401
                     _describe, _explain, policy_label, policy_yaml, target_phrases)
from .space import (AFTER_FAILURES, HANDOFF_MODES, _build_space, build_policy,  # noqa: F401
                    policy_from_doc, search_space_size)
from .tables import _combine, _task_tables

DEFAULT_BASE_POLICY = "cheapest-routing.yaml"
MAX_POLICIES = 500_000_000        # refuse spaces that would take minutes (say so; no silent cut)
TIE_RTOL = 1e-9                   # points this close to the best are re-checked by the engine
_BLOCK = 1 << 21                  # elements per working array in the combine step


# --- the search --------------------------------------------------------------------------------

def _resolve_base(policy) -> Policy:
    from ..loader import load_policy

    if policy is None:
        return load_policy(paths.bundled_dir("policies") / DEFAULT_BASE_POLICY)
    if isinstance(policy, Policy):
        return policy
    return load_policy(policy)



def _engine_point(table, wl, doc: dict) -> PolicyPoint:
    """compile_ladders + evaluate on the policy document itself."""
    from ..engine.analytic import evaluate

    pol = policy_from_doc(doc)
    m = evaluate(compile_ladders(table, Strategy.routed(pol), wl))
    return PolicyPoint(routes={k: v for k, v in doc["routes"].items() if k != "default"},
                       tiers=dict(doc["tiers"]), after_failures=doc["escalation"]["after_failures"],
                       handoff=doc["handoff"]["mode"],
                       cost_per_completed_task=m.cost_per_completed_task,
                       spend_per_task=m.spend_per_task, completion_rate=m.completion_rate,
                       defect_rate=m.defect_rate, review_minutes=m.review_minutes)


def _baseline(table, wl, strategy: Strategy) -> Baseline | None:
    from ..engine.analytic import evaluate

    try:
        m = evaluate(compile_ladders(table, strategy, wl))
    except CostsimError:
        return None
    return Baseline(name=strategy.name, kind=strategy.kind,
                    cost_per_completed_task=m.cost_per_completed_task,
                    spend_per_task=m.spend_per_task, completion_rate=m.completion_rate,
                    defect_rate=m.defect_rate, review_minutes=m.review_minutes)


class Search:
    """The prepared space: per-phase-option tables and the chunked combine step.

    ``Search(...).grid()`` returns the metrics of every point (tests, benchmarks);
    :func:`optimize` streams :meth:`chunks` instead so memory stays flat.
    """

    def __init__(self, prices=None, policy=None, workload=None, *, fixed_tiers: bool = False,
                 candidates: Iterable[str] | None = None,
                 after_failures: Sequence[int] = AFTER_FAILURES,
                 handoffs: Sequence[str] = HANDOFF_MODES, max_policies: int = MAX_POLICIES):
        from ..api import _as_prices, _as_workload
        from ..loader import check_policy_against, check_workload_against

        self.table, self.prices_path = _as_prices(prices)
        self.wl, self.wl_path = _as_workload(workload)
        self.base = _resolve_base(policy)
        check_workload_against(self.wl, self.table)
        check_policy_against(self.base, self.table, self.wl)
        self.notes: list[str] = []
        self.base_point = _baseline(self.table, self.wl, Strategy.routed(self.base))
        if self.base_point is None:            # re-raise the engine's own message
            compile_ladders(self.table, Strategy.routed(self.base), self.wl)
        self.sp = _build_space(self.table, self.wl, self.base, fixed_tiers=fixed_tiers,
                               candidates=list(candidates) if candidates else None,
                               after=after_failures, handoff_modes=handoffs, notes=self.notes)
        sp = self.sp
        self.T, self.N, self.G = len(sp.tier_names), len(sp.phase_names), sp.n_configs
        self.routes_n = self.T ** self.N
        self.size = self.G * self.routes_n
        if self.size > max_policies:
            raise CostsimError(f"the search space has {self.size:,} policies (more than "
                               f"{max_policies:,}); narrow it with --fixed-tiers or --candidates",
                               path="optimize")
        self.rates = Rates.from_table(self.table, sp.ids)
        self.tts = _task_tables(self.table, self.wl, self.base, sp, self.rates)
        per_g = max([len(tt.w) * self.T ** len(tt.axes) for tt in self.tts] + [self.routes_n])
        self.gch = max(1, min(self.G, _BLOCK // per_g))

    def chunks(self):
        """Yield ``(g0, E, C, D, RV)`` for configs g0.. as [configs, routes] arrays: expected
        spend, completion, defect mass and review mass (weighted over cells)."""
        T, N = self.T, self.N
        for g0 in range(0, self.G, self.gch):
            g1 = min(self.G, g0 + self.gch)
            acc = [0.0, 0.0, 0.0, 0.0]
            for tt in self.tts:
                for x, v in enumerate(_combine(tt, g0, g1, T, N)):
                    acc[x] = acc[x] + v
            full = (g1 - g0,) + (T,) * N
            yield (g0,) + tuple(np.broadcast_to(a, full).reshape(g1 - g0, self.routes_n)
                                for a in acc)

    @staticmethod
    def metrics(E, C, D, RV):
        """cost per completed task, defect rate, review minutes (SPEC §3.4 ratios)."""
        live = C > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            return (np.where(live, E / C, np.inf), np.where(live, D / C, 0.0),
                    np.where(live, RV / C, 0.0))

    def grid(self) -> dict:
        """Every point at once: arrays [configs * routes] (flat index = config * routes + r)."""
        parts = {k: [] for k in ("spend", "completion", "cost", "defect", "review")}
        for g0, E, C, D, RV in self.chunks():
            cp, dr, rv = self.metrics(E, C, D, RV)
            for k, v in zip(parts, (E, C, cp, dr, rv)):
                parts[k].append(v.ravel())
        return {k: np.concatenate(v) for k, v in parts.items()}

    def point(self, flat: int) -> tuple[int, tuple[int, ...]]:
        g, r = divmod(int(flat), self.routes_n)
        route = tuple(int(x) for x in np.unravel_index(r, (self.T,) * self.N)) if self.N else ()
        return g, route

    def policy_doc(self, flat: int, name: str = "candidate", description: str | None = None):
        g, route = self.point(flat)
        return build_policy(self.sp, self.base, g, route, name, description)


def optimize(prices=None, policy=None, workload=None, *, fixed_tiers: bool = False,
             candidates: Iterable[str] | None = None, min_completion: float | None = None,
             max_defect_rate: float | None = None, max_review_minutes: float | None = None,
             after_failures: Sequence[int] = AFTER_FAILURES,
             handoffs: Sequence[str] = HANDOFF_MODES, name: str | None = None,
             max_policies: int = MAX_POLICIES, baselines: bool = True) -> OptimizeResult:
    """Search routing policies around ``policy`` for the lowest cost per completed task that
    meets ``min_completion``, ``max_defect_rate`` and ``max_review_minutes`` (each optional).

    ``prices``/``workload``/``policy``: a path, a loaded model, or None for the defaults (the
    base policy defaults to the bundled ``cheapest-routing``). The result carries the best policy
    (``result.best_policy``, written by ``result.write_policy(path)``), or, when no policy meets
    the targets, ``result.infeasible`` saying which target fails and the best value reachable.
    """
    t0 = time.perf_counter()
    for label, v, lo, hi in (("--min-completion", min_completion, 0, 1),
                             ("--max-defect-rate", max_defect_rate, 0, 1),
                             ("--max-review-minutes", max_review_minutes, 0, math.inf)):
        if v is not None and (math.isnan(v) or not lo <= v <= hi):
            raise CostsimError(f"must be between {lo:g} and {hi:g}, got {v:g}", path=label)
    S = Search(prices, policy, workload, fixed_tiers=fixed_tiers, candidates=candidates,
               after_failures=after_failures, handoffs=handoffs, max_policies=max_policies)
    table, wl, base, sp, routes_n = S.table, S.wl, S.base, S.sp, S.routes_n

    minc, maxd, maxr = min_completion, max_defect_rate, max_review_minutes
    best = (math.inf, -1)
    ties: list[tuple[float, int]] = []
    agg = {"comp": -math.inf, "defect": math.inf, "review": math.inf,
           "comp_o": -math.inf, "defect_o": math.inf, "review_o": math.inf}
    fr_c: list[tuple] = []
    fr_d: list[tuple] = []
    fr_a: list[tuple] = []
    for g0, E, C, D, RV in S.chunks():
        off = g0 * routes_n
        live = C > 0
        cpct, dr, rvm = S.metrics(E, C, D, RV)
        ok_c = ((C >= minc) & live) if minc is not None else live
        ok_d = ((dr <= maxd) & live) if maxd is not None else live
        ok_r = ((rvm <= maxr) & live) if maxr is not None else live
        feas = ok_c & ok_d & ok_r
        obj = np.where(feas, cpct, np.inf).ravel()
        j = int(np.argmin(obj))
        if obj[j] < math.inf:
            near = np.flatnonzero(obj <= obj[j] * (1 + TIE_RTOL))[:20]
            ties += [(float(obj[x]), off + int(x)) for x in near]
            if obj[j] < best[0]:
                best = (float(obj[j]), off + j)
        # best reachable values, alone and with the other targets met
        if live.any():
            agg["comp"] = max(agg["comp"], float(C[live].max()))
            agg["defect"] = min(agg["defect"], float(dr[live].min()))
            agg["review"] = min(agg["review"], float(rvm[live].min()))
        for key, mask, vals, hi in (("comp_o", ok_d & ok_r, C, True),
                                    ("defect_o", ok_c & ok_r, dr, False),
                                    ("review_o", ok_c & ok_d, rvm, False)):
            if mask.any():
                v = vals[mask]
                agg[key] = max(agg[key], float(v.max())) if hi else min(agg[key], float(v.min()))
        # frontiers, each with the other targets enforced
        for store, mask, vals, sign, col in ((fr_c, ok_d & ok_r, C, 1.0, 1),
                                             (fr_d, ok_c & ok_r, dr, -1.0, 2),
                                             (fr_a, live, C, 1.0, 1)):
            if store:
                rows = sorted(store)
                anchors = (np.array([r[0] for r in rows]), sign * np.array([r[col] for r in rows]))
            else:
                anchors = (np.zeros(0), np.zeros(0))
            idx = _chunk_frontier(np.where(mask, cpct, np.inf).ravel(), vals.ravel(), sign,
                                  anchors)
            store += [(float(cpct.flat[x]), float(C.flat[x]), float(dr.flat[x]),
                       float(rvm.flat[x]), float(E.flat[x]), off + int(x)) for x in idx]
            if len(store) > 4096:          # keep the running set small
                keep = _frontier(np.array([r[0] for r in store]),
                                 np.array([r[col] for r in store]), sign)
                store[:] = [store[i] for i in sorted(keep)]

    def vec_point(row) -> PolicyPoint:
        cp, c, d, rv, e, flat = row
        doc = S.policy_doc(flat)
        return PolicyPoint(routes={k: v for k, v in doc["routes"].items() if k != "default"},
                           tiers=doc["tiers"], after_failures=doc["escalation"]["after_failures"],
                           handoff=doc["handoff"]["mode"], cost_per_completed_task=cp,
                           spend_per_task=e, completion_rate=c, defect_rate=d, review_minutes=rv)

    def merge(rows, col, sign):
        if not rows:
            return []
        idx = _frontier(np.array([r[0] for r in rows]), np.array([r[col] for r in rows]), sign)
        return [vec_point(rows[i]) for i in sorted(idx, key=lambda i: (rows[i][0], rows[i][5]))]

    frontier_c = merge(fr_c, 1, 1.0)
    frontier_d = merge(fr_d, 2, -1.0)
    frontier_a = merge(fr_a, 1, 1.0)

    constraints = {"min_completion": minc, "max_defect_rate": maxd,
                   "max_review_minutes": maxr}
    pol_name = name or f"{base.name}-optimized"
    best_point = best_doc = None
    infeasible: list[Infeasible] = []
    if best[1] >= 0:
        # re-check every near-tie through the engine, on the very document that is written
        scored = []
        for flat in sorted({f for v, f in ties if v <= best[0] * (1 + TIE_RTOL)}):
            doc = S.policy_doc(flat, pol_name)
            pt = _engine_point(table, wl, doc)
            meets = ((minc is None or pt.completion_rate >= minc)
                     and (maxd is None or pt.defect_rate <= maxd)
                     and (maxr is None or pt.review_minutes <= maxr))
            scored.append((not meets, pt.cost_per_completed_task, flat, pt, doc))
        scored.sort(key=lambda x: x[:3])
        _, _, flat, best_point, best_doc = scored[0]
        if abs(best_point.cost_per_completed_task - best[0]) > 1e-9 * max(1.0, abs(best[0])):
            raise RuntimeError(f"vectorised search and engine disagree on the best policy: "
                               f"{best[0]!r} vs {best_point.cost_per_completed_task!r}")
        best_doc["description"] = _describe(best_point, constraints, base.name, S.size)
        best_doc = {k: best_doc[k] for k in ("version", "name", "description", "tiers", "routes",
                                             "escalation", "signals", "handoff")}
    else:
        infeasible = _explain(constraints, agg)

    base_rows = []
    if baselines:
        if S.base_point is not None:
            base_rows.append(S.base_point)
        for m in dict.fromkeys(m for opts in sp.options for m in opts):
            b = _baseline(table, wl, Strategy.single(m))
            if b is not None:
                base_rows.append(b)
    space = {
        "phases": sp.phase_names, "tiers": sp.tier_names,
        "tier_models": {t: opts for t, opts in zip(sp.tier_names, sp.options)},
        "after_failures": list(sp.after), "handoffs": [h.mode for h in sp.handoffs],
        "summary_tokens": sp.handoffs[0].summary_tokens if sp.handoffs else None,
        "summarizer": sp.handoffs[0].summarizer if sp.handoffs else None,
        "signals": "as in the base policy", "fixed_tiers": fixed_tiers,
        "routes_per_config": routes_n, "configs": S.G, "size": S.size,
    }
    return OptimizeResult(
        prices=S.prices_path, prices_as_of=str(table.as_of), workload=S.wl_path,
        workload_name=wl.name, base_policy=base.name,
        base_policy_path=base.doc.file if base.doc else None, space=space,
        constraints=constraints, evaluated=S.size, seconds=time.perf_counter() - t0,
        best=best_point, best_policy=best_doc, infeasible=infeasible,
        frontier_completion=frontier_c, frontier_defect=frontier_d, baselines=base_rows,
        notes=list(S.notes), frontier_all=frontier_a)

