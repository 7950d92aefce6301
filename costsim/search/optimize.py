"""`costsim optimize`: an exact search of routing policies for the cheapest that meets targets.

The space (SPEC.md §3, issue #6), around a *base* policy whose tier names and signals are kept:

* a starting tier for every phase name of the workload (``routes``);
* ``escalation.after_failures`` in 1..3;
* handoff ``summary`` or ``full_history`` (``summary_tokens`` and ``summarizer`` as in the base
  policy, else the workload, else 1500 tokens and the cheapest tier);
* unless ``fixed_tiers``: the model that fills each tier, drawn from the price table's models of
  that tier's class (the price-table ``tier`` of the model the base policy puts there),
  restricted to ``candidates`` if given.

Why it can be exact and fast. Given (handoff, after_failures, tier models) -- a *config* -- the
ladder of one phase in one cell (task type x signal combination) depends only on that phase's own
route: its start tier is §3.1 of (route, the cell's signals); its attempt costs depend on the
model and on the context carried in, which is ``summary_tokens`` (summary) or the transcript of one
attempt of every earlier phase (full_history) -- a function of the phase index, not of any route;
the summarizer call after it depends on the summarizer model, which a config fixes. So for every
(cell, phase, route, config) we compute the phase success ``P``, expected spend ``E_i`` (summarizer
included), the defect contribution ``rho_i`` and, for the review phase, the success-attempt
distribution and catch rates -- from the same tables ``compile_ladders`` builds
(:func:`~costsim.engine.compile.attempt_cost_table`, :func:`~costsim.engine.compile.summary_cost_table`,
:func:`~costsim.engine.compile.success_table`, :func:`~costsim.engine.compile.start_tier`) -- and then combine the
phases of every task type over all route combinations with NumPy broadcasting, exactly as
:func:`costsim.engine.analytic.cell_stats` combines them for one policy: ``R_i = prod_{q<i} P_q``,
``E = sum_i R_i E_i``, ``C = prod_i P_i``, ``noship = sum_k w_rev[k] prod_i (1 - (1 - catch_k)
rho_i)``. Task types only see the routes of their own phases, so their totals are broadcast-summed
onto the full route grid. Every point of the space is evaluated; nothing is pruned. The winner (and
any point within 1e-9 of it) is then re-evaluated through ``compile_ladders`` + ``evaluate`` from
the policy that is written out, and those engine numbers are what is reported.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Iterable, Sequence

import numpy as np

from .. import paths
from ..engine.compile import (Rates, Strategy, _lookup, attempt_cost_table, cells_of, compile_ladders,
                      start_tier, success_table, summary_cost_table)
from ..errors import CostsimError
from ..models import Handoff, Policy, PriceTable, Workload

RESULT_VERSION = 1
DEFAULT_BASE_POLICY = "cheapest-routing.yaml"
AFTER_FAILURES = (1, 2, 3)
HANDOFF_MODES = ("summary", "full_history")
MAX_POLICIES = 500_000_000        # refuse spaces that would take minutes (say so; no silent cut)
TIE_RTOL = 1e-9                   # points this close to the best are re-checked by the engine
_BLOCK = 1 << 21                  # elements per working array in the combine step


# --- result objects ----------------------------------------------------------------------------

@dataclass
class PolicyPoint:
    """One point of the space and its metrics."""

    routes: dict[str, str]
    tiers: dict[str, str]
    after_failures: int
    handoff: str
    cost_per_completed_task: float
    spend_per_task: float
    completion_rate: float
    defect_rate: float
    review_minutes: float

    def label(self) -> str:
        return policy_label(self.tiers, self.routes, self.after_failures, self.handoff)


@dataclass
class Baseline:
    name: str
    kind: str
    cost_per_completed_task: float
    spend_per_task: float
    completion_rate: float
    defect_rate: float
    review_minutes: float


@dataclass
class Infeasible:
    constraint: str          # "min_completion" | "max_defect_rate" | "max_review_minutes"
    target: float
    best_alone: float | None        # best value any policy of the space reaches
    best_with_others: float | None  # best value among policies meeting the other targets
    message: str


@dataclass
class OptimizeResult:
    prices: str
    prices_as_of: str
    workload: str
    workload_name: str
    base_policy: str
    base_policy_path: str | None
    space: dict
    constraints: dict
    evaluated: int
    seconds: float
    best: PolicyPoint | None
    best_policy: dict | None                 # the YAML document of the best policy
    infeasible: list[Infeasible]
    frontier_completion: list[PolicyPoint]   # cost vs completion (other targets enforced)
    frontier_defect: list[PolicyPoint]       # cost vs defect rate (other targets enforced)
    baselines: list[Baseline]
    notes: list[str] = field(default_factory=list)
    frontier_all: list[PolicyPoint] = field(default_factory=list)  # cost vs completion, no target

    @property
    def feasible(self) -> bool:
        return self.best is not None

    def message(self) -> str:
        """One line per constraint that cannot be met (empty when feasible)."""
        return "\n".join(i.message for i in self.infeasible)

    def policy_yaml(self) -> str:
        if self.best_policy is None:
            raise CostsimError("no policy meets the targets; nothing to write\n" + self.message())
        return policy_yaml(self.best_policy, self)

    def write_policy(self, path: str | Path) -> None:
        from ..fsutil import atomic_write

        atomic_write(path, self.policy_yaml())

    def to_dict(self) -> dict:
        return {
            "version": RESULT_VERSION,
            "prices": {"path": self.prices, "as_of": self.prices_as_of},
            "workload": {"path": self.workload, "name": self.workload_name},
            "base_policy": {"name": self.base_policy, "path": self.base_policy_path},
            "space": self.space,
            "constraints": self.constraints,
            "evaluated": self.evaluated,
            "seconds": self.seconds,
            "feasible": self.feasible,
            "best": asdict(self.best) if self.best else None,
            "best_policy": self.best_policy,
            "infeasible": [asdict(i) for i in self.infeasible],
            "frontier_completion": [asdict(p) for p in self.frontier_completion],
            "frontier_defect": [asdict(p) for p in self.frontier_defect],
            "frontier_all": [asdict(p) for p in self.frontier_all],
            "baselines": [asdict(b) for b in self.baselines],
            "notes": list(self.notes),
        }


def policy_label(tiers: dict, routes: dict, after_failures: int, handoff: str) -> str:
    """A compact one-line description: ``budget=m1 ... | search:budget ... | af=2 summary``."""
    short = {t: t[:3] for t in tiers}
    r = " ".join(f"{ph}:{short.get(t, t)}" for ph, t in routes.items() if ph != "default")
    m = " ".join(f"{short[t]}={mid}" for t, mid in tiers.items())
    return f"{m} | {r} | after {after_failures} | {handoff}"


# --- the space ---------------------------------------------------------------------------------

@dataclass
class _Space:
    tier_names: list[str]
    options: list[list[str]]          # per tier slot: candidate model ids
    ids: list[str]                    # every model any config can call
    combos: np.ndarray                # [Mc, T] index into ids
    after: tuple[int, ...]
    handoffs: list[Handoff]
    summ_slot: int | None             # summarizer = the model of this tier slot ...
    summ_fixed: int | None            # ... or this fixed model (index into ids)
    phase_names: list[str]

    @property
    def n_configs(self) -> int:
        return len(self.handoffs) * len(self.after) * len(self.combos)

    def config(self, g: int) -> tuple[int, int, int]:
        """Flat config index -> (handoff index, after_failures index, combo index)."""
        h, rest = divmod(g, len(self.after) * len(self.combos))
        a, mu = divmod(rest, len(self.combos))
        return h, a, mu


def _base_handoff(base: Policy, wl: Workload) -> Handoff:
    if base.handoff is not None and base.handoff.mode == "summary":
        h = base.handoff
    elif wl.handoff.mode == "summary":
        h = wl.handoff
    elif base.handoff is not None:
        h = base.handoff
    else:
        h = wl.handoff
    return Handoff(mode="summary", summary_tokens=h.summary_tokens, summarizer=h.summarizer)


def _evaluable(table: PriceTable, wl: Workload, ids: list[str]) -> dict[str, str]:
    """Models whose success cannot be told for some phase -> the reason (they are skipped)."""
    rates = Rates.from_table(table, ids)
    bad: dict[str, str] = {}
    for t in wl.task_types:
        sigs = t.signals if t.signals is not None else wl.signals
        extras = {0.0}
        for bits in itertools.product((False, True), repeat=len(sigs)):
            extras.add(sum(s.difficulty for s, on in zip(sigs.values(), bits) if on))
        for ph in t.phases:
            for e in extras:
                d = None if ph.difficulty is None else ph.difficulty + e
                p = success_table(rates, ph.success, d, wl.feedback_gain, 1)
                for col in np.flatnonzero(np.isnan(p[0])):
                    bad.setdefault(ids[col], f"cannot tell how often it succeeds at "
                                             f"{t.name}/{ph.phase} (no coding_score)")
    return bad


def _build_space(table: PriceTable, wl: Workload, base: Policy, *, fixed_tiers: bool,
                 candidates: Sequence[str] | None, after: Sequence[int],
                 handoff_modes: Sequence[str], notes: list[str]) -> _Space:
    tier_names = list(base.tiers)
    if candidates:
        for m in candidates:
            if m not in table.models:
                raise CostsimError(f"unknown model '{m}' (not in the price table)",
                                   path="--candidates")
    pool = list(dict.fromkeys(candidates)) if candidates else sorted(table.models)
    if not fixed_tiers:
        bad = _evaluable(table, wl, pool)
        for m, why in bad.items():
            if m not in base.tiers.values():
                notes.append(f"skipped candidate {m}: {why}")
        pool = [m for m in pool if m not in bad or m in base.tiers.values()]
    options = []
    for name in tier_names:
        mid = base.tiers[name]
        if fixed_tiers:
            options.append([mid])
            continue
        cls = table.models[mid].tier
        opts = [m for m in pool if table.models[m].tier == cls]
        if not opts:
            notes.append(f"tier {name}: no candidate of class {cls}; keeping {mid}")
            opts = [mid]
        elif mid in opts:                         # the base model first: ties keep it
            opts.remove(mid)
            opts.insert(0, mid)
        options.append(opts)

    hb = _base_handoff(base, wl)
    s = hb.summarizer
    summ_slot = summ_fixed = None
    ids = list(dict.fromkeys(m for opts in options for m in opts))
    if s is None:
        summ_slot = 0
        hb = Handoff(mode="summary", summary_tokens=hb.summary_tokens, summarizer=tier_names[0])
    elif s in base.tiers:
        summ_slot = tier_names.index(s)
    else:
        if s not in table.models:
            raise CostsimError(f"summarizer '{s}' is neither a tier of policy '{base.name}' nor a "
                               f"model in the price table", path="handoff.summarizer")
        if s not in ids:
            ids.append(s)
        summ_fixed = ids.index(s)
    handoffs = []
    for mode in handoff_modes:
        if mode not in HANDOFF_MODES:
            raise CostsimError(f"unknown handoff mode '{mode}' (modes: summary, full_history)",
                               path="handoffs")
        handoffs.append(Handoff(mode=mode, summary_tokens=hb.summary_tokens,
                                summarizer=hb.summarizer))
    for a in after:
        if int(a) < 1:
            raise CostsimError(f"after_failures must be >= 1, got {a}", path="after_failures")
    combos = np.array([[ids.index(m) for m in c] for c in itertools.product(*options)], int)
    phase_names = list(dict.fromkeys(ph.phase for t in wl.task_types for ph in t.phases))
    return _Space(tier_names=tier_names, options=options, ids=ids,
                  combos=combos.reshape(-1, len(tier_names)), after=tuple(int(a) for a in after),
                  handoffs=handoffs, summ_slot=summ_slot, summ_fixed=summ_fixed,
                  phase_names=phase_names)


# --- per-phase-option quantities ---------------------------------------------------------------

@dataclass
class _TaskTables:
    """Everything one task type contributes, per (cell, phase, route, config)."""

    axes: list[int]            # global phase-name index of each local phase
    w: np.ndarray              # [c] cell weights (task share included)
    P: np.ndarray              # [c, n, T, G] phase success
    E: np.ndarray              # [c, n, T, G] expected phase spend (summarizer included)
    defect_phases: list[int]   # local phase indices that can carry a defect
    rho: np.ndarray            # [c, n, T, G] P(defect | phase succeeded) (0 off defect phases)
    review: int | None         # local index of the review phase
    w_rev: np.ndarray          # [c, T, G, K] success-attempt distribution of review
    surv: np.ndarray           # [c, T, G, K] 1 - catch rate of the review attempt
    rev_rate: np.ndarray | None  # [c, T, G, K] defect rate of the review attempt, if review
                                 # is itself a defect phase (analytic.cell_stats)
    base: np.ndarray           # [c] review minutes base
    per_defect: np.ndarray     # [c]


def _task_tables(table: PriceTable, wl: Workload, base: Policy, sp: _Space,
                 rates: Rates) -> list[_TaskTables]:
    T = len(sp.tier_names)
    A, H, Mc = len(sp.after), len(sp.handoffs), len(sp.combos)
    G = H * A * Mc
    all_cells = cells_of(wl)
    out = []
    for t_idx, t in enumerate(wl.task_types):
        cells = [c for c in all_cells if c.task == t_idx]
        if not cells:
            continue
        K = t.max_attempts or wl.max_attempts
        n = len(t.phases)
        sigs = t.signals if t.signals is not None else wl.signals
        defects = t.defects if t.defects is not None else wl.defects
        # ladder: model index of attempt k for start tier s, after_failures a, combo mu
        k = np.arange(K)
        tier = np.minimum(np.arange(T)[:, None, None] + k[None, None, :]
                          // np.array(sp.after)[None, :, None], T - 1)           # [T, A, K]
        lad = sp.combos[:, tier]                                                 # [Mc, T, A, K]
        lad = lad.transpose(1, 2, 0, 3)                                          # [T, A, Mc, K]
        if sp.summ_fixed is not None:
            summ = np.full(Mc, sp.summ_fixed)
        else:
            summ = sp.combos[:, sp.summ_slot]                                    # [Mc]

        P = np.zeros((len(cells), n, T, G))
        E = np.zeros((len(cells), n, T, G))
        rho = np.zeros((len(cells), n, T, G))
        w_rev = np.zeros((len(cells), T, G, K))
        w_rev[..., 0] = 1.0
        surv = np.ones((len(cells), T, G, K))
        rev_rate = None
        review = None
        defect_phases = []
        p_cache: dict = {}
        prior_full = 0.0
        for i, ph in enumerate(t.phases):
            g = ph.input_tokens + ph.output_tokens
            costs, scosts = [], []
            for h in sp.handoffs:
                summary = h.mode == "summary"
                prior = (h.summary_tokens if i > 0 else 0) if summary else prior_full
                c_, _ = attempt_cost_table(rates, system=wl.system_tokens, prior=prior,
                                           calls=ph.calls, inp=ph.input_tokens,
                                           out=ph.output_tokens, hit=wl.cache_hit_rate,
                                           attempts=K)
                if summary and i < n - 1:
                    s_, _ = summary_cost_table(rates, system=wl.system_tokens, prior=prior,
                                               calls=ph.calls, g=g,
                                               summary_tokens=h.summary_tokens, attempts=K)
                else:
                    s_ = np.zeros((K, len(rates.ids)))
                costs.append(c_[k, lad])                          # [T, A, Mc, K]
                scosts.append(s_[k[None, :], summ[:, None]])      # [Mc, K]
            prior_full += ph.calls * g
            cost = np.stack(costs)                                # [H, T, A, Mc, K]
            scost = np.stack(scosts)[:, None, None]               # [H, 1, 1, Mc, K]
            is_def = defects is not None and ph.phase in defects.phases
            if is_def:
                defect_phases.append(i)
                drate = np.array([_lookup(defects.rate, m, rates.tiers[j])
                                  for j, m in enumerate(rates.ids)])[lad]       # [T, A, Mc, K]
            if ph.phase == "review":
                review = i
                if defects is not None:
                    crate = np.array([_lookup(defects.catch_rate, m, rates.tiers[j])
                                      for j, m in enumerate(rates.ids)])[lad]
                else:
                    crate = np.zeros(lad.shape)
            for ci, cell in enumerate(cells):
                extra = sum(sigs[s].difficulty for s in cell.signals)
                d = None if ph.difficulty is None else ph.difficulty + extra
                key = (i, extra)
                if key not in p_cache:
                    p_cache[key] = success_table(rates, ph.success, d, wl.feedback_gain, K)
                p = p_cache[key][k, lad]                          # [T, A, Mc, K]
                q = 1.0 - p
                F = np.ones_like(p)
                F[..., 1:] = np.cumprod(q[..., :-1], axis=-1)
                Pp = 1.0 - F[..., -1] * q[..., -1]                # [T(start), A, Mc]
                Fp = F * p
                Ep = (F[None] * cost).sum(-1) + (Fp[None] * scost).sum(-1)   # [H, T, A, Mc]
                with np.errstate(invalid="ignore", divide="ignore"):
                    wk = np.where(Pp[..., None] > 0, Fp / Pp[..., None], 0.0)  # [T, A, Mc, K]
                # route r -> start tier in this cell (§3.1, signals as in the base policy)
                starts = [start_tier(SimpleNamespace(tiers=base.tiers, routes={ph.phase: r},
                                                     signals=base.signals),
                                     ph.phase, cell.signals) for r in sp.tier_names]
                P[ci, i] = np.broadcast_to(Pp[starts][None], (H, T, A, Mc)) \
                    .transpose(1, 0, 2, 3).reshape(T, G)
                E[ci, i] = Ep[:, starts].transpose(1, 0, 2, 3).reshape(T, G)
                if is_def:
                    r_ = (wk * drate).sum(-1)[starts]             # [T, A, Mc]
                    rho[ci, i] = np.broadcast_to(r_[None], (H, T, A, Mc)) \
                        .transpose(1, 0, 2, 3).reshape(T, G)
                if ph.phase == "review":
                    w_rev[ci] = np.broadcast_to(wk[starts][None], (H, T, A, Mc, K)) \
                        .transpose(1, 0, 2, 3, 4).reshape(T, G, K)
                    surv[ci] = np.broadcast_to((1.0 - crate)[starts][None], (H, T, A, Mc, K)) \
                        .transpose(1, 0, 2, 3, 4).reshape(T, G, K)
                    if is_def:
                        if rev_rate is None:
                            rev_rate = np.zeros((len(cells), T, G, K))
                        rev_rate[ci] = np.broadcast_to(drate[starts][None], (H, T, A, Mc, K)) \
                            .transpose(1, 0, 2, 3, 4).reshape(T, G, K)
        rm = defects.review_minutes if defects is not None else None
        out.append(_TaskTables(
            axes=[sp.phase_names.index(ph.phase) for ph in t.phases],
            w=np.array([c.weight for c in cells]), P=P, E=E, defect_phases=defect_phases,
            rho=rho, review=review, w_rev=w_rev, surv=surv, rev_rate=rev_rate,
            base=np.full(len(cells), rm.base if rm else 0.0),
            per_defect=np.full(len(cells), rm.per_defect if rm else 0.0)))
    return out


def _combine(tt: _TaskTables, g0: int, g1: int, T: int, N: int):
    """Totals of one task type for configs g0:g1 over every route of the N global phase names.

    Returns (E, C, D, RV) each broadcastable to [g, T, ..., T] (N route axes): expected spend,
    completion, defect mass (C x defect) and review mass (C x review minutes), cell-weighted.
    """
    n = len(tt.axes)
    gch = g1 - g0

    def local(x, i):                      # [c, T, G] -> [c, g] + route axis at local i
        y = x[:, :, g0:g1].transpose(0, 2, 1)
        return y.reshape(y.shape[:2] + (1,) * i + (T,) + (1,) * (n - 1 - i))

    R = None
    E = None
    for i in range(n):
        Ei = local(tt.E[:, i], i)
        E = Ei if R is None else E + R * Ei
        Pi = local(tt.P[:, i], i)
        R = Pi if R is None else R * Pi
    C = R                                                   # [c, g, T...]
    # defects (analytic.cell_stats): noship = sum_k w_rev[k] prod_i (1 - surv[k] rho_i)
    nc = len(tt.w)
    K = tt.w_rev.shape[-1]
    if tt.review is not None:
        shp = (nc, gch) + (1,) * tt.review + (T,) + (1,) * (n - 1 - tt.review) + (K,)
        wr = tt.w_rev[:, :, g0:g1].transpose(0, 2, 1, 3).reshape(shp)
        sv = tt.surv[:, :, g0:g1].transpose(0, 2, 1, 3).reshape(shp)
    else:
        wr = np.zeros((nc, gch) + (1,) * n + (K,))
        wr[..., 0] = 1.0
        sv = np.ones((nc, gch) + (1,) * n + (K,))
    terms = None
    for i in tt.defect_phases:
        if i == tt.review and tt.rev_rate is not None:
            # the review attempt that catches is the one whose own defect rate applies
            rr = tt.rev_rate[:, :, g0:g1].transpose(0, 2, 1, 3).reshape(shp)
            t_ = 1.0 - sv * rr
        else:
            t_ = 1.0 - sv * local(tt.rho[:, i], i)[..., None]
        terms = t_ if terms is None else terms * t_
    # ship = sum_k w_rev[k] (1 - prod_i terms): exactly 0 when nothing can carry a defect
    ship = (wr * (1.0 - terms)).sum(-1) if terms is not None else 0.0 * wr.sum(-1)
    defect = np.clip(np.where(C > 0, ship, 0.0), 0.0, 1.0)
    Cd = C * defect
    wE = np.tensordot(tt.w, E, axes=(0, 0))
    wC = np.tensordot(tt.w, C, axes=(0, 0))
    wD = np.tensordot(tt.w, Cd, axes=(0, 0))
    wR = np.tensordot(tt.w * tt.base, C, axes=(0, 0)) \
        + np.tensordot(tt.w * tt.per_defect, Cd, axes=(0, 0))

    # local phase axes -> global axes (sorted), singleton for phases this task type lacks
    order = np.argsort(tt.axes)
    shape = [gch] + [T if a in tt.axes else 1 for a in range(N)]

    def glob(x):
        x = np.broadcast_to(x, (gch,) + (T,) * n)
        return x.transpose([0] + [1 + o for o in order]).reshape(shape)

    return glob(wE), glob(wC), glob(wD), glob(wR)


# --- frontiers ---------------------------------------------------------------------------------

def _frontier(cost: np.ndarray, good: np.ndarray, sign: float) -> np.ndarray:
    """Indices of the points not dominated in (cost down, sign*good up), cost finite.

    Cost ties keep the best ``good``; equal points keep the first index.
    """
    ok = np.flatnonzero(np.isfinite(cost) & ~np.isnan(good))
    if ok.size == 0:
        return ok
    c, v = cost[ok], sign * good[ok]
    # anchor prune: everything no better than the cheapest point is dominated by it
    a = np.lexsort((-v, c))[0]
    keep = (v > v[a]) | (np.arange(ok.size) == a)
    ok, c, v = ok[keep], c[keep], v[keep]
    idx = np.lexsort((np.arange(ok.size), -v, c))
    v_sorted = v[idx]
    best_before = np.maximum.accumulate(np.concatenate(([-np.inf], v_sorted[:-1])))
    return ok[idx[v_sorted > best_before]]


def _weakly_dominated(cost, good, a_cost, a_good) -> np.ndarray:
    """Points (cost, good) that some anchor matches or beats on both (anchors sorted by cost)."""
    if a_cost.size == 0:
        return np.zeros(cost.shape, bool)
    pm = np.maximum.accumulate(a_good)
    pos = np.searchsorted(a_cost, cost, side="right")
    out = np.zeros(cost.shape, bool)
    has = pos > 0
    out[has] = pm[pos[has] - 1] >= good[has]
    return out


def _chunk_frontier(cost, good, sign, anchors) -> np.ndarray:
    """Candidate frontier indices of one chunk. ``anchors`` = (cost, sign*good) of frontier
    points found so far (sorted by cost): points they weakly dominate cannot be on the final
    frontier, nor can points the chunk's own sub-sample frontier dominates."""
    ok = np.flatnonzero(np.isfinite(cost) & ~np.isnan(good))
    if ok.size == 0:
        return ok
    c, v = cost[ok], sign * good[ok]
    sub = _frontier(c[::61], v[::61], 1.0)
    sub_i = np.arange(0, ok.size, 61)[sub]
    order = np.argsort(c[sub_i], kind="stable")
    a_c = np.concatenate([anchors[0], c[sub_i][order]])
    a_v = np.concatenate([anchors[1], v[sub_i][order]])
    o2 = np.argsort(a_c, kind="stable")
    drop = _weakly_dominated(c, v, a_c[o2], a_v[o2])
    drop[sub_i] = False
    rest = np.flatnonzero(~drop)
    return ok[rest[_frontier(c[rest], v[rest], 1.0)]]


