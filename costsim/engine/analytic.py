"""Exact evaluation of SPEC.md §3.4 over compiled ladders, integrated over §3.5's task spread.

Without ``variation`` the §3.4 recursion runs once per cell. With it, it runs once per cell and
quadrature node (:func:`costsim.engine.compile.node_blocks`): given a node the attempts of a task
are independent coins and its costs are their expectations over the task's size there, so §3.4
holds as written, and every reported number is a node-weighted sum (expected spend, completions,
shipped defects, review minutes, attempts ...). Ratios are formed only at the end: cost per
completed task = E[spend] / E[completion], defect rate = E[ships] / E[completion].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .buffers import Workspace, empty_like_nodes
from .compile import Ladders, NodeBlock, node_blocks


@dataclass
class CellStats:
    """Per-cell intermediate quantities, shared by the metrics and the breakdowns.

    From :func:`ladder_stats` the arrays have the ladders' batch shape (cells, or cells x nodes).
    From :func:`cell_stats` on ladders with variation, ``E``, ``C``, ``defect`` and ``review``
    are integrated over the nodes (exact per-cell values) while ``F``, ``P``, ``R`` and
    ``E_phase`` are node averages, kept for display only (their products are not expectations).
    """

    F: np.ndarray        # [..., P, K] probability that attempt k happens (given the phase runs)
    P: np.ndarray        # [..., P] phase success
    R: np.ndarray        # [..., P] probability the phase is reached
    E_phase: np.ndarray  # [..., P] expected phase spend, summarizer included
    E: np.ndarray        # [...] expected spend per attempted task
    C: np.ndarray        # [...] completion probability
    defect: np.ndarray   # [...] P(ships a defect | completed)
    review: np.ndarray   # [...] review minutes per completed task
    Fc: np.ndarray | None = None   # [..., P, K] F * cost (from ladder_stats; None from cell_stats)
    Fp: np.ndarray | None = None   # [..., P, K] F * p: the attempt happens and succeeds
    Fps: np.ndarray | None = None  # [..., P, K] F * p * summ_cost


def attempt_reach(q: np.ndarray, axis: int = -1, out: np.ndarray | None = None) -> np.ndarray:
    """``F[k] = prod_{j<k} q[j]`` along ``axis`` (the probability that attempt k happens given
    the failure probabilities ``q``). The same products as ``np.cumprod``, in the same order
    (bit for bit), one slice at a time: cumprod along a short axis costs ~10x more."""
    F = np.empty_like(q) if out is None else out
    if axis in (-1, q.ndim - 1):
        Fm = F[..., 0]
        Fm[...] = 1.0
        for k in range(1, F.shape[-1]):
            np.multiply(F[..., k - 1], q[..., k - 1], out=F[..., k])
        return F
    Fm = np.moveaxis(F, axis, 0)
    qm = np.moveaxis(q, axis, 0)
    Fm[0] = 1.0
    for k in range(1, Fm.shape[0]):
        np.multiply(Fm[k - 1], qm[k - 1], out=Fm[k])
    return F


def sum_last(x: np.ndarray) -> np.ndarray:
    """``x.sum(-1)`` bit for bit, faster along a short last axis: below 8 elements NumPy adds
    them one after the other, and so do these slices (without its per-row overhead)."""
    n = x.shape[-1]
    if n >= 8 or n == 0:
        return x.sum(-1)
    out = x[..., 0].copy(order="K")        # keeps a node-last memory layout
    for k in range(1, n):
        out += x[..., k]
    return out


def ladder_stats(p, cost, summ_cost, L: Ladders, cells: slice | None = None,
                 nodes: bool = False, work: Workspace | None = None,
                 spend: bool = True) -> CellStats:
    """§3.4 for ladders ``p``/``cost``/``summ_cost`` of shape ``[c, P, K]`` (``nodes=False``) or
    ``[c, Q, P, K]`` (``nodes=True``); defect and review data come from ``L`` (rows ``cells``).
    ``summ_cost=None``: no summarizer (no summary terms at all: ``Fps`` is None). ``work``: the
    ladder-sized results (``F``, ``Fc``, ``Fp``, ``Fps``) go into its arrays, which the next call
    with it overwrites. ``spend=False``: no per-cell spend (``E_phase``, ``E`` and ``Fps`` are
    None; :func:`evaluate` sums the spend from ``Fc`` and ``Fp`` over the nodes itself)."""
    sl = cells if cells is not None else slice(None)

    def per_cell(a):        # cell-level array -> broadcast over the node axis
        a = a[sl]
        return a[:, None] if nodes else a

    q = np.subtract(1.0, p, out=empty_like_nodes(work, "q", p))
    F = attempt_reach(q, out=empty_like_nodes(work, "F", p))
    P = 1.0 - F[..., -1] * q[..., -1]
    Fc = np.multiply(F, cost, out=empty_like_nodes(work, "Fc", p))
    Fp = np.multiply(F, p, out=empty_like_nodes(work, "Fp", p))
    if not spend:
        Fps = E_phase = None
    elif summ_cost is None:
        Fps = None
        E_phase = sum_last(Fc)
    else:
        Fps = _times(Fp, summ_cost, work) if nodes else Fp * summ_cost
        E_phase = sum_last(Fc) + sum_last(Fps)
    # R_i = prod_{j<i} P_j: np.cumprod's products in its order, one phase slice at a time
    # (cumprod along a strided axis cost as much as the attempt recursion)
    R = np.ones_like(P)
    for i in range(1, P.shape[-1]):
        np.multiply(R[..., i - 1], P[..., i - 1], out=R[..., i])
    E = (R * E_phase).sum(-1) if spend else None
    Cc = P.prod(-1)

    # Defects (§3.4): given success, phase i succeeded at attempt k with w = F p / P. Only the
    # phases that can carry a defect in some cell (D) and the review phase need w: every other
    # phase's factor below is exactly 1.
    K = p.shape[-1]
    is_def_all = L.is_defect_phase[sl]
    D = np.flatnonzero(is_def_all.any(axis=0))
    has = per_cell(L.has_review)
    ri = np.maximum(per_cell(L.review_index), 0)

    def w_at(Fpi, Pi):          # Fpi = F·p (the same products as F[...] * p[...])
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(Pi[..., None] > 0, Fpi / Pi[..., None], 0.0)

    if D.size and D[-1] - D[0] == D.size - 1:
        D_at = slice(int(D[0]), int(D[-1]) + 1)  # a run of phases: views, not copies
    else:
        D_at = D

    # Review attempt distribution and its catch rates; no review -> catch 0 with weight 1.
    first = np.zeros(K)
    first[0] = 1.0
    if ri.size and ri.min() == ri.max():       # one review phase for every cell (one task type)
        r0 = int(ri.flat[0])
        w_at_review = w_at(Fp[..., r0, :], P[..., r0])
    else:
        take = ri[..., None, None]
        w_at_review = w_at(np.take_along_axis(Fp, take, axis=-2),
                           np.take_along_axis(P, ri[..., None], axis=-1))[..., 0, :]
    w_rev = np.where(has[..., None], w_at_review, first)
    # noship = sum_k' w_rev[k'] * prod_i (1 - (1 - catch[k']) * rho_i)  (rho of the review
    # phase replaced below when it is a defect phase)
    surv = 1.0 - per_cell(L.catch)                                           # [..., K]
    is_def = per_cell(L.is_defect_phase)[..., D_at]
    defect_D = per_cell(L.defect)[..., D_at, :]
    rho = np.where(is_def, sum_last(w_at(Fp[..., D_at, :], P[..., D_at]) * defect_D),
                   0.0)                                                      # [..., |D|]
    terms = 1.0 - surv[..., None, :] * rho[..., :, None]                     # [..., |D|, K]
    # A review phase that is also a defect phase: its defect comes from the same succeeding
    # attempt k' whose catch rate applies, so use that attempt's rate, not the average rho.
    rev_def = has & np.take_along_axis(per_cell(L.is_defect_phase), ri[..., None],
                                       axis=-1)[..., 0]
    if rev_def.any():
        at = (D == ri[..., None]) & rev_def[..., None]                        # [..., |D|]
        own = 1.0 - surv[..., None, :] * defect_D
        terms = np.where(at[..., None], own, terms)
    # ship = sum_k' w_rev[k'] * (1 - prod_i terms): equal to 1 - noship since the w_rev sum to 1,
    # but exactly 0 when nothing can carry a defect (the w_rev sum to 1 only up to rounding).
    ship = sum_last(w_rev * (1.0 - terms.prod(axis=-2)))
    defect = np.where(Cc > 0, ship, 0.0)
    defect = np.clip(defect, 0.0, 1.0)
    review = per_cell(L.review_base) + per_cell(L.review_per_defect) * defect
    return CellStats(F=F, P=P, R=R, E_phase=E_phase, E=E, C=Cc, defect=defect, review=review,
                     Fc=Fc, Fp=Fp, Fps=Fps)


def _times(a: np.ndarray, b: np.ndarray, work: Workspace | None = None) -> np.ndarray:
    """``a * b`` for node blocks ``[c, Q, P, K]`` stored node axis last, where ``b`` may be the
    same for every cell (a broadcast view): multiplied in memory order, the result in ``a``'s
    layout."""
    out = empty_like_nodes(work, "Fps", a)
    if b.strides[0] == 0 and a.strides[1] == a.itemsize:
        np.multiply(np.moveaxis(a, 1, -1), np.moveaxis(b[0], 0, -1), out=np.moveaxis(out, 1, -1))
        return out
    return np.multiply(a, b, out=out)


def _blocks(L: Ladders, work: Workspace | None = None, spend: bool = True):
    """(block, stats, weights, node axis?) over the ladders: one block of every cell without
    variation (the ladders' own arrays), node blocks with it. ``work``: reuse its arrays for
    every block (each block's arrays are then valid until the next one is yielded).
    ``spend=False``: node blocks without per-cell spend (see :func:`ladder_stats`)."""
    if L.variation is None:
        yield None, ladder_stats(L.p, L.cost, L.summ_cost, L), L.weight
        return
    for blk in node_blocks(L, work=work):
        summ = blk.summ_cost if L.summ_model >= 0 else None
        yield blk, ladder_stats(blk.p, blk.cost, summ, L, blk.cells, nodes=True, work=work,
                                spend=spend), blk.weight


def cell_stats(L: Ladders) -> CellStats:
    """Per-cell §3.4 quantities (integrated over the nodes when the workload has variation)."""
    if L.variation is None:
        return ladder_stats(L.p, L.cost, L.summ_cost, L)
    C, P, K = L.p.shape
    out = {k: np.zeros(s) for k, s in (("F", (C, P, K)), ("P", (C, P)), ("R", (C, P)),
                                       ("E_phase", (C, P)), ("E", C), ("C", C), ("ship", C),
                                       ("rev", C))}
    for blk, s, w in _blocks(L):
        nw = blk.weight / L.weight[blk.cells][:, None]            # node weights of each cell
        sl = blk.cells
        out["F"][sl] = np.einsum("cq,cqpk->cpk", nw, s.F)
        for k in ("P", "R", "E_phase"):
            out[k][sl] = np.einsum("cq,cqp->cp", nw, getattr(s, k))
        out["E"][sl] = (nw * s.E).sum(1)
        out["C"][sl] = (nw * s.C).sum(1)
        out["ship"][sl] = (nw * s.C * s.defect).sum(1)
        out["rev"][sl] = (nw * s.C * s.review).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        defect = np.where(out["C"] > 0, out["ship"] / out["C"], 0.0)
        review = np.where(out["C"] > 0, out["rev"] / out["C"], L.review_base)
    return CellStats(F=out["F"], P=out["P"], R=out["R"], E_phase=out["E_phase"], E=out["E"],
                     C=out["C"], defect=np.clip(defect, 0.0, 1.0), review=review)


@dataclass
class Metrics:
    spend_per_task: float
    completion_rate: float
    cost_per_completed_task: float
    defect_rate: float
    review_minutes: float
    expected_attempts: float
    expected_retries: float
    spend_by_model: dict[str, float]
    spend_by_provider: dict[str, float]
    tokens: dict[str, float]
    premium_share: float
    phases: list[dict]
    models: list[dict]


def evaluate(L: Ladders) -> Metrics:
    M = len(L.rates.ids)
    # phase names in order of first appearance (cell order, then phase order)
    if L.phase_ids is not None:
        names, name_id = L.phase_list, L.phase_ids
    else:
        names = []
        for cell in L.cells:
            for n in L.phase_names[cell.task]:
                if n not in names:
                    names.append(n)
        name_id = np.full(L.p.shape[:2], -1, int)
        for c, cell in enumerate(L.cells):
            for i, n in enumerate(L.phase_names[cell.task]):
                name_id[c, i] = names.index(n)

    E = C = ship_w = rev_w = attempts = retries = summ_spend = summ_calls = 0.0
    spend_m = np.zeros(M)
    att_m = np.zeros(M)
    tok_m = np.zeros((M, 3))
    summ_tok = np.zeros(3)
    ph = {k: np.zeros(len(names)) for k in ("spend", "reach", "success_mass", "attempts")}
    if L.variation is not None:
        by_cell = {k: np.zeros(L.p.shape) for k in ("spend", "att", "tmass", "tsucc")}
        by_phase = {k: np.zeros(L.p.shape[:2]) for k in ph}
    for blk, s, w in _blocks(L, Workspace(), spend=False):
        nodes = blk is not None
        sl = blk.cells if nodes else slice(None)
        if not nodes:
            E += float(w.ravel() @ s.E.ravel())
        C += float(w.ravel() @ s.C.ravel())
        ship_w += float(w.ravel() @ (s.C * s.defect).ravel())
        rev_w += float(w.ravel() @ (s.C * s.review).ravel())

        wr = w[..., None] * s.R
        if nodes:
            # Sum over the nodes first: [c, Q, P, K] -> [c, P, K]. The block's arrays are stored
            # node axis last, so each sum over the nodes is a batch of matrix products
            # ([2, Q] rows of node masses w·R and w·R·E[u | node] (token counts) times the
            # [Q, K] columns of F, F·p, F·cost) that read each array once; ``valid`` does not
            # depend on the node, so it masks the sums. Masses on the left: [2, Q] @ [Q, K]
            # per (cell, phase) took a third of the time of [K, Q] @ [Q, 2].
            v = L.valid[sl]
            c_, Q_, P_, K_ = s.F.shape
            WT = np.empty((c_, P_, 2, Q_))
            WT[:, :, 0] = wr.transpose(0, 2, 1)
            np.multiply(WT[:, :, 0], blk.size, out=WT[:, :, 1])
            aw = np.matmul(WT, _node_cols(s.F))                                 # [c, P, 2, K]
            sw = np.matmul(WT, _node_cols(s.Fp))
            att, tmass = aw[:, :, 0] * v, aw[:, :, 1] * v
            succ, tsucc = sw[:, :, 0] * v, sw[:, :, 1] * v
            spend = np.matmul(WT[:, :, :1], _node_cols(s.Fc))[:, :, 0] * v
            phase_spend = spend.sum(-1)                                         # [c, P]
            E += float(phase_spend.sum())
            if L.summ_model >= 0:
                summ_total, summ_phase = _summary_spend(blk, s, WT[:, :, 0], v)
                summ_spend += summ_total
                E += summ_total
                phase_spend += summ_phase
                summ_calls += _summary_calls(blk, s, wr, v, succ)
            attempts += float(att.sum())
            retries += float(att[..., 1:].sum())
            phase_att = att.sum(-1)
            vals = {"spend": phase_spend, "reach": wr.sum(axis=1),
                    "success_mass": (wr * s.P).sum(axis=1), "attempts": phase_att}
        else:
            # Probability mass of each attempt actually happening, per task: w_c * R_i * F_k.
            mass = w[..., None, None] * s.R[..., None] * s.F * L.valid            # [C, P, K]
            succ_mass = mass * L.p                                                # success at k
            attempts += float(mass.sum())
            retries += float(mass[..., 1:].sum())
            att, spend, tmass, tsucc = mass, mass * L.cost, mass, succ_mass
            summ_spend += float((succ_mass * L.summ_cost).sum())
            summ_calls += float(succ_mass[L.summ_cost > 0].sum()) if L.summ_model >= 0 else 0.0
            vals = {"spend": wr * s.E_phase, "reach": wr, "success_mass": wr * s.P,
                    "attempts": mass.sum(-1)}
        if nodes:
            # kept per cell; counted by model and phase name once, after the last block
            # (a dozen small calls a block fewer)
            for k, x in (("spend", spend), ("att", att), ("tmass", tmass), ("tsucc", tsucc)):
                by_cell[k][sl] = x
            for k, x in vals.items():
                by_phase[k][sl] = x
            continue
        m_idx = np.where(L.valid, L.model, 0).ravel()      # one block of every cell
        ids = name_id
        keep = ids >= 0
        spend_m += np.bincount(m_idx, weights=spend.ravel(), minlength=M)
        att_m += np.bincount(m_idx, weights=att.ravel(), minlength=M)
        tok = L.tokens[sl]
        tok_m += np.stack([np.bincount(m_idx, weights=(tmass * tok[..., x]).ravel(),
                                       minlength=M) for x in range(3)], axis=1)
        summ_tok += (tsucc[..., None] * L.summ_tokens[sl]).sum(axis=(0, 1, 2))
        # per phase name (task types sharing a phase name are pooled)
        for k, v in vals.items():
            ph[k] += np.bincount(ids[keep], weights=v[keep], minlength=len(names))
    if L.variation is not None:
        m_idx = np.where(L.valid, L.model, 0).ravel()
        spend_m += np.bincount(m_idx, weights=by_cell["spend"].ravel(), minlength=M)
        att_m += np.bincount(m_idx, weights=by_cell["att"].ravel(), minlength=M)
        tok_m += np.stack([np.bincount(m_idx, weights=(by_cell["tmass"] * L.tokens[..., x])
                                       .ravel(), minlength=M) for x in range(3)], axis=1)
        summ_tok += (by_cell["tsucc"][..., None] * L.summ_tokens).sum(axis=(0, 1, 2))
        keep = name_id >= 0
        for k, v in by_phase.items():
            ph[k] += np.bincount(name_id[keep], weights=v[keep], minlength=len(names))

    # Rates are clamped to [0, 1] where they are computed: sums of weights that add up to 1
    # only to rounding gave completions of 1.0000000000000002.
    C = _unit(C)
    cpct = E / C if C > 0 else float("inf")
    defect = _unit(ship_w / C) if C > 0 else 0.0
    review = rev_w / C if C > 0 else 0.0
    if L.summ_model >= 0:
        spend_m[L.summ_model] += summ_spend
        tok_m[L.summ_model] += summ_tok

    by_model = {mid: float(v) for mid, v in zip(L.rates.ids, spend_m) if v > 0 or att_m[L.rates.ids.index(mid)] > 0}
    by_provider: dict[str, float] = {}
    for mid, v, prov in zip(L.rates.ids, spend_m, L.rates.providers):
        if mid in by_model:
            by_provider[prov] = by_provider.get(prov, 0.0) + float(v)
    # premium share: a ratio of two sums in one order, so an all-premium strategy is exactly 1
    premium = sum(float(v) for v, t in zip(spend_m, L.rates.tiers) if t == "premium")
    spent = sum(float(v) for v in spend_m)
    tok = tok_m.sum(0)

    models = []
    for j, mid in enumerate(L.rates.ids):
        if mid not in by_model:
            continue
        models.append({
            "model": mid, "provider": L.rates.providers[j], "tier": L.rates.tiers[j],
            "spend": float(spend_m[j]), "share": _unit(float(spend_m[j] / E)) if E > 0 else 0.0,
            "attempts": float(att_m[j]),
            "summaries": summ_calls if j == L.summ_model else 0.0,
            "input_tokens": float(tok_m[j, 0]), "cached_input_tokens": float(tok_m[j, 1]),
            "output_tokens": float(tok_m[j, 2]),
        })

    phase_rows = []
    for j, name in enumerate(names):
        reach = float(ph["reach"][j])
        sm = float(ph["success_mass"][j])
        d = {"phase": name, "spend": float(ph["spend"][j]), "attempts": float(ph["attempts"][j])}
        d["share"] = _unit(d["spend"] / E) if E > 0 else 0.0
        d["reach_rate"] = _unit(reach)
        d["success_rate"] = _unit(sm / reach) if reach > 0 else 0.0
        d["attempts_per_reach"] = d["attempts"] / reach if reach > 0 else 0.0
        phase_rows.append(d)

    return Metrics(
        spend_per_task=E, completion_rate=C, cost_per_completed_task=cpct,
        defect_rate=defect, review_minutes=review, expected_attempts=attempts,
        expected_retries=retries, spend_by_model=by_model, spend_by_provider=by_provider,
        tokens={"input": float(tok[0]), "cached_input": float(tok[1]), "output": float(tok[2]),
                "summary_calls": summ_calls},
        premium_share=_unit(premium / spent) if spent > 0 else 0.0,
        phases=phase_rows, models=models)


def _node_cols(x: np.ndarray) -> np.ndarray:
    """``[c, Q, P, K]`` -> ``[c, P, Q, K]`` (a view of the node-last memory: each (cell, phase)
    a [Q, K] matrix whose columns are contiguous), the right-hand side of the node sums."""
    return _node_last(x).transpose(0, 1, 3, 2)


def _node_last(x: np.ndarray) -> np.ndarray:
    """``[c, Q, P, K]`` -> ``[c, P, K, Q]``, C-contiguous (a view when stored node axis last)."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def _summary_spend(blk: NodeBlock, s: CellStats, mass: np.ndarray,
                   v: np.ndarray) -> tuple[float, np.ndarray]:
    """Expected summarizer spend of a node block: in all, and per cell and phase ``[c, P]``
    (``Σ_q w·R·F·p·summ`` over the attempts; ``mass`` = ``w·R`` ``[c, P, Q]``). When the
    block's cells share their summary costs (one task type, ``summ [P, K, Q]``) the node masses
    are summed over the cells first, in one pass over ``F·p``, and the per-phase spend goes in
    the first cell's row (every cell of one task type has the same phase names); otherwise
    ``F·p·summ`` node by node."""
    Fp = _node_last(s.Fp)                                                    # [c, P, K, Q]
    if blk.summ_shared and v.all():
        G = np.einsum("cpq,cpkq->pkq", mass, Fp)
        per = np.einsum("pkq,pkq->p", G, np.moveaxis(blk.summ_cost[0], 0, -1))
        out = np.zeros(v.shape[:2])
        out[0] = per
        return float(per.sum()), out
    Fps = Fp * _node_last(blk.summ_cost)                                     # [c, P, K, Q]
    per = np.matmul(mass[:, :, None], Fps.transpose(0, 1, 3, 2))[:, :, 0] * v
    per = per.sum(-1)
    return float(per.sum()), per


def _summary_calls(blk: NodeBlock, s: CellStats, wr: np.ndarray, v: np.ndarray,
                   succ: np.ndarray) -> float:
    """Expected summarizer calls of a node block: the mass of successes whose summary costs
    something at that node. When the block's cells share their summary costs and each attempt's
    is positive at every node or at none, that is the node-summed success mass ``succ`` where
    it is positive; otherwise summed node by node."""
    if blk.summ_shared:
        pos = np.moveaxis(blk.summ_cost[0] > 0, 0, -1)                    # [P, K, Q]
        every = pos.all(-1)
        if (every == pos.any(-1)).all():
            return float((succ * every).sum())
    mask = (blk.summ_cost > 0) & v[:, None]
    return float((wr[..., None] * s.Fp * mask).sum())


def _unit(x: float) -> float:
    """``x`` clamped to [0, 1] (a probability or a share off by rounding)."""
    return min(max(x, 0.0), 1.0)
