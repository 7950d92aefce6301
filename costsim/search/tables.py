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

import math
from dataclasses import dataclass, field
from contextlib import contextmanager
from functools import lru_cache
from types import SimpleNamespace

import numpy as np

from ..engine.analytic import attempt_reach
from ..engine.compile import CompileCache, Rates, _Cfg, _lookup, start_tier
from ..engine.variation import Spread, node_success
from ..models import Policy, PriceTable, Workload
from .space import Space


@dataclass
class _Variant:
    """One quadrature rule of a task type and every per-node table on it (without variation:
    one node of weight 1 and the unit-size tables, exactly the engine's arrays)."""

    wq: np.ndarray             # [Q] node weights (sum 1)
    cost: list[np.ndarray]     # per handoff: expected attempt cost [P_t, K_t, M, Q]
    scost: list[np.ndarray]    # per handoff: expected summary cost after success [P_t, K_t, M, Q]
    p: np.ndarray              # [E_t, P_t, K_t, M, Q] success at each node, per signal extra


@dataclass
class _PhasePrep:
    name: str
    starts: np.ndarray         # [c, T] start tier of each route in each cell (base's signals)
    is_defect: bool
    is_review: bool


@dataclass
class TaskPrep:
    """One task type, prepared once per search: its cells, phases and quadrature variants.

    With variation the engine picks a task type's node rule by whether the strategy's calls can
    reach long-context rates (``has_lc``); ``variants`` then holds the rule without (index 0)
    and with (index 1) such calls, and each point of the space uses the one its models pick, so
    the search reproduces the engine's numbers. (Where the engine places panel edges at the
    strategy's own long-context steps -- sizes that follow difficulty almost exactly -- one rule
    with every step of the space stands in for them: ``approx``, agreement to the rules'
    accuracy, ~1e-8, instead of the last digits.)"""

    axes: list[int]            # global phase-name index of each local phase
    K: int
    w: np.ndarray              # [c] cell weights (task share included)
    extra_index: np.ndarray    # [c] index of each cell's signal difficulty into the variants' p
    phases: list[_PhasePrep]
    drate: np.ndarray          # [M] defect rate of each model (0 without a defects block)
    crate: np.ndarray          # [M] catch rate of each model
    base: float                # review minutes base
    per_defect: float
    variants: list[_Variant] = field(default_factory=list)
    lc_model: np.ndarray | None = None   # [M] calls of the model can reach long-context rates
    summ_pos: list[np.ndarray] = field(default_factory=list)  # per handoff [M]: summaries cost
    approx: bool = False

    @property
    def n(self) -> int:
        return len(self.phases)

    @property
    def rank(self) -> int:
        """Largest (cells x nodes) of its variants."""
        return len(self.w) * max(len(v.wq) for v in self.variants)


def _cfg(h, retry: bool) -> _Cfg:
    summary = h.mode == "summary"
    return _Cfg(summary, h.summary_tokens if summary else 0, retry)


