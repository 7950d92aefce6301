"""The one compile step: (price table, strategy, workload) -> attempt ladders.

SPEC.md §3.1–3.3 live here and only here. A ladder says, for every *cell* (task type x
combination of signals), phase and attempt index: which model makes the attempt, what the
attempt costs, its success probability, the summarizer call that follows a success, the
defect rate of the attempt's model (defect phases) and its catch rate (the review phase).
The analytic engine (§3.4) and the Monte Carlo engine both read these arrays.

Arrays are padded to ``(cells, max_phases, max_attempts)``. Padded attempts have p=0 and cost 0,
so they change nothing; padded phases succeed at their first attempt for free.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import CostsimError
from ..models import Handoff, Policy, PriceTable, Workload

PER_MILLION = 1_000_000.0


# --- strategies -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Strategy:
    """A routed policy, ``single:MODEL`` or ``pareto:SCORE``."""

    name: str
    kind: str  # "routed" | "single" | "pareto"
    policy: Policy | None = None
    model: str | None = None
    score: float | None = None          # pareto: the coding_score threshold
    pool: tuple[str, ...] = ()          # pareto: models whose coding_score reaches it

    @classmethod
    def single(cls, model: str) -> "Strategy":
        return cls(name=f"single:{model}", kind="single", model=model)

    @classmethod
    def routed(cls, policy: Policy) -> "Strategy":
        return cls(name=policy.name, kind="routed", policy=policy)

    @classmethod
    def pareto(cls, score: float, table: PriceTable) -> "Strategy":
        """``pareto:SCORE``: every attempt goes to the model whose cost for that attempt (§3.2)
        is lowest among the models with ``coding_score >= SCORE`` (models without a score are
        skipped; ties go to the first model id in sorted order). Handoff: the workload's; the
        summarizer is :func:`pareto_summarizer`."""
        pool = tuple(sorted(m for m, p in table.models.items()
                            if p.coding_score is not None and p.coding_score >= score))
        if not pool:
            scores = [p.coding_score for p in table.models.values() if p.coding_score is not None]
            best = f"the highest is {max(scores):g}" if scores else "no model has one"
            raise CostsimError(f"no model in the price table has a coding_score >= {score:g} "
                               f"({best})", path=f"pareto:{score:g}")
        return cls(name=f"pareto:{score:g}", kind="pareto", score=float(score), pool=pool)

    def models(self) -> list[str]:
        """Every model this strategy can call, in escalation order."""
        if self.kind == "single":
            return [self.model]
        if self.kind == "pareto":
            return list(self.pool)
        out = list(dict.fromkeys(self.policy.tiers.values()))
        s = self.policy.handoff.summarizer if self.policy.handoff else None
        if s and s not in self.policy.tiers and s not in out:
            out.append(s)
        return out


# --- prices as arrays -----------------------------------------------------------------------

@dataclass
class Rates:
    """Per-model price vectors (USD per 1M tokens) for a chosen list of models."""

    ids: list[str]
    providers: list[str]
    tiers: list[str]
    score: np.ndarray        # NaN where the table has no coding_score
    input: np.ndarray
    output: np.ndarray
    cache_read: np.ndarray
    above: np.ndarray        # inf where there is no long_context block
    lc_input: np.ndarray
    lc_output: np.ndarray
    lc_cache_read: np.ndarray

    @classmethod
    def from_table(cls, table: PriceTable, ids: list[str]) -> "Rates":
        rows = []
        for mid in ids:
            m = table.models[mid]
            cr = m.cache_read if m.cache_read is not None else m.input
            lc = m.long_context
            if lc is None:
                above, li, lo, lcr = math.inf, m.input, m.output, cr
            else:
                above = float(lc.above)
                li = lc.input if lc.input is not None else m.input
                lo = lc.output if lc.output is not None else m.output
                # SPEC §2.1: cache_read omitted -> the long-context *input* rate.
                lcr = lc.cache_read if lc.cache_read is not None else li
            score = m.coding_score if m.coding_score is not None else math.nan
            rows.append((m.input, m.output, cr, above, li, lo, lcr, score))
        a = np.array(rows, dtype=float).reshape(len(ids), 8)
        return cls(ids=list(ids), providers=[table.models[i].provider for i in ids],
                   tiers=[table.models[i].tier for i in ids], score=a[:, 7],
                   input=a[:, 0], output=a[:, 1], cache_read=a[:, 2], above=a[:, 3],
                   lc_input=a[:, 4], lc_output=a[:, 5], lc_cache_read=a[:, 6])


def attempt_cost_table(rates: Rates, *, system: int, prior: float, calls: int, inp: int, out: int,
                       hit: float, attempts: int) -> tuple[np.ndarray, np.ndarray]:
    """Cost of attempt k (rows, 1..attempts) for every model (columns), §3.2; and its tokens.

    Returns ``(cost[K, M], tokens[K, 3])`` with tokens = (uncached input, cached input, output).
    """
    g = inp + out
    k = np.arange(attempts, dtype=float)[:, None]          # k-1
    j = np.arange(calls, dtype=float)[None, :]             # j-1
    ctx = system + prior + k * calls * g + j * g           # [K, n]
    long = (ctx + inp)[:, :, None] > rates.above[None, None, :]   # [K, n, M]
    c3 = ctx[:, :, None]
    base = hit * c3 * rates.cache_read + (1 - hit) * c3 * rates.input + inp * rates.input \
        + out * rates.output
    lc = hit * c3 * rates.lc_cache_read + (1 - hit) * c3 * rates.lc_input + inp * rates.lc_input \
        + out * rates.lc_output
    cost = np.where(long, lc, base).sum(axis=1) / PER_MILLION
    ctx_sum = ctx.sum(axis=1)
    tokens = np.stack([(1 - hit) * ctx_sum + calls * inp, hit * ctx_sum,
                       np.full(attempts, float(calls * out))], axis=1)
    return cost, tokens


def summary_cost_table(rates: Rates, *, system: int, prior: float, calls: int, g: int,
                       summary_tokens: int, attempts: int) -> tuple[np.ndarray, np.ndarray]:
    """Cost of the summarizer call after a success at attempt k, for every model (no cache)."""
    x = system + prior + np.arange(1, attempts + 1, dtype=float) * calls * g      # [K]
    long = x[:, None] > rates.above[None, :]
    cost = np.where(long, x[:, None] * rates.lc_input + summary_tokens * rates.lc_output,
                    x[:, None] * rates.input + summary_tokens * rates.output) / PER_MILLION
    tokens = np.stack([x, np.zeros(attempts), np.full(attempts, float(summary_tokens))], axis=1)
    return cost, tokens


def success_table(rates: Rates, success: dict | None, difficulty: float | None,
                  feedback_gain: float, attempts: int) -> np.ndarray:
    """p(k) for every model, §3.3. NaN where neither a success entry nor a score applies."""
    p = np.full((attempts, len(rates.ids)), math.nan)
    for col, (mid, tier) in enumerate(zip(rates.ids, rates.tiers)):
        value = None
        if success:
            value = success.get(mid, success.get(tier))
        if value is not None:
            seq = value if isinstance(value, list) else [value]
            p[:, col] = [seq[min(k, len(seq) - 1)] for k in range(attempts)]
        elif difficulty is not None and not math.isnan(rates.score[col]):
            p1 = 1.0 / (1.0 + math.exp(-(rates.score[col] - difficulty) / 10.0))
            p[0, col] = p1
            p[1:, col] = p1 + (1.0 - p1) * feedback_gain
    return p


# --- cells ----------------------------------------------------------------------------------

@dataclass
class Cell:
    task: int
    signals: tuple[str, ...]
    weight: float


def cells_of(workload: Workload) -> list[Cell]:
    """Every (task type, signal combination) with positive weight; signals are independent."""
    out = []
    for t_idx, t in enumerate(workload.task_types):
        sigs = t.signals if t.signals is not None else workload.signals
        names = list(sigs)
        for bits in itertools.product((False, True), repeat=len(names)):
            w = t.share
            for name, on in zip(names, bits):
                w *= sigs[name].share if on else 1.0 - sigs[name].share
            if w > 0:
                out.append(Cell(t_idx, tuple(n for n, on in zip(names, bits) if on), w))
    return out


# --- routing --------------------------------------------------------------------------------

def start_tier(policy: Policy, phase: str, active: tuple[str, ...]) -> int:
    """§3.1: highest of the route and every active min_tier, plus every raise, capped."""
    tiers = list(policy.tiers)
    route = policy.routes.get(phase, policy.routes.get("default"))
    start = tiers.index(route)
    bump = 0
    for name in active:
        sig = policy.signals.get(name)
        if sig is None or (sig.phases is not None and phase not in sig.phases):
            continue
        if sig.min_tier is not None:
            start = max(start, tiers.index(sig.min_tier))
        bump += sig.raise_
    return min(start + bump, len(tiers) - 1)


def tier_of_attempt(start: int, k: int, after_failures: int, last: int) -> int:
    """Tier index of 1-based attempt k."""
    return min(start + (k - 1) // after_failures, last)


def strategy_handoff(strategy: Strategy, workload: Workload) -> tuple[Handoff, str | None]:
    """The handoff in force and the summarizer model id (None in full_history mode)."""
    if strategy.kind == "single":
        h = workload.handoff
        return h, (strategy.model if h.mode == "summary" else None)
    if strategy.kind == "pareto":
        h = workload.handoff
        return h, (strategy.pool[0] if h.mode == "summary" else None)   # see pareto_summarizer
    pol = strategy.policy
    h = pol.handoff if pol.handoff is not None else workload.handoff
    if h.mode != "summary":
        return h, None
    s = h.summarizer
    if s is None:
        return h, next(iter(pol.tiers.values()))       # documented: the cheapest tier
    if s in pol.tiers:
        return h, pol.tiers[s]
    return h, s


def pareto_summarizer(prices: PriceTable, strategy: Strategy, workload: Workload,
                      handoff: Handoff) -> str:
    """The summarizer of ``pareto:SCORE``: the pool model with the lowest expected-size summary
    bill, measured as the share-weighted sum over task types of the summary calls that follow a
    first-attempt success of every phase but the last (ties: first model id in sorted order)."""
    rates = Rates.from_table(prices, list(strategy.pool))
    total = np.zeros(len(strategy.pool))
    for t in workload.task_types:
        for i, ph in enumerate(t.phases[:-1]):
            g = ph.input_tokens + ph.output_tokens
            prior = handoff.summary_tokens if i > 0 else 0
            cost, _ = summary_cost_table(rates, system=workload.system_tokens, prior=prior,
                                         calls=ph.calls, g=g,
                                         summary_tokens=handoff.summary_tokens, attempts=1)
            total += t.share * cost[0]
    return strategy.pool[int(np.argmin(total))]


# --- ladders --------------------------------------------------------------------------------

@dataclass
class Ladders:
    strategy: Strategy
    workload: Workload
    rates: Rates                      # models indexed by `model`
    cells: list[Cell]
    phase_names: list[list[str]]      # per task type
    weight: np.ndarray                # [C]
    n_phases: np.ndarray              # [C]
    valid: np.ndarray                 # [C, P, K] bool: the attempt exists
    model: np.ndarray                 # [C, P, K] int, index into rates.ids (-1 padding)
    cost: np.ndarray                  # [C, P, K]
    p: np.ndarray                     # [C, P, K]
    summ_cost: np.ndarray             # [C, P, K] summarizer cost after success at k
    summ_model: int                   # index into rates.ids, -1 if none
    defect: np.ndarray                # [C, P, K] defect rate of the attempt (defect phases)
    is_defect_phase: np.ndarray       # [C, P] bool
    catch: np.ndarray                 # [C, K] catch rate of the review attempt k
    has_review: np.ndarray            # [C] bool
    review_index: np.ndarray          # [C] int (-1 none)
    review_base: np.ndarray           # [C]
    review_per_defect: np.ndarray     # [C]
    tokens: np.ndarray                # [C, P, K, 3] uncached input, cached input, output
    summ_tokens: np.ndarray           # [C, P, K, 3]
    notes: list[str] = field(default_factory=list)


def _lookup(mapping: dict, mid: str, tier: str) -> float:
    if mid in mapping:
        return mapping[mid]
    return mapping.get(tier, 0.0)


def _unsupported(strategy: Strategy, workload: Workload) -> None:
    """Fields the file formats accept that this engine does not evaluate yet: refuse them
    rather than give numbers that silently ignore them."""
    for v in [workload.variation] + [t.variation for t in workload.task_types]:
        if v is not None and not v.is_zero:
            raise workload.error(("variation",), "variation is not supported by this version "
                                 "of the engine yet")
    pol = strategy.policy
    if pol is not None and pol.escalation.retry_context != "full":
        raise pol.error(("escalation", "retry_context"), "retry_context: none is not "
                        "supported by this version of the engine yet")


def _no_score(prices: PriceTable, workload: Workload, model: str, task: int, phase: int,
              label: str) -> None:
    """A model without coding_score where a phase needs one: the error points at the model in
    the price table (that is where the fix goes) and names the phase that needs it."""
    table = prices.doc.file if prices.doc is not None else "the price table"
    where = ""
    if workload.doc is not None:
        where = f" ({workload.doc.file}:{workload.doc.line_of(('task_types', task, 'phases', phase))})"
    raise prices.error(("models", model), (
        f"'{model}' has no coding_score, so costsim cannot tell how often it succeeds in "
        f"{label}{where}; add coding_score: N (0-100) to it, run `costsim price-table scores "
        f"--table {table}` to take scores from OpenRouter, or give that phase a success rate "
        f"for '{model}'"))


def compile_ladders(prices: PriceTable, strategy: Strategy, workload: Workload) -> Ladders:
    _unsupported(strategy, workload)
    ids = strategy.models()
    for mid in ids:
        if mid not in prices.models:
            raise CostsimError(f"unknown model '{mid}' (not in the price table)",
                               path=strategy.name)
    handoff, summarizer = strategy_handoff(strategy, workload)
    if strategy.kind == "pareto" and summarizer is not None:
        summarizer = pareto_summarizer(prices, strategy, workload, handoff)
    if summarizer is not None and summarizer not in ids:
        if summarizer not in prices.models:
            raise CostsimError(f"summarizer '{summarizer}' is not a model in the price table",
                               path=f"{strategy.name}.handoff.summarizer")
        ids = ids + [summarizer]
    rates = Rates.from_table(prices, ids)
    index = {m: i for i, m in enumerate(ids)}
    cells = cells_of(workload)
    tts = workload.task_types
    P = max(len(t.phases) for t in tts)
    K = max((t.max_attempts or workload.max_attempts) for t in tts)
    C = len(cells)
    h = workload.cache_hit_rate
    summary = handoff.mode == "summary"

    # Per task type: cost/token tables per phase (independent of signals).
    per_task = []
    for t in tts:
        Kt = t.max_attempts or workload.max_attempts
        rows = []
        prior_full = 0.0
        for i, ph in enumerate(t.phases):
            g = ph.input_tokens + ph.output_tokens
            prior = (handoff.summary_tokens if i > 0 else 0) if summary else prior_full
            cost, tok = attempt_cost_table(rates, system=workload.system_tokens, prior=prior,
                                           calls=ph.calls, inp=ph.input_tokens,
                                           out=ph.output_tokens, hit=h, attempts=Kt)
            if summary and i < len(t.phases) - 1:
                scost, stok = summary_cost_table(rates, system=workload.system_tokens,
                                                 prior=prior, calls=ph.calls, g=g,
                                                 summary_tokens=handoff.summary_tokens,
                                                 attempts=Kt)
                scost = scost[:, index[summarizer]]
            else:
                scost, stok = np.zeros(Kt), np.zeros((Kt, 3))
            rows.append((cost, tok, scost, stok))
            prior_full += ph.calls * g
        per_task.append(rows)

    valid = np.zeros((C, P, K), bool)
    model = np.full((C, P, K), -1, int)
    cost = np.zeros((C, P, K))
    p = np.zeros((C, P, K))
    summ_cost = np.zeros((C, P, K))
    defect = np.zeros((C, P, K))
    is_defect_phase = np.zeros((C, P), bool)
    catch = np.zeros((C, K))
    has_review = np.zeros(C, bool)
    review_index = np.full(C, -1, int)
    review_base = np.zeros(C)
    review_per_defect = np.zeros(C)
    tokens = np.zeros((C, P, K, 3))
    summ_tokens = np.zeros((C, P, K, 3))
    p_cache: dict = {}

    for c, cell in enumerate(cells):
        t = tts[cell.task]
        Kt = t.max_attempts or workload.max_attempts
        sigs = t.signals if t.signals is not None else workload.signals
        extra_d = sum(sigs[s].difficulty for s in cell.signals)
        defects = t.defects if t.defects is not None else workload.defects
        if defects is not None:
            review_base[c] = defects.review_minutes.base
            review_per_defect[c] = defects.review_minutes.per_defect
        p[c, len(t.phases):, 0] = 1.0          # padded phases succeed for free
        for i, ph in enumerate(t.phases):
            acost, atok, scost, stok = per_task[cell.task][i]
            if strategy.kind == "single":
                chosen = [index[strategy.model]] * Kt
            elif strategy.kind == "pareto":
                # cheapest model of the pool for each attempt of this phase (§3.2 cost)
                chosen = [int(x) for x in np.argmin(acost, axis=1)]
            else:
                pol = strategy.policy
                start = start_tier(pol, ph.phase, cell.signals)
                last = len(pol.tiers) - 1
                tier_models = list(pol.tiers.values())
                chosen = [index[tier_models[tier_of_attempt(start, k, pol.escalation.after_failures,
                                                            last)]] for k in range(1, Kt + 1)]
            d = None if ph.difficulty is None else ph.difficulty + extra_d
            key = (cell.task, i, extra_d)
            if key not in p_cache:
                p_cache[key] = success_table(rates, ph.success, d, workload.feedback_gain, Kt)
            ptab = p_cache[key]
            ks = np.arange(Kt)
            pk = ptab[ks, chosen]
            if np.isnan(pk).any():
                bad = ids[chosen[int(np.flatnonzero(np.isnan(pk))[0])]]
                if ph.difficulty is not None:
                    _no_score(prices, workload, bad, cell.task, i, f"{t.name}/{ph.phase}")
                why = "has no coding_score in the price table" if ph.difficulty is not None \
                    else "is not in the phase's success map and the phase has no difficulty"
                raise CostsimError(
                    f"cannot tell how often '{bad}' succeeds: it {why}",
                    file=workload.doc.file if workload.doc else None,
                    line=workload.doc.line_of(("task_types", cell.task, "phases", i))
                    if workload.doc else None,
                    path=f"task_types[{cell.task}].phases[{i}] ({t.name}/{ph.phase})")
            valid[c, i, :Kt] = True
            model[c, i, :Kt] = chosen
            cost[c, i, :Kt] = acost[ks, chosen]
            p[c, i, :Kt] = pk
            tokens[c, i, :Kt] = atok
            summ_cost[c, i, :Kt] = scost
            summ_tokens[c, i, :Kt] = stok
            if defects is not None and ph.phase in defects.phases:
                is_defect_phase[c, i] = True
                defect[c, i, :Kt] = [_lookup(defects.rate, ids[m], rates.tiers[m]) for m in chosen]
            if ph.phase == "review":
                has_review[c] = True
                review_index[c] = i
                if defects is not None:
                    catch[c, :Kt] = [_lookup(defects.catch_rate, ids[m], rates.tiers[m])
                                     for m in chosen]

    return Ladders(
        strategy=strategy, workload=workload, rates=rates, cells=cells,
        phase_names=[[ph.phase for ph in t.phases] for t in tts],
        weight=np.array([c.weight for c in cells]),
        n_phases=np.array([len(tts[c.task].phases) for c in cells]),
        valid=valid, model=model, cost=cost, p=p, summ_cost=summ_cost,
        summ_model=index[summarizer] if summarizer is not None else -1,
        defect=defect, is_defect_phase=is_defect_phase, catch=catch, has_review=has_review,
        review_index=review_index, review_base=review_base,
        review_per_defect=review_per_defect, tokens=tokens, summ_tokens=summ_tokens)
