"""Monte Carlo over the compiled attempt ladders (the same arrays the analytic engine reads).

A simulated task draws its cell (task type x signals) by weight, then, phase by phase, the
attempt at which the phase succeeds or the abandonment that stops the task; the review phase's
succeeding model catches the defects that the succeeding attempts of the defect phases made
(SPEC.md §3.4, the semantics of :func:`costsim.engine.analytic.cell_stats`).

How it is fast: per (cell, phase) the ladder is turned into the CDF of "succeeds at attempt k"
(``thr``) and the cost of each outcome (``val``: attempts 1..k plus the summarizer after a
success, or every attempt when the phase is abandoned). A task then costs one uniform per phase,
a comparison against K thresholds and a table lookup. Abandoned tasks move to an extra "dead"
cell whose phases cost nothing, so no masks are needed. Tasks run in fixed-size chunks (memory
stays flat); chunk j draws from the j-th child of ``np.random.default_rng(seed)`` (``spawn``), so
the output depends on the seed only, not on the number of threads that ran the chunks.

Extras that need per-outcome accounting (spend by model and provider, monthly per-provider
totals) come from counting how often each (cell, phase, outcome) happened and multiplying by a
per-outcome table: exact sums over the simulated tasks, without per-task-per-model arrays.

Tasks that differ (SPEC.md §3.5): a task also draws its difficulty ``z`` and size noise ``e``
(continuous normals, not the analytic engine's quadrature nodes). Its attempts succeed with
``σ(b − s·z)``, so the thresholds are computed per task, and an outcome costs ``u`` times the
outcome's unit-size bill plus the long-context surcharges of the calls whose threshold ``u``
passes: per (cell, phase) the thresholds are sorted once and, per outcome, the surcharges are
summed up to each of them (:class:`SizeTables`), so a task's cost is one comparison count and
one lookup per phase. Thresholds a task reaches with probability below 1e-16 are dropped.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Callable, Iterator

import numpy as np

from .compile import Ladders
from ..errors import CostsimError

CHUNK = 1 << 17            # tasks per chunk: fixed, so results never depend on the thread count
RESERVOIR = 2_000_000      # per-task costs kept for percentiles (a uniform subsample beyond this)

Progress = Callable[[int], None]


# --- the sampling plan ---------------------------------------------------------------------

@dataclass
class Plan:
    """Lookup tables derived from one :class:`Ladders` (no cost-model arithmetic of its own).

    Rows are (cell, phase) pairs ``c*P + i``; cell ``C`` is the dead cell that abandoned tasks
    move to. Outcome indices are ``row*(K+1) + o`` with o in 0..K-1 = succeeded at attempt o+1
    and o = K = abandoned.
    """

    C: int
    P: int
    K: int
    alias_prob: np.ndarray     # [C] Walker alias table over the cell weights
    alias: np.ndarray          # [C]
    thrT: np.ndarray           # [K, (C+1)*P] P(success by attempt k); the dead cell's rows are 0
    next_row: np.ndarray       # [O] row of the next phase after each outcome
    val: np.ndarray            # [O] spend of the outcome: attempts made + summarizer after success
    attret: np.ndarray         # [O] int64: attempts + (retries << 32)
    by_model: np.ndarray       # [O, M] the same spend split by model
    defect: np.ndarray         # [O] defect rate of the succeeding attempt (0 outside defect phases)
    surv: np.ndarray           # [O] 1 - catch rate of the succeeding review attempt (1 elsewhere)
    defect_phases: list[int]   # phase indices that are a defect phase in some cell
    review_phases: list[int]   # phase indices that are the review phase in some cell
    review_base: np.ndarray    # [C+1]
    review_per_defect: np.ndarray  # [C+1]
    models: list[str]
    providers: list[str]
    var: "SizeTables | None" = None   # tasks differ (§3.5); None: every task of a cell alike

    @property
    def n_outcomes(self) -> int:
        return (self.C + 1) * self.P * (self.K + 1)

    @property
    def has_defects(self) -> bool:
        return bool(self.defect_phases)


def make_plan(L: Ladders) -> Plan:
    C, P, K = L.p.shape
    q = 1.0 - L.p
    F = np.ones_like(L.p)
    F[..., 1:] = np.cumprod(q[..., :-1], axis=-1)        # P(attempt k happens | phase runs)
    cdf = np.cumsum(F * L.p, axis=-1)                      # P(succeeded by attempt k)
    # Once failure is impossible, no uniform may fall past the threshold by round-off.
    cdf = np.where(F * q == 0.0, 2.0, cdf)
    thr = np.zeros((C + 1, P, K))
    thr[:C] = cdf

    def table(dtype=float):
        return np.zeros((C + 1, P, K + 1), dtype)

    cum = np.cumsum(L.cost, axis=-1)                       # attempts 1..k
    val = table()
    val[:C, :, :K] = cum + L.summ_cost
    val[:C, :, K] = cum[..., -1]

    real = np.arange(P)[None, :] < L.n_phases[:, None]     # [C, P] the phase exists
    att = table(np.int64)
    att[:C, :, :K] = np.arange(1, K + 1)
    att[:C, :, K] = L.valid.sum(-1)
    att[:C] *= real[..., None]
    ret = np.where(att > 0, att - 1, 0)

    M = len(L.rates.ids)
    by_model = np.zeros((C + 1, P, K + 1, M))
    midx = np.where(L.valid, L.model, 0)
    for k in range(K):
        # attempt k+1 is paid by every outcome o >= k (success at k+1 or later, or abandonment)
        contrib = np.zeros((C, P, M))
        np.put_along_axis(contrib, midx[..., k:k + 1], L.cost[..., k:k + 1], axis=-1)
        by_model[:C, :, k:, :] += contrib[:, :, None, :]
    if L.summ_model >= 0:
        by_model[:C, :, :K, L.summ_model] += L.summ_cost

    defect = table()
    defect[:C, :, :K] = np.where(L.is_defect_phase[..., None], L.defect, 0.0)
    surv = table()
    surv[:] = 1.0
    for c in np.flatnonzero(L.has_review):
        surv[c, L.review_index[c], :K] = 1.0 - L.catch[c]
    defect_phases = [int(i) for i in np.flatnonzero((defect > 0).any(axis=(0, 2)))]
    review_phases = sorted({int(L.review_index[c]) for c in np.flatnonzero(L.has_review)})
    rb = np.zeros(C + 1)
    rb[:C] = L.review_base
    rpd = np.zeros(C + 1)
    rpd[:C] = L.review_per_defect

    nxt = table(np.intp)
    nxt[:] = (np.arange(C + 1)[:, None] * P + np.arange(1, P + 1)[None, :])[..., None]
    nxt[:, :, K] = C * P + np.arange(1, P + 1)[None, :]       # abandoned: the dead cell
    alias_prob, alias = alias_table(np.asarray(L.weight, float))
    var = size_tables(L) if L.variation is not None else None
    return Plan(C=C, P=P, K=K, alias_prob=alias_prob, alias=alias, var=var,
                thrT=np.ascontiguousarray(thr.reshape((C + 1) * P, K).T),
                next_row=nxt.ravel(), val=val.ravel(), attret=(att + (ret << 32)).ravel(),
                by_model=by_model.reshape(-1, M), defect=defect.ravel(), surv=surv.ravel(),
                defect_phases=defect_phases,
                review_phases=review_phases, review_base=rb, review_per_defect=rpd,
                models=list(L.rates.ids), providers=list(L.rates.providers))


def alias_table(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias table: pick j = floor(u*C), keep j if frac(u*C) < prob[j] else alias[j]."""
    n = len(weights)
    scaled = weights / weights.sum() * n
    prob = np.ones(n)
    alias = np.arange(n)
    small = [i for i in range(n) if scaled[i] < 1.0]
    large = [i for i in range(n) if scaled[i] >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        prob[s] = scaled[s]
        alias[s] = g
        scaled[g] -= 1.0 - scaled[s]
        (small if scaled[g] < 1.0 else large).append(g)
    return prob, alias          # leftovers keep prob 1 (round-off only)


@dataclass
class SizeTables:
    """Per-task success and size-dependent spend (§3.5), derived from ``L.variation.pieces``.

    Rows and outcome indices as in :class:`Plan`. An outcome ``ix`` of a task of size ``u``
    costs ``u · (v0[ix] + dc[ix, m])`` where ``m`` is how many of the row's sorted thresholds
    ``thr[row]`` lie below ``u`` (the calls and summaries billed at long-context rates)."""

    s: np.ndarray              # [C+1] difficulty spread of the cell's task type
    t: np.ndarray              # [C+1] size spread
    r: np.ndarray              # [C+1] tokens_follow_difficulty
    b: np.ndarray              # [(C+1)*P, K] intercepts
    p: np.ndarray              # [(C+1)*P, K] the §3.3 rates (used where s = 0)
    thr: np.ndarray            # [(C+1)*P, I] sorted thresholds (inf padding)
    v0: np.ndarray             # [O] unit-size spend of the outcome at base rates
    dc: np.ndarray             # [O * (I+1)] long-context surcharge up to each threshold
    v0m: np.ndarray            # [O, M] the same by model
    dcm: np.ndarray            # [O * (I+1), M]

    @property
    def n_thr(self) -> int:
        return self.thr.shape[1]

    @property
    def bT(self) -> np.ndarray:
        """[K, rows] intercepts (logit of p where the type has no difficulty spread)."""
        if getattr(self, "_bT", None) is None:
            with np.errstate(divide="ignore"):
                logit = np.log(self.p) - np.log1p(-self.p)
            row_s = np.repeat(self.s, self.b.shape[0] // len(self.s))
            self._bT = np.ascontiguousarray(np.where(row_s[:, None] > 0, self.b, logit).T)
        return self._bT

    @property
    def thrT(self) -> np.ndarray:
        if getattr(self, "_thrT", None) is None:
            self._thrT = np.ascontiguousarray(self.thr.T)
        return self._thrT


def size_tables(L: Ladders) -> SizeTables:
    pc = L.variation.pieces
    C, P, K = L.p.shape
    J = pc.delta.shape[-1]
    M = len(L.rates.ids)
    R = (C + 1) * P
    # items of a row: the calls of every attempt (kind 0) and the summary after each (kind 1)
    theta = np.full((C + 1, P, K, J + 1), math.inf)
    delta = np.zeros((C + 1, P, K, J + 1))
    theta[:C, :, :, :J] = pc.theta
    theta[:C, :, :, J] = pc.summ_theta
    delta[:C, :, :, :J] = pc.delta
    delta[:C, :, :, J] = pc.summ_delta
    # drop thresholds no task reaches (P(u > θ) < 1e-16 for the cell's size spread)
    t_cell = np.zeros(C + 1)
    t_cell[:C] = pc.t
    with np.errstate(divide="ignore"):
        reach = np.log(theta) < (-0.5 * t_cell * t_cell + 8.3 * t_cell)[:, None, None, None]
    theta = np.where(reach & (delta != 0.0), theta, math.inf)
    delta = np.where(np.isfinite(theta), delta, 0.0)
    k_item = np.broadcast_to(np.arange(K)[:, None], (K, J + 1))
    summ_item = np.broadcast_to(np.arange(J + 1) == J, (K, J + 1))
    model_item = np.zeros((C + 1, P, K, J + 1), int)
    model_item[:C, :, :, :J] = np.where(L.valid, L.model, 0)[..., None]
    model_item[:C, :, :, J] = max(L.summ_model, 0)
    N = K * (J + 1)
    theta = theta.reshape(R, N)
    order = np.argsort(theta, axis=1, kind="stable")
    thr = np.take_along_axis(theta, order, axis=1)
    dl = np.take_along_axis(delta.reshape(R, N), order, axis=1)
    ki = np.take_along_axis(np.broadcast_to(k_item.ravel(), (R, N)), order, axis=1)
    si = np.take_along_axis(np.broadcast_to(summ_item.ravel(), (R, N)), order, axis=1)
    mi = np.take_along_axis(model_item.reshape(R, N), order, axis=1)
    I = int(np.isfinite(thr).sum(axis=1).max()) if R else 0
    thr, dl, ki, si, mi = thr[:, :I], dl[:, :I], ki[:, :I], si[:, :I], mi[:, :I]
    o = np.arange(K + 1)[None, :, None]
    incl = np.where(si[:, None, :], ki[:, None, :] == o, ki[:, None, :] <= np.minimum(o, K - 1))
    incl &= ~(si[:, None, :] & (o == K))                              # [R, K+1, I]
    dc = np.zeros((R, K + 1, I + 1))
    dc[:, :, 1:] = np.cumsum(dl[:, None, :] * incl, axis=-1)
    dcm = np.zeros((R, K + 1, I + 1, M))
    if I:
        onehot = mi[:, None, :, None] == np.arange(M)[None, None, None, :]
        dcm[:, :, 1:, :] = np.cumsum((dl[:, None, :] * incl)[..., None] * onehot, axis=2)
    # unit-size spend at base rates: attempts 1..o (+ the summary after a success)
    base = np.zeros((C + 1, P, K))
    base[:C] = pc.base
    sbase = np.zeros((C + 1, P, K))
    sbase[:C] = pc.summ_base
    cum = np.cumsum(base, axis=-1)
    v0 = np.zeros((C + 1, P, K + 1))
    v0[:, :, :K] = cum + sbase
    v0[:, :, K] = cum[..., -1]
    v0m = np.zeros((C + 1, P, K + 1, M))
    midx = np.zeros((C + 1, P, K), int)
    midx[:C] = np.where(L.valid, L.model, 0)
    for k in range(K):
        contrib = np.zeros((C + 1, P, M))
        np.put_along_axis(contrib, midx[..., k:k + 1], base[..., k:k + 1], axis=-1)
        v0m[:, :, k:, :] += contrib[:, :, None, :]
    if L.summ_model >= 0:
        v0m[:, :, :K, L.summ_model] += sbase
    b = np.zeros((C + 1, P, K))
    b[:C] = pc.b
    p = np.zeros((C + 1, P, K))
    p[:C] = L.p
    p[C, :, 0] = 1.0                                                     # the dead cell
    sv, tv, rv = (np.zeros(C + 1) for _ in range(3))
    sv[:C], tv[:C], rv[:C] = pc.s, pc.t, pc.r
    return SizeTables(s=sv, t=tv, r=rv, b=b.reshape(R, K), p=p.reshape(R, K),
                      thr=np.ascontiguousarray(thr), v0=v0.ravel(), dc=dc.ravel(),
                      v0m=v0m.reshape(-1, M), dcm=dcm.reshape(-1, M))


# --- one chunk -----------------------------------------------------------------------------

@dataclass
class Chunk:
    n: int
    idx: np.ndarray                  # [P, n] outcome index of every phase (into Plan tables)
    alive: np.ndarray                # [n] bool: completed
    cell: np.ndarray                 # [n]
    cost: np.ndarray | None = None   # [n]
    attret: np.ndarray | None = None  # [n] packed attempts/retries
    shipped: np.ndarray | None = None  # [n] bool: completed and ships a defect
    size: np.ndarray | None = None   # [n] the task's size factor u (tasks that differ)
    lc: np.ndarray | None = None     # [P, n] thresholds below u in each phase's row

    def attempts(self) -> np.ndarray:
        return self.attret & 0xFFFFFFFF

    def retries(self) -> np.ndarray:
        return self.attret >> 32


def sample_chunk(plan: Plan, n: int, rng: np.random.Generator, *, full: bool = True,
                 cells: np.ndarray | None = None) -> Chunk:
    """Simulate ``n`` tasks. ``full=False`` skips per-task cost, attempts and defects.
    ``cells``: the cell of every task (default: drawn by weight)."""
    if plan.var is not None or cells is not None:
        return _sample_chunk_var(plan, n, rng, full=full, cells=cells)
    P, K = plan.P, plan.K
    K1 = K + 1
    U = rng.random((P + 2, n))            # a uniform per phase, one for the cell, one for defects
    # cell by Walker's alias method: one uniform, O(1) per task
    x = U[P] * plan.C
    j = x.astype(np.intp)
    np.minimum(j, plan.C - 1, out=j)
    x -= j
    cell = np.where(x < plan.alias_prob.take(j), j, plan.alias.take(j))
    r = cell * P                          # row (cell, phase) in the thresholds
    idx = np.empty((P, n), np.intp)
    cost = np.zeros(n) if full else None
    attret = np.zeros(n, np.int64) if full else None
    for i in range(P):
        u = U[i]
        ix = idx[i]
        # outcome o = how many of the phase's CDF values are <= u (o = K: abandoned)
        if K < 127:                       # int8 counts are cheapest
            o = (plan.thrT[0].take(r) <= u).view(np.int8)
            for t in plan.thrT[1:]:
                o += (t.take(r) <= u).view(np.int8)
        else:
            o = sum((t.take(r) <= u).astype(np.intp) for t in plan.thrT)
        np.multiply(r, K1, out=ix)
        ix += o
        if full:
            cost += plan.val.take(ix)
            attret += plan.attret.take(ix)
        r = plan.next_row.take(ix)        # abandoned tasks move to the dead cell
    alive = r < plan.C * P + P
    ch = Chunk(n=n, idx=idx, alive=alive, cell=cell, cost=cost, attret=attret)
    if full:
        ch.shipped = _defects(plan, idx, alive, U[P + 1])
    return ch


def _sample_chunk_var(plan: Plan, n: int, rng: np.random.Generator, *, full: bool,
                      cells: np.ndarray | None) -> Chunk:
    """:func:`sample_chunk` for tasks that differ: a difficulty and a size per task (or, with
    ``cells`` given and no variation, tasks of chosen cells)."""
    P, K = plan.P, plan.K
    K1 = K + 1
    var = plan.var
    U = rng.random((P + 2, n))
    if cells is None:
        x = U[P] * plan.C
        j = x.astype(np.intp)
        np.minimum(j, plan.C - 1, out=j)
        x -= j
        cell = np.where(x < plan.alias_prob.take(j), j, plan.alias.take(j))
    else:
        cell = np.asarray(cells, np.intp)
    I = 0
    if var is None:
        u = np.ones(n)
    else:
        G = rng.standard_normal((2, n))
        sz = var.s.take(cell) * G[0]                  # s·z: success is σ(b − s·z)
        tv = var.t.take(cell)
        rv = var.r.take(cell)
        u = np.exp(tv * (rv * G[0] + np.sqrt(1.0 - rv * rv) * G[1]) - 0.5 * tv * tv)
        I = var.n_thr
    r = cell * P
    idx = np.empty((P, n), np.intp)
    lc = np.zeros((P, n), np.intp) if I else None
    cost = np.zeros(n) if full else None
    attret = np.zeros(n, np.int64) if full else None
    with np.errstate(over="ignore"):
        for i in range(P):
            ui = U[i]
            o = np.zeros(n, np.intp)
            if var is None:
                for t in plan.thrT:
                    o += t.take(r) <= ui
            else:
                # fails attempts 1..k with surv = Π (1 − σ(b − s·z)); the outcome is the number
                # of k with P(success by k) = 1 − surv <= u, i.e. surv >= 1 − u (> 0)
                vi = 1.0 - ui
                surv = np.ones(n)
                x = np.empty(n)
                for k in range(K):
                    np.take(var.bT[k], r, out=x)
                    x -= sz
                    np.exp(x, out=x)              # 1 − σ(b − s·z) = 1 / (1 + e^(b − s·z));
                    x += 1.0                      # e^x overflows to inf harmlessly
                    np.divide(1.0, x, out=x)
                    surv *= x
                    o += surv >= vi
            ix = idx[i]
            np.multiply(r, K1, out=ix)
            ix += o
            if I:
                m = lc[i]
                for t in var.thrT:
                    m += t.take(r) < u
            if full:
                if var is None:
                    cost += plan.val.take(ix)
                elif I:
                    cost += u * (var.v0.take(ix) + var.dc.take(ix * (I + 1) + lc[i]))
                else:
                    cost += u * var.v0.take(ix)
                attret += plan.attret.take(ix)
            r = plan.next_row.take(ix)
    alive = r < plan.C * P + P
    ch = Chunk(n=n, idx=idx, alive=alive, cell=cell, cost=cost, attret=attret, size=u, lc=lc)
    if full:
        ch.shipped = _defects(plan, idx, alive, U[P + 1])
    return ch


def chunk_spend(plan: Plan, ch: Chunk, table: np.ndarray, table_lc: np.ndarray | None = None
                ) -> np.ndarray:
    """Per-task spend from per-outcome tables (``[O]`` or ``[O, V]``): the chunk's tasks summed
    over their phases; with sizes, ``u · (table[ix] + table_lc[ix, m])``."""
    var = plan.var
    shape = (ch.n,) + table.shape[1:]
    out = np.zeros(shape)
    I = var.n_thr if var is not None else 0
    for i in range(plan.P):
        ix = ch.idx[i]
        v = table[ix]
        if var is not None and I:
            v = v + table_lc[ix * (I + 1) + ch.lc[i]]
        out += v
    if var is not None:
        out *= ch.size.reshape((-1,) + (1,) * (out.ndim - 1))
    return out


def _defects(plan: Plan, idx, alive, u) -> np.ndarray:
    """Ships a defect: each defect phase's succeeding attempt adds one with its rate; the
    succeeding review attempt catches each with its catch rate (all independent), so given the
    outcomes a completed task ships one with probability 1 - prod_i (1 - rate_i (1 - catch))."""
    if not plan.has_defects:
        return np.zeros(len(u), bool)
    s = None
    for i in plan.review_phases:           # surv is 1 except in the cell's own review phase
        v = plan.surv.take(idx[i])
        s = v if s is None else s * v
    noship = np.ones(len(u))
    for i in plan.defect_phases:
        d = plan.defect.take(idx[i])
        noship *= 1.0 - (d if s is None else d * s)
    return alive & (u >= noship)


# --- running chunks -------------------------------------------------------------------------

def check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise CostsimError(f"seed must be a non-negative integer, got {seed!r}", path="--seed")
    return int(seed)


def child_rng(seed: int, j: int) -> np.random.Generator:
    """The generator of chunk j: ``np.random.default_rng(seed).spawn(j + 1)[j]``, built lazily."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(j,)))


def default_threads() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


def run_chunks(sizes: list[int], work: Callable[[int, int, np.random.Generator], object], seed: int,
               *, threads: int | None = None, progress: Progress | None = None) -> Iterator:
    """Yield ``work(j, size_j, rng_j)`` in chunk order; chunks run on a thread pool (NumPy
    releases the GIL in the loops that matter). ``work`` must reduce its chunk to something small
    so memory stays flat however many chunks there are."""
    threads = threads or default_threads()
    if threads == 1 or len(sizes) == 1:
        for j, n in enumerate(sizes):
            out = work(j, n, child_rng(seed, j))
            if progress:
                progress(n)
            yield out
        return
    with ThreadPoolExecutor(threads) as ex:
        # keep a bounded window of chunks in flight
        window = 2 * threads
        futures = {}
        nxt = 0
        for j in range(len(sizes)):
            while nxt < len(sizes) and nxt < j + window:
                futures[nxt] = ex.submit(work, nxt, sizes[nxt], child_rng(seed, nxt))
                nxt += 1
            out = futures.pop(j).result()
            if progress:
                progress(sizes[j])
            yield out


def chunk_sizes(total: int, chunk: int = CHUNK) -> list[int]:
    full, rest = divmod(int(total), chunk)
    return [chunk] * full + ([rest] if rest else [])


# --- per-task estimates ---------------------------------------------------------------------

@dataclass
class TaskEstimates:
    """Monte Carlo estimates of the headline metrics (means over simulated tasks)."""

    samples: int
    seed: int
    spend_per_task: float
    completion_rate: float
    cost_per_completed_task: float
    defect_rate: float
    review_minutes: float
    expected_attempts: float
    expected_retries: float
    spend_by_model: dict[str, float]
    spend_by_provider: dict[str, float]
    stderr: dict[str, float]
    cost_percentiles: dict[str, float]     # per attempted task
    percentile_sample: int                 # how many per-task costs the percentiles come from


def _sumsq(x: np.ndarray) -> float:
    return float(np.square(x).sum())


_SUMS = ("n", "cost", "cost2", "done", "cost_done", "ship", "rev", "rev2", "att", "att2", "ret",
         "ret2")


def simulate_tasks(L: Ladders, samples: int, seed: int = 0, *, threads: int | None = None,
                   progress: Progress | None = None, plan: Plan | None = None) -> TaskEstimates:
    """Simulate ``samples`` tasks of the ladders' strategy and workload."""
    if samples < 1:
        raise CostsimError(f"samples must be at least 1, got {samples}", path="--samples")
    seed = check_seed(seed)
    plan = plan or make_plan(L)
    sizes = chunk_sizes(samples)
    keep_frac = min(1.0, RESERVOIR / samples)

    def work(j, n, rng):
        ch = sample_chunk(plan, n, rng, full=True)
        cost, done = ch.cost, ch.alive
        att = ch.attempts().astype(float)
        ret = ch.retries().astype(float)
        rev = np.where(done, plan.review_base[ch.cell] + plan.review_per_defect[ch.cell]
                       * ch.shipped, 0.0)
        # sums of squares without BLAS: its worker threads spin and steal the cores the
        # chunk threads need (measured: wall time doubled on 2 cores)
        sums = np.array([n, cost.sum(), _sumsq(cost), done.sum(), cost[done].sum(),
                         ch.shipped.sum(), rev.sum(), _sumsq(rev), att.sum(), _sumsq(att),
                         ret.sum(), _sumsq(ret)])
        if plan.var is None:
            counts = np.bincount(ch.idx.ravel(), minlength=plan.n_outcomes)
        else:
            counts = chunk_spend(plan, ch, plan.var.v0m, plan.var.dcm).sum(axis=0)
        keep = cost[:max(1, int(math.ceil(n * keep_frac)))].copy()   # tasks are iid: a uniform subsample
        return sums, counts, keep

    total = np.zeros(len(_SUMS))
    counts = np.zeros(plan.n_outcomes if plan.var is None else len(plan.models),
                      np.int64 if plan.var is None else float)
    kept = []
    for sums, cnt, keep in run_chunks(sizes, work, seed, threads=threads, progress=progress):
        total += sums
        counts += cnt
        kept.append(keep)
    S = dict(zip(_SUMS, total))
    n = S["n"]
    spend = S["cost"] / n
    done = S["done"] / n
    if plan.var is None:
        by_model_v = (counts[:, None] * plan.by_model).sum(axis=0) / n
    else:
        by_model_v = counts / n
    by_model = {m: float(v) for m, v in zip(plan.models, by_model_v)}
    by_provider: dict[str, float] = {}
    for m, prov in zip(plan.models, plan.providers):
        by_provider[prov] = by_provider.get(prov, 0.0) + by_model[m]

    def mean_se(s, s2):
        mu = s / n
        var = max(s2 / n - mu * mu, 0.0)
        return mu, math.sqrt(var / n)

    def ratio_se(sy, sy2, sxy, sx, sx2):
        """R = sum(y)/sum(x), delta method."""
        if sx <= 0:
            return math.inf if sy > 0 else 0.0, math.nan
        R = sy / sx
        xbar = sx / n
        var = max((sy2 - 2 * R * sxy + R * R * sx2) / n, 0.0)
        return R, math.sqrt(var / n) / xbar

    _, se_spend = mean_se(S["cost"], S["cost2"])
    se_done = math.sqrt(max(done * (1 - done), 0.0) / n)
    cpct, se_cpct = ratio_se(S["cost"], S["cost2"], S["cost_done"], S["done"], S["done"])
    drate, se_drate = ratio_se(S["ship"], S["ship"], S["ship"], S["done"], S["done"])
    rmin, se_rmin = ratio_se(S["rev"], S["rev2"], S["rev"], S["done"], S["done"])
    att, se_att = mean_se(S["att"], S["att2"])
    ret, se_ret = mean_se(S["ret"], S["ret2"])
    if S["done"] <= 0:
        drate, rmin = 0.0, 0.0
    sample = np.concatenate(kept)
    pcts = np.percentile(sample, [50, 90, 99])
    return TaskEstimates(
        samples=int(n), seed=seed, spend_per_task=spend, completion_rate=done,
        cost_per_completed_task=cpct, defect_rate=drate, review_minutes=rmin,
        expected_attempts=att, expected_retries=ret, spend_by_model=by_model,
        spend_by_provider=by_provider,
        stderr={"spend_per_task": se_spend, "completion_rate": se_done,
                "cost_per_completed_task": se_cpct, "defect_rate": se_drate,
                "review_minutes": se_rmin, "expected_attempts": se_att,
                "expected_retries": se_ret},
        cost_percentiles={"p50": float(pcts[0]), "p90": float(pcts[1]), "p99": float(pcts[2])},
        percentile_sample=int(len(sample)))


def apply_montecarlo(result, ladders: Ladders, *, samples: int, seed: int,
                     threads: int | None = None, progress: Progress | None = None):
    """Overwrite a :class:`costsim.api.StrategyResult`'s headline fields with Monte Carlo
    estimates; standard errors and per-task cost percentiles go to ``result.extra``.

    Token counts and the per-phase/per-model breakdowns stay analytic (exact)."""
    est = simulate_tasks(ladders, samples, seed, threads=threads, progress=progress)
    for name in ("spend_per_task", "completion_rate", "cost_per_completed_task", "defect_rate",
                 "review_minutes", "expected_attempts", "expected_retries"):
        setattr(result, name, getattr(est, name))
    keep = set(result.spend_by_model) | {m for m, v in est.spend_by_model.items() if v > 0}
    result.spend_by_model = {m: v for m, v in est.spend_by_model.items() if m in keep}
    provs = set(result.spend_by_provider) | {p for p, v in est.spend_by_provider.items() if v > 0}
    result.spend_by_provider = {p: v for p, v in est.spend_by_provider.items() if p in provs}
    tiers = dict(zip(ladders.rates.ids, ladders.rates.tiers))
    prem = sum(v for m, v in est.spend_by_model.items() if tiers[m] == "premium")
    spent = sum(est.spend_by_model.values())
    result.premium_share = min(1.0, prem / spent) if spent > 0 else 0.0
    result.extra["montecarlo"] = {
        "samples": est.samples, "seed": seed, "stderr": est.stderr,
        "cost_percentiles": est.cost_percentiles,
        "percentile_sample": est.percentile_sample,
    }
    return result


# --- monthly totals -------------------------------------------------------------------------

DIRECT_TASKS = 20_000_000  # above this many tasks in all, months are built from outcome counts
SMALL_CELL = 30            # variation, outcome counts: cells with at most this many tasks in a
                           # month are simulated task by task, larger ones by their moments


@dataclass
class MonthlyTotals:
    """Per simulated month: total spend, spend per provider, completed tasks."""

    tasks_per_month: int                    # the mean (the count itself when ``tasks`` is None)
    months: int
    seed: int
    spend: np.ndarray                       # [months] total spend
    completed: np.ndarray                   # [months] completed tasks
    by_provider: dict[str, np.ndarray] = field(default_factory=dict)   # [months] each
    tasks: np.ndarray | None = None         # [months] tasks of each month when the volume varies
    method: str = "tasks"                   # "tasks" | "outcomes" | "cells" (see simulate_months)


def month_volumes(mean: float, cv: float | None, months: int, seed: int) -> np.ndarray | None:
    """Tasks in each month: ``None`` for a fixed count (``cv`` None); otherwise gamma-Poisson
    (negative binomial): the month's expected count is gamma-distributed with mean ``mean``
    and coefficient of variation ``cv`` (0: exactly ``mean``), the count Poisson around it.
    Drawn from their own stream of ``seed``, so they do not depend on how tasks are simulated."""
    if cv is None:
        return None
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1 << 40,)))
    lam = np.full(months, float(mean))
    if cv > 0:
        shape = 1.0 / (cv * cv)
        lam = rng.gamma(shape, mean / shape, size=months)
    return rng.poisson(lam).astype(np.int64)