# --- the search --------------------------------------------------------------------------------

def _resolve_base(policy) -> Policy:
    from ..loader import load_policy

    if policy is None:
        return load_policy(paths.bundled_dir("policies") / DEFAULT_BASE_POLICY)
    if isinstance(policy, Policy):
        return policy
    return load_policy(policy)


def search_space_size(sp: _Space) -> int:
    return sp.n_configs * len(sp.tier_names) ** len(sp.phase_names)


def build_policy(sp: _Space, base: Policy, g: int, route: Sequence[int], name: str,
                 description: str | None = None) -> dict:
    """The YAML document of config g with routes ``route`` (tier index per phase name)."""
    h, a, mu = sp.config(g)
    tiers = {t: sp.ids[m] for t, m in zip(sp.tier_names, sp.combos[mu])}
    routes: dict[str, str] = {}
    if "default" in base.routes:
        routes["default"] = base.routes["default"]
    for ph, r in zip(sp.phase_names, route):
        routes[ph] = sp.tier_names[int(r)]
    signals = {}
    for sname, sig in base.signals.items():
        d: dict = {}
        if sig.min_tier is not None:
            d["min_tier"] = sig.min_tier
        if sig.raise_:
            d["raise"] = sig.raise_
        if sig.phases is not None:
            d["phases"] = list(sig.phases)
        signals[sname] = d
    ho = sp.handoffs[h]
    doc = {"version": 1, "name": name}
    if description:
        doc["description"] = description
    doc.update({"tiers": tiers, "routes": routes,
                "escalation": {"after_failures": sp.after[a]},
                "signals": signals,
                "handoff": {"mode": ho.mode, "summary_tokens": ho.summary_tokens,
                            "summarizer": ho.summarizer}})
    return doc


