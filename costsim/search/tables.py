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
from .space import Space


@dataclass
class _PhasePrep:
    """One phase of one task type, for every model: what no config choice changes."""

    name: str
    cost: list[np.ndarray]         # per handoff: attempt cost [K, M]
    scost: list[np.ndarray]        # per handoff: summarizer cost after success at k [K, M]
    p: np.ndarray                  # [c, K, M] success of every attempt by every model
    starts: np.ndarray             # [c, T] start tier of each route (signals of the base)
    is_defect: bool
    is_review: bool


@dataclass
class TaskPrep:
    """One task type: its cells and phases, prepared once per search."""

    axes: list[int]                # global phase-name index of each local phase
    K: int
    w: np.ndarray                  # [c] cell weights (task share included)
    phases: list[_PhasePrep]
    drate: np.ndarray              # [M] defect rate of each model (0 without a defects block)
    crate: np.ndarray              # [M] catch rate of each model
    base: np.ndarray               # [c] review minutes base
    per_defect: np.ndarray         # [c]

    @property
    def n(self) -> int:
        return len(self.phases)


def prepare(table: PriceTable, wl: Workload, base: Policy, sp: Space,
            rates: Rates) -> list[TaskPrep]:
    """Per-phase cost and success tables of every model (they depend on no config choice)."""
    M = len(rates.ids)
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
        if defects is not None:
            drate = np.array([_lookup(defects.rate, m, rates.tiers[j])
                              for j, m in enumerate(rates.ids)])
            crate = np.array([_lookup(defects.catch_rate, m, rates.tiers[j])
                              for j, m in enumerate(rates.ids)])
        else:
            drate, crate = np.zeros(M), np.zeros(M)
        phases = []
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
                    s_ = np.zeros((K, M))
                costs.append(c_)
                scosts.append(s_)
            prior_full += ph.calls * g
            ps, starts = [], []
            for cell in cells:
                extra = sum(sigs[s].difficulty for s in cell.signals)
                d = None if ph.difficulty is None else ph.difficulty + extra
                if (i, extra) not in p_cache:
                    p_cache[(i, extra)] = success_table(rates, ph.success, d, wl.feedback_gain, K)
                ps.append(p_cache[(i, extra)])
                # route r -> start tier in this cell (§3.1, signals as in the base policy)
                starts.append([start_tier(SimpleNamespace(tiers=base.tiers, routes={ph.phase: r},
                                                          signals=base.signals),
                                          ph.phase, cell.signals) for r in sp.tier_names])
            phases.append(_PhasePrep(
                name=ph.phase, cost=costs, scost=scosts, p=np.stack(ps),
                starts=np.array(starts, int),
                is_defect=defects is not None and ph.phase in defects.phases,
                is_review=ph.phase == "review"))
        rm = defects.review_minutes if defects is not None else None
        out.append(TaskPrep(
            axes=[sp.phase_names.index(ph.phase) for ph in t.phases], K=K,
            w=np.array([c.weight for c in cells]), phases=phases, drate=drate, crate=crate,
            base=np.full(len(cells), rm.base if rm else 0.0),
            per_defect=np.full(len(cells), rm.per_defect if rm else 0.0)))
    return out


@dataclass
class _TaskTables:
    """Everything one task type contributes, per (config of the chunk, cell, phase, route).

    Configs come first so a run of configs is one contiguous slice."""

    axes: list[int]            # global phase-name index of each local phase
    w: np.ndarray              # [c] cell weights (task share included)
    P: np.ndarray              # [G, c, n, T] phase success
    E: np.ndarray              # [G, c, n, T] expected phase spend (summarizer included)
    defect_phases: list[int]   # local phase indices that can carry a defect
    rho: np.ndarray            # [G, c, n, T] P(defect | phase succeeded) (0 off defect phases)
    review: int | None         # local index of the review phase
    w_rev: np.ndarray          # [G, c, T, K] success-attempt distribution of review
    surv: np.ndarray           # [G, c, T, K] 1 - catch rate of the review attempt
    rev_rate: np.ndarray | None  # [G, c, T, K] defect rate of the review attempt, if review
                                 # is itself a defect phase (analytic.cell_stats)
    base: float                # review minutes base (one defects block per task type)
    per_defect: float


def table_elements(tp: TaskPrep, T: int, H: int, A: int) -> int:
    """Working elements per model combination when building ``tp``'s tables."""
    return len(tp.w) * max(tp.n, 1) * T * H * A * (tp.K + 4)


