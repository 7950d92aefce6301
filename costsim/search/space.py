"""The search space of `costsim optimize` around a base policy, and the policy of one point.

The space (SPEC.md §3), around a *base* policy whose tier names, signals and escalation
``retry_context`` are kept:

* a starting tier for every phase name of the workload (``routes``);
* ``escalation.after_failures`` in 1..3;
* handoff ``summary`` or ``full_history`` (``summary_tokens`` and ``summarizer`` as in the base
  policy, else the workload, else 1500 tokens and the cheapest tier);
* unless ``fixed_tiers``: the model that fills each tier, drawn from the price table's models of
  that tier's class (the price-table ``tier`` of the model the base policy puts there),
  restricted to ``candidates`` if given.

The space is *sized before it is built*: :func:`plan_space` works out the models each tier may
hold (dropping the ones that cannot be evaluated and the ones another candidate dominates, see
:func:`dominated`) and the size follows from the counts; model combinations are only ever
materialised a chunk at a time (:meth:`Space.combos`).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..engine.compile import Rates, _lookup, success_table
from ..errors import CostsimError
from ..models import Handoff, Policy, PriceTable, Workload

AFTER_FAILURES = (1, 2, 3)
HANDOFF_MODES = ("summary", "full_history")


@dataclass
class Space:
    tier_names: list[str]
    options: list[list[str]]          # per tier slot: candidate model ids (the base model first)
    ids: list[str]                    # every model any config can call
    after: tuple[int, ...]
    handoffs: list[Handoff]
    summ_slot: int | None             # summarizer = the model of this tier slot ...
    summ_fixed: int | None            # ... or this fixed model (index into ids)
    phase_names: list[str]
    retry_context: str = "full"       # kept from the base policy

    @property
    def radix(self) -> tuple[int, ...]:
        return tuple(len(o) for o in self.options)

    @property
    def n_combos(self) -> int:
        return math.prod(self.radix)

    @property
    def n_configs(self) -> int:
        return len(self.handoffs) * len(self.after) * self.n_combos

    @property
    def routes_n(self) -> int:
        return len(self.tier_names) ** len(self.phase_names)

    @property
    def size(self) -> int:
        """Policies in the space (an exact Python int: it may be astronomically large)."""
        return self.n_configs * self.routes_n

    def combos(self, mu0: int, mu1: int) -> np.ndarray:
        """Model combinations mu0..mu1-1 as ``[m, T]`` indices into ``ids`` (first tier slowest,
        as ``itertools.product`` orders them)."""
        slots = np.unravel_index(np.arange(mu0, mu1), self.radix)
        idx = [np.array([self.ids.index(m) for m in opts]) for opts in self.options]
        return np.stack([idx[t][s] for t, s in enumerate(slots)], axis=1).reshape(-1, len(idx))

    def config(self, g: int) -> tuple[int, int, int]:
        """Flat config index -> (combo index, handoff index, after_failures index).

        Configs are ordered combo first, so a run of combos is a run of configs."""
        mu, rest = divmod(int(g), len(self.handoffs) * len(self.after))
        h, a = divmod(rest, len(self.after))
        return mu, h, a


# kept for callers of the old name
_Space = Space


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


def _difficulty_extras(wl: Workload, t) -> list[float]:
    """Every total signal difficulty a cell of task type ``t`` can add (0 included)."""
    sigs = t.signals if t.signals is not None else wl.signals
    extras = {0.0}
    for bits in itertools.product((False, True), repeat=len(sigs)):
        extras.add(sum(s.difficulty for s, on in zip(sigs.values(), bits) if on))
    return sorted(extras)


@dataclass
class ModelProfile:
    """What the cost model reads about each model, as rows for comparing models."""

    ids: list[str]
    success: np.ndarray       # [M, L] every p(i, k) of every phase and signal mix (NaN: unknown)
    unknown: dict[str, str]   # model -> why its success cannot be told somewhere
    rates: Rates
    defect: np.ndarray        # [M, D] defect rate under every defects block (lower is better)
    catch: np.ndarray         # [M, D] catch rate under every defects block (higher is better)


def model_profile(table: PriceTable, wl: Workload, ids: list[str]) -> ModelProfile:
    rates = Rates.from_table(table, ids)
    cols: list[np.ndarray] = []
    unknown: dict[str, str] = {}
    for t in wl.task_types:
        K = t.max_attempts or wl.max_attempts
        for ph in t.phases:
            for e in _difficulty_extras(wl, t):
                d = None if ph.difficulty is None else ph.difficulty + e
                p = success_table(rates, ph.success, d, wl.feedback_gain, K)     # [K, M]
                for col in np.flatnonzero(np.isnan(p[0])):
                    unknown.setdefault(ids[col], f"cannot tell how often it succeeds at "
                                                 f"{t.name}/{ph.phase} (no coding_score)")
                cols.append(p.T)
    blocks = [wl.defects] + [t.defects for t in wl.task_types]
    blocks = [b for b in blocks if b is not None]
    defect = np.array([[_lookup(b.rate, m, rates.tiers[j]) for b in blocks]
                       for j, m in enumerate(ids)]).reshape(len(ids), len(blocks))
    catch = np.array([[_lookup(b.catch_rate, m, rates.tiers[j]) for b in blocks]
                      for j, m in enumerate(ids)]).reshape(len(ids), len(blocks))
    success = np.concatenate(cols, axis=1) if cols else np.zeros((len(ids), 0))
    return ModelProfile(ids=list(ids), success=success, unknown=unknown, rates=rates,
                        defect=defect, catch=catch)


def _price_rows(r: Rates) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(base rates [M, 3], long-context rates [M, 3], threshold [M]) per model."""
    base = np.stack([r.input, r.output, r.cache_read], axis=1)
    lc = np.stack([r.lc_input, r.lc_output, r.lc_cache_read], axis=1)
    return base, lc, r.above


