"""Per-cell mean and covariance of what one task costs and whether it completes.

For months too large to simulate task by task (issue 13: 10^9 tasks a month), ``budget`` sums
many independent tasks per cell; the central limit theorem needs each cell's mean vector and
covariance of ``Y = (spend with each provider..., completed)``:

* the mean is exact: the analytic engine's per-node ladders (:func:`costsim.engine.compile.
  node_blocks`), integrated over the nodes;
* the second moments come from the §3.4 recursion run on second moments. Writing ``T_i`` for
  what phases ``i..`` add (``T_P`` = "completed"), ``T_i = C_i + 1{phase i succeeds}·T_{i+1}``
  with ``C_i`` the phase's spend, so given the task's difficulty and size
  ``E[T_i T_iᵀ] = E[C_i C_iᵀ] + E[C_i 1{succ}] E[T_{i+1}]ᵀ + E[T_{i+1}] E[C_i 1{succ}]ᵀ
  + P_i E[T_{i+1} T_{i+1}ᵀ]``, then averaged over the node rule's difficulties and, within a
  node, over the size by ``SIZE_POINTS``-point Gauss–Hermite (long-context steps make this last
  average approximate, to about 1e-3 of the variance: plenty for a spread).

Without ``variation`` there is one node and one size, and both moments are exact.
"""

from __future__ import annotations

import numpy as np

from .compile import Ladders, node_blocks

SIZE_POINTS = 24