def simulate_months(L: Ladders, tasks_per_month: float, months: int, seed: int = 0, *,
                    volume_cv: float | None = None, method: str = "auto",
                    threads: int | None = None, progress: Progress | None = None,
                    plan: Plan | None = None) -> MonthlyTotals:
    """Simulate ``months`` months of tasks; totals per month and per provider, and completed
    tasks. ``volume_cv``: None for exactly ``tasks_per_month`` tasks every month, else the
    month-to-month variation of :func:`month_volumes`.

    ``method``: ``"tasks"`` simulates every task (in chunks); ``"outcomes"`` builds a month from
    the counts of its outcomes, so its cost grows with the number of distinct outcomes, not of
    tasks: without variation the counts are drawn exactly (cells multinomial, then each phase's
    outcomes multinomial among the tasks that reach it) and spend is counts times outcome costs;
    with variation (a task's outcomes and size hang together through its draws) each cell's month
    is the sum of its tasks, normal with the cell's exact mean and covariance
    (:mod:`costsim.engine.moments`) when the cell has more than ``SMALL_CELL`` tasks and simulated
    task by task otherwise. ``"auto"``: tasks up to ``DIRECT_TASKS`` tasks in all, else outcomes.
    """
    if tasks_per_month <= 0 or months < 1:
        raise CostsimError("tasks per month and months must be at least 1", path="--tasks")
    seed = check_seed(seed)
    plan = plan or make_plan(L)
    months = int(months)
    counts = month_volumes(tasks_per_month, volume_cv, months, seed)
    total = int(counts.sum()) if counts is not None else int(tasks_per_month) * months
    if method == "auto":
        method = "tasks" if total <= DIRECT_TASKS else "outcomes"
    if method == "outcomes" and L.variation is not None:
        method = "cells"
    provs = list(dict.fromkeys(plan.providers))
    if method == "tasks" and counts is None:
        acc = _months_fixed(plan, provs, int(tasks_per_month), months, seed, threads, progress)
    elif method == "tasks":
        acc = _months_varying(plan, provs, counts, seed, threads, progress)
    else:
        n = counts if counts is not None else np.full(months, int(tasks_per_month), np.int64)
        acc = _months_by_outcomes(L, plan, provs, n, seed, method, threads, progress)
    by_provider = {p: acc[v] for v, p in enumerate(provs)}
    spend = acc[:-1].sum(axis=0)
    return MonthlyTotals(tasks_per_month=int(round(tasks_per_month)), months=months, seed=seed,
                         spend=spend, completed=np.rint(acc[-1]).astype(np.int64),
                         by_provider=by_provider, tasks=counts, method=method)