def _never_dearer(j: int, i: np.ndarray, base, lc, above) -> np.ndarray:
    """Whether model j is billed at most what each model i is for *every* call, whatever its
    size: at every token count both models' rates (base below their threshold, long-context
    above) compare component by component."""
    ok = (base[j] <= base[i]).all(1) & (lc[j] <= lc[i]).all(1)
    # between the two thresholds one model is already on long-context rates, the other not
    j_first = above[j] < above[i]
    ok &= np.where(j_first, (lc[j] <= base[i]).all(1), True)
    i_first = above[i] < above[j]
    ok &= np.where(i_first, (base[j] <= lc[i]).all(1), True)
    return ok


def dominated(prof: ModelProfile, order: list[str], classes: list[str]) -> dict[str, str]:
    """Models of ``order`` that another model of ``order`` of the same class (``classes``, in
    the same order: models only stand in for models that fill the same tiers) makes redundant
    -> that model.

    Model *b* dominates *a* when it succeeds exactly as often at every phase, attempt and signal
    mix (so every probability of every policy is unchanged), is billed at most as much for every
    call of any size (input, output and cache-read rates, long-context rates included), adds
    defects at most as often and catches them at least as often. Putting *b* where *a* was then
    changes no probability and lowers no metric's quality while costing at most as much, so no
    optimum and no Pareto point is lost by dropping *a*; among equals the first of ``order``
    stays. This is deliberately strict: a model that succeeds more often is *not* taken to
    dominate a worse one, because a better early phase can raise cost per completed task (more
    tasks reach the dear later phases) and a better cheap tier can raise the defect rate (fewer
    tasks escalate to a careful model).
    """
    pos = {m: k for k, m in enumerate(prof.ids)}
    idx = np.array([pos[m] for m in order], int)
    if idx.size < 2:
        return {}
    succ = np.nan_to_num(prof.success[idx], nan=-1.0)
    base, lc, above = (x[idx] for x in _price_rows(prof.rates))
    defect, catch = prof.defect[idx], prof.catch[idx]
    groups: dict[bytes, list[int]] = {}
    for k in range(idx.size):
        groups.setdefault((classes[k], succ[k].tobytes()), []).append(k)
    out: dict[str, str] = {}
    for members in groups.values():
        if len(members) < 2:
            continue
        mem = np.array(members)
        alive = np.ones(mem.size, bool)
        for a, j in enumerate(mem):                  # j tries to dominate the others
            if not alive[a]:
                continue
            ok = _never_dearer(j, mem, base, lc, above)
            ok &= (defect[j] <= defect[mem]).all(1) & (catch[j] >= catch[mem]).all(1)
            ok &= alive
            ok[a] = False
            # an exact equal that comes first in ``order`` survives
            same = ((base[mem] == base[j]).all(1) & (lc[mem] == lc[j]).all(1)
                    & (above[mem] == above[j]) & (defect[mem] == defect[j]).all(1)
                    & (catch[mem] == catch[j]).all(1))
            ok &= ~(same & (np.arange(mem.size) < a))
            for b in np.flatnonzero(ok):
                alive[b] = False
                out[order[mem[b]]] = order[j]
    return out


