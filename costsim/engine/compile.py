"""The one compile step: (price table, strategy, workload) -> attempt ladders.

SPEC.md §3.1–3.3 and the per-task arithmetic of §3.5 live here and only here. A ladder says, for
every *cell* (task type x combination of signals), phase and attempt index: which model makes
the attempt, what the attempt costs, its success probability, the summarizer call that follows a
success, the defect rate of the attempt's model (defect phases) and its catch rate (the review
phase). The analytic engine (§3.4) and the Monte Carlo engine both read these arrays.

Arrays are padded to ``(cells, max_phases, max_attempts)``. Padded attempts have p=0 and cost 0,
so they change nothing; padded phases succeed at their first attempt for free.

With ``variation`` (§3.5) the ladders also carry, per task type, a quadrature rule over the
task's difficulty and size (:mod:`costsim.engine.variation`) and the ladder at every node
(:class:`NodeBlock`, materialised in blocks of cells by :func:`node_blocks`): success
``σ(b − s·z)`` and every cost's expectation over the size at that node. ``p`` and ``cost`` stay
the §3.3 rates and the unit-size costs; :class:`SizePieces` holds each attempt's cost as a
function of the size (for the Monte Carlo engine, which samples the size itself).

Everything that does not depend on the strategy (cost tables per model, success rates per model,
cells) is computed once per workload and price table in a :class:`CompileCache`, so comparing
many policies costs one table build plus a gather per policy.

Per-node ladders for another evaluator (e.g. a policy search that combines phases itself), per
task type ``t`` (index ``t_idx``) and table configuration ``cfg`` (:class:`TableConfig`), as
plain arrays with a model axis in the order of ``ids``:

    cache = CompileCache(prices, workload, ids)
    costs = cache.type_costs(t_idx, cfg, ids)               # cost, summ_cost [P_t, K_t, M], tokens
    p = cache.type_success(t_idx, ids)                      # §3.3 rates [E_t, P_t, K_t, M]
    spread = Spread.of(workload.variation_of(t))           # s, t, r
    pz = cache.type_pieces(t_idx, cfg, ids)                 # cost as a function of the size
    key, rule = cache.node_rule(spread, thresholds)         # thresholds: pz["theta"] (and
                                                            # "summ_theta") of the models used
    b = cache.intercepts(key, rule, spread.s, p)            # any shape (NaN-free)
    p_nodes = node_success(p, b, spread.s, rule.z)          # p's shape + [Q]
    nc = cache.type_node_costs(t_idx, cfg, key, rule, ids)  # cost, summ [P_t, K_t, M, Q]

then the §3.4 recursion at every node and the sums over nodes with ``rule.weight`` (ratios such
as cost per completed task formed last). Without variation the rule is one node of weight 1
(use ``costs``). The rule depends on the thresholds only when ``r`` is near 1
(``spread.steep``); pass every threshold the evaluator may meet.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import CostsimError
from ..models import Handoff, Policy, PriceTable, Workload
from .buffers import Workspace
from .variation import STEEP_WIDTH, NodeRule, Spread, expected_cost, node_rule, node_success, \
    solve_intercepts, trapezoid_step

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


def _contexts(*, system, prior, calls, g, attempts, retry) -> np.ndarray:
    """``ctx_j`` of call j of attempt k, §3.2: ``[K, n]``. ``retry=False`` is
    ``retry_context: none`` (no attempt resends the failed ones)."""
    k = np.arange(attempts, dtype=float)[:, None]          # k-1
    if not retry:
        k = np.zeros((attempts, 1))
    j = np.arange(calls, dtype=float)[None, :]             # j-1
    return system + prior + k * calls * g + j * g


def attempt_cost_table(rates: Rates, *, system: int, prior: float, calls: int, inp: int, out: int,
                       hit: float, attempts: int, retry: bool = True
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Cost of attempt k (rows, 1..attempts) for every model (columns), §3.2; and its tokens.

    Returns ``(cost[K, M], tokens[K, 3])`` with tokens = (uncached input, cached input, output).
    ``retry=False``: the policy's ``retry_context: none`` (every attempt starts afresh).
    """
    g = inp + out
    ctx = _contexts(system=system, prior=prior, calls=calls, g=g, attempts=attempts,
                    retry=retry)                           # [K, n]
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


def _attempt_costs(rates: Rates, *, system, prior, calls, inp, out, hit, attempts, retry,
                   alone: bool) -> np.ndarray:
    """:func:`attempt_cost_table`'s cost ``[K, M]``, every model's column as that function gives
    it when the model is the only column (``alone``) or one of several. (NumPy sums the calls
    of one model pairwise when they lie contiguously, i.e. for a one-column table, and in order
    otherwise; from 8 calls up the two differ in the last digit, and a strategy's numbers must
    not depend on what else was compiled alongside it.)"""
    if not alone:
        return attempt_cost_table(rates, system=system, prior=prior, calls=calls, inp=inp,
                                  out=out, hit=hit, attempts=attempts, retry=retry)[0]
    g = inp + out
    ctx = _contexts(system=system, prior=prior, calls=calls, g=g, attempts=attempts,
                    retry=retry)[None]                     # [1, K, n]
    r = {k: getattr(rates, k)[:, None, None] for k in ("cache_read", "input", "output", "above",
                                                       "lc_cache_read", "lc_input", "lc_output")}
    long = (ctx + inp) > r["above"]                        # [M, K, n]
    base = hit * ctx * r["cache_read"] + (1 - hit) * ctx * r["input"] + inp * r["input"] \
        + out * r["output"]
    lc = hit * ctx * r["lc_cache_read"] + (1 - hit) * ctx * r["lc_input"] + inp * r["lc_input"] \
        + out * r["lc_output"]
    return (np.where(long, lc, base).sum(axis=-1) / PER_MILLION).T


def _summary_input(*, system, prior, calls, g, attempts, retry) -> np.ndarray:
    """Summarizer input after a success at attempt k: the final transcript ``system + prior +
    k·n·g``; with ``retry_context: none`` only the succeeding attempt's ``n·g`` (the lead's
    reading where the spec is open; docs/cost-model.md)."""
    if not retry:
        return system + prior + np.ones(attempts) * calls * g
    return system + prior + np.arange(1, attempts + 1, dtype=float) * calls * g


