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

from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

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
    P: np.ndarray              # [G, R, n, T] phase success
    E: np.ndarray              # [G, R, n, T] expected phase spend (summarizer included)
    defect_phases: list[int]   # local phase indices that can carry a defect
    rho: np.ndarray            # [G, R, n, T] P(defect | phase succeeded) (0 off defect phases)
    review: int | None         # local index of the review phase
    w_rev: np.ndarray          # [G, R, T, K] success-attempt distribution of review
    surv: np.ndarray           # [G, R, T, K] 1 - catch rate of the review attempt
    rev_rate: np.ndarray | None  # [G, R, T, K] defect rate of the review attempt, if review
                                 # is itself a defect phase (analytic.cell_stats)
    base: float                # review minutes base (one defects block per task type)
    per_defect: float


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
    """Working elements per model combination when building ``tp``'s tables."""
    return tp.rank * len(tp.variants) * max(tp.n, 1) * T * H * A * (tp.K + 4)


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
    kk = np.broadcast_to(k, lad.shape)
    if sp.summ_fixed is not None:
        summ = np.full(Mc, sp.summ_fixed)
    else:
        summ = combos[:, sp.summ_slot]                                       # [Mc]
    group = _TaskGroup(axes=tp.axes, build=[
        (lambda v=v: _variant_tables(tp, v, lad, kk, summ, G, H, T)) for v in tp.variants])
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


def _variant_tables(tp: TaskPrep, v: _Variant, lad, kk, summ, G, H, T) -> _TaskTables:
    K = lad.shape[3]
    n, nc, Q = tp.n, len(tp.w), len(v.wq)
    R = nc * Q
    k = np.arange(K)
    st_rank = None

    def routed(x, has_h=False):
        """[R, Mc, (H,) T(start), A, ...] -> [G, R, T(route), ...] with each rank's start tier
        of every route; broadcast over the handoffs when ``x`` has no handoff axis."""
        ranks = np.arange(R)[:, None]
        y = x[ranks, :, :, st_rank] if has_h else x[ranks, :, st_rank]   # [R, Tr, Mc, (H,) A]
        if not has_h:
            y = np.broadcast_to(y[:, :, :, None], y.shape[:3] + (H,) + y.shape[3:])
        y = np.moveaxis(y, (0, 1), (3, 4))                     # [Mc, H, A, R, Tr, ...]
        return y.reshape((G, R, T) + y.shape[5:])

    P = np.zeros((G, R, n, T))
    E = np.zeros((G, R, n, T))
    rho = np.zeros((G, R, n, T))
    w_rev = np.zeros((G, R, T, K))
    w_rev[..., 0] = 1.0
    surv = np.ones((G, R, T, K))
    rev_rate = None
    review = None
    defect_phases = []
    drate = tp.drate[lad]                                                    # [Mc, T, A, K]
    crate = tp.crate[lad]
    for i, ph in enumerate(tp.phases):
        st_rank = np.repeat(ph.starts, Q, axis=0)                            # [R, T(route)]
        # per node q: cost [Q, Mc, H, T, A, K] and summary cost [Q, Mc, H, K]
        cost = np.stack([np.moveaxis(c_[i][kk, lad], -1, 0) for c_ in v.cost], axis=2)
        scost = np.stack([np.moveaxis(s_[i][k[None, :], summ[:, None]], -1, 0)
                          for s_ in v.scost], axis=2)                        # [Q, Mc, H, K]
        # success at every rank (cell x node): [c, Q, Mc, T, A, K]
        pv = np.moveaxis(v.p[:, i], -1, 1)[tp.extra_index]                  # [c, Q, K, M]
        p = pv[:, :, kk, lad]
        q = 1.0 - p
        F = np.ones_like(p)
        F[..., 1:] = np.cumprod(q[..., :-1], axis=-1)
        Pp = 1.0 - F[..., -1] * q[..., -1]                                  # [c, Q, Mc, T, A]
        Fp = F * p
        Ep = (np.einsum("cqmtak,qmhtak->cqmhta", F, cost)
              + np.einsum("cqmtak,qmhk->cqmhta", Fp, scost))                # [c, Q, Mc, H, T, A]
        with np.errstate(invalid="ignore", divide="ignore"):
            wk = np.where(Pp[..., None] > 0, Fp / Pp[..., None], 0.0)       # [c, Q, Mc, T, A, K]
        r_ = (R,)
        P[:, :, i] = routed(Pp.reshape(r_ + Pp.shape[2:]))
        E[:, :, i] = routed(Ep.reshape(r_ + Ep.shape[2:]), has_h=True)
        wk = wk.reshape(r_ + wk.shape[2:])
        if ph.is_defect:
            defect_phases.append(i)
            rho[:, :, i] = routed((wk * drate[None]).sum(-1))
        if ph.is_review:
            review = i
            w_rev = routed(wk)
            surv = routed(np.broadcast_to(1.0 - crate[None], wk.shape))
            if ph.is_defect:
                rev_rate = routed(np.broadcast_to(drate[None], wk.shape))
    w = (tp.w[:, None] * v.wq[None, :]).ravel()
    return _TaskTables(axes=tp.axes, w=w, P=P, E=E, defect_phases=defect_phases, rho=rho,
                       review=review, w_rev=w_rev, surv=surv, rev_rate=rev_rate,
                       base=tp.base, per_defect=tp.per_defect)