def prepare(table: PriceTable, wl: Workload, base: Policy, sp: Space,
            rates: Rates, cache: CompileCache | None = None) -> list[TaskPrep]:
    """Per-phase cost and success tables of every model (they depend on no config choice),
    from the engine's own :class:`~costsim.engine.compile.CompileCache`."""
    cache = cache or CompileCache(table, wl)
    ids = list(rates.ids)
    M = len(ids)
    retry = sp.retry_context == "full"
    cfgs = [_cfg(h, retry) for h in sp.handoffs]
    out = []
    for t_idx, t in enumerate(wl.task_types):
        info = cache.types[t_idx]
        cells = cache.cells[info.start:info.stop]
        if not cells:
            continue
        K = info.attempts
        n = len(t.phases)
        defects = t.defects if t.defects is not None else wl.defects
        if defects is not None:
            drate = np.array([_lookup(defects.rate, m, rates.tiers[j]) for j, m in enumerate(ids)])
            crate = np.array([_lookup(defects.catch_rate, m, rates.tiers[j])
                              for j, m in enumerate(ids)])
        else:
            drate, crate = np.zeros(M), np.zeros(M)
        phases = []
        for i, ph in enumerate(t.phases):
            # route r -> start tier in each cell (§3.1, signals as in the base policy)
            starts = [[start_tier(SimpleNamespace(tiers=base.tiers, routes={ph.phase: r},
                                                  signals=base.signals), ph.phase, c.signals)
                       for r in sp.tier_names] for c in cells]
            phases.append(_PhasePrep(name=ph.phase, starts=np.array(starts, int),
                                     is_defect=defects is not None and ph.phase in defects.phases,
                                     is_review=ph.phase == "review"))
        rm = defects.review_minutes if defects is not None else None
        tp = TaskPrep(axes=[sp.phase_names.index(ph.phase) for ph in t.phases], K=K,
                      w=np.array([c.weight for c in cells]), extra_index=info.extra_index,
                      phases=phases, drate=drate, crate=crate,
                      base=rm.base if rm else 0.0, per_defect=rm.per_defect if rm else 0.0)
        tabs = [_costs(cache, t_idx, c, ids, n, K) for c in cfgs]
        ps = cache.success(ids)
        p = ps.arrays["p"][t_idx, :len(info.extras), :n, :K][..., ps.index(ids)]  # [E, P, K, M]
        spread = Spread.of(wl.variation_of(t))
        if spread.is_zero:
            tp.variants = [_Variant(wq=np.ones(1), cost=[x["cost"][..., None] for x in tabs],
                                    scost=[x["summ_cost"][..., None] for x in tabs],
                                    p=p[..., None])]
        else:
            tp.variants, tp.lc_model, tp.approx = _variants(cache, t_idx, cfgs, ids, spread,
                                                            rates, p, tabs)
            tp.summ_pos = [(x["summ_cost"][:max(n - 1, 0)] > 0).any(axis=(0, 1)) for x in tabs]
        out.append(tp)
    return out


def _costs(cache, t_idx, cfg, ids, n, K) -> dict:
    """The engine's unit-size attempt and summary costs of task type ``t_idx`` [P_t, K_t, M]."""
    tab = cache.costs(cfg, False, ids)
    col = tab.index(ids)
    return {k: tab.arrays[k][t_idx, :n, :K][..., col] for k in ("cost", "summ_cost")}


def _pieces(cache, t_idx, cfg, ids) -> dict:
    pz = cache.pieces(t_idx, cfg, ids)
    col = pz.index(ids)
    return {k: v[:, :, col] for k, v in pz.arrays.items()}


def _same_rule(a, b) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ("z", "weight", "mu", "sigma"))


def _variants(cache, t_idx, cfgs, ids, spread, rates, p, tabs):
    """The node rules a task type with variation can need and its tables on each."""
    lc = np.isfinite(rates.above) & (spread.t > 0)                       # [M]
    pieces = [_pieces(cache, t_idx, c, ids) for c in cfgs] if spread.t > 0 else []
    # steep: the engine's rule depends on where each long-context step lies (asked of the
    # engine itself: do two different thresholds give two different rules?)
    steep = False
    if lc.any():
        (_, ra), (_, rb) = cache.node_rule(spread, np.ones(1)), cache.node_rule(spread,
                                                                                np.full(1, 2.0))
        steep = not _same_rule(ra, rb)
    if steep:
        # every threshold a point of the space can meet: one rule for all (see TaskPrep)
        thr = np.concatenate([np.concatenate([pz["theta"].ravel(), pz["summ_theta"].ravel()])
                              for pz in pieces])
        rules = [cache.node_rule(spread, thr)]
    elif spread.t > 0 and spread.s > 0 and lc.any():
        rules = [cache.node_rule(spread, np.zeros(0)),
                 cache.node_rule(spread, np.ones(1))]          # without / with long context
        if _same_rule(rules[0][1], rules[1][1]):
            # long-context steps too gentle to narrow the panels: one rule either way (its
            # intercepts and per-node costs are then the same numbers under both keys)
            rules = rules[:1]
    else:
        rules = [cache.node_rule(spread, np.ones(1) if lc.any() else np.zeros(0))]
    known = ~np.isnan(p)
    out = []
    for key, rule in rules:
        Q = len(rule)
        b = cache.intercepts(key, rule, spread.s, np.where(known, p, 0.5))
        pn = np.where(known[..., None], node_success(p, b, spread.s, rule.z), np.nan)
        if spread.t == 0:
            cost = [np.broadcast_to(x["cost"][..., None], x["cost"].shape + (Q,)) for x in tabs]
            scost = [np.broadcast_to(x["summ_cost"][..., None], x["summ_cost"].shape + (Q,))
                     for x in tabs]
        else:
            cost, scost = [], []
            for c in cfgs:
                nc = cache.node_costs(t_idx, c, key, rule, ids)
                col = nc.index(ids)
                cost.append(nc.arrays["cost"][:, :, col])
                scost.append(nc.arrays["summ"][:, :, col])
        out.append(_Variant(wq=rule.weight, cost=cost, scost=scost, p=pn))
    return out, (lc if len(out) > 1 else None), steep