def _provider_tables(plan: Plan, provs: list[str]):
    """Per-outcome spend by provider: ``[V, O]`` (and the size tables' ``[O, V]`` pair)."""
    pv = np.zeros((len(provs), plan.n_outcomes))
    for j, prov in enumerate(plan.providers):
        pv[provs.index(prov)] += plan.by_model[:, j]
    if plan.var is None:
        return pv, None, None
    mat = _provider_matrix(plan, provs)
    return pv, plan.var.v0m @ mat, plan.var.dcm @ mat


def _chunk_by_provider(plan: Plan, ch: Chunk, provs, tables) -> np.ndarray:
    """[V, n] spend of each task with each provider."""
    pv, pv0, pdc = tables
    if plan.var is not None or ch.size is not None:
        if plan.var is None:
            return chunk_spend(plan, ch, pv.T).T
        return chunk_spend(plan, ch, pv0, pdc).T
    out = np.zeros((len(provs), ch.n))
    for v in range(len(provs)):
        for i in range(plan.P):
            out[v] += pv[v].take(ch.idx[i])
    return out


def _months_fixed(plan, provs, N, months, seed, threads, progress) -> np.ndarray:
    total = N * months
    # chunks hold whole months when a month fits, so a month never straddles two chunks
    per = max(1, CHUNK // N) * N if N <= CHUNK else CHUNK
    sizes = chunk_sizes(total, per)
    tables = _provider_tables(plan, provs)

    def work(j, n, rng):
        ch = sample_chunk(plan, n, rng, full=False)
        first = j * per
        month = (first + np.arange(n)) // N
        m0 = int(month[0])
        month -= m0
        nm = int(month[-1]) + 1
        out = np.empty((len(provs) + 1, nm))
        spend = _chunk_by_provider(plan, ch, provs, tables)
        for v in range(len(provs)):
            out[v] = np.bincount(month, weights=spend[v], minlength=nm)
        out[-1] = np.bincount(month, weights=ch.alive, minlength=nm)
        return m0, out

    acc = np.zeros((len(provs) + 1, months))
    for m0, out in run_chunks(sizes, work, seed, threads=threads, progress=progress):
        acc[:, m0:m0 + out.shape[1]] += out
    return acc


def _months_varying(plan, provs, counts, seed, threads, progress) -> np.ndarray:
    """Every task simulated; months of different sizes (task i belongs to the month whose
    cumulative count first exceeds i)."""
    months = len(counts)
    ends = np.cumsum(counts)
    total = int(ends[-1]) if months else 0
    sizes = chunk_sizes(total)
    tables = _provider_tables(plan, provs)
    acc = np.zeros((len(provs) + 1, months))
    if total == 0:
        return acc

    def work(j, n, rng):
        ch = sample_chunk(plan, n, rng, full=False)
        month = np.searchsorted(ends, j * CHUNK + np.arange(n), side="right")
        spend = _chunk_by_provider(plan, ch, provs, tables)
        out = np.empty((len(provs) + 1, months))
        for v in range(len(provs)):
            out[v] = np.bincount(month, weights=spend[v], minlength=months)
        out[-1] = np.bincount(month, weights=ch.alive, minlength=months)
        return out

    for out in run_chunks(sizes, work, seed, threads=threads, progress=progress):
        acc += out
    return acc


def _months_by_outcomes(L, plan, provs, counts, seed, method, threads, progress) -> np.ndarray:
    C, P, K = L.p.shape
    V = len(provs)
    months = len(counts)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1 << 41,)))
    w = np.asarray(L.weight, float)
    w = w / w.sum()
    acc = np.zeros((V + 1, months))
    if method == "outcomes":
        q = 1.0 - L.p
        F = np.ones_like(L.p)
        F[..., 1:] = np.cumprod(q[..., :-1], axis=-1)
        pi = np.zeros((C, P, K + 1))
        pi[..., :K] = F * L.p
        pi[..., K] = np.clip(1.0 - pi[..., :K].sum(-1), 0.0, 1.0)
        pi /= pi.sum(-1, keepdims=True)
        pv = (plan.by_model.reshape(C + 1, P, K + 1, -1)[:C] @ _provider_matrix(plan, provs))
        batch = max(1, 2_000_000 // (C * (K + 1)))
        for b0 in range(0, months, batch):
            nb = counts[b0:b0 + batch]
            alive = rng.multinomial(nb, w)                                   # [B, C]
            spend = np.zeros((len(nb), V))
            for i in range(P):
                got = rng.multinomial(alive, pi[:, i, :])                    # [B, C, K+1]
                spend += np.einsum("bco,cov->bv", got, pv[:, i])
                alive = got[..., :K].sum(-1)
            acc[:V, b0:b0 + len(nb)] = spend.T
            acc[V, b0:b0 + len(nb)] = alive.sum(-1)
            if progress:
                progress(int(nb.sum()))
        return acc
    # variation: per cell, normal with exact moments, or task by task when the cell is small
    from .moments import cell_moments

    mean, cov = cell_moments(L, provs)                                       # [C, D], [C, D, D]
    lam, vec = np.linalg.eigh(cov)
    root = vec * np.sqrt(np.clip(lam, 0.0, None))[:, None, :]               # cov = root rootᵀ
    tables = _provider_tables(plan, provs)
    batch = max(1, 1_000_000 // (C * (V + 1)))
    for b0 in range(0, months, batch):
        nb = counts[b0:b0 + batch]
        B = len(nb)
        n_c = rng.multinomial(nb, w)                                         # [B, C]
        big = n_c > SMALL_CELL
        g = rng.standard_normal((B, C, V + 1))
        y = n_c[..., None] * mean[None] + np.sqrt(n_c)[..., None] * np.einsum("cde,bce->bcd",
                                                                              root, g)
        tot = np.where(big[..., None], y, 0.0).sum(axis=1)                   # [B, D]
        # the small cells, task by task
        small = np.where(big, 0, n_c)
        n_small = int(small.sum())
        if n_small:
            cells = np.repeat(np.tile(np.arange(C), B), small.ravel())
            month = np.repeat(np.repeat(np.arange(B), C), small.ravel())
            for a in range(0, n_small, CHUNK):
                ch = sample_chunk(plan, min(CHUNK, n_small - a), rng, full=False,
                                  cells=cells[a:a + CHUNK])
                mo = month[a:a + CHUNK]
                sp = _chunk_by_provider(plan, ch, provs, tables)
                for v in range(V):
                    tot[:, v] += np.bincount(mo, weights=sp[v], minlength=B)
                tot[:, V] += np.bincount(mo, weights=ch.alive, minlength=B)
        tot[:, :V] = np.maximum(tot[:, :V], 0.0)
        tot[:, V] = np.clip(np.rint(tot[:, V]), 0, nb)
        acc[:, b0:b0 + B] = tot.T
        if progress:
            progress(int(nb.sum()))
    return acc


def _provider_matrix(plan: Plan, provs: list[str]) -> np.ndarray:
    """[M, V] 1 where model m belongs to provider v."""
    out = np.zeros((len(plan.models), len(provs)))
    for j, prov in enumerate(plan.providers):
        out[j, provs.index(prov)] = 1.0
    return out


# --- how many tasks a budget covers ---------------------------------------------------------

@dataclass
class Coverage:
    budget_usd: float
    confidence: float
    tasks: int | None            # None: unbounded (the strategy costs nothing)
    method: str                  # "simulated" | "normal approximation"
    runs: int


def simulate_coverage(L: Ladders, budget_usd: float, confidence: float, seed: int = 0, *,
                      runs: int = 10_000, min_runs: int = 2_000, max_tasks: int = 50_000_000,
                      threads: int | None = None, progress: Progress | None = None,
                      plan: Plan | None = None, spend_per_task: float | None = None,
                      spend_sd: float | None = None) -> Coverage:
    """The largest N such that N tasks cost at most ``budget_usd`` with probability
    ``confidence``: each run draws tasks until the budget is exceeded; N is the lower
    (1 - confidence) quantile of the number of tasks a run completes within the budget.

    Runs are cut at a length far (8 sd) above the mean, which only censors runs the quantile
    never looks at. Up to ``runs`` runs, fewer (not below ``min_runs``) when runs x length would
    exceed ``max_tasks``; when even that is too many tasks, the central limit theorem
    (N mu + z sigma sqrt(N) = budget) answers instead and ``method`` says so."""
    plan = plan or make_plan(L)
    seed = check_seed(seed)
    if spend_per_task is None or spend_sd is None:
        est = simulate_tasks(L, 200_000, seed, threads=threads, plan=plan)
        spend_per_task = est.spend_per_task
        spend_sd = est.stderr["spend_per_task"] * math.sqrt(est.samples)
    mu, sd = spend_per_task, spend_sd
    if mu <= 0:
        return Coverage(budget_usd, confidence, None, "simulated", 0)
    n_mean = budget_usd / mu
    length = int(math.ceil(n_mean + 8 * sd / mu * math.sqrt(max(n_mean, 1.0)) + 16))
    runs = max(1, min(runs, max(min_runs, max_tasks // length)))
    if length > CHUNK or length * runs > max_tasks:
        z = NormalDist().inv_cdf(confidence)
        # N mu + z sd sqrt(N) = B  ->  sqrt(N) = (-z sd + sqrt(z^2 sd^2 + 4 mu B)) / (2 mu)
        r = (-z * sd + math.sqrt(z * z * sd * sd + 4 * mu * budget_usd)) / (2 * mu)
        return Coverage(budget_usd, confidence, int(math.floor(max(r, 0.0) ** 2)),
                        "normal approximation", 0)
    rows = max(1, CHUNK // length)
    sizes = chunk_sizes(runs * length, rows * length)

    def work(j, n, rng):
        ch = sample_chunk(plan, n, rng, full=True)
        cs = np.cumsum(ch.cost.reshape(-1, length), axis=1)
        over = cs > budget_usd
        # tasks covered = index of the first task that goes over (all `length` when none does)
        return np.where(over.any(axis=1), over.argmax(axis=1), length)

    covered = np.concatenate(list(run_chunks(sizes, work, seed, threads=threads,
                                             progress=progress)))
    q = np.quantile(covered, 1.0 - confidence, method="inverted_cdf")
    return Coverage(budget_usd, confidence, int(q), "simulated", int(len(covered)))
