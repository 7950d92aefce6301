"""The search space of `costsim optimize` around a base policy, and the policy of one point.

The space (SPEC.md §3, issue #6), around a *base* policy whose tier names and signals are kept:

* a starting tier for every phase name of the workload (``routes``);
* ``escalation.after_failures`` in 1..3;
* handoff ``summary`` or ``full_history`` (``summary_tokens`` and ``summarizer`` as in the base
  policy, else the workload, else 1500 tokens and the cheapest tier);
* unless ``fixed_tiers``: the model that fills each tier, drawn from the price table's models of
  that tier's class (the price-table ``tier`` of the model the base policy puts there),
  restricted to ``candidates`` if given.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..engine.compile import Rates, success_table
from ..errors import CostsimError
from ..models import Handoff, Policy, PriceTable, Workload

AFTER_FAILURES = (1, 2, 3)
HANDOFF_MODES = ("summary", "full_history")


@dataclass
class _Space:
    tier_names: list[str]
    options: list[list[str]]          # per tier slot: candidate model ids
    ids: list[str]                    # every model any config can call
    combos: np.ndarray                # [Mc, T] index into ids
    after: tuple[int, ...]
    handoffs: list[Handoff]
    summ_slot: int | None             # summarizer = the model of this tier slot ...
    summ_fixed: int | None            # ... or this fixed model (index into ids)
    phase_names: list[str]

    @property
    def n_configs(self) -> int:
        return len(self.handoffs) * len(self.after) * len(self.combos)

    def config(self, g: int) -> tuple[int, int, int]:
        """Flat config index -> (handoff index, after_failures index, combo index)."""
        h, rest = divmod(g, len(self.after) * len(self.combos))
        a, mu = divmod(rest, len(self.combos))
        return h, a, mu


def _base_handoff(base: Policy, wl: Workload) -> Handoff:
    if base.handoff is not None and base.handoff.mode == "summary":
        h = base.handoff
    elif wl.handoff.mode == "summary":
        h = wl.handoff
    elif base.handoff is not None:
        h = base.handoff
    else:
        h = wl.handoff
    return Handoff(mode="summary", summary_tokens=h.summary_tokens, summarizer=h.summarizer)


def _evaluable(table: PriceTable, wl: Workload, ids: list[str]) -> dict[str, str]:
    """Models whose success cannot be told for some phase -> the reason (they are skipped)."""
    rates = Rates.from_table(table, ids)
    bad: dict[str, str] = {}
    for t in wl.task_types:
        sigs = t.signals if t.signals is not None else wl.signals
        extras = {0.0}
        for bits in itertools.product((False, True), repeat=len(sigs)):
            extras.add(sum(s.difficulty for s, on in zip(sigs.values(), bits) if on))
        for ph in t.phases:
            for e in extras:
                d = None if ph.difficulty is None else ph.difficulty + e
                p = success_table(rates, ph.success, d, wl.feedback_gain, 1)
                for col in np.flatnonzero(np.isnan(p[0])):
                    bad.setdefault(ids[col], f"cannot tell how often it succeeds at "
                                             f"{t.name}/{ph.phase} (no coding_score)")
    return bad


def _build_space(table: PriceTable, wl: Workload, base: Policy, *, fixed_tiers: bool,
                 candidates: Sequence[str] | None, after: Sequence[int],
                 handoff_modes: Sequence[str], notes: list[str]) -> _Space:
    tier_names = list(base.tiers)
    if candidates:
        for m in candidates:
            if m not in table.models:
                raise CostsimError(f"unknown model '{m}' (not in the price table)",
                                   path="--candidates")
    pool = list(dict.fromkeys(candidates)) if candidates else sorted(table.models)
    if not fixed_tiers:
        bad = _evaluable(table, wl, pool)
        for m, why in bad.items():
            if m not in base.tiers.values():
                notes.append(f"skipped candidate {m}: {why}")
        pool = [m for m in pool if m not in bad or m in base.tiers.values()]
    options = []
    for name in tier_names:
        mid = base.tiers[name]
        if fixed_tiers:
            options.append([mid])
            continue
        cls = table.models[mid].tier
        opts = [m for m in pool if table.models[m].tier == cls]
        if not opts:
            notes.append(f"tier {name}: no candidate of class {cls}; keeping {mid}")
            opts = [mid]
        elif mid in opts:                         # the base model first: ties keep it
            opts.remove(mid)
            opts.insert(0, mid)
        options.append(opts)

    hb = _base_handoff(base, wl)
    s = hb.summarizer
    summ_slot = summ_fixed = None
    ids = list(dict.fromkeys(m for opts in options for m in opts))
    if s is None:
        summ_slot = 0
        hb = Handoff(mode="summary", summary_tokens=hb.summary_tokens, summarizer=tier_names[0])
    elif s in base.tiers:
        summ_slot = tier_names.index(s)
    else:
        if s not in table.models:
            raise CostsimError(f"summarizer '{s}' is neither a tier of policy '{base.name}' nor a "
                               f"model in the price table", path="handoff.summarizer")
        if s not in ids:
            ids.append(s)
        summ_fixed = ids.index(s)
    handoffs = []
    for mode in handoff_modes:
        if mode not in HANDOFF_MODES:
            raise CostsimError(f"unknown handoff mode '{mode}' (modes: summary, full_history)",
                               path="handoffs")
        handoffs.append(Handoff(mode=mode, summary_tokens=hb.summary_tokens,
                                summarizer=hb.summarizer))
    for a in after:
        if int(a) < 1:
            raise CostsimError(f"after_failures must be >= 1, got {a}", path="after_failures")
    combos = np.array([[ids.index(m) for m in c] for c in itertools.product(*options)], int)
    phase_names = list(dict.fromkeys(ph.phase for t in wl.task_types for ph in t.phases))
    return _Space(tier_names=tier_names, options=options, ids=ids,
                  combos=combos.reshape(-1, len(tier_names)), after=tuple(int(a) for a in after),
                  handoffs=handoffs, summ_slot=summ_slot, summ_fixed=summ_fixed,
                  phase_names=phase_names)



def search_space_size(sp: _Space) -> int:
    return sp.n_configs * len(sp.tier_names) ** len(sp.phase_names)


def build_policy(sp: _Space, base: Policy, g: int, route: Sequence[int], name: str,
                 description: str | None = None) -> dict:
    """The YAML document of config g with routes ``route`` (tier index per phase name)."""
    h, a, mu = sp.config(g)
    tiers = {t: sp.ids[m] for t, m in zip(sp.tier_names, sp.combos[mu])}
    routes: dict[str, str] = {}
    if "default" in base.routes:
        routes["default"] = base.routes["default"]
    for ph, r in zip(sp.phase_names, route):
        routes[ph] = sp.tier_names[int(r)]
    signals = {}
    for sname, sig in base.signals.items():
        d: dict = {}
        if sig.min_tier is not None:
            d["min_tier"] = sig.min_tier
        if sig.raise_:
            d["raise"] = sig.raise_
        if sig.phases is not None:
            d["phases"] = list(sig.phases)
        signals[sname] = d
    ho = sp.handoffs[h]
    doc = {"version": 1, "name": name}
    if description:
        doc["description"] = description
    doc.update({"tiers": tiers, "routes": routes,
                "escalation": {"after_failures": sp.after[a]},
                "signals": signals,
                "handoff": {"mode": ho.mode, "summary_tokens": ho.summary_tokens,
                            "summarizer": ho.summarizer}})
    return doc


def policy_from_doc(doc: dict) -> Policy:
    from ..loader import check_policy

    pol = Policy.model_validate(doc)
    check_policy(pol)
    return pol