def task_tables(tp: TaskPrep, sp: Space, combos: np.ndarray) -> _TaskTables:
    """The tables of one task type for the configs of ``combos`` ([Mc, T] model indices); the
    configs are ordered (combo, handoff, after_failures), as :meth:`Space.config` numbers them."""
    T = len(sp.tier_names)
    A, H, Mc = len(sp.after), len(sp.handoffs), len(combos)
    G = Mc * H * A
    K, n, nc = tp.K, tp.n, len(tp.w)
    # ladder: model index of attempt k for combo mu, start tier s, after_failures a
    k = np.arange(K)
    tier = np.minimum(np.arange(T)[:, None, None] + k[None, None, :]
                      // np.array(sp.after)[None, :, None], T - 1)           # [T, A, K]
    lad = combos[:, tier]                                                    # [Mc, T, A, K]
    kk = np.broadcast_to(k, lad.shape)
    if sp.summ_fixed is not None:
        summ = np.full(Mc, sp.summ_fixed)
    else:
        summ = combos[:, sp.summ_slot]                                       # [Mc]
    cells = np.arange(nc)[:, None]

    def routed(x, has_h=False):
        """[c, Mc, (H,) T(start), A, ...] -> [G, c, T(route), ...] with each cell's start tier
        of every route; broadcast over the handoffs when ``x`` has no handoff axis."""
        y = x[cells, :, :, st] if has_h else x[cells, :, st]   # [c, Tr, Mc, (H,) A, ...]
        if not has_h:
            y = np.broadcast_to(y[:, :, :, None], y.shape[:3] + (H,) + y.shape[3:])
        y = np.moveaxis(y, (0, 1), (3, 4))                     # [Mc, H, A, c, Tr, ...]
        return y.reshape((G, nc, T) + y.shape[5:])

    P = np.zeros((G, nc, n, T))
    E = np.zeros((G, nc, n, T))
    rho = np.zeros((G, nc, n, T))
    w_rev = np.zeros((G, nc, T, K))
    w_rev[..., 0] = 1.0
    surv = np.ones((G, nc, T, K))
    rev_rate = None
    review = None
    defect_phases = []
    drate = tp.drate[lad]                                                    # [Mc, T, A, K]
    crate = tp.crate[lad]
    for i, ph in enumerate(tp.phases):
        st = ph.starts                                                       # [c, T(route)]
        cost = np.stack([c_[kk, lad] for c_ in ph.cost], axis=1)            # [Mc, H, T, A, K]
        scost = np.stack([s_[k[None, :], summ[:, None]] for s_ in ph.scost],
                         axis=1)[:, :, None, None, :]                         # [Mc, H, 1, 1, K]
        p = ph.p[:, kk, lad]                                                # [c, Mc, T, A, K]
        q = 1.0 - p
        F = np.ones_like(p)
        F[..., 1:] = np.cumprod(q[..., :-1], axis=-1)
        Pp = 1.0 - F[..., -1] * q[..., -1]                                  # [c, Mc, T, A]
        Fp = F * p
        Ep = ((F[:, :, None] * cost[None]).sum(-1)
              + (Fp[:, :, None] * scost[None]).sum(-1))                     # [c, Mc, H, T, A]
        with np.errstate(invalid="ignore", divide="ignore"):
            wk = np.where(Pp[..., None] > 0, Fp / Pp[..., None], 0.0)       # [c, Mc, T, A, K]
        P[:, :, i] = routed(Pp)
        E[:, :, i] = routed(Ep, has_h=True)
        if ph.is_defect:
            defect_phases.append(i)
            rho[:, :, i] = routed((wk * drate[None]).sum(-1))
        if ph.is_review:
            review = i
            w_rev = routed(wk)
            surv = routed(np.broadcast_to(1.0 - crate[None], wk.shape))
            if ph.is_defect:
                rev_rate = routed(np.broadcast_to(drate[None], wk.shape))
    return _TaskTables(axes=tp.axes, w=tp.w, P=P, E=E, defect_phases=defect_phases, rho=rho,
                       review=review, w_rev=w_rev, surv=surv, rev_rate=rev_rate,
                       base=float(tp.base[0]), per_defect=float(tp.per_defect[0]))


def _grid(factors: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Success product and expected spend of a run of consecutive phases over the grid of their
    routes: ``factors`` = [(P_i, E_i)] each [g, c, w_i]; returns (prod_i P_i, sum_i prod_{j<i}
    P_j E_i), each [g, c, prod w_i] (the run's first route slowest). An empty run: (1, 0)."""
    if not factors:
        return None, None
    R, E = factors[0]
    for Pi, Ei in factors[1:]:
        g, c = R.shape[:2]
        E = (E[..., None] + R[..., None] * Ei[:, :, None, :]).reshape(g, c, -1)
        R = (R[..., None] * Pi[:, :, None, :]).reshape(g, c, -1)
    return R, E


def _combine(tt: _TaskTables, g0: int, g1: int, T: int, N: int, fixed: tuple[int, ...] = ()):
    """Totals of one task type for configs g0:g1 of its tables over every route of the N global
    phase names whose first ``len(fixed)`` routes are ``fixed`` (a block of the route grid).

    Returns (E, C, D, RV) each broadcastable to [g, 1 (fixed axes)..., T, ..., T]: expected
    spend, completion, defect mass (C x defect) and review mass (C x review minutes),
    cell-weighted.

    The sum over cells is a matrix product. Split the phases into a first run A and the rest B:
    per cell, ``C = C_A C_B`` and ``E = E_A + C_A E_B`` (``C_X`` the success product of run X,
    ``E_X`` its expected spend given it is reached), so the cell-weighted totals over the grid
    A x B are ``(w C_A)^T [E_B | C_B]`` plus ``w E_A``. Defects only involve the defect phases
    and review (set X, the rest Y): ``D = (w C_X ship_X)^T C_Y``, ship computed per cell exactly
    as :func:`costsim.engine.analytic.cell_stats` does (clipped to [0, 1]).
    """
    n = len(tt.axes)
    nf = len(fixed)
    g = g1 - g0
    nc = len(tt.w)
    sel = [slice(fixed[a], fixed[a] + 1) if a < nf else slice(None) for a in tt.axes]
    width = [1 if a < nf else T for a in tt.axes]
    Pf = [tt.P[g0:g1, :, i, sel[i]] for i in range(n)]                     # [g, c, w_i]
    Ef = [tt.E[g0:g1, :, i, sel[i]] for i in range(n)]
    w = tt.w[None, :, None]

    a = max(1, n // 2)
    CA, EA = _grid(list(zip(Pf[:a], Ef[:a])))                               # [g, c, SA]
    CB, EB = _grid(list(zip(Pf[a:], Ef[a:])))                               # [g, c, SB]
    WA = np.ascontiguousarray((w * CA).transpose(0, 2, 1))                  # [g, SA, c]
    if CB is None:
        C = (w * CA).sum(1)
        E = (w * EA).sum(1)
    else:
        SB = CB.shape[-1]
        out = np.matmul(WA, np.concatenate([EB, CB], axis=2))               # [g, SA, 2 SB]
        E = (w * EA).sum(1)[:, :, None] + out[..., :SB]
        C = out[..., SB:]
    C = C.reshape((g,) + tuple(width))
    E = E.reshape((g,) + tuple(width))

    # defects: X = defect phases and review, Y = the rest
    if tt.defect_phases:
        X = sorted(set(tt.defect_phases) | ({tt.review} if tt.review is not None else set()))
        Y = [i for i in range(n) if i not in X]
        K = tt.w_rev.shape[-1]

        def on_x(x, i):                   # [g, c, w_i, (K)] -> [g, c, 1.., w_i, 1.., (K)]
            j = X.index(i)
            return x.reshape(x.shape[:2] + (1,) * j + (width[i],) + (1,) * (len(X) - 1 - j)
                             + x.shape[3:])

        if tt.review is not None:
            r = tt.review
            wr = on_x(tt.w_rev[g0:g1, :, sel[r]], r)
            sv = on_x(tt.surv[g0:g1, :, sel[r]], r)
        else:
            wr = np.zeros((g, nc) + (1,) * len(X) + (K,))
            wr[..., 0] = 1.0
            sv = np.ones((g, nc) + (1,) * len(X) + (K,))
        terms = None
        for i in tt.defect_phases:
            if i == tt.review and tt.rev_rate is not None:
                # the review attempt that catches is the one whose own defect rate applies
                t_ = 1.0 - sv * on_x(tt.rev_rate[g0:g1, :, sel[i]], i)
            else:
                t_ = 1.0 - sv * on_x(tt.rho[g0:g1, :, i, sel[i]], i)[..., None]
            terms = t_ if terms is None else terms * t_
        # ship = sum_k w_rev[k] (1 - prod_i terms): exactly 0 when nothing carries a defect
        ship = np.clip((wr * (1.0 - terms)).sum(-1), 0.0, 1.0)             # [g, c, X grid]
        CX = None
        for i in X:
            f = on_x(Pf[i], i)
            CX = f if CX is None else CX * f
        WX = (w.reshape(1, nc, *(1,) * len(X)) * CX * ship).reshape(g, nc, -1)
        CY, _ = _grid([(Pf[i], Ef[i]) for i in Y])
        if CY is None:
            D = WX.sum(1)
        else:
            D = np.matmul(np.ascontiguousarray(WX.transpose(0, 2, 1)), CY)   # [g, SX, SY]
        D = D.reshape((g,) + tuple(width[i] for i in X + Y))
        D = D.transpose([0] + [1 + (X + Y).index(i) for i in range(n)])
    else:
        D = np.zeros((g,) + (1,) * n)
    RV = tt.base * C + tt.per_defect * D

    # local phase axes -> global axes (sorted), singleton for phases this task type lacks
    order = np.argsort(tt.axes)
    wid = dict(zip(tt.axes, width))
    shape = [g] + [wid.get(a_, 1) for a_ in range(N)]

    def glob(x):
        x = np.broadcast_to(x, (g,) + tuple(width))
        return x.transpose([0] + [1 + o for o in order]).reshape(shape)

    return glob(E), glob(C), glob(D), glob(RV)