def policy_from_doc(doc: dict) -> Policy:
    from ..loader import check_policy

    pol = Policy.model_validate(doc)
    check_policy(pol)
    return pol


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


def target_phrases(constraints: dict) -> dict[str, str]:
    """The targets that are set, keyed by constraint name, in words."""
    words = {"min_completion": "completion >= {:g}", "max_defect_rate": "defect rate <= {:g}",
             "max_review_minutes": "review minutes <= {:g}"}
    return {k: w.format(constraints[k]) for k, w in words.items()
            if constraints.get(k) is not None}


def _describe(pt: PolicyPoint, constraints: dict, base: str, evaluated: int) -> str:
    targets = list(target_phrases(constraints).values())
    return (f"Found by `costsim optimize` around {base}: the lowest cost per completed task "
            f"(${pt.cost_per_completed_task:.4f}) of {evaluated:,} policies"
            + (f" meeting {', '.join(targets)}" if targets else "")
            + f"; completion {pt.completion_rate:.4%}, defect rate {pt.defect_rate:.4%}.")


_LABELS = {"min_completion": ("completion", ">=", "comp"),
           "max_defect_rate": ("defect rate", "<=", "defect"),
           "max_review_minutes": ("review minutes", "<=", "review")}


def _explain(constraints: dict, agg: dict) -> list[Infeasible]:
    out = []
    given = [k for k, v in constraints.items() if v is not None]
    for key in given:
        what, op, a = _LABELS[key]
        target = constraints[key]
        alone, others = agg[a], agg[a + "_o"]
        alone = None if math.isinf(alone) else alone
        others = None if math.isinf(others) else others

        def met(v):
            return v is not None and (v >= target if op == ">=" else v <= target)

        fmt = (lambda v: f"{v:.6g}") if key != "max_review_minutes" else (lambda v: f"{v:.4g}")
        if not met(alone):
            msg = (f"{what} {op} {target:g} cannot be met: the best any policy of the space "
                   f"reaches is {fmt(alone)}" if alone is not None
                   else f"{what} {op} {target:g} cannot be met: no policy of the space completes")
        elif not met(others):
            rest = [f"{_LABELS[k][0]} {_LABELS[k][1]} {constraints[k]:g}" for k in given
                    if k != key]
            msg = (f"{what} {op} {target:g} cannot be met together with {' and '.join(rest)}: "
                   + (f"the best {what} among policies meeting those is {fmt(others)}"
                      if others is not None else "no policy meets those")
                   + f" (alone, {fmt(alone)} is reachable)")
        else:
            continue
        out.append(Infeasible(constraint=key, target=target, best_alone=alone,
                              best_with_others=others, message=msg))
    if not out:
        out.append(Infeasible(constraint="completion", target=0.0, best_alone=None,
                              best_with_others=None,
                              message="no policy of the space ever completes a task"))
    return out


def policy_yaml(doc: dict, result: OptimizeResult | None = None) -> str:
    """The policy as YAML that ``costsim.loader.load_policy`` reads back unchanged."""
    import yaml

    head = ["# Written by `costsim optimize`."]
    if result is not None:
        head.append(f"# prices: {result.prices} (as of {result.prices_as_of}); "
                    f"workload: {result.workload}")
    body = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=100,
                          allow_unicode=True)
    return "\n".join(head) + "\n" + body
