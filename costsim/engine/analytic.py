"""Exact evaluation of SPEC.md §3.4 over compiled ladders."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .compile import Ladders


@dataclass
class CellStats:
    """Per-cell intermediate quantities, shared by the metrics and the breakdowns."""

    F: np.ndarray        # [C, P, K] probability that attempt k happens (given the phase runs)
    P: np.ndarray        # [C, P] phase success
    R: np.ndarray        # [C, P] probability the phase is reached
    E_phase: np.ndarray  # [C, P] expected phase spend, summarizer included
    E: np.ndarray        # [C] expected spend per attempted task
    C: np.ndarray        # [C] completion probability
    defect: np.ndarray   # [C] P(ships a defect | completed)
    review: np.ndarray   # [C] review minutes per completed task


def cell_stats(L: Ladders) -> CellStats:
    q = 1.0 - L.p
    F = np.ones_like(L.p)
    F[..., 1:] = np.cumprod(q[..., :-1], axis=-1)
    P = 1.0 - F[..., -1] * q[..., -1]
    E_phase = (F * L.cost).sum(-1) + (F * L.p * L.summ_cost).sum(-1)
    R = np.ones_like(P)
    R[:, 1:] = np.cumprod(P[:, :-1], axis=1)
    E = (R * E_phase).sum(1)
    Cc = P.prod(1)

    # Defects (§3.4): given success, phase i succeeded at attempt k with w = F p / P.
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(P[..., None] > 0, F * L.p / P[..., None], 0.0)
    rho = np.where(L.is_defect_phase, (w * L.defect).sum(-1), 0.0)          # [C, P]
    ncell = len(L.cells)
    K = L.p.shape[-1]
    # Review attempt distribution and its catch rates; no review -> catch 0 with weight 1.
    w_rev = np.zeros((ncell, K))
    w_rev[:, 0] = 1.0
    has = L.has_review
    if has.any():
        idx = np.flatnonzero(has)
        w_rev[idx] = w[idx, L.review_index[idx], :]
    # noship = sum_k' w_rev[k'] * prod_i (1 - (1 - catch[k']) * rho_i)  (rho of the review
    # phase replaced below when it is a defect phase)
    surv = 1.0 - L.catch                                                   # [C, K]
    terms = 1.0 - surv[:, None, :] * rho[:, :, None]                       # [C, P, K]
    # A review phase that is also a defect phase: its defect comes from the same succeeding
    # attempt k' whose catch rate applies, so use that attempt's rate, not the average rho.
    rev_def = np.flatnonzero(has & L.is_defect_phase[np.arange(ncell), np.maximum(L.review_index, 0)])
    if rev_def.size:
        ri = L.review_index[rev_def]
        terms[rev_def, ri, :] = 1.0 - surv[rev_def] * L.defect[rev_def, ri, :]
    # ship = sum_k' w_rev[k'] * (1 - prod_i terms): equal to 1 - noship since the w_rev sum to 1,
    # but exactly 0 when nothing can carry a defect (the w_rev sum to 1 only up to rounding).
    ship = (w_rev * (1.0 - terms.prod(axis=1))).sum(-1)
    defect = np.where(Cc > 0, ship, 0.0)
    defect = np.clip(defect, 0.0, 1.0)
    review = L.review_base + L.review_per_defect * defect
    return CellStats(F=F, P=P, R=R, E_phase=E_phase, E=E, C=Cc, defect=defect, review=review)


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
    s = cell_stats(L)
    w = L.weight
    E = float(w @ s.E)
    # Rates are clamped to [0, 1] where they are computed: sums of weights that add up to 1
    # only to rounding gave completions of 1.0000000000000002.
    C = _unit(float(w @ s.C))
    cpct = E / C if C > 0 else float("inf")
    defect = _unit(float(w @ (s.C * s.defect)) / C) if C > 0 else 0.0
    review = float(w @ (s.C * s.review)) / C if C > 0 else 0.0

    # Probability mass of each attempt actually happening, per task: w_c * R_i * F_k.
    mass = w[:, None, None] * s.R[..., None] * s.F * L.valid              # [C, P, K]
    succ_mass = mass * L.p                                                # success at k
    attempts = float(mass.sum())
    retries = float(mass[..., 1:].sum())

    M = len(L.rates.ids)
    m_idx = np.where(L.valid, L.model, 0).ravel()
    spend_m = np.bincount(m_idx, weights=(mass * L.cost).ravel(), minlength=M)
    att_m = np.bincount(m_idx, weights=mass.ravel(), minlength=M)
    tok_m = np.stack([np.bincount(m_idx, weights=(mass[..., None] * L.tokens)[..., x].ravel(),
                                  minlength=M) for x in range(3)], axis=1)
    summ_spend = float((succ_mass * L.summ_cost).sum())
    summ_tok = (succ_mass[..., None] * L.summ_tokens).sum(axis=(0, 1, 2))
    summ_calls = float(succ_mass[L.summ_cost > 0].sum()) if L.summ_model >= 0 else 0.0
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

    # Per phase name (task types sharing a phase name are pooled).
    phases: dict[str, dict] = {}
    for c, cell in enumerate(L.cells):
        for i, name in enumerate(L.phase_names[cell.task]):
            d = phases.setdefault(name, {"phase": name, "spend": 0.0, "reach": 0.0,
                                         "success_mass": 0.0, "attempts": 0.0})
            d["spend"] += float(w[c] * s.R[c, i] * s.E_phase[c, i])
            d["reach"] += float(w[c] * s.R[c, i])
            d["success_mass"] += float(w[c] * s.R[c, i] * s.P[c, i])
            d["attempts"] += float(mass[c, i].sum())
    phase_rows = []
    for d in phases.values():
        reach = d.pop("reach")
        sm = d.pop("success_mass")
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


def _unit(x: float) -> float:
    """``x`` clamped to [0, 1] (a probability or a share off by rounding)."""
    return min(max(x, 0.0), 1.0)