def _bmm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Batched matrix product ``a[g] @ b[g]`` by NumPy's own einsum loop, on one thread. Not
    BLAS: OpenBLAS's worker threads spin, and on a busy machine (or beside another numeric
    job) a [27 x 1024] @ [1024 x 162] product took 25-40x longer through ``dot``/``matmul``
    than through this loop (benchmarks/bench_optimize.py)."""
    return np.einsum("gar,grb->gab", a, b)


def _grid(factors: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Success product and expected spend of a run of consecutive phases over the grid of their
    routes: ``factors`` = [(P_i, E_i)] each [g, c, w_i]; returns (prod_i P_i, sum_i prod_{j<i}
    P_j E_i), each [g, c, prod w_i] (the run's first route slowest). An empty run: (1, 0)."""
    if not factors:
        return None, None
    R, E = factors[0]
    for Pi, Ei in factors[1:]:
        g, c, s = R.shape
        w = Pi.shape[-1]
        e = np.empty((g, c, s, w))
        np.multiply(R[..., None], Ei[:, :, None, :], out=e)
        e += E[..., None]
        r = np.empty((g, c, s, w))
        np.multiply(R[..., None], Pi[:, :, None, :], out=r)
        R, E = r.reshape(g, c, s * w), e.reshape(g, c, s * w)
    return R, E


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

    The sum over cells is a matrix product. Split the phases into a first run A and the rest B:
    per cell, ``C = C_A C_B`` and ``E = E_A + C_A E_B`` (``C_X`` the success product of run X,
    ``E_X`` its expected spend given it is reached), so the cell-weighted totals over the grid
    A x B are ``(w C_A)^T [E_B | C_B]`` plus ``w E_A``. Defects only involve the defect phases
    and review (set X, the rest Y): ``D = (w C_X ship_X)^T C_Y``, ship computed per cell exactly
    as :func:`costsim.engine.analytic.cell_stats` does (clipped to [0, 1]).
    """
    n = len(tt.axes)
    g = g1 - g0
    nc = len(tt.w)
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
        out = _bmm(WA, np.concatenate([EB, CB], axis=2))               # [g, SA, 2 SB]
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
            D = _bmm(np.ascontiguousarray(WX.transpose(0, 2, 1)), CY)   # [g, SX, SY]
        D = D.reshape((g,) + tuple(width[i] for i in X + Y))
        D = D.transpose([0] + [1 + (X + Y).index(i) for i in range(n)])
    else:
        D = np.zeros((g,) + (1,) * n)
    RV = tt.base * C + tt.per_defect * D
    return E, C, D, RV