def _summarize(what: str, names: list[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    more = f" and {len(names) - limit:,} more" if len(names) > limit else ""
    return f"{what} ({len(names):,}): {shown}{more}"


def plan_space(table: PriceTable, wl: Workload, base: Policy, *, fixed_tiers: bool,
               candidates: Sequence[str] | None, after: Sequence[int],
               handoff_modes: Sequence[str], notes: list[str],
               prune: bool = True) -> tuple[Space, ModelProfile | None]:
    """The space's options per tier, without building any combination of them."""
    tier_names = list(base.tiers)
    for a in after:
        if int(a) < 1:
            raise CostsimError(f"after_failures must be >= 1, got {a}", path="after_failures")
    for mode in handoff_modes:
        if mode not in HANDOFF_MODES:
            raise CostsimError(f"unknown handoff mode '{mode}' (modes: summary, full_history)",
                               path="handoffs")
    if candidates:
        for m in candidates:
            if m not in table.models:
                raise CostsimError(f"unknown model '{m}' (not in the price table)",
                                   path="--candidates")
    base_models = list(dict.fromkeys(base.tiers.values()))
    prof = None
    if fixed_tiers:
        options = [[base.tiers[name]] for name in tier_names]
    else:
        pool = list(dict.fromkeys(candidates)) if candidates else sorted(table.models)
        classes = {table.models[m].tier for m in base_models}
        if candidates:
            stray = [m for m in dict.fromkeys(candidates) if table.models[m].tier not in classes]
            if stray:
                notes.append(_summarize(f"candidates of a class no tier of {base.name} holds "
                                        f"({', '.join(sorted(classes))}) fill no tier", stray))
        # the base models first: ties keep them
        order = [m for m in base_models if m in pool] + [m for m in pool if m not in base_models
                                                         and table.models[m].tier in classes]
        prof = model_profile(table, wl, order)
        skipped = [m for m in order if m in prof.unknown and m not in base_models]
        if skipped:
            notes.append(_summarize("skipped candidates whose success cannot be told "
                                    "(no coding_score)", skipped))
        usable = [m for m in order if m not in prof.unknown or m in base_models]
        gone = dominated(prof, usable, [table.models[m].tier for m in usable]) if prune else {}
        if gone:
            notes.append(_summarize("dropped candidates another model of their class "
                                    "dominates (same success everywhere, never dearer)",
                                    [f"{m} (by {b})" for m, b in gone.items()]))
        options = []
        for name in tier_names:
            mid = base.tiers[name]
            cls = table.models[mid].tier
            opts = [m for m in usable if table.models[m].tier == cls and m not in gone]
            if not opts:
                notes.append(f"tier {name}: no candidate of class {cls}; keeping {mid}")
                opts = [mid]
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
    handoffs = [Handoff(mode=mode, summary_tokens=hb.summary_tokens, summarizer=hb.summarizer)
                for mode in handoff_modes]
    phase_names = list(dict.fromkeys(ph.phase for t in wl.task_types for ph in t.phases))
    sp = Space(tier_names=tier_names, options=options, ids=ids,
               after=tuple(int(a) for a in after), handoffs=handoffs, summ_slot=summ_slot,
               summ_fixed=summ_fixed, phase_names=phase_names,
               retry_context=base.escalation.retry_context)
    return sp, prof


def search_space_size(sp: Space) -> int:
    return sp.size


def signals_doc(base: Policy) -> dict:
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
    return signals


def build_policy(sp: Space, base: Policy, g: int, route: Sequence[int], name: str,
                 description: str | None = None) -> dict:
    """The YAML document of config g with routes ``route`` (tier index per phase name)."""
    mu, h, a = sp.config(g)
    tiers = {t: sp.ids[m] for t, m in zip(sp.tier_names, sp.combos(mu, mu + 1)[0])}
    routes: dict[str, str] = {}
    if "default" in base.routes:
        routes["default"] = base.routes["default"]
    for ph, r in zip(sp.phase_names, route):
        routes[ph] = sp.tier_names[int(r)]
    ho = sp.handoffs[h]
    doc = {"version": 1, "name": name}
    if description:
        doc["description"] = description
    esc: dict = {"after_failures": sp.after[a]}
    if sp.retry_context != "full":
        esc["retry_context"] = sp.retry_context
    doc.update({"tiers": tiers, "routes": routes, "escalation": esc,
                "signals": signals_doc(base),
                "handoff": {"mode": ho.mode, "summary_tokens": ho.summary_tokens,
                            "summarizer": ho.summarizer}})
    return doc


def policy_from_doc(doc: dict) -> Policy:
    from ..loader import check_policy

    pol = Policy.model_validate(doc)
    check_policy(pol)
    return pol


def single_policy_doc(table: PriceTable, wl: Workload, model: str, name: str) -> dict:
    """``single:MODEL`` as a policy document: one tier (named after the model's class) that every
    phase starts on, so nothing escalates; the workload's handoff, summarized by the model
    itself. ``compare`` gives it exactly the numbers of ``single:MODEL``."""
    cls = table.models[model].tier
    phases = list(dict.fromkeys(ph.phase for t in wl.task_types for ph in t.phases))
    h = wl.handoff
    handoff = {"mode": h.mode, "summary_tokens": h.summary_tokens}
    if h.mode == "summary":
        handoff["summarizer"] = cls
    return {"version": 1, "name": name, "tiers": {cls: model},
            "routes": {"default": cls, **{ph: cls for ph in phases}},
            "escalation": {"after_failures": 1}, "signals": {}, "handoff": handoff}
