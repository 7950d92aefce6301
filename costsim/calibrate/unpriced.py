"""Rates for the log's models that the price table lacks, read from the costs the log states.

A row without ``cost_usd`` must name a model of the price table (the reader refuses it
otherwise), but a row that states its cost may name any model: benchmark results and spend logs
carry the provider's name (``openai/gpt-5-mini``) and what each call cost. The fitted workload
names those models, and the engine prices tokens, so each such model gets *effective rates*:
USD per 1M uncached input, cached input and output tokens, fitted by non-negative least squares
to its rows' costs (a provider bills tokens at fixed rates, so the fit is exact when the log's
costs were computed that way). A token kind the model's rows never show has no rate to read:
cached input then costs what input does, and an unseen input or output rate is 0 (nothing of
that kind was billed).

The rates join the price table ``calibrate`` works with (``--write-prices`` writes it), with
the tier of the table's model whose output (or input) rate is nearest, provider ``log`` and no
``coding_score``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Rates:
    """Per model: USD per 1M tokens and how well they bill the rows."""

    input: dict[str, float] = field(default_factory=dict)
    cache_read: dict[str, float] = field(default_factory=dict)
    output: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    error: dict[str, float] = field(default_factory=dict)   # rms error / rms cost
    notes: list[str] = field(default_factory=list)


def fit_rates(moments) -> Rates:
    """Non-negative least squares per model from :meth:`.measure.Measure.cost_moments`' sums.

    With ``X`` the rows' (uncached input, cached input, output) tokens in millions and ``y``
    their costs, the fit minimises ``|X p - y|^2`` over ``p >= 0``; only ``X'X`` and ``X'y``
    are needed. ``X'X = V diag(w) V'`` turns it into an ordinary bounded least-squares problem
    on ``diag(sqrt w) V'`` (rank-deficient when two token kinds move together, which
    ``lsq_linear`` handles)."""
    from scipy.optimize import lsq_linear

    out = Rates()
    if moments is None:
        return out
    for r in moments.to_dict("records"):
        m = str(r["model"])
        G = np.array([[r["uu"], r["uc"], r["uo"]], [r["uc"], r["cc"], r["co"]],
                      [r["uo"], r["co"], r["oo"]]], dtype=float)
        h = np.array([r["uy"], r["cy"], r["oy"]], dtype=float)
        seen = np.diag(G) > 0
        p = np.zeros(3)
        if seen.any():
            Gs, hs = G[np.ix_(seen, seen)], h[seen]
            w, V = np.linalg.eigh(Gs)
            keep = w > w.max() * 1e-12
            A = np.sqrt(w[keep])[:, None] * V[:, keep].T
            b = (V[:, keep].T @ hs) / np.sqrt(w[keep])
            p[seen] = lsq_linear(A, b, bounds=(0.0, np.inf), method="bvls").x
        if not seen[1]:                 # no cached input seen: billed as input
            p[1] = p[0]
        sse = max(float(r["yy"]) - 2 * float(p @ h) + float(p @ G @ p), 0.0)
        out.input[m], out.cache_read[m], out.output[m] = (float(x) for x in p)
        out.rows[m] = int(r["n"])
        out.error[m] = math.sqrt(sse / r["yy"]) if r["yy"] > 0 else 0.0
        out.notes.append(
            f"{m} is not in the price table: priced at rates fitted to the costs of its "
            f"{int(r['n']):,} rows (${p[0]:.4g} input, ${p[1]:.4g} cached, ${p[2]:.4g} output "
            f"per 1M tokens; they bill those rows to {out.error[m]:.1%}); --write-prices "
            f"writes them")
    return out


def table_with(table, rates: Rates, source: str) -> dict:
    """``table`` (a :class:`~costsim.models.PriceTable`) as a dict in the file format, with an
    entry per model of ``rates``."""
    from .cost_only import table_dict

    entries = {m: {"provider": "log", "tier": _nearest_tier(table, rates, m),
                   "input": round(rates.input[m], 10), "output": round(rates.output[m], 10),
                   "cache_read": round(rates.cache_read[m], 10),
                   "note": f"effective rates: fitted to {rates.rows[m]:,} rows' stated costs"}
               for m in rates.input}
    return table_dict(table, entries, source=source,
                      note="effective rates of the log's models the table lacks, fitted to "
                           "their costs")


def _nearest_tier(table, rates: Rates, m: str) -> str:
    """The tier of the table's model whose output rate (input where outputs are free) is
    nearest on a log scale; the middle tier of an empty table."""
    mine = rates.output[m] or rates.input[m]
    best, tier = math.inf, "midrange"
    for mid in sorted(table.models):
        mp = table.models[mid]
        theirs = mp.output if rates.output[m] else mp.input
        if mine > 0 and theirs and theirs > 0:
            d = abs(math.log(mine / theirs))
            if d < best:
                best, tier = d, mp.tier
    return tier