def summary_cost_table(rates: Rates, *, system: int, prior: float, calls: int, g: int,
                       summary_tokens: int, attempts: int, retry: bool = True
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Cost of the summarizer call after a success at attempt k, for every model (no cache)."""
    x = _summary_input(system=system, prior=prior, calls=calls, g=g, attempts=attempts,
                       retry=retry)                                                  # [K]
    long = x[:, None] > rates.above[None, :]
    cost = np.where(long, x[:, None] * rates.lc_input + summary_tokens * rates.lc_output,
                    x[:, None] * rates.input + summary_tokens * rates.output) / PER_MILLION
    tokens = np.stack([x, np.zeros(attempts), np.full(attempts, float(summary_tokens))], axis=1)
    return cost, tokens


def attempt_pieces(rates: Rates, *, system: int, prior: float, calls: int, inp: int, out: int,
                   hit: float, attempts: int, retry: bool = True
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Attempt k's cost as a function of the task's size factor u (§3.5: every token count is
    multiplied by u, and call j switches to long-context rates once ``u·(ctx_j + in) > above``):

        cost(u) = u · (base[k, m] + Σ_j delta[k, j, m] · 1{u > theta[k, j, m]})

    ``base``: every call at the base rates, unit size; ``delta``: call j's long-context bill minus
    its base bill; ``theta = above / (ctx_j + in)`` (``inf`` without a long_context block). At
    ``u = 1`` this is :func:`attempt_cost_table`'s cost."""
    g = inp + out
    ctx = _contexts(system=system, prior=prior, calls=calls, g=g, attempts=attempts,
                    retry=retry)                           # [K, n]
    c3 = ctx[:, :, None]
    base = hit * c3 * rates.cache_read + (1 - hit) * c3 * rates.input + inp * rates.input \
        + out * rates.output
    lc = hit * c3 * rates.lc_cache_read + (1 - hit) * c3 * rates.lc_input + inp * rates.lc_input \
        + out * rates.lc_output
    with np.errstate(divide="ignore"):
        theta = rates.above[None, None, :] / (ctx + inp)[:, :, None]
    return base.sum(axis=1) / PER_MILLION, (lc - base) / PER_MILLION, theta


def summary_pieces(rates: Rates, *, system: int, prior: float, calls: int, g: int,
                   summary_tokens: int, attempts: int, retry: bool = True
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The summarizer call as a function of u, like :func:`attempt_pieces` (one call, no cache):
    ``cost(u) = u · (base[k, m] + delta[k, m] · 1{u > theta[k, m]})``."""
    x = _summary_input(system=system, prior=prior, calls=calls, g=g, attempts=attempts,
                       retry=retry)[:, None]
    base = x * rates.input + summary_tokens * rates.output
    lc = x * rates.lc_input + summary_tokens * rates.lc_output
    with np.errstate(divide="ignore"):
        theta = rates.above[None, :] / x
    return base / PER_MILLION, (lc - base) / PER_MILLION, theta


def _success_column(mid: str, tier: str, score, success: dict | None, difficulty: float | None,
                    feedback_gain: float, attempts: int) -> np.ndarray:
    """p(k) of one model, §3.3 (NaN where neither a success entry nor a score applies)."""
    col = np.full(attempts, math.nan)
    value = None
    if success:
        value = success.get(mid, success.get(tier))
    if value is not None:
        seq = value if isinstance(value, list) else [value]
        col[:] = [seq[min(k, len(seq) - 1)] for k in range(attempts)]
    elif difficulty is not None and not math.isnan(score):
        p1 = 1.0 / (1.0 + math.exp(-(score - difficulty) / 10.0))
        col[0] = p1
        col[1:] = p1 + (1.0 - p1) * feedback_gain
    return col


def success_table(rates: Rates, success: dict | None, difficulty: float | None,
                  feedback_gain: float, attempts: int) -> np.ndarray:
    """p(k) for every model, §3.3. NaN where neither a success entry nor a score applies."""
    p = np.full((attempts, len(rates.ids)), math.nan)
    for col, (mid, tier) in enumerate(zip(rates.ids, rates.tiers)):
        p[:, col] = _success_column(mid, tier, rates.score[col], success, difficulty,
                                    feedback_gain, attempts)
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


# --- strategy-independent tables ------------------------------------------------------------

@dataclass(frozen=True)
class TableConfig:
    """What a task type's cost tables depend on besides the model: the handoff (summary mode
    and its summary_tokens) and whether retries resend the failed attempts."""

    summary: bool
    summary_tokens: int
    retry: bool

    @classmethod
    def of(cls, strategy: "Strategy", workload: Workload) -> "TableConfig":
        handoff, _ = strategy_handoff(strategy, workload)
        summary = handoff.mode == "summary"
        pol = strategy.policy
        return cls(summary, handoff.summary_tokens if summary else 0,
                   pol is None or pol.escalation.retry_context == "full")


_Cfg = TableConfig        # the name it had at first (kept for code that imported it)


@dataclass
class _TypeInfo:
    start: int                   # first cell of the task type (cells are grouped by type)
    stop: int
    phases: int
    attempts: int
    extras: list[float]          # distinct signal difficulty sums of the type's cells
    extra_index: np.ndarray      # [cells of the type] index into ``extras``
    max_calls: int
    active: dict                 # signal name -> [cells of the type] bool


class _ModelTable:
    """Arrays with a model axis that grows as models are asked for (column per model id)."""

    def __init__(self, axis: int):
        self.axis = axis
        self.cols: dict[str, int] = {}
        self.arrays: dict[str, np.ndarray] = {}

    def missing(self, ids) -> list[str]:
        return [m for m in dict.fromkeys(ids) if m not in self.cols]

    def add(self, ids: list[str], arrays: dict) -> None:
        for k, v in arrays.items():
            self.arrays[k] = v if k not in self.arrays else \
                np.concatenate([self.arrays[k], v], axis=self.axis)
        for m in ids:
            self.cols[m] = len(self.cols)

    def index(self, ids) -> np.ndarray:
        return np.array([self.cols[m] for m in ids], int)


class CompileCache:
    """The parts of compiling that do not depend on the strategy, for one (price table,
    workload): the cells and, per task type, the cost, token and success tables of every model
    asked for so far. ``costsim.compare`` passes one cache to every strategy it compiles.

    ``models``: the models the strategies will ask for, computed together on the first request
    (optional; others are added when asked for)."""

    def __init__(self, prices: PriceTable, workload: Workload, models=()):
        self.prices = prices
        self.workload = workload
        self.models = [m for m in dict.fromkeys(models) if m in prices.models]
        self.cells = cells_of(workload)
        self.types: list[_TypeInfo] = []
        c = 0
        for t_idx, t in enumerate(workload.task_types):
            sigs = t.signals if t.signals is not None else workload.signals
            start = c
            extras: list[float] = []
            idx = []
            while c < len(self.cells) and self.cells[c].task == t_idx:
                d = sum(sigs[s].difficulty for s in self.cells[c].signals)
                if d not in extras:
                    extras.append(d)
                idx.append(extras.index(d))
                c += 1
            active = {name: np.array([name in cell.signals for cell in self.cells[start:c]],
                                     bool) for name in sigs}
            self.types.append(_TypeInfo(start, c, len(t.phases),
                                        t.max_attempts or workload.max_attempts, extras,
                                        np.array(idx, int), max(ph.calls for ph in t.phases),
                                        active))
        names: list[str] = []              # phase names in order of first appearance in a cell
        for info, t in zip(self.types, workload.task_types):
            if info.stop > info.start:
                for ph in t.phases:
                    if ph.phase not in names:
                        names.append(ph.phase)
        self.phase_list = names
        P = max(len(t.phases) for t in workload.task_types)
        self.phase_ids = np.full((len(self.cells), P), -1, int)
        for c, cell in enumerate(self.cells):
            for i, ph in enumerate(workload.task_types[cell.task].phases):
                self.phase_ids[c, i] = names.index(ph.phase)
        self.P = P
        self.K = max(info.attempts for info in self.types)
        C = len(self.cells)
        self.cell_type = np.array([c.task for c in self.cells], int)
        self.cell_extra = np.zeros(C, int)
        self.valid = np.zeros((C, P, self.K), bool)
        self.is_defect_phase = np.zeros((C, P), bool)
        self.has_review = np.zeros(C, bool)
        self.review_index = np.full(C, -1, int)
        self.review_base = np.zeros(C)
        self.review_per_defect = np.zeros(C)
        self.signal_names = list(dict.fromkeys(n for info in self.types for n in info.active))
        self.active = np.zeros((C, len(self.signal_names)), bool)
        for t_idx, (info, t) in enumerate(zip(self.types, workload.task_types)):
            sl = slice(info.start, info.stop)
            self.cell_extra[sl] = info.extra_index
            self.valid[sl, :info.phases, :info.attempts] = True
            for name, on in info.active.items():
                self.active[sl, self.signal_names.index(name)] = on
            defects = t.defects if t.defects is not None else workload.defects
            names = [ph.phase for ph in t.phases]
            if defects is not None:
                self.review_base[sl] = defects.review_minutes.base
                self.review_per_defect[sl] = defects.review_minutes.per_defect
                for i, name in enumerate(names):
                    if name in defects.phases:
                        self.is_defect_phase[sl, i] = True
            if "review" in names:
                self.has_review[sl] = True
                self.review_index[sl] = names.index("review")
        self.E = max(len(info.extras) for info in self.types)
        self._costs: dict = {}
        self._pieces: dict = {}
        self._success: _ModelTable = _ModelTable(axis=4)
        self._defects: _ModelTable = _ModelTable(axis=1)
        self._rules: dict = {}
        self._b: dict = {}
        self._b_tables: dict = {}
        self._b_known: dict = {}
        self._node_costs: dict = {}

    def _batch(self, table: _ModelTable, ids) -> list[str]:
        missing = table.missing(ids)
        if missing and not table.cols:
            missing = table.missing(list(missing) + self.models)
        return missing

    # cost and token tables per model ------------------------------------------------------
    def costs(self, cfg: TableConfig, solo: bool, ids) -> _ModelTable:
        """Every task type's ``cost``/``summ_cost`` ``[T, P, K, models]`` (zero padding) and
        ``tokens``/``summ_tokens`` ``[T, P, K, 3]`` (model independent). ``solo``: the strategy
        has one model (see :func:`_attempt_costs`)."""
        table = self._costs.setdefault((cfg, solo), _ModelTable(axis=3))
        missing = self._batch(table, ids)
        if missing:
            T = len(self.types)
            M = len(missing)
            out = {"cost": np.zeros((T, self.P, self.K, M)),
                   "summ_cost": np.zeros((T, self.P, self.K, M))}
            first = "tokens" not in table.arrays
            if first:
                table.arrays["tokens"] = np.zeros((T, self.P, self.K, 3))
                table.arrays["summ_tokens"] = np.zeros((T, self.P, self.K, 3))
            for t_idx, info in enumerate(self.types):
                if info.stop > info.start:
                    self._fill_costs(t_idx, cfg, solo, missing, out, table.arrays, first)
            table.add(missing, out)
        return table

    def _fill_costs(self, t_idx, cfg, solo, missing, out, arrays, first):
        wl = self.workload
        t = wl.task_types[t_idx]
        info = self.types[t_idx]
        Kt = info.attempts
        n = len(missing)
        # one model alone in a multi-model table would be summed pairwise: pad with itself
        batch = missing if solo or n > 1 else missing * 2
        rates = Rates.from_table(self.prices, batch)
        one = Rates.from_table(self.prices, batch[:1])
        prior_full = 0.0
        for i, ph in enumerate(t.phases):
            g = ph.input_tokens + ph.output_tokens
            prior = (cfg.summary_tokens if i > 0 else 0) if cfg.summary else prior_full
            kw = dict(system=wl.system_tokens, prior=prior, calls=ph.calls, inp=ph.input_tokens,
                      out=ph.output_tokens, hit=wl.cache_hit_rate, attempts=Kt, retry=cfg.retry)
            out["cost"][t_idx, i, :Kt] = _attempt_costs(rates, alone=solo, **kw)[:, :n]
            if first:
                arrays["tokens"][t_idx, i, :Kt] = attempt_cost_table(one, **kw)[1]
            if cfg.summary and i < info.phases - 1:
                sc, st = summary_cost_table(
                    rates, system=wl.system_tokens, prior=prior, calls=ph.calls, g=g,
                    summary_tokens=cfg.summary_tokens, attempts=Kt, retry=cfg.retry)
                out["summ_cost"][t_idx, i, :Kt] = sc[:, :n]
                if first:
                    arrays["summ_tokens"][t_idx, i, :Kt] = st
            prior_full += ph.calls * g

    def pieces(self, t_idx: int, cfg: TableConfig, ids) -> _ModelTable:
        """Each attempt's and summary's cost as a function of the size factor (see
        :func:`attempt_pieces`): ``base [P_t, K_t, models]``, ``delta``/``theta``
        ``[P_t, K_t, models, J]`` (J = the type's most calls; padding has delta 0, theta inf),
        ``summ_base``, ``summ_delta``, ``summ_theta`` ``[P_t, K_t, models]``."""
        table = self._pieces.setdefault((t_idx, cfg), _ModelTable(axis=2))
        missing = self._batch(table, ids)
        if missing:
            self._fill_pieces(t_idx, cfg, missing, table)
        return table

    def _fill_pieces(self, t_idx, cfg, missing, table):
        wl = self.workload
        t = wl.task_types[t_idx]
        info = self.types[t_idx]
        Kt, Pt, J, M = info.attempts, info.phases, info.max_calls, len(missing)
        rates = Rates.from_table(self.prices, missing)
        out = {"base": np.zeros((Pt, Kt, M)), "delta": np.zeros((Pt, Kt, M, J)),
               "theta": np.full((Pt, Kt, M, J), math.inf), "summ_base": np.zeros((Pt, Kt, M)),
               "summ_delta": np.zeros((Pt, Kt, M)), "summ_theta": np.full((Pt, Kt, M), math.inf)}
        prior_full = 0.0
        for i, ph in enumerate(t.phases):
            g = ph.input_tokens + ph.output_tokens
            prior = (cfg.summary_tokens if i > 0 else 0) if cfg.summary else prior_full
            base, delta, theta = attempt_pieces(
                rates, system=wl.system_tokens, prior=prior, calls=ph.calls,
                inp=ph.input_tokens, out=ph.output_tokens, hit=wl.cache_hit_rate, attempts=Kt,
                retry=cfg.retry)
            out["base"][i] = base
            out["delta"][i, :, :, :ph.calls] = delta.transpose(0, 2, 1)
            out["theta"][i, :, :, :ph.calls] = theta.transpose(0, 2, 1)
            if cfg.summary and i < Pt - 1:
                sb, sd, st = summary_pieces(
                    rates, system=wl.system_tokens, prior=prior, calls=ph.calls, g=g,
                    summary_tokens=cfg.summary_tokens, attempts=Kt, retry=cfg.retry)
                out["summ_base"][i], out["summ_delta"][i], out["summ_theta"][i] = sb, sd, st
            prior_full += ph.calls * g
        table.add(missing, out)

    # variation: node rules, intercepts and per-node costs ---------------------------------
    def node_rule(self, spread: Spread, thresholds: np.ndarray) -> tuple[tuple, NodeRule]:
        """The quadrature rule for ``spread`` (shared by every strategy unless the rule has to
        place panel edges at the strategy's own long-context steps)."""
        thr = np.asarray(thresholds, float)
        live = np.isfinite(thr) & (thr > 0)
        has_lc = spread.t > 0 and bool(live.any())
        steep = has_lc and spread.steep
        if steep:                   # the rule's panel edges depend on the thresholds themselves
            thr = np.unique(thr[live])
            key = (spread, True, thr.tobytes())
        elif spread.s == 0.0:       # one node, whatever the thresholds
            key = (spread, False, b"")
        else:
            # the trapezoidal rule depends on its step alone: strategies with and without
            # long-context calls share it (and its intercepts and per-node costs) whenever
            # the steps agree, as they do unless a long-context step is narrower than it
            key = (spread, "step", trapezoid_step(spread, has_lc))
        if key not in self._rules:
            self._rules[key] = node_rule(spread, thr[np.isfinite(thr) & (thr > 0)] if has_lc
                                         else None)
        return key, self._rules[key]

    def intercepts(self, key: tuple, rule: NodeRule, s: float, p: np.ndarray) -> np.ndarray:
        """``b`` of every element of ``p`` on ``rule`` (solved once per distinct value)."""
        ps, bs = self._b.get(key, (np.empty(0), np.empty(0)))   # solved so far, sorted by p
        flat = p.ravel()
        uniq = np.unique(flat)
        at = np.searchsorted(ps, uniq)
        found = np.zeros(len(uniq), bool)
        inside = at < len(ps)
        found[inside] = ps[at[inside]] == uniq[inside]
        if not found.all():
            new = uniq[~found]
            ps = np.concatenate([ps, new])
            bs = np.concatenate([bs, solve_intercepts(new, s, rule)])
            order = np.argsort(ps, kind="stable")
            ps, bs = ps[order], bs[order]
            self._b[key] = (ps, bs)
        return bs[np.searchsorted(ps, flat)].reshape(p.shape)

    def type_intercepts(self, t_idx: int, key: tuple, rule: NodeRule, s: float,
                        extra: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """:meth:`intercepts` of the §3.3 rates ``success(...)["p"][t_idx, extra, i, k, cols]``
        (``extra`` ``[c]``, ``cols`` ``[c, P, K]``: success-table columns): kept per task type
        and rule in a table shaped like the type's rates, so a strategy whose ladders were seen
        before costs a gather (the same numbers: each value is solved by :meth:`intercepts`)."""
        pa = self._success.arrays["p"][t_idx]                            # [E, P, K, models]
        tab = self._b_tables.get((key, t_idx))
        if tab is None or tab.shape != pa.shape:
            tab = self._b_tables[(key, t_idx)] = np.full(pa.shape, np.nan)
            self._b_known[(key, t_idx)] = np.zeros(pa.shape, bool)
        known = self._b_known[(key, t_idx)].reshape(-1)
        flat_tab = tab.reshape(-1)
        P, K = cols.shape[1:]
        _, P0, K0, M0 = pa.shape
        # flat positions in the table (one take instead of a four-axis fancy index)
        at = (((extra[:, None, None] * P0 + np.arange(P)[None, :, None]) * K0
               + np.arange(K)[None, None, :]) * M0 + cols).reshape(-1)
        miss = ~known.take(at)
        if miss.any():
            idx = np.unique(at[miss])
            flat_tab[idx] = self.intercepts(key, rule, s, pa.reshape(-1)[idx])
            known[idx] = True
        return flat_tab.take(at).reshape(cols.shape)

    def node_costs(self, t_idx: int, cfg: TableConfig, key: tuple, rule: NodeRule,
                   ids) -> _ModelTable:
        """Expected attempt cost at every node, ``cost [P_t, K_t, models, Q]``, and of the
        summary each model would write after a success at attempt k, ``summ`` (0 where no
        summary follows)."""
        table = self._node_costs.setdefault((t_idx, cfg, key), _ModelTable(axis=2))
        missing = self._batch(table, ids)
        if missing:
            pz = self.pieces(t_idx, cfg, missing)
            col = pz.index(missing)
            a = pz.arrays
            nc = expected_cost(a["base"][:, :, col], a["delta"][:, :, col], a["theta"][:, :, col],
                               rule.mu, rule.sigma)
            if cfg.summary:
                ns = expected_cost(a["summ_base"][:, :, col], a["summ_delta"][:, :, col, None],
                                   a["summ_theta"][:, :, col, None], rule.mu, rule.sigma)
            else:       # no summaries in this handoff: zeros that take no memory
                ns = np.broadcast_to(np.zeros(()), nc.shape)
            table.add(missing, {"cost": nc, "summ": ns})
        return table

    # success rates and defect rates per model ------------------------------------------------
    def success(self, ids) -> _ModelTable:
        """§3.3 ``p [T, E, P, K, models]`` for every task type, distinct signal difficulty of
        its cells, phase and attempt (NaN where the model's rate cannot be told; padded phases
        succeed at their first attempt, padded attempts never)."""
        table = self._success
        missing = self._batch(table, ids)
        if not missing:
            return table
        wl = self.workload
        rates = Rates.from_table(self.prices, missing)
        out = np.zeros((len(self.types), self.E, self.P, self.K, len(missing)))
        for t_idx, (info, t) in enumerate(zip(self.types, wl.task_types)):
            Kt = info.attempts
            extras = np.array(info.extras, float)
            E = len(extras)
            out[t_idx, :, info.phases:, 0] = 1.0
            for i, ph in enumerate(t.phases):
                d = None if ph.difficulty is None else ph.difficulty + extras      # [E]
                for j, m in enumerate(missing):
                    value = None
                    if ph.success:
                        value = ph.success.get(m, ph.success.get(rates.tiers[j]))
                    if value is not None:
                        seq = value if isinstance(value, list) else [value]
                        out[t_idx, :E, i, :Kt, j] = [seq[min(k, len(seq) - 1)] for k in range(Kt)]
                    elif d is not None and not math.isnan(rates.score[j]):
                        # §3.3 with the standard library's exp, as for one value at a time
                        x = -(rates.score[j] - d) / 10.0
                        p1 = 1.0 / (1.0 + _EXP(x).astype(float))
                        out[t_idx, :E, i, 0, j] = p1
                        out[t_idx, :E, i, 1:Kt, j] = (p1 + (1.0 - p1) * wl.feedback_gain)[:, None]
                    else:
                        out[t_idx, :E, i, :Kt, j] = math.nan
        table.add(missing, {"p": out})
        return table

    def defect_rates(self, ids) -> _ModelTable:
        """Per task type and model: ``rate``/``catch`` ``[T, models]`` (model id, then tier
        class; 0 when the maps name neither, or the type has no defects block)."""
        table = self._defects
        missing = self._batch(table, ids)
        if missing:
            wl = self.workload
            tiers = [self.prices.models[m].tier for m in missing]
            rate = np.zeros((len(self.types), len(missing)))
            catch = np.zeros((len(self.types), len(missing)))
            for t_idx, t in enumerate(wl.task_types):
                defects = t.defects if t.defects is not None else wl.defects
                if defects is None:
                    continue
                rate[t_idx] = [_lookup(defects.rate, m, tr) for m, tr in zip(missing, tiers)]
                catch[t_idx] = [_lookup(defects.catch_rate, m, tr)
                                for m, tr in zip(missing, tiers)]
            table.add(missing, {"rate": rate, "catch": catch})
        return table


    # per task type, as plain arrays (for evaluators that combine phases themselves) -------
    def type_costs(self, t_idx: int, cfg: TableConfig, ids) -> dict:
        """Task type ``t_idx``'s ``cost``/``summ_cost`` ``[P_t, K_t, M]`` for ``ids`` (in that
        order) and ``tokens``/``summ_tokens`` ``[P_t, K_t, 3]``. With several ids the numbers are
        those of a multi-model strategy (see :func:`_attempt_costs`)."""
        info = self.types[t_idx]
        Pt, Kt = info.phases, info.attempts
        tab = self.costs(cfg, len(ids) == 1, ids)
        col = tab.index(ids)
        a = tab.arrays
        return {"cost": a["cost"][t_idx, :Pt, :Kt][..., col],
                "summ_cost": a["summ_cost"][t_idx, :Pt, :Kt][..., col],
                "tokens": a["tokens"][t_idx, :Pt, :Kt],
                "summ_tokens": a["summ_tokens"][t_idx, :Pt, :Kt]}

    def type_success(self, t_idx: int, ids) -> np.ndarray:
        """Task type ``t_idx``'s §3.3 rates ``[E_t, P_t, K_t, M]`` (E_t: its distinct signal
        difficulties, indexed by ``types[t_idx].extra_index``)."""
        info = self.types[t_idx]
        tab = self.success(ids)
        return tab.arrays["p"][t_idx, :len(info.extras), :info.phases, :info.attempts][
            ..., tab.index(ids)]

    def type_pieces(self, t_idx: int, cfg: TableConfig, ids) -> dict:
        """:meth:`pieces` as plain arrays for ``ids`` (model axis 2)."""
        tab = self.pieces(t_idx, cfg, ids)
        col = tab.index(ids)
        return {k: v[:, :, col] for k, v in tab.arrays.items()}

    def type_node_costs(self, t_idx: int, cfg: TableConfig, key: tuple, rule: NodeRule,
                        ids) -> dict:
        """:meth:`node_costs` as plain arrays for ``ids``: ``cost``/``summ``
        ``[P_t, K_t, M, Q]``."""
        tab = self.node_costs(t_idx, cfg, key, rule, ids)
        col = tab.index(ids)
        return {k: v[:, :, col] for k, v in tab.arrays.items()}


_EXP = np.frompyfunc(math.exp, 1, 1)


# --- ladders --------------------------------------------------------------------------------

@dataclass
class TypeNodes:
    """One task type's per-node ladder parts (§3.5), for :func:`node_blocks`."""

    spread: Spread
    rule: NodeRule
    cells: slice                 # the type's cells in the ladders
    b: np.ndarray                # [cells, P, K] intercepts (±inf where p is 0 or 1)
    cost: np.ndarray             # [P_t, K_t, M, Q] expected attempt cost at each node, by model
    summ: np.ndarray             # [P_t, K_t, Q] expected summarizer cost after success at k
    cost_cols: np.ndarray | None = None   # set: ``cost`` is the cache's table of every model
                                          # (C order), the strategy's model j its column
                                          # cost_cols[j] (no copy per strategy)


@dataclass
class SizePieces:
    """Every cell's ladder as a function of the task (for sampling tasks, §3.5): attempt cost
    ``u · (base + Σ_j delta_j · 1{u > theta_j})``, summary likewise with one call; success
    ``σ(b − s·z)`` (``p`` itself where ``s = 0``); ``u = exp(t·(r·z + sqrt(1−r²)·e) − t²/2)``."""

    base: np.ndarray             # [C, P, K]
    delta: np.ndarray            # [C, P, K, J]
    theta: np.ndarray            # [C, P, K, J]
    summ_base: np.ndarray        # [C, P, K]
    summ_delta: np.ndarray       # [C, P, K]
    summ_theta: np.ndarray       # [C, P, K]
    b: np.ndarray                # [C, P, K]
    s: np.ndarray                # [C]
    t: np.ndarray                # [C]
    r: np.ndarray                # [C]


class VariationLadders:
    """Per task type node parts (None: that type has no variation), and every cell's
    :class:`SizePieces` -- built on first use (the Monte Carlo engine and budget need them;
    the analytic engine does not)."""

    def __init__(self, types: list[TypeNodes | None], build_pieces):
        self.types = types
        self._build = build_pieces
        self._pieces: SizePieces | None = None

    @property
    def pieces(self) -> SizePieces:
        if self._pieces is None:
            self._pieces = self._build()
            self._build = None
        return self._pieces


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
    cost: np.ndarray                  # [C, P, K] at unit size (§3.2)
    p: np.ndarray                     # [C, P, K] the §3.3 rate
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
    variation: VariationLadders | None = None   # §3.5; None: every task type alike
    retry_context: str = "full"
    phase_ids: np.ndarray | None = None          # [C, P] index into phase_list (-1 padding)
    phase_list: list[str] | None = None          # phase names, in order of first appearance


@dataclass
class NodeBlock:
    """The ladders of some cells at every quadrature node (§3.5): ``weight`` is the cell's
    weight times the node's; ``size`` is ``E[u | node]`` (token counts at the node are ``size``
    times the unit-size ones). Without variation a block has one node of weight 1 and the
    ladders' own arrays."""

    cells: slice
    weight: np.ndarray           # [c, Q]
    size: np.ndarray             # [Q]
    p: np.ndarray                # [c, Q, P, K] (views of node-last arrays with variation)
    cost: np.ndarray             # [c, Q, P, K]
    summ_cost: np.ndarray        # [c, Q, P, K]
    summ_shared: bool = False    # summ_cost is the same for every cell (a read-only view)


def node_blocks(L: Ladders, max_elements: int = 1 << 17, work: Workspace | None = None):
    """Yield :class:`NodeBlock` s covering every cell, each of about ``max_elements`` entries
    (1 MiB a working array: the evaluation makes ~30 passes over them, which stay in cache;
    blocks of 8 MiB took 2.5x longer). The cells of a block share one node rule: consecutive
    small task types on the same rule (the workload's own ``variation``) go in one block."""
    C, P, K = L.p.shape
    types = L.variation.types if L.variation is not None else [None] * len(L.workload.task_types)
    group: list[tuple[TypeNodes, int, int]] = []

    def flush():
        if group:
            yield _materialise(L, list(group), work)
            group.clear()

    for t_idx, (c0, c1) in enumerate(_type_ranges(L)):
        tn = types[t_idx]
        if c1 <= c0:
            continue
        Q = 1 if tn is None else len(tn.rule)
        step = max(1, max_elements // max(1, Q * P * K))
        if tn is None or c1 - c0 > step:
            yield from flush()
            for a in range(c0, c1, step):
                b = min(c1, a + step)
                sl = slice(a, b)
                if tn is None:
                    yield NodeBlock(sl, L.weight[sl][:, None], np.ones(1), L.p[sl][:, None],
                                    L.cost[sl][:, None], L.summ_cost[sl][:, None])
                else:
                    yield _materialise(L, [(tn, a, b)], work)
            continue
        if group and (group[0][0].rule is not tn.rule or c1 - group[0][1] > step):
            yield from flush()
        group.append((tn, c0, c1))
    yield from flush()


def _type_ranges(L: Ladders) -> list[tuple[int, int]]:
    out = []
    c = 0
    for t_idx in range(len(L.workload.task_types)):
        start = c
        while c < len(L.cells) and L.cells[c].task == t_idx:
            c += 1
        out.append((start, c))
    return out


def _materialise(L: Ladders, parts: list[tuple[TypeNodes, int, int]],
                 work: Workspace | None = None) -> NodeBlock:
    """The node ladders of consecutive cells ``[(type nodes, first cell, end)]`` on one rule.

    Stored node axis last (``[c, P, K, Q]``: the per-node tables and the success are built in
    that order, and the sums over nodes read contiguous rows); the block's ``p``/``cost``/
    ``summ_cost`` are ``[c, Q, P, K]`` views of them. Within its own phases and attempts every
    cell of a task type is valid, so nothing needs masking; a block of one task type shares its
    summarizer costs between cells (a broadcast view, ``summ_shared``). ``work``: build ``p`` and
    ``cost`` in its arrays (overwritten by the next block built with it)."""
    C, P, K = L.p.shape
    rule = parts[0][0].rule
    Q = len(rule)
    c0, c1 = parts[0][1], parts[-1][2]
    n = c1 - c0
    p = np.empty((n, P, K, Q)) if work is None else work.get("p", (n, P, K, Q))
    cost = np.empty((n, P, K, Q)) if work is None else work.get("cost", (n, P, K, Q))
    tn0 = parts[0][0]
    shared = len(parts) == 1 and tn0.summ.shape[:2] == (P, K)
    if shared:
        summ = np.broadcast_to(tn0.summ, (n, P, K, Q))
    else:
        summ = np.zeros((n, P, K, Q))
    for tn, a, b in parts:
        lo, hi = a - tn.cells.start, b - tn.cells.start
        at = slice(a - c0, b - c0)
        node_success(L.p[a:b], tn.b[lo:hi], tn.spread.s, rule.z, out=p[at])
        Pt, Kt = tn.cost.shape[:2]
        model = L.model[a:b, :Pt, :Kt]
        ii = np.arange(Pt)[None, :, None]
        kk = np.arange(Kt)[None, None, :]
        if Pt == P and Kt == K and tn.cost_cols is not None:
            # rows of the table as one take (a fancy index over three axes costs twice that)
            M = tn.cost.shape[2]
            rows = ((ii * Kt + kk) * M + tn.cost_cols[model]).reshape(-1)
            np.take(tn.cost.reshape(-1, Q), rows, axis=0, out=cost[at].reshape(-1, Q),
                    mode="clip")
        elif Pt == P and Kt == K:
            cost[at] = tn.cost[ii, kk, model]                               # [m, P, K, Q]
        else:
            if tn.cost_cols is not None:
                model = tn.cost_cols[model]
            cost[at] = 0.0
            cost[at, :Pt, :Kt] = tn.cost[ii, kk, model]
        if not shared:
            summ[at, :Pt, :Kt] = tn.summ[None]
    sl = slice(c0, c1)
    return NodeBlock(sl, L.weight[sl][:, None] * rule.weight[None, :], rule.size,
                     p.transpose(0, 3, 1, 2), cost.transpose(0, 3, 1, 2),
                     summ.transpose(0, 3, 1, 2),
                     summ_shared=shared)


def _lookup(mapping: dict, mid: str, tier: str) -> float:
    if mid in mapping:
        return mapping[mid]
    return mapping.get(tier, 0.0)


def _choose_models(strategy: Strategy, cache: CompileCache, index: dict,
                   cost: np.ndarray) -> np.ndarray:
    """Model index (into the strategy's models) of every attempt of every cell, §3.1:
    ``[C, P, K]``. ``cost``: the strategy's models' attempt costs ``[T, P, K, M]``."""
    C, P, K = cache.valid.shape
    if strategy.kind == "single":
        return np.full((C, P, K), index[strategy.model], int)
    if strategy.kind == "pareto":
        # cheapest model of the pool for each attempt of each phase (§3.2 cost)
        return np.argmin(cost, axis=-1)[cache.cell_type]
    pol = strategy.policy
    tiers = list(pol.tiers)
    last = len(tiers) - 1
    names = cache.phase_list
    default = pol.routes.get("default")
    route = np.array([tiers.index(pol.routes.get(ph, default)) for ph in names] + [0])
    ids = cache.phase_ids                                   # -1 (padding) -> the extra 0
    start = route[ids]
    bump = 0
    for name, sig in pol.signals.items():
        if name not in cache.signal_names:
            continue
        active = cache.active[:, cache.signal_names.index(name)]
        if not active.any():
            continue
        applies = np.array([sig.phases is None or ph in sig.phases for ph in names] + [False])
        on = active[:, None] & applies[ids]
        if sig.min_tier is not None:
            start = np.where(on, np.maximum(start, tiers.index(sig.min_tier)), start)
        if sig.raise_:
            bump = bump + np.where(on, sig.raise_, 0)
    start = np.minimum(start + bump, last)
    k = np.arange(K)
    tier = np.minimum(start[:, :, None] + k[None, None, :] // pol.escalation.after_failures, last)
    tier_models = np.array([index[m] for m in pol.tiers.values()], int)
    return tier_models[tier]


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


def compile_ladders(prices: PriceTable, strategy: Strategy, workload: Workload, *,
                    cache: CompileCache | None = None) -> Ladders:
    """Compile one strategy. ``cache``: a :class:`CompileCache` of the same price table and
    workload, shared between strategies (optional; results are identical either way)."""
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
    if cache is None or cache.prices is not prices or cache.workload is not workload:
        cache = CompileCache(prices, workload, ids)
    rates = Rates.from_table(prices, ids)
    index = {m: i for i, m in enumerate(ids)}
    cells = cache.cells
    tts = workload.task_types
    P = max(len(t.phases) for t in tts)
    K = max((t.max_attempts or workload.max_attempts) for t in tts)
    C = len(cells)
    summary = handoff.mode == "summary"
    pol = strategy.policy
    retry = pol is None or pol.escalation.retry_context == "full"
    cfg = TableConfig(summary, handoff.summary_tokens if summary else 0, retry)
    spreads = [Spread.of(workload.variation_of(t)) for t in tts]
    varied = any(not sp.is_zero for sp in spreads)

    tab = cache.costs(cfg, len(ids) == 1, ids)
    col = tab.index(ids)                                   # strategy model -> table column
    chosen = _choose_models(strategy, cache, index, tab.arrays["cost"][..., col])
    valid = cache.valid
    tc = cache.cell_type[:, None, None]
    ii = np.arange(P)[None, :, None]
    kk = np.arange(K)[None, None, :]
    ptab = cache.success(ids)
    pcol = ptab.index(ids)[chosen]                         # [C, P, K] success-table columns
    p = ptab.arrays["p"][tc, cache.cell_extra[:, None, None], ii, kk, pcol]
    nan = np.isnan(p) & valid
    if nan.any():
        c, i, k = (int(x[0]) for x in np.nonzero(nan))
        t_idx = cells[c].task
        t = tts[t_idx]
        ph = t.phases[i]
        bad = ids[chosen[c, i, k]]
        if ph.difficulty is not None:
            _no_score(prices, workload, bad, t_idx, i, f"{t.name}/{ph.phase}")
        why = "has no coding_score in the price table" if ph.difficulty is not None \
            else "is not in the phase's success map and the phase has no difficulty"
        raise CostsimError(
            f"cannot tell how often '{bad}' succeeds: it {why}",
            file=workload.doc.file if workload.doc else None,
            line=workload.doc.line_of(("task_types", t_idx, "phases", i))
            if workload.doc else None,
            path=f"task_types[{t_idx}].phases[{i}] ({t.name}/{ph.phase})")
    model = np.where(valid, chosen, -1)
    cost = tab.arrays["cost"][tc, ii, kk, col[chosen]]
    tokens = tab.arrays["tokens"][cache.cell_type]
    summ_tokens = tab.arrays["summ_tokens"][cache.cell_type]
    if summarizer is not None:
        summ_cost = tab.arrays["summ_cost"][cache.cell_type, :, :, col[index[summarizer]]]
    else:
        summ_cost = np.zeros((C, P, K))
    dtab = cache.defect_rates(ids)
    dcol = dtab.index(ids)[chosen]
    defect = np.where(valid & cache.is_defect_phase[:, :, None],
                      dtab.arrays["rate"][tc, dcol], 0.0)
    ri = np.maximum(cache.review_index, 0)
    catch = np.where(valid[np.arange(C), ri] & cache.has_review[:, None],
                     dtab.arrays["catch"][cache.cell_type[:, None], dcol[np.arange(C), ri]], 0.0)
    type_nodes: list[TypeNodes | None] = []
    if varied:
        for t_idx, info in enumerate(cache.types):
            if info.stop <= info.start:
                type_nodes.append(None)
                continue
            sl = slice(info.start, info.stop)
            type_nodes.append(_type_nodes(cache, t_idx, cfg, ids, spreads[t_idx], sl,
                                          chosen[sl, :info.phases, :info.attempts], pcol,
                                          summ_cost, summarizer, index))

        def build_pieces() -> SizePieces:
            return _size_pieces(cache, cfg, ids, spreads, chosen, cost, summ_cost, summarizer,
                                index, type_nodes)
    return Ladders(
        strategy=strategy, workload=workload, rates=rates, cells=cells,
        phase_names=[[ph.phase for ph in t.phases] for t in tts],
        weight=np.array([c.weight for c in cells]),
        n_phases=np.array([len(tts[c.task].phases) for c in cells]),
        valid=valid, model=model, cost=cost, p=p, summ_cost=summ_cost,
        summ_model=index[summarizer] if summarizer is not None else -1,
        defect=defect, is_defect_phase=cache.is_defect_phase, catch=catch,
        has_review=cache.has_review, review_index=cache.review_index,
        review_base=cache.review_base, review_per_defect=cache.review_per_defect,
        tokens=tokens, summ_tokens=summ_tokens,
        variation=VariationLadders(type_nodes, build_pieces) if varied else None,
        retry_context="full" if retry else "none", phase_ids=cache.phase_ids,
        phase_list=cache.phase_list)


def _type_nodes(cache: CompileCache, t_idx: int, cfg: TableConfig, ids: list[str], spread: Spread,
                sl: slice, chosen: np.ndarray, pcol: np.ndarray, summ_cost: np.ndarray,
                summarizer: str | None, index: dict) -> TypeNodes | None:
    """The §3.5 parts of one task type: its node rule, intercepts and per-node cost tables."""
    info = cache.types[t_idx]
    Pt, Kt = info.phases, info.attempts
    ii = np.arange(Pt)[None, :, None]
    kk = np.arange(Kt)[None, None, :]
    if spread.is_zero:
        return None
    thresholds = np.zeros(0)
    # the thresholds matter only where the rule depends on them: steep long-context steps
    # (panel edges), or a trapezoidal step that long-context calls narrow
    if spread.t > 0.0 and spread.s > 0.0 and (
            spread.steep or trapezoid_step(spread, True) != trapezoid_step(spread, False)):
        pz = cache.pieces(t_idx, cfg, ids)
        a = pz.arrays
        col = pz.index(ids)
        used = np.zeros((Pt, Kt, len(ids)), bool)
        used[np.broadcast_to(ii, chosen.shape), np.broadcast_to(kk, chosen.shape), chosen] = True
        summ_theta = np.full((sl.stop - sl.start, Pt, Kt), math.inf)
        if summarizer is not None:
            live = summ_cost[sl, :Pt, :Kt] > 0
            summ_theta = np.where(live, a["summ_theta"][None, :, :, col[index[summarizer]]],
                                  math.inf)
        thresholds = np.concatenate([a["theta"][:, :, col][used].ravel(), summ_theta.ravel()])
    key, rule = cache.node_rule(spread, thresholds)
    b = cache.type_intercepts(t_idx, key, rule, spread.s, cache.cell_extra[sl], pcol[sl])
    cost_cols = None
    if spread.t == 0.0:
        tab = cache.costs(cfg, len(ids) == 1, ids)
        c = tab.arrays["cost"][t_idx, :Pt, :Kt][:, :, tab.index(ids)]
        node_cost = np.broadcast_to(c[..., None], c.shape + (len(rule),))
        node_summ = np.broadcast_to(summ_cost[sl.start, :Pt, :Kt, None], (Pt, Kt, len(rule)))
    else:
        nc = cache.node_costs(t_idx, cfg, key, rule, ids)
        node_cost = nc.arrays["cost"]
        cost_cols = nc.index(ids)
        if summarizer is not None:
            node_summ = nc.arrays["summ"][:, :, nc.index([summarizer])[0]]
        else:
            node_summ = np.zeros((Pt, Kt, len(rule)))
    return TypeNodes(spread=spread, rule=rule, cells=sl, b=b, cost=node_cost, summ=node_summ,
                     cost_cols=cost_cols)


def _size_pieces(cache: CompileCache, cfg: TableConfig, ids: list[str], spreads: list[Spread],
                 chosen: np.ndarray, cost: np.ndarray, summ_cost: np.ndarray,
                 summarizer: str | None, index: dict,
                 type_nodes: list[TypeNodes | None]) -> SizePieces:
    """Every cell's ladder as a function of the task (:class:`SizePieces`, for sampling)."""
    C, P, K = cost.shape
    J = max(info.max_calls for info in cache.types)
    pc = SizePieces(base=np.zeros((C, P, K)), delta=np.zeros((C, P, K, J)),
                    theta=np.full((C, P, K, J), math.inf), summ_base=np.zeros((C, P, K)),
                    summ_delta=np.zeros((C, P, K)), summ_theta=np.full((C, P, K), math.inf),
                    b=np.zeros((C, P, K)), s=np.zeros(C), t=np.zeros(C), r=np.zeros(C))
    for t_idx, info in enumerate(cache.types):
        if info.stop <= info.start:
            continue
        sl = slice(info.start, info.stop)
        spread = spreads[t_idx]
        Pt, Kt = info.phases, info.attempts
        ii = np.arange(Pt)[None, :, None]
        kk = np.arange(Kt)[None, None, :]
        pc.s[sl], pc.t[sl], pc.r[sl] = spread.s, spread.t, spread.r
        if spread.is_zero or spread.t == 0.0:
            # unit size: the cost is the §3.2 cost itself, exactly
            pc.base[sl] = cost[sl]
            pc.summ_base[sl] = summ_cost[sl]
        tn = type_nodes[t_idx]
        pc.b[sl] = np.nan if tn is None else tn.b
        if spread.is_zero or spread.t == 0.0:
            continue
        pz = cache.pieces(t_idx, cfg, ids)
        a = pz.arrays
        col = pz.index(ids)
        gcol = col[chosen[sl, :Pt, :Kt]]
        pc.base[sl, :Pt, :Kt] = a["base"][ii, kk, gcol]
        Jt = a["delta"].shape[-1]
        pc.delta[sl, :Pt, :Kt, :Jt] = a["delta"][ii, kk, gcol]
        pc.theta[sl, :Pt, :Kt, :Jt] = a["theta"][ii, kk, gcol]
        if summarizer is not None:
            sc = col[index[summarizer]]
            live = summ_cost[sl, :Pt, :Kt] > 0
            pc.summ_base[sl, :Pt, :Kt] = np.where(live, a["summ_base"][None, :, :, sc], 0.0)
            pc.summ_delta[sl, :Pt, :Kt] = np.where(live, a["summ_delta"][None, :, :, sc], 0.0)
            pc.summ_theta[sl, :Pt, :Kt] = np.where(live, a["summ_theta"][None, :, :, sc],
                                                   math.inf)
    return pc
