"""Pareto frontiers of `costsim optimize`, kept chunk by chunk with a dominance prune."""

from __future__ import annotations

import numpy as np


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