@dataclass
class _TaskTables:
    """Everything one task type contributes on one quadrature variant, per (config of the
    chunk, rank, phase, route), the rank being (cell, node). Configs come first so a run of
    configs is one contiguous slice."""

    axes: list[int]            # global phase-name index of each local phase
    w: np.ndarray              # [R] rank weights: cell weight (task share included) x node's
    P: np.ndarray              # [G, n, T, R] phase success (ranks last: the long axis)
    E: np.ndarray              # [G, n, T, R] expected phase spend (summarizer included)
    defect_phases: list[int]   # local phase indices that can carry a defect
    rho: np.ndarray            # [G, |D|, T, R] P(defect | phase succeeded), by defect phase
    review: int | None         # local index of the review phase
    moments: np.ndarray | None  # [G, |D|, T, R]: M_j = sum_k w_rev[k] (1 - catch_k)^j,
                                # j = 1..|D| (review not a defect phase; None otherwise)
    w_rev: np.ndarray | None   # [G, T, K, R] success-attempt distribution of review, if review
    surv: np.ndarray | None    # is itself a defect phase: 1 - catch rate of the attempt,
    rev_rate: np.ndarray | None  # and its own defect rate (analytic.ladder_stats)
    base: float                # review minutes base (one defects block per task type)
    per_defect: float

    @property
    def ship_phases(self) -> list[int]:
        """The phases a shipped defect depends on: the defect phases and the review."""
        if not self.defect_phases:
            return []
        return sorted(set(self.defect_phases) | ({self.review} if self.review is not None
                                                 else set()))


@dataclass
class _TaskGroup:
    """A task type's tables on each of its variants (built on first use: a chunk whose points
    all make long-context calls, or none does, needs only one) and, with two, which points use
    which: ``lc[i]`` [G, T] says whether phase i on each route makes a call that can reach
    long-context rates, ``summ_lc`` [G] whether the config's summaries can."""

    axes: list[int]
    build: list                              # per variant: () -> _TaskTables
    lc: list[np.ndarray] | None = None
    summ_lc: np.ndarray | None = None
    _built: dict = field(default_factory=dict)

    def variant(self, i: int) -> _TaskTables:
        if i not in self._built:
            self._built[i] = self.build[i]()
        return self._built[i]

    @property
    def variants(self) -> list[_TaskTables]:
        return [self.variant(i) for i in range(len(self.build))]


def table_elements(tp: TaskPrep, T: int, H: int, A: int) -> int:
    """Working elements per model combination when building ``tp``'s tables: per config and
    rank, P and E of every phase and route, the defect terms, and the per-ladder arrays."""
    return tp.rank * len(tp.variants) * max(tp.n, 1) * T * H * A * 4 + \
        tp.rank * len(tp.variants) * T * A * tp.K * 6


