"""Vectorised tables of `costsim optimize`: every phase option once, combined by broadcasting.

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
onto the full route grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from ..engine.compile import (Rates, _lookup, attempt_cost_table, cells_of, start_tier,
                              success_table, summary_cost_table)
from ..models import Policy, PriceTable, Workload
from .space import _Space


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

