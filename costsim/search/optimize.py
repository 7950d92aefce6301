"""`costsim optimize`: an exact search of routing policies for the cheapest that meets targets.

The space is described in :mod:`costsim.search.space`, the exact vectorised evaluation in
:mod:`costsim.search.tables`, the frontiers in :mod:`costsim.search.frontier` and the result
objects in :mod:`costsim.search.result`. This module prepares a search (:class:`Search`) and runs
it (:func:`optimize`).

Every point of the space is evaluated (only models another candidate provably dominates are left
out of it, see :func:`costsim.search.space.dominated`). Beside the searched policies, the given
policies and the single-model strategies of the space's models are candidates too, evaluated by
the engine: a team should never be handed a routing policy dearer than a single model that meets
the same targets. The winner (and any searched point within 1e-9 of it) is re-evaluated through
``compile_ladders`` + ``evaluate`` from the policy that is written out, and those engine numbers
are what is reported.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from .. import paths
from ..engine.compile import Rates, Strategy, compile_ladders
from ..errors import CostsimError
from ..models import Policy
from .frontier import _chunk_frontier, _frontier
from .result import (RESULT_VERSION, Baseline, Infeasible, OptimizeResult, PolicyPoint,  # noqa: F401
                     _describe, _explain, policy_label, policy_yaml, target_phrases)
from .space import (AFTER_FAILURES, HANDOFF_MODES, Space, build_policy, plan_space,  # noqa: F401
                    policy_from_doc, search_space_size, single_policy_doc)
from .tables import _combine, blas_one_thread, prepare, table_elements, task_tables

DEFAULT_BASE_POLICY = "cheapest-routing.yaml"
# Refuse spaces that would take more than about a minute (say so, and how to narrow it; never a
# silent cut). At the measured 1-4 million policies/s this is 15-60 s; --max-policies raises it.
MAX_POLICIES = 60_000_000
TIE_RTOL = 1e-9                   # points this close to the best are re-checked by the engine
_BLOCK = 1 << 19                  # elements per working array (4 MiB; see Search.__init__)
_TABLE_BLOCK = 1 << 23            # elements of the per-phase tables built at once
_BATCH = 1 << 17                  # policies the optimizer checks against targets at once


# --- the search --------------------------------------------------------------------------------

def _resolve_policies(policy) -> list[Policy]:
    """``policy``: None (the bundled base), a path or Policy, or a sequence of them (the first
    is the base)."""
    from ..api import _as_policies

    if policy is None:
        return _as_policies([paths.bundled_dir("policies") / DEFAULT_BASE_POLICY])
    items = list(policy) if isinstance(policy, (list, tuple)) else [policy]
    if not items:
        return _resolve_policies(None)
    return _as_policies(items)      # paths, bundled names, folders; names must differ


def _resolve_base(policy) -> Policy:
    return _resolve_policies(policy)[0]


def _engine_point(table, wl, doc: dict, kind: str = "searched") -> PolicyPoint:
    """compile_ladders + evaluate on the policy document itself."""
    from ..engine.analytic import evaluate

    pol = policy_from_doc(doc)
    m = evaluate(compile_ladders(table, Strategy.routed(pol), wl))
    return PolicyPoint(routes={k: v for k, v in doc["routes"].items() if k != "default"},
                       tiers=dict(doc["tiers"]), after_failures=doc["escalation"]["after_failures"],
                       handoff=(doc.get("handoff") or wl.handoff.model_dump())["mode"],
                       cost_per_completed_task=m.cost_per_completed_task,
                       spend_per_task=m.spend_per_task, completion_rate=m.completion_rate,
                       defect_rate=m.defect_rate, review_minutes=m.review_minutes,
                       name=doc["name"], kind=kind)


def _baseline(table, wl, strategy: Strategy, source: str | None = None) -> Baseline | None:
    from ..engine.analytic import evaluate

    try:
        m = evaluate(compile_ladders(table, strategy, wl))
    except CostsimError:
        return None
    return Baseline(name=strategy.name, kind=strategy.kind,
                    cost_per_completed_task=m.cost_per_completed_task,
                    spend_per_task=m.spend_per_task, completion_rate=m.completion_rate,
                    defect_rate=m.defect_rate, review_minutes=m.review_minutes, source=source,
                    model=strategy.model)


@dataclass
class Block:
    """Metrics of a block of the space: configs g0..g1-1 x routes r0..r0+nr-1, as [g, nr]
    arrays of expected spend, completion, defect mass and review mass (cell-weighted)."""

    g0: int
    g1: int
    r0: int
    nr: int
    routes_n: int
    E: np.ndarray
    C: np.ndarray
    D: np.ndarray
    RV: np.ndarray

    def flat(self, x):
        """Local raveled index (int or array) -> flat index of the space
        (config * routes_n + route)."""
        g, r = np.divmod(x, self.nr)
        return (self.g0 + g) * self.routes_n + self.r0 + r


class Search:
    """The prepared space: per-phase tables of every model and the chunked combine step.

    ``Search(...).grid()`` returns the metrics of every point (tests, benchmarks);
    :func:`optimize` streams :meth:`blocks` instead so memory stays flat. The size of the space
    is known (and checked against ``max_policies``) before any model combination is built.
    """

    def __init__(self, prices=None, policy=None, workload=None, *, fixed_tiers: bool = False,
                 candidates: Iterable[str] | None = None,
                 after_failures: Sequence[int] = AFTER_FAILURES,
                 handoffs: Sequence[str] = HANDOFF_MODES, max_policies: int = MAX_POLICIES,
                 prune: bool = True):
        from ..api import _as_prices, _as_workload
        from ..loader import check_policy_against, check_workload_against

        self.table, self.prices_path = _as_prices(prices)
        self.wl, self.wl_path = _as_workload(workload)
        self.policies = _resolve_policies(policy)
        self.base = self.policies[0]
        check_workload_against(self.wl, self.table)
        for p in self.policies:
            check_policy_against(p, self.table, self.wl)
        from ..api import price_warnings
        from ..loader import policy_warnings

        self.notes: list[str] = price_warnings(self.table) + [
            w for p in self.policies for w in policy_warnings(p, self.wl)]
        self.base_point = _baseline(self.table, self.wl, Strategy.routed(self.base),
                                    source=self.base.doc.file if self.base.doc else None)
        if self.base_point is None:            # re-raise the engine's own message
            compile_ladders(self.table, Strategy.routed(self.base), self.wl)
        self.sp, self.profile = plan_space(
            self.table, self.wl, self.base, fixed_tiers=fixed_tiers,
            candidates=list(candidates) if candidates else None, after=after_failures,
            handoff_modes=handoffs, notes=self.notes, prune=prune)
        sp = self.sp
        self.T, self.N = len(sp.tier_names), len(sp.phase_names)
        self.routes_n = sp.routes_n
        self.size = sp.size
        if self.size > max_policies:
            per = "; ".join(f"{t} {len(o):,}" for t, o in zip(sp.tier_names, sp.options))
            raise CostsimError(
                f"the search space has {_count(self.size)} policies, more than the "
                f"{max_policies:,} searched at most ({len(sp.phase_names)} phases x "
                f"{self.T} tiers, models per tier: {per}); narrow it with --candidates "
                f"M1,M2,... or --fixed-tiers, or raise --max-policies", path="optimize")
        self.G = sp.n_configs
        self.rates = Rates.from_table(self.table, sp.ids)
        self.prep = prepare(self.table, self.wl, self.base, sp, self.rates)
        # where the engine's quadrature rule depends on each policy's own long-context steps,
        # the search integrates on one rule for all: it agrees with the engine to the rules'
        # accuracy instead of the last digits (the winner is re-evaluated by the engine anyway)
        self.approx = any(tp.approx for tp in self.prep)
        H, A = len(sp.handoffs), len(sp.after)
        per_combo = sum(table_elements(tp, self.T, H, A) for tp in self.prep)
        self.mch = max(1, min(sp.n_combos, _TABLE_BLOCK // max(per_combo, 1)))
        # fix the routes of the first few phases when one config's route grid is too large
        # (_BLOCK: with a fixed phase every block rebuilds the other phases' grids, so a 4 MiB
        # block that needs none fixed beat 2 MiB ones by 1.4x with 80 nodes a cell)
        self.nfix = 0
        while self.nfix < self.N and self._per_config(self.nfix) > _BLOCK:
            self.nfix += 1
        self.gch = max(1, _BLOCK // self._per_config(self.nfix))

    def _per_config(self, nfix: int) -> int:
        """Largest working array per config when the first ``nfix`` phase routes are fixed: the
        route grid, a task type's own grid, or its per-cell factor grids (tables.py)."""
        sizes = [self.T ** (self.N - nfix)]
        for tp in self.prep:
            free = sum(1 for a in tp.axes if a >= nfix)
            half = max(free - max(1, tp.n // 2), max(1, tp.n // 2))
            sizes += [2 * len(tp.variants) * self.T ** free,
                      tp.rank * self.T ** min(free, half) * 3]
        return max(sizes)

    def blocks(self, threads: int | None = None):
        """Yield :class:`Block` s covering the whole space, each point once, in flat order
        within a block, in the same order whatever ``threads`` is.

        Chunks of model combinations are computed on ``threads`` threads (default: up to 2,
        the cores NumPy's loops can use while they release the GIL), a couple of chunks ahead
        of the consumer. BLAS runs on one thread meanwhile (its products are small; its own
        threads would compete with these)."""
        with blas_one_thread():
            yield from self._blocks(threads)

    def _blocks(self, threads: int | None):
        nthreads = threads if threads is not None else min(2, os.cpu_count() or 1)
        starts = range(0, self.sp.n_combos, self.mch)
        if nthreads <= 1 or len(starts) <= 1:
            for mu0 in starts:
                yield from self._chunk_blocks(mu0)
            return
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=nthreads) as pool:
            ahead: deque = deque()
            it = iter(starts)
            for mu0 in it:
                ahead.append(pool.submit(self._chunk_blocks_list, mu0))
                if len(ahead) >= 2 * nthreads:
                    break
            while ahead:
                blocks = ahead.popleft().result()
                nxt = next(it, None)
                if nxt is not None:
                    ahead.append(pool.submit(self._chunk_blocks_list, nxt))
                yield from blocks

    def batches(self, points: int = _BATCH, threads: int | None = None):
        """:meth:`blocks` merged into runs of consecutive configs over the same routes, of about
        ``points`` policies each: what the consumer does per block (targets, frontiers) then
        costs the same whatever the block size the combine step prefers."""
        run: list[Block] = []

        def merged() -> Block:
            if len(run) == 1:
                return run[0]
            b0 = run[0]
            return Block(g0=b0.g0, g1=run[-1].g1, r0=b0.r0, nr=b0.nr, routes_n=b0.routes_n,
                         **{k: np.concatenate([getattr(b, k) for b in run])
                            for k in ("E", "C", "D", "RV")})

        size = 0
        for b in self.blocks(threads):
            if run and (b.r0 != run[0].r0 or b.g0 != run[-1].g1 or size + b.E.size > points):
                yield merged()
                run, size = [], 0
            run.append(b)
            size += b.E.size
        if run:
            yield merged()

    def _chunk_blocks_list(self, mu0: int) -> list["Block"]:
        return list(self._chunk_blocks(mu0))

    def _chunk_blocks(self, mu0: int):
        """The blocks of the chunk of model combinations starting at ``mu0``."""
        T, N, sp = self.T, self.N, self.sp
        HA = len(sp.handoffs) * len(sp.after)
        nfix = self.nfix
        nr = T ** (N - nfix)
        mu1 = min(sp.n_combos, mu0 + self.mch)
        combos = sp.combos(mu0, mu1)
        tts = [task_tables(tp, sp, combos) for tp in self.prep]
        Gc = (mu1 - mu0) * HA
        for fixed in np.ndindex(*(T,) * nfix):
            r0 = int(np.ravel_multi_index(fixed, (T,) * nfix)) * nr if nfix else 0
            for c0 in range(0, Gc, self.gch):
                c1 = min(Gc, c0 + self.gch)
                acc = [0.0, 0.0, 0.0, 0.0]
                for tt in tts:
                    for x, v in enumerate(_combine(tt, c0, c1, T, N, fixed)):
                        acc[x] = acc[x] + v
                full = (c1 - c0,) + (1,) * nfix + (T,) * (N - nfix)
                E, C, D, RV = (np.broadcast_to(a, full).reshape(c1 - c0, nr) for a in acc)
                yield Block(g0=mu0 * HA + c0, g1=mu0 * HA + c1, r0=r0, nr=nr,
                            routes_n=self.routes_n, E=E, C=C, D=D, RV=RV)

    def chunks(self):
        """Yield ``(g0, E, C, D, RV)`` with [configs, routes] arrays covering whole configs
        (kept for callers of the first version; only when no route is fixed)."""
        if self.nfix:
            raise ValueError("route grid split into blocks: use blocks()")
        for b in self.blocks():
            yield b.g0, b.E, b.C, b.D, b.RV

    @staticmethod
    def metrics(E, C, D, RV):
        """cost per completed task, defect rate, review minutes (SPEC §3.4 ratios)."""
        live = C > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            return (np.where(live, E / C, np.inf), np.where(live, D / C, 0.0),
                    np.where(live, RV / C, 0.0))

    def grid(self) -> dict:
        """Every point at once: arrays [configs * routes] (flat index = config * routes + r)."""
        out = {k: np.empty(self.size) for k in ("spend", "completion", "cost", "defect",
                                                 "review")}
        for b in self.blocks():
            cp, dr, rv = self.metrics(b.E, b.C, b.D, b.RV)
            at = b.flat(np.arange(b.E.size))
            for k, v in zip(out, (b.E, b.C, cp, dr, rv)):
                out[k][at] = v.ravel()
        return out

    def point(self, flat: int) -> tuple[int, tuple[int, ...]]:
        g, r = divmod(int(flat), self.routes_n)
        route = tuple(int(x) for x in np.unravel_index(r, (self.T,) * self.N)) if self.N else ()
        return g, route

    def policy_doc(self, flat: int, name: str = "candidate", description: str | None = None):
        g, route = self.point(flat)
        return build_policy(self.sp, self.base, g, route, name, description)

    def candidate_strategies(self) -> list[tuple[Strategy, str | None]]:
        """The given policies, then single:M for every model the space can put in a tier."""
        out: list[tuple[Strategy, str | None]] = [
            (Strategy.routed(p), p.doc.file if p.doc else None) for p in self.policies]
        for m in dict.fromkeys(m for opts in self.sp.options for m in opts):
            out.append((Strategy.single(m), None))
        return out


def _count(n: int) -> str:
    return f"{n:,}" if n < 10 ** 15 else f"{n:.3g}".replace("e+", "e")


def _meets(x, minc, maxd, maxr) -> bool:
    return (x.completion_rate > 0
            and (minc is None or x.completion_rate >= minc)
            and (maxd is None or x.defect_rate <= maxd)
            and (maxr is None or x.review_minutes <= maxr))


def optimize(prices=None, policy=None, workload=None, *, fixed_tiers: bool = False,
             candidates: Iterable[str] | None = None, min_completion: float | None = None,
             max_defect_rate: float | None = None, max_review_minutes: float | None = None,
             after_failures: Sequence[int] = AFTER_FAILURES,
             handoffs: Sequence[str] = HANDOFF_MODES, name: str | None = None,
             max_policies: int = MAX_POLICIES, baselines: bool = True,
             prune: bool = True) -> OptimizeResult:
    """Search routing policies around ``policy`` for the lowest cost per completed task that
    meets ``min_completion``, ``max_defect_rate`` and ``max_review_minutes`` (each optional).

    ``prices``/``workload``: a path, a loaded model, or None for the defaults. ``policy``: the
    same, or a list whose first item is the *base* policy the space is built around (default:
    the bundled ``cheapest-routing``). With ``baselines`` (the default) every given policy and
    every single-model strategy of the space's models competes too, and wins when it is the
    cheapest that meets the targets (``result.best_kind`` says which kind won). ``prune=False``
    keeps the models another candidate dominates in the space (same numbers, larger space). The
    result
    carries the best policy (``result.best_policy``, written by ``result.write_policy(path)``),
    or, when nothing meets the targets, ``result.infeasible`` saying which target fails and the
    best value reachable.
    """
    t0 = time.perf_counter()
    for label, v, lo, hi in (("--min-completion", min_completion, 0, 1),
                             ("--max-defect-rate", max_defect_rate, 0, 1),
                             ("--max-review-minutes", max_review_minutes, 0, math.inf)):
        if v is not None and (math.isnan(v) or not lo <= v <= hi):
            raise CostsimError(f"must be between {lo:g} and {hi:g}, got {v:g}", path=label)
    if max_policies < 1:
        raise CostsimError(f"must be at least 1, got {max_policies}", path="--max-policies")
    S = Search(prices, policy, workload, fixed_tiers=fixed_tiers, candidates=candidates,
               after_failures=after_failures, handoffs=handoffs, max_policies=max_policies,
               prune=prune)
    table, wl, base, sp = S.table, S.wl, S.base, S.sp

    minc, maxd, maxr = min_completion, max_defect_rate, max_review_minutes
    best = (math.inf, -1)
    ties: list[tuple[float, int]] = []
    agg = {"comp": -math.inf, "defect": math.inf, "review": math.inf,
           "comp_o": -math.inf, "defect_o": math.inf, "review_o": math.inf}
    fr_c: list[tuple] = []
    fr_d: list[tuple] = []
    fr_a: list[tuple] = []
    limit = [256, 256, 256]
    for b in S.batches():
        E, C = b.E, b.C
        live = C > 0
        cpct, dr, rvm = S.metrics(E, C, b.D, b.RV)
        ok_c = ((C >= minc) & live) if minc is not None else live
        ok_d = ((dr <= maxd) & live) if maxd is not None else live
        ok_r = ((rvm <= maxr) & live) if maxr is not None else live
        feas = ok_c & ok_d & ok_r
        obj = np.where(feas, cpct, np.inf).ravel()
        j = int(np.argmin(obj))
        if obj[j] < math.inf:
            near = np.flatnonzero(obj <= obj[j] * (1 + TIE_RTOL))[:20]
            ties += [(float(obj[x]), int(b.flat(int(x)))) for x in near]
            if obj[j] < best[0]:
                best = (float(obj[j]), int(b.flat(j)))
        _aggregate(agg, live, C, dr, rvm, ok_c, ok_d, ok_r)
        # frontiers, each with the other targets enforced
        for si, (store, mask, vals, sign, col) in enumerate(((fr_c, ok_d & ok_r, C, 1.0, 1),
                                                             (fr_d, ok_c & ok_r, dr, -1.0, 2),
                                                             (fr_a, live, C, 1.0, 1))):
            if store:
                rows = sorted(store)
                anchors = (np.array([r[0] for r in rows]), sign * np.array([r[col] for r in rows]))
            else:
                anchors = (np.zeros(0), np.zeros(0))
            idx = _chunk_frontier(np.where(mask, cpct, np.inf).ravel(), vals.ravel(), sign,
                                  anchors)
            store += [(float(cpct.flat[x]), float(C.flat[x]), float(dr.flat[x]),
                       float(rvm.flat[x]), float(E.flat[x]), int(b.flat(int(x)))) for x in idx]
            if len(store) > limit[si]:     # keep the running set small (it is sorted for
                keep = _frontier(np.array([r[0] for r in store]),       # every block)
                                 np.array([r[col] for r in store]), sign)
                store[:] = [store[i] for i in sorted(keep)]
                limit[si] = max(256, 2 * len(store))

    constraints = {"min_completion": minc, "max_defect_rate": maxd,
                   "max_review_minutes": maxr}
    pol_name = name or f"{base.name}-optimized"

    # the other candidates: the given policies and the single models, through the engine
    cands: list[Baseline] = []
    if baselines:
        for strat, source in S.candidate_strategies():
            row = S.base_point if strat.kind == "routed" and strat.policy is base \
                else _baseline(table, wl, strat, source)
            if row is not None:
                row.meets_targets = _meets(row, minc, maxd, maxr)
                cands.append(row)
    for i, row in enumerate(cands):             # into the frontiers, as negative flat indices
        live = row.completion_rate > 0
        ok_c = live and (minc is None or row.completion_rate >= minc)
        ok_d = live and (maxd is None or row.defect_rate <= maxd)
        ok_r = live and (maxr is None or row.review_minutes <= maxr)
        tup = (row.cost_per_completed_task, row.completion_rate, row.defect_rate,
               row.review_minutes, row.spend_per_task, -1 - i)
        for store, ok in ((fr_c, ok_d and ok_r), (fr_d, ok_c and ok_r), (fr_a, live)):
            if ok:
                store.insert(0, tup)        # first: exact ties keep the named candidate
        one = np.array([row.completion_rate])
        _aggregate(agg, one > 0, one, np.array([row.defect_rate]),
                   np.array([row.review_minutes]), np.array([ok_c]), np.array([ok_d]),
                   np.array([ok_r]))

    def point_of(row) -> PolicyPoint:
        cp, c, d, rv, e, flat = row
        if flat < 0:
            x = cands[-1 - flat]
            return PolicyPoint(routes={}, tiers={}, after_failures=0, handoff="",
                               cost_per_completed_task=cp, spend_per_task=e, completion_rate=c,
                               defect_rate=d, review_minutes=rv, name=x.name, kind=x.kind)
        doc = S.policy_doc(flat)
        return PolicyPoint(routes={k: v for k, v in doc["routes"].items() if k != "default"},
                           tiers=doc["tiers"], after_failures=doc["escalation"]["after_failures"],
                           handoff=doc["handoff"]["mode"], cost_per_completed_task=cp,
                           spend_per_task=e, completion_rate=c, defect_rate=d, review_minutes=rv)

    def merge(rows, col, sign):
        if not rows:
            return []
        idx = _frontier(np.array([r[0] for r in rows]), np.array([r[col] for r in rows]), sign)
        # cost ties: a named candidate (negative index) before a searched point
        return [point_of(rows[i]) for i in sorted(idx, key=lambda i: (rows[i][0], rows[i][5]))]

    frontier_c = merge(fr_c, 1, 1.0)
    frontier_d = merge(fr_d, 2, -1.0)
    frontier_a = merge(fr_a, 1, 1.0)

    searched_point = searched_doc = None
    if best[1] >= 0:
        # re-check every near-tie through the engine, on the very document that is written
        scored = []
        for flat in sorted({f for v, f in ties if v <= best[0] * (1 + TIE_RTOL)}):
            doc = S.policy_doc(flat, pol_name)
            pt = _engine_point(table, wl, doc)
            scored.append((not _meets(pt, minc, maxd, maxr), pt.cost_per_completed_task, flat,
                           pt, doc))
        scored.sort(key=lambda x: x[:3])
        _, _, flat, searched_point, searched_doc = scored[0]
        tol = 1e-6 if S.approx else 1e-9
        if abs(searched_point.cost_per_completed_task - best[0]) > tol * max(1.0, abs(best[0])):
            raise RuntimeError(f"vectorised search and engine disagree on the best policy: "
                               f"{best[0]!r} vs {searched_point.cost_per_completed_task!r}")

    # the winner: the cheapest meeting the targets; a named candidate wins ties (simpler)
    best_cand = min((c for c in cands if c.meets_targets),
                    key=lambda c: (c.cost_per_completed_task, c.kind != "single"), default=None)
    best_point = best_doc = None
    best_kind = best_name = None
    if best_cand is not None and (searched_point is None or best_cand.cost_per_completed_task
                                  <= searched_point.cost_per_completed_task * (1 + TIE_RTOL)):
        if best_cand.kind == "single":
            best_doc = single_policy_doc(table, wl, best_cand.model, pol_name)
            best_kind = "single"
        else:
            given = next(p for p in S.policies if p.name == best_cand.name)
            best_doc = _given_doc(given, pol_name)
            best_kind = "policy"
        best_point = _engine_point(table, wl, best_doc, kind=best_kind)
        best_name = best_cand.name
    elif searched_point is not None:
        best_point, best_doc, best_kind = searched_point, searched_doc, "searched"
        best_name = pol_name
    infeasible: list[Infeasible] = []
    if best_point is not None:
        best_doc["description"] = _describe(best_point, constraints, base.name, S.size,
                                            best_kind, best_name, searched_point)
        best_doc = {k: best_doc[k] for k in ("version", "name", "description", "tiers", "routes",
                                             "escalation", "signals", "handoff") if k in best_doc}
    else:
        infeasible = _explain(constraints, agg)

    space = {
        "phases": sp.phase_names, "tiers": sp.tier_names,
        "tier_models": {t: opts for t, opts in zip(sp.tier_names, sp.options)},
        "after_failures": list(sp.after), "handoffs": [h.mode for h in sp.handoffs],
        "summary_tokens": sp.handoffs[0].summary_tokens if sp.handoffs else None,
        "summarizer": sp.handoffs[0].summarizer if sp.handoffs else None,
        "signals": "as in the base policy", "fixed_tiers": fixed_tiers,
        "routes_per_config": S.routes_n, "configs": S.G, "size": S.size,
    }
    for x in [best_point, searched_point, *cands, *frontier_c, *frontier_d, *frontier_a]:
        if x is not None:
            x.monthly_spend = x.spend_per_task * wl.monthly_tasks
    return OptimizeResult(
        prices=S.prices_path, prices_as_of=str(table.as_of), workload=S.wl_path,
        workload_name=wl.name, base_policy=base.name,
        base_policy_path=base.doc.file if base.doc else None, space=space,
        constraints=constraints, evaluated=S.size, seconds=time.perf_counter() - t0,
        best=best_point, best_policy=best_doc, infeasible=infeasible,
        frontier_completion=frontier_c, frontier_defect=frontier_d, baselines=cands,
        notes=list(S.notes), frontier_all=frontier_a, best_kind=best_kind,
        best_name=best_name, best_searched=searched_point,
        policies=[p.name for p in S.policies], tasks_per_month=wl.monthly_tasks)


def _aggregate(agg, live, C, dr, rvm, ok_c, ok_d, ok_r) -> None:
    """Best reachable values, alone and with the other targets met (for infeasible messages)."""
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


def _given_doc(pol: Policy, name: str) -> dict:
    """A given policy as a document under the written name (everything else unchanged)."""
    doc = pol.model_dump(by_alias=True, exclude_none=True)
    doc["name"] = name
    doc.pop("description", None)
    return doc
