"""Prices for a log that shows what attempts cost but not their tokens.

Benchmark results (per-instance cost and outcome) and billing exports record a cost per attempt
and no token counts. The cost model prices tokens, so such a log becomes a workload *and* a price
table that together bill each attempt what the log says it cost:

- every phase the log shows only by cost gets a nominal size: one call of ``input_tokens`` new
  tokens (:data:`NOMINAL_TOKENS` times the phase's size factor), no output;
- every model the log shows only by cost gets an *effective price*: USD per 1M input tokens such
  that one attempt of a size-1 phase costs its typical recorded cost;
- resent context is free (``cache_hit_rate: 1`` in the workload, ``cache_read: 0`` in the
  prices), so an attempt costs its new tokens only, whatever the handoff and retry context:
  the recorded cost of an attempt already contains whatever context it carried.

The typical cost of a model in a phase is the mean of its recorded attempts' costs; where a model
only shows on some tasks (an escalation step that runs only after failures), that mean is
corrected for the tasks it saw with the size fit of :mod:`costsim.calibrate.variation` (``selection``).
With several phases, a model's price and a phase's size come from the table of mean costs as a
product (least squares on the logarithms, weighted by the attempts), the sizes' geometric mean
being 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

NOMINAL_TOKENS = 1_000_000


@dataclass
class CostOnly:
    """Effective prices (USD per 1M tokens) and phase sizes (nominal input tokens)."""

    prices: dict[str, float]
    sizes: dict[tuple[str, str], int]
    attempts: dict[str, int]
    mean_cost: dict[tuple[str, str, str], float]       # (task type, phase, model) -> USD
    notes: list[str] = field(default_factory=list)


def tokenless_phases(frame) -> set[tuple[str, str]]:
    """(task type, phase) whose attempt records show no token at all (summaries left out where
    ``frame`` marks them)."""
    f = frame[~frame["summary"].to_numpy(bool)] if "summary" in frame else frame
    tok = f["input_tokens"].to_numpy(float) + f["output_tokens"].to_numpy(float)
    sums = f.assign(_tok=tok).groupby(["task_type", "phase"])["_tok"].sum()
    return {(str(t), str(p)) for (t, p), v in sums.items() if v == 0}


def cost_only_phases(frame) -> set[tuple[str, str]]:
    """(task type, phase) whose attempt records carry a cost and no tokens at all."""
    f = frame[~frame["summary"].to_numpy(bool)]
    costed = f["cost"].notna().groupby([f["task_type"], f["phase"]]).all()
    return {k for k in tokenless_phases(f) if costed[k]}


def fit_cost_only(frame, selection: dict | None = None) -> CostOnly | None:
    """Effective prices and phase sizes from the attempt records of the cost-only phases.

    ``selection``: optional (task type, phase, model) -> factor by which the tasks a model saw
    were larger than all tasks (1: it saw every task); its mean cost is divided by it."""
    phases = cost_only_phases(frame)
    if not phases:
        return None
    f = frame[~frame["summary"].to_numpy(bool)]
    key = list(zip(f["task_type"], f["phase"]))
    f = f[[k in phases for k in key]]
    g = f.groupby(["task_type", "phase", "model"])["cost"].agg(["mean", "size"])
    notes = []
    cells = {}
    for (tt, ph, m), r in g.iterrows():
        mean = float(r["mean"])
        sel = (selection or {}).get((tt, ph, m), 1.0)
        cells[(str(tt), str(ph), str(m))] = (mean / sel, int(r["size"]))
    zero = [k for k, (c, _) in cells.items() if not c > 0]
    if zero:
        notes.append(f"{len(zero)} model/phase cells cost nothing on average; priced at 0")
    models = sorted({m for _, _, m in cells})
    phs = sorted({(t, p) for t, p, _ in cells})
    # log mean cost = log price(model) + log size(phase), weighted least squares
    lp = {m: 0.0 for m in models}
    ls = {p: 0.0 for p in phs}
    pos = {k: v for k, v in cells.items() if v[0] > 0}
    for _ in range(200):
        old = dict(lp)
        for m in models:
            rows = [(math.log(c) - ls[(t, p)], n) for (t, p, mm), (c, n) in pos.items()
                    if mm == m]
            if rows:
                lp[m] = sum(a * n for a, n in rows) / sum(n for _, n in rows)
        for ph in phs:
            rows = [(math.log(c) - lp[m], n) for (t, p, m), (c, n) in pos.items()
                    if (t, p) == ph]
            if rows:
                ls[ph] = sum(a * n for a, n in rows) / sum(n for _, n in rows)
        centre = sum(ls.values()) / len(ls)
        ls = {k: v - centre for k, v in ls.items()}
        lp = {k: v + centre for k, v in lp.items()}
        if max(abs(lp[m] - old[m]) for m in models) < 1e-12:
            break
    prices = {m: (math.exp(lp[m]) if any(mm == m for _, _, mm in pos) else 0.0)
              for m in models}
    sizes = {ph: max(1, int(round(NOMINAL_TOKENS * math.exp(ls[ph])))) for ph in phs}
    if len(phs) > 1:
        worst = max((abs(math.log(c / (prices[m] * sizes[(t, p)] / NOMINAL_TOKENS)))
                     for (t, p, m), (c, _) in pos.items()), default=0.0)
        if worst > math.log(1.1):
            notes.append(f"a model's cost is not the same multiple of another's in every phase "
                         f"(up to {math.exp(worst) - 1:.0%} off): one price per model cannot "
                         f"bill every phase exactly")
    attempts = {m: sum(n for (_, _, mm), (_, n) in cells.items() if mm == m) for m in models}
    return CostOnly(prices=prices, sizes=sizes, attempts=attempts,
                    mean_cost={k: c for k, (c, _) in cells.items()}, notes=notes)


def apply_to_workload(wl: dict, fit: CostOnly) -> dict:
    """The fitted workload (a dict in the file format) with the cost-only phases sized and
    resent context made free."""
    out = dict(wl)
    out["system_tokens"] = 0
    out["cache_hit_rate"] = 1.0
    types = []
    for t in wl["task_types"]:
        t = dict(t)
        phases = []
        for ph in t["phases"]:
            size = fit.sizes.get((t["name"], ph["phase"]))
            if size is not None:
                ph = dict(ph, calls=1, input_tokens=size, output_tokens=0)
            phases.append(ph)
        t["phases"] = phases
        types.append(t)
    out["task_types"] = types
    return out


TIER_ORDER = ("budget", "midrange", "premium")


def price_entries(fit: CostOnly, table=None) -> dict[str, dict]:
    """Price-table entries for the cost-only models: the effective price as ``input``, output
    and cached input free. Provider, tier and coding_score come from ``table`` when it knows the
    model; otherwise the provider is ``log`` and the tier the model's third of the effective
    prices (cheapest third budget, dearest premium)."""
    ranked = sorted(fit.prices, key=lambda m: (fit.prices[m], m))
    out = {}
    for i, m in enumerate(ranked):
        known = table.models.get(m) if table is not None else None
        tier = known.tier if known is not None else TIER_ORDER[min(2, 3 * i // max(len(ranked), 1))]
        e = {"provider": known.provider if known is not None else "log", "tier": tier,
             "input": round(fit.prices[m], 10), "output": 0.0, "cache_read": 0.0,
             "note": f"effective price: {fit.attempts[m]:,} attempts recorded by cost only"}
        if known is not None and known.coding_score is not None:
            e["coding_score"] = known.coding_score
        out[m] = e
    return out


def table_dict(table, entries: dict, *, source: str, note: str, as_of=None) -> dict:
    """``table`` (a :class:`~costsim.models.PriceTable`, or None) as a dict in the file format,
    its models and sources kept, with ``entries`` (model -> entry) in place of theirs and a
    source saying where they come from (``source``: the log; ``note``: how)."""
    import datetime as dt

    models, sources = {}, []
    if table is not None:
        dumped = table.model_dump(mode="json", by_alias=True, exclude_none=True,
                                  exclude_defaults=True)
        models, sources = dumped["models"], list(dumped.get("sources", []))
        for mid, mp in table.models.items():
            models[mid].setdefault("provider", mp.provider)
            models[mid].setdefault("tier", mp.tier)
            models[mid].setdefault("input", mp.input)
            models[mid].setdefault("output", mp.output)
    models.update(entries)
    return {"version": 1, "as_of": str(as_of or (table.as_of if table is not None
                                                 else dt.date.today())),
            "currency": "USD",
            "sources": sources + [{"name": "calibrate", "ref": source, "note": note}],
            "models": models}


def price_table(fit: CostOnly, table=None, *, as_of=None, source: str = "log") -> dict:
    """A whole price table (a dict in the file format): ``table``'s models with the cost-only
    models' effective entries in place of theirs."""
    return table_dict(table, price_entries(fit, table), source=source, as_of=as_of,
                      note="effective prices of models the log shows by cost only")