def cell_moments(L: Ladders, providers: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(mean [C, D], cov [C, D, D])`` of ``Y = (spend per provider in ``providers``, completed)``
    for one task of each cell (D = len(providers) + 1)."""
    from .analytic import ladder_stats

    C, P, K = L.p.shape
    V = len(providers)
    D = V + 1
    to_prov = np.zeros((len(L.rates.ids), V))
    for j, prov in enumerate(L.rates.providers):
        to_prov[j, providers.index(prov)] = 1.0
    mean = np.zeros((C, D))
    m2 = np.zeros((C, D, D))
    m1r = np.zeros((C, D))
    valid = L.valid
    J = L.variation.pieces.delta.shape[-1] if L.variation is not None else 1
    for blk in node_blocks(L, max(1, (1 << 20) // (SIZE_POINTS * max(J, 1)))):
        sl = blk.cells
        nodes = blk.weight / L.weight[sl][:, None]                         # [c, Q]
        s = ladder_stats(blk.p, blk.cost, blk.summ_cost, L, sl, nodes=True)
        mass = s.R[..., None] * s.F * valid[sl][:, None]                  # [c, Q, P, K]
        onehot = to_prov[np.where(valid[sl], L.model[sl], 0)]            # [c, P, K, V]
        spend = np.einsum("cq,cqpk,cpkv->cv", nodes, mass * blk.cost, onehot)
        if L.summ_model >= 0:
            summ = np.einsum("cq,cqpk->c", nodes, mass * blk.p * blk.summ_cost)
            spend += summ[:, None] * to_prov[L.summ_model][None, :]
        mean[sl, :V] = spend
        mean[sl, V] = (nodes * s.C).sum(axis=1)
        a, b = _second_moments(L, blk, to_prov)
        m1r[sl] = a
        m2[sl] = b
    cov = m2 - m1r[:, :, None] * m1r[:, None, :]
    cov = 0.5 * (cov + cov.transpose(0, 2, 1))
    return mean, cov


def _second_moments(L: Ladders, blk, to_prov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """E[Y] and E[Y Yᵀ] per cell of the block, with sizes integrated by Gauss–Hermite."""
    C, P, K = L.p.shape
    sl = blk.cells
    n, Q = blk.weight.shape
    V = to_prov.shape[1]
    D = V + 1
    nodes = blk.weight / L.weight[sl][:, None]                             # [n, Q]
    t_idx = L.cells[sl.start].task
    tn = L.variation.types[t_idx] if L.variation is not None else None
    if tn is None or tn.spread.t == 0.0:
        u = np.ones((Q, 1))
        uw = np.ones(1)
    else:
        rule = tn.rule
        xi, xw = np.polynomial.hermite_e.hermegauss(SIZE_POINTS)
        xw = xw / xw.sum()
        u = np.exp(rule.mu[:, None] + rule.sigma[:, None] * xi[None, :])   # [Q, S]
        u = np.where(rule.sigma[:, None] > 0, u, np.exp(rule.mu)[:, None])
        if not (rule.sigma > 0).any():
            u, xw = u[:, :1], np.ones(1)
        uw = xw
    S = u.shape[1]
    # per-attempt and per-summary spend at each (node, size point), by provider
    if tn is None or tn.spread.t == 0.0:
        att = np.broadcast_to(L.cost[sl][:, None, None], (n, Q, S, P, K))
        summ = np.broadcast_to(L.summ_cost[sl][:, None, None], (n, Q, S, P, K))
    else:
        pc = L.variation.pieces
        uu = u[None, :, :, None, None]                                      # [1, Q, S, 1, 1]
        live = uu[..., None] > pc.theta[sl][:, None, None]                  # [n, Q, S, P, K, J]
        att = uu * (pc.base[sl][:, None, None]
                    + (pc.delta[sl][:, None, None] * live).sum(-1))
        summ = uu * (pc.summ_base[sl][:, None, None]
                     + pc.summ_delta[sl][:, None, None] * (uu > pc.summ_theta[sl][:, None, None]))
    prov_att = to_prov[np.where(L.valid[sl], L.model[sl], 0)]             # [n, P, K, V]
    prov_summ = to_prov[max(L.summ_model, 0)] if L.summ_model >= 0 else np.zeros(V)
    p = blk.p[:, :, None]                                                   # [n, Q, 1, P, K]
    q = 1.0 - p
    F = np.ones_like(p)
    F[..., 1:] = np.cumprod(q[..., :-1], axis=-1)
    # outcome o < K: success at attempt o+1 (attempts 1..o+1 and its summary); o = K: abandoned
    cum = np.cumsum(att[..., None] * prov_att[:, None, None], axis=-2)     # [n, Q, S, P, K, V]
    out_cost = np.zeros((n, Q, S, P, K + 1, D))
    out_cost[..., :K, :V] = cum + summ[..., None] * prov_summ
    out_cost[..., K, :V] = cum[..., -1, :]
    prob = np.zeros((n, Q, 1, P, K + 1))
    prob[..., :K] = F * p
    prob[..., K] = F[..., -1] * q[..., -1]
    succ = prob[..., :K].sum(-1)                                            # [n, Q, 1, P]
    m1 = np.zeros((n, Q, S, D))
    m1[..., V] = 1.0                                                        # T_P = "completed"
    m2 = np.zeros((n, Q, S, D, D))
    m2[..., V, V] = 1.0
    for i in range(P - 1, -1, -1):
        c = out_cost[..., i, :, :]                                          # [n, Q, S, K+1, D]
        pr = np.broadcast_to(prob[..., i, :], c.shape[:-1])                 # [n, Q, S, K+1]
        e_c = np.einsum("nqso,nqsod->nqsd", pr, c)
        e_cs = np.einsum("nqso,nqsod->nqsd", pr[..., :K], c[..., :K, :])
        e_cc = np.einsum("nqso,nqsod,nqsoe->nqsde", pr, c, c)
        Pi = succ[..., i][..., None]                                        # [n, Q, 1, 1]
        m2 = e_cc + e_cs[..., :, None] * m1[..., None, :] + m1[..., :, None] * e_cs[..., None, :] \
            + Pi[..., None] * m2
        m1 = e_c + Pi * m1
    w = nodes[:, :, None] * uw[None, None, :]                               # [n, Q, S]
    return np.einsum("nqs,nqsd->nd", w, m1), np.einsum("nqs,nqsde->nde", w, m2)


def task_spend_variance(L: Ladders) -> tuple[float, float]:
    """Mean and variance of one task's total spend (all cells, weighted)."""
    provs = list(dict.fromkeys(L.rates.providers))
    mean, cov = cell_moments(L, provs)
    V = len(provs)
    mu_c = mean[:, :V].sum(1)
    var_c = cov[:, :V, :V].sum(axis=(1, 2))
    w = L.weight / L.weight.sum()
    mu = float(w @ mu_c)
    ex2 = float(w @ (var_c + mu_c * mu_c))
    return mu, max(ex2 - mu * mu, 0.0)