def task_tables(tp: TaskPrep, sp: Space, combos: np.ndarray) -> _TaskGroup:
    """The tables of one task type for the configs of ``combos`` ([Mc, T] model indices); the
    configs are ordered (combo, handoff, after_failures), as :meth:`Space.config` numbers them."""
    T = len(sp.tier_names)
    A, H, Mc = len(sp.after), len(sp.handoffs), len(combos)
    G = Mc * H * A
    # ladder: model index of attempt k for combo mu, start tier s, after_failures a
    k = np.arange(tp.K)
    tier = np.minimum(np.arange(T)[:, None, None] + k[None, None, :]
                      // np.array(sp.after)[None, :, None], T - 1)           # [T, A, K]
    lad = combos[:, tier]                                                    # [Mc, T, A, K]
    if sp.summ_fixed is not None:
        summ = np.full(Mc, sp.summ_fixed)
    else:
        summ = combos[:, sp.summ_slot]                                       # [Mc]
    group = _TaskGroup(axes=tp.axes, build=[
        (lambda v=v: _variant_tables(tp, v, lad, summ, G, H, T)) for v in tp.variants])
    if tp.lc_model is not None:
        lcl = tp.lc_model[lad].any(-1)                                      # [Mc, T, A]
        group.lc = []
        for ph in tp.phases:
            y = lcl[:, ph.starts].any(1)                     # [Mc, Tr, A]: any cell, attempt
            y = np.broadcast_to(y[:, None], (Mc, H) + y.shape[1:])          # [Mc, H, Tr, A]
            group.lc.append(np.moveaxis(y, 2, 3).reshape(G, T))
        s_lc = np.stack([tp.lc_model[summ] & pos[summ] & (h_.mode == "summary")
                         for pos, h_ in zip(tp.summ_pos, sp.handoffs)], axis=1)   # [Mc, H]
        group.summ_lc = np.broadcast_to(s_lc[:, :, None], (Mc, H, A)).reshape(G)
    return group


def _variant_tables(tp: TaskPrep, v: _Variant, lad, summ, G, H, T) -> _TaskTables:
    """Per phase, the §3.4 quantities of every distinct ladder of the chunk (the model of each
    attempt: many configs share one, e.g. every combo with the same premium model on a phase
    that starts there) at every signal difficulty and node, then gathered onto
    [config, rank (cell x node), route] with each cell's start tier of each route."""
    Mc, _, A, K = lad.shape
    n, nc, Q = tp.n, len(tp.w), len(v.wq)
    R = nc * Q
    Ex = v.p.shape[0]
    uniq, inv = np.unique(lad.reshape(-1, K), axis=0, return_inverse=True)
    inv = inv.reshape(Mc, T, A)
    U = len(uniq)
    kk = np.arange(K)
    extra = tp.extra_index                                                   # [nc]
    D = [i for i, ph in enumerate(tp.phases) if ph.is_defect]
    review = next((i for i, ph in enumerate(tp.phases) if ph.is_review), None)
    rev_def = review is not None and review in D
    P = np.empty((G, n, T, R))
    E = np.empty((G, n, T, R))
    rho = np.empty((G, len(D), T, R))
    moments = np.empty((G, len(D), T, R)) if D and not rev_def else None
    w_rev = surv = rev_rate = None
    drate_u = tp.drate[uniq]                                                 # [U, K]
    sv_u = 1.0 - tp.crate[uniq]
    mu_idx = np.arange(Mc)[:, None, None, None]
    a_idx = np.arange(A)[None, :, None, None]

    def arrange(x):
        """[Mc, A, nc, T(route), Q, ...] -> [Mc, 1, A, T, ..., R] (R = cell x node)."""
        tail = list(range(5, x.ndim))
        x = x.transpose([0, 1, 3] + tail + [2, 4])
        return x.reshape((Mc, 1, A, T) + x.shape[3:-2] + (R,))

    def by_config(x):
        """[G, ...] -> [Mc, H, A, ...] (a view)."""
        return x.reshape((Mc, H, A) + x.shape[1:])

    for i, ph in enumerate(tp.phases):
        st = ph.starts                                                       # [nc, T(route)]
        # rows of [Ex, U] (signal difficulty, ladder) of every (combo, after, cell, route)
        u_of = np.moveaxis(inv[:, st, :], 3, 1)                              # [Mc, A, nc, Tr]
        row = extra[None, None, :, None] * U + u_of

        def routed(x):                                   # x [Ex, U, Q, ...]
            return arrange(x.reshape((Ex * U,) + x.shape[2:])[row])

        p = v.p[:, i][:, kk, uniq]                                          # [Ex, U, K, Q]
        q = 1.0 - p
        F = attempt_reach(q, axis=2)
        Pu = 1.0 - F[:, :, -1] * q[:, :, -1]                                 # [Ex, U, Q]
        Fp = F * p
        by_config(P)[:, :, :, i] = routed(Pu)
        for h in range(H):
            cost = v.cost[h][i][kk, uniq]                                    # [U, K, Q]
            Eu = np.einsum("eukq,ukq->euq", F, cost)
            sc = v.scost[h][i]                                               # [K, M, Q]
            if sc.any():
                # the summary after a success, written by the config's summarizer
                Es = np.einsum("emtakq,kmq->emtaq", Fp[:, inv], sc[:, summ])  # [Ex,Mc,T,A,Q]
                Es += Eu[:, inv]
                idx = extra[None, None, :, None] * Mc + mu_idx               # [Mc, 1, nc, 1]
                idx = (idx * T + st[None, None]) * A + a_idx                 # [Mc, A, nc, Tr]
                e_h = arrange(Es.reshape(-1, Q)[idx])
            else:
                e_h = routed(Eu)
            by_config(E)[:, h:h + 1, :, i] = e_h
        if not (ph.is_defect or ph.is_review):
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            wk = np.where(Pu[:, :, None] > 0, Fp / Pu[:, :, None], 0.0)      # [Ex, U, K, Q]
        if ph.is_defect:
            by_config(rho)[:, :, :, D.index(i)] = routed(np.einsum("eukq,uk->euq", wk, drate_u))
        if ph.is_review and moments is not None:
            for j in range(len(D)):
                by_config(moments)[:, :, :, j] = routed(
                    np.einsum("eukq,uk->euq", wk, sv_u ** (j + 1)))
        if ph.is_review and rev_def:
            shape = (Mc, H, A, T, K, R)
            w_rev = np.ascontiguousarray(np.broadcast_to(
                routed(np.moveaxis(wk, 2, 3)), shape)).reshape(G, T, K, R)
            surv, rev_rate = (np.ascontiguousarray(np.broadcast_to(routed(np.broadcast_to(
                x[None, :, None, :], (Ex, U, Q, K))), shape)).reshape(G, T, K, R)
                for x in (sv_u, drate_u))
    w = (tp.w[:, None] * v.wq[None, :]).ravel()
    return _TaskTables(axes=tp.axes, w=w, P=P, E=E, defect_phases=D, rho=rho, review=review,
                       moments=moments, w_rev=w_rev, surv=surv, rev_rate=rev_rate,
                       base=tp.base, per_defect=tp.per_defect)


def _bmm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Batched products ``sum_r a[..., i, r] b[..., j, r]`` (the ranks r contiguous in both):
    ``[..., I, J]``. Through BLAS, one 2-D product per batch item; the search limits BLAS to one
    thread while it runs (:func:`blas_one_thread`): OpenBLAS's own worker threads spin, and on a
    busy machine or beside the search's two threads a [27 x 1024] @ [1024 x 243] product took
    30x longer with them than without (benchmarks/bench_optimize.py)."""
    lead = a.shape[:-2]
    a2 = a.reshape((-1,) + a.shape[-2:])
    b2 = np.broadcast_to(b, lead + b.shape[-2:]).reshape((-1,) + b.shape[-2:])
    out = np.empty((a2.shape[0], a2.shape[1], b2.shape[1]))
    for i in range(a2.shape[0]):
        np.dot(a2[i], b2[i].T, out=out[i])
    return out.reshape(lead + out.shape[1:])


@contextmanager
def blas_one_thread():
    """Limit BLAS to one thread for the duration (restored after), with threadpoolctl, the
    library NumPy's ecosystem uses for it."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _grid(factors: list[tuple[np.ndarray, np.ndarray]], g: int, R: int,
          out: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Success product and expected spend of a run of consecutive phases over the grid of their
    routes: ``factors`` = [(P_i, E_i)] each [g, w_i, R]; returns (prod_i P_i, sum_i prod_{j<i}
    P_j E_i), each [g, prod w_i, R] (the run's first route slowest). An empty run: (1, 0) with
    one column. The ranks are the last, contiguous axis, so every loop runs over them.
    ``out``: (C, E) arrays [g, prod w_i, R] the results are written into (and returned)."""
    if not factors:
        C, E = np.ones((g, 1, R)), np.zeros((g, 1, R))
    else:
        C, E = factors[0]
    if len(factors) <= 1:
        if out is None:
            return C, E
        out[0][...] = C
        out[1][...] = E
        return out
    for j, (Pi, Ei) in enumerate(factors[1:], 2):
        s, w = C.shape[1], Pi.shape[1]
        if out is not None and j == len(factors):      # the last step: straight into out
            c, e = (x.reshape(g, s, w, R) for x in out)
        else:
            c, e = np.empty((g, s, w, R)), np.empty((g, s, w, R))
        np.multiply(C[:, :, None], Ei[:, None], out=e)
        e += E[:, :, None]
        np.multiply(C[:, :, None], Pi[:, None], out=c)
        C, E = c.reshape(g, s * w, R), e.reshape(g, s * w, R)
    return C, E


def _run_cost(widths) -> int:
    """Elements written while building a run's grids (every intermediate product)."""
    total, size = 0, 1
    for w in widths:
        size *= w
        total += size
    return total


@lru_cache(maxsize=4096)
def _split(width: tuple[int, ...], X: tuple[int, ...]) -> int:
    """Where to split the phases into a first run A and the rest B: the sum over cells is a
    matrix product of A's grid by B's, so the work is the two grids, the products
    (|A| x |B| per rank, three of them) and, for defects, B's grid once per route combination
    of the phases of X (defect phases and review) that fall in A."""
    n = len(width)
    best, best_a = None, 1
    for a in range(0, n + 1):
        SA = math.prod(width[:a])
        SB = math.prod(width[a:])
        SXA = math.prod(width[i] for i in X if i < a)
        cost = 3 * (_run_cost(width[:a]) + _run_cost(width[a:])) + SA \
            + (SXA * SB if X else 0) + 0.2 * SA * SB * (3 if X else 2)
        if best is None or cost < best:
            best, best_a = cost, a
    return best_a


def _ship(tt: _TaskTables, g0: int, g1: int, sel: list, width: list[int]) -> np.ndarray:
    """P(a completed task ships a defect) per config, route of every phase of
    ``tt.ship_phases`` (X) and rank: [g, w_x..., R], as
    :func:`costsim.engine.analytic.ladder_stats` computes it:
    ``sum_k w_rev[k] (1 - prod_i (1 - (1 - catch_k) rho_i))``, expanded (when the review is not
    itself a defect phase) in the elementary symmetric polynomials ``e_j`` of the ``rho_i``:
    ``sum_j (-1)^(j+1) M_j e_j`` with the review moments ``M_j``; clipped to [0, 1]."""
    X = tt.ship_phases
    g = g1 - g0
    R = len(tt.w)

    def place(x, i, tail=()):
        """x [g, w_i, *tail, R] on X's grid axes (singleton on the other X phases)."""
        shape = [g] + [width[j] if j == i else 1 for j in X] + list(tail) + [R]
        return x.reshape(shape)

    rho = {i: place(tt.rho[g0:g1, j, sel[i]], i) for j, i in enumerate(tt.defect_phases)}
    if tt.moments is not None:
        e = [np.ones((g,) + (1,) * len(X) + (R,))]          # e_0 .. e_m, grown phase by phase
        for i in tt.defect_phases:
            r = rho[i]
            e = [e[0]] + [e[j] + r * e[j - 1] for j in range(1, len(e))] + [r * e[-1]]
        ship = 0.0
        for j in range(1, len(e)):
            if tt.review is not None:
                mj = place(tt.moments[g0:g1, j - 1, sel[tt.review]], tt.review)
            else:
                mj = 1.0
            term = mj * e[j]
            ship = term if j == 1 else (ship + term if j % 2 else ship - term)
    else:
        rv = tt.review
        K = tt.w_rev.shape[2]
        wr = place(tt.w_rev[g0:g1, sel[rv]], rv, (K,))
        sv = place(tt.surv[g0:g1, sel[rv]], rv, (K,))
        terms = 1.0 - sv * place(tt.rev_rate[g0:g1, sel[rv]], rv, (K,))
        for i in tt.defect_phases:
            if i != rv:
                terms = terms * (1.0 - sv * rho[i][..., None, :])
        ship = (wr * (1.0 - terms)).sum(-2)
    ship = np.broadcast_to(ship, (g,) + tuple(width[i] for i in X) + (R,))
    return np.clip(ship, 0.0, 1.0)


def _combine(group: _TaskGroup, g0: int, g1: int, T: int, N: int,
             fixed: tuple[int, ...] = ()):
    """Totals of one task type for configs g0:g1 of its tables over every route of the N global
    phase names whose first ``len(fixed)`` routes are ``fixed`` (a block of the route grid).

    Returns (E, C, D, RV) each broadcastable to [g, 1 (fixed axes)..., T, ..., T]: expected
    spend, completion, defect mass (C x defect) and review mass (C x review minutes), weighted
    over cells (and quadrature nodes). With two quadrature variants each point takes the one
    the engine would use for it (see :class:`TaskPrep`).
    """
    axes = group.axes
    n = len(axes)
    g = g1 - g0
    nf = len(fixed)
    width = [1 if a < nf else T for a in axes]
    sel = [slice(fixed[a], fixed[a] + 1) if a < nf else slice(None) for a in axes]
    if len(group.build) == 1:
        out = _combine_local(group.variant(0), g0, g1, sel, width)
    else:
        mask = np.broadcast_to(group.summ_lc[g0:g1].reshape((g,) + (1,) * n),
                               (g,) + tuple(width))
        for i in range(n):
            li = group.lc[i][g0:g1, sel[i]]
            mask = mask | li.reshape((g,) + (1,) * i + (width[i],) + (1,) * (n - 1 - i))
        if mask.all():
            out = _combine_local(group.variant(1), g0, g1, sel, width)
        elif not mask.any():
            out = _combine_local(group.variant(0), g0, g1, sel, width)
        else:
            # the rule with long-context calls everywhere, then the points without any: per
            # config those form a box (on every phase, the routes whose ladders avoid them)
            out = tuple(np.array(np.broadcast_to(x, (g,) + tuple(width))) for x in
                        _combine_local(group.variant(1), g0, g1, sel, width))
            v0 = group.variant(0)
            for j in range(g):
                if mask[j].all():
                    continue
                idx = [np.flatnonzero(~group.lc[i][g0 + j, sel[i]]) for i in range(n)]
                if group.summ_lc[g0 + j] or any(len(x) == 0 for x in idx):
                    continue
                sub_sel = [np.arange(T)[sel[i]][idx[i]] for i in range(n)]
                part = _combine_local(v0, g0 + j, g0 + j + 1, sub_sel, [len(x) for x in idx])
                at = np.ix_(*idx)
                for o, pt in zip(out, part):
                    o[j][at] = pt[0]

    # local phase axes -> global axes (sorted), singleton for phases this task type lacks
    order = np.argsort(axes)
    wid = dict(zip(axes, width))
    shape = [g] + [wid.get(a_, 1) for a_ in range(N)]

    def glob(x):
        x = np.broadcast_to(x, (g,) + tuple(width))
        return x.transpose([0] + [1 + o for o in order]).reshape(shape)

    return tuple(glob(x) for x in out)


def _combine_local(tt: _TaskTables, g0: int, g1: int, sel: list, width: list[int]):
    """(E, C, D, RV) of one task type on one variant over the routes ``sel[i]`` (a slice or an
    index array, ``width[i]`` routes) of each local phase i: each [g, width[0], ..., width[n-1]].

    The sum over ranks (cells x nodes) is a matrix product. Split the phases into a first run A
    and the rest B: per rank, ``C = C_A C_B`` and ``E = E_A + C_A E_B`` (``C_X`` the success
    product of run X, ``E_X`` its expected spend given it is reached), so the rank-weighted
    totals over the grid A x B are ``(w C_A) [E_B | C_B]^T`` plus ``w E_A``. The defect mass is
    ``D = sum_r w C_A C_B ship`` with ``ship`` a function of the defect phases and review (X):
    when X lies in B it is one more block ``C_B ship`` of the same product; otherwise one
    product per route combination of the X phases in A. ``ship`` is computed per rank exactly
    as :func:`costsim.engine.analytic.ladder_stats` does (clipped to [0, 1])."""
    n = len(tt.axes)
    g = g1 - g0
    R = len(tt.w)
    X = tt.ship_phases
    Pf = [tt.P[g0:g1, i, sel[i]] for i in range(n)]                        # [g, w_i, R]
    Ef = [tt.E[g0:g1, i, sel[i]] for i in range(n)]
    a = _split(tuple(width), tuple(X))
    CA, EA = _grid(list(zip(Pf[:a], Ef[:a])), g, R)                         # [g, SA, R]
    XA = [i for i in X if i < a]
    # B's grids are written straight into the right-hand side of the product: [EB | CB] and,
    # when the defect phases all lie in B, CB·ship (no concatenation copy)
    SB = math.prod(width[a:])
    right = np.empty((g, (3 if X and not XA else 2) * SB, R))
    CB, EB = _grid(list(zip(Pf[a:], Ef[a:])), g, R,
                   out=(right[:, SB:2 * SB], right[:, :SB]))                 # [g, SB, R]
    SA = CA.shape[1]
    WA = CA * tt.w                                                          # [g, SA, R]
    E0 = (EA @ tt.w)[:, :, None]                                            # [g, SA, 1]
    if X:
        ship = _ship(tt, g0, g1, sel, width)                                # [g, w_X..., R]
        if not XA:
            shape = [g] + [width[i] if i in X else 1 for i in range(a, n)] + [R]
            np.multiply(CB.reshape([g] + width[a:] + [R]), ship.reshape(shape),
                        out=right[:, 2 * SB:].reshape([g] + width[a:] + [R]))
    out = _bmm(WA, right)                                                   # [g, SA, k SB]
    E = E0 + out[..., :SB]
    C = out[..., SB:2 * SB]
    if not X:
        D = np.zeros((g,) + (1,) * n)
    elif not XA:
        D = out[..., 2 * SB:]
    else:
        # one product per route combination of the X phases in A: B's grid times ship there
        SXA = math.prod(width[i] for i in XA)
        rest = [i for i in range(a) if i not in XA]
        shape = [g, SXA] + [width[i] if i in X else 1 for i in range(a, n)] + [R]
        right = CB.reshape([g, 1] + width[a:] + [R]) * ship.reshape(shape)  # [g,SXA,B..,R]
        right = right.reshape(g, SXA, SB, R)
        la = WA.reshape([g] + width[:a] + [R]).transpose([0] + [1 + i for i in XA]
                                                         + [1 + i for i in rest] + [1 + a])
        la = la.reshape(g, SXA, -1, R)                                      # [g,SXA,rest,R]
        d = _bmm(la, right)                                                 # [g,SXA,rest,SB]
        d = d.reshape([g] + [width[i] for i in XA] + [width[i] for i in rest] + [SB])
        order = XA + rest
        D = d.transpose([0] + [1 + order.index(i) for i in range(a)] + [1 + a])
    shape = (g,) + tuple(width)
    E, C = E.reshape(shape), C.reshape(shape)
    D = D.reshape(shape) if X else D
    RV = tt.base * C + tt.per_defect * D
    return E, C, D, RV
