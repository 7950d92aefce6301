"""The replay engine: every strategy evaluated on the recorded outcomes of a runs log.

Where the analytic and Monte Carlo engines draw outcomes from the cost model, replay takes them
from the log itself (the way RouterBench evaluates routers): a task's attempt by model M is M's
*next recorded attempt* of that task and phase, in any run, with its recorded success and cost.
The routing is the engine's own (:func:`costsim.engine.compile.start_tier` and
:func:`~costsim.engine.compile.tier_of_attempt`, never re-implemented here); only the coin and
the bill come from the log.

Readings (docs/replay.md says the same for users):

- A *task* is a ``task_id``; its ``run``s are executions of the same task. Its signals are every
  signal named on any of its rows, in any run.
- A task type's *phases* are every phase its tasks show in the log, in the order tasks run them
  (the mean position of the phase's first row within each (run, task)).
- *Next recorded attempt*: a model's attempt records of a (task, phase) are queued by run (a run
  named exactly like the strategy first, then the runs in the order the log first shows them),
  then by attempt index. Each record serves one attempt of one strategy's replay of the task. So
  a strategy replayed on the log it made reproduces every recorded task exactly.
- Summaries: a strategy that hands over by summary needs, after every successful phase but the
  last, a recorded summary row (``kind: summary``) of that task and phase written by its
  summarizer model; the same queueing applies.
- ``max_attempts``: the workload's (a task type of the same name overrides it) when one is
  given, else the largest attempt index the log records for the task type.
- A task some attempt or summary of which has no record left is *left out* of the strategy's
  figures and counted (coverage); the first missing (phase, model) is tallied so the report can
  say what a fuller log would need.
- Intervals: a percentile bootstrap over the log's tasks (tasks resampled with replacement, the
  same resamples for every strategy; seeded), 95%.
- Defects and review minutes are not replayed: ``reviewer_changes`` belong to a whole recorded
  run of a task, not to the mix of runs a replay may draw on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import CostsimError
from ..models import PriceTable, Workload
from .compile import Strategy, start_tier, strategy_handoff, tier_of_attempt

DEFAULT_BOOTSTRAP = 1000
LEVEL = 0.95
MAX_BOOTSTRAP = 100_000
_HUGE = 1e300
_CHUNK = 64                        # bootstrap resamples drawn at a time (memory stays flat)
_TOKEN_COLUMNS = ("input_tokens", "cached_input_tokens", "output_tokens")


# --- the log, prepared once ----------------------------------------------------------------

@dataclass
class AttemptRecords:
    """One row per recorded attempt or summarizer call of a runs log.

    ``frame`` columns: ``run, task_id, task_type, phase, model`` (str), ``attempt`` (int),
    ``summary`` (bool), ``success`` (bool; False on summaries), ``cost`` (USD, NaN when the row
    has no cost_usd and its model has no price), ``input_tokens, cached_input_tokens,
    output_tokens`` (float) and ``order`` (position of the attempt's first row in the log).
    ``signals``: the distinct (``task_id``, ``signals``) values of the log's rows that name
    signals (``;``-separated), None when the log has no signals column.
    """

    frame: object                 # pandas.DataFrame
    path: str
    signals: object = None        # pandas.DataFrame | None
    priced_rows: int = 0          # attempts priced from the table (no cost_usd)

    @property
    def has_signals(self) -> bool:
        return self.signals is not None


@dataclass
class ReplayLog:
    """The records as arrays, indexed for the per-strategy replays."""

    path: str
    tasks: list[str]                   # task ids, code = index
    task_type: np.ndarray              # [T] type code
    type_names: list[str]
    type_phases: list[list[int]]       # per type: phase codes in running order
    type_max_attempt: np.ndarray       # [types] largest attempt index recorded
    phase_names: list[str]
    model_names: list[str]
    run_names: list[str]               # in the order the log first shows them
    combo: np.ndarray                  # [T] index into combos
    combos: list[tuple[str, ...]]      # distinct signal sets
    has_signals: bool
    # attempt and summary records (columns as arrays)
    r_task: np.ndarray
    r_phase: np.ndarray
    r_model: np.ndarray
    r_run: np.ndarray
    r_attempt: np.ndarray
    r_summary: np.ndarray
    r_success: np.ndarray
    r_cost: np.ndarray
    r_tokens: np.ndarray               # [R, 3] uncached input, cached input, output
    priced_rows: int = 0
    queue_cache: dict = field(default_factory=dict, repr=False)

    @property
    def n_tasks(self) -> int:
        return len(self.tasks)


def prepare(records: AttemptRecords) -> ReplayLog:
    """Index the records: codes for tasks, phases, models and runs; each task's signal set;
    each task type's phases in running order."""
    import pandas as pd

    f = records.frame
    if len(f) == 0:
        raise CostsimError("the log has no attempts to replay", records.path)
    f = f.sort_values("order", kind="stable").reset_index(drop=True)
    task_codes, tasks = pd.factorize(f["task_id"], sort=False)
    phase_codes, phases = pd.factorize(f["phase"], sort=False)
    model_codes, models = pd.factorize(f["model"], sort=False)
    run_codes, runs = pd.factorize(f["run"], sort=False)
    T = len(tasks)
    type_of_task = np.zeros(T, dtype=np.int64)
    tcodes, type_names = pd.factorize(f["task_type"], sort=False)
    type_of_task[task_codes] = tcodes          # one task, one type (checked by the reader)

    # A task's signals: the union over its rows (any run).
    combo = np.zeros(T, dtype=np.int64)
    combos: list[tuple[str, ...]] = [()]
    if records.has_signals:
        code_of = {str(t): i for i, t in enumerate(tasks)}
        sets: dict[int, set] = {}
        for tid, text in zip(records.signals["task_id"], records.signals["signals"]):
            t = code_of.get(str(tid))
            if t is None:
                continue
            cur = sets.setdefault(t, set())
            cur.update(x.strip() for x in str(text).split(";") if x.strip())
        index = {(): 0}
        for t, names in sets.items():
            key = tuple(sorted(names))
            if key not in index:
                index[key] = len(combos)
                combos.append(key)
            combo[t] = index[key]

    # Phase order per task type: mean rank of the phase's first row within each (run, task).
    att = ~f["summary"].to_numpy(bool)
    first = pd.DataFrame({"rt": run_codes[att] * T + task_codes[att], "ph": phase_codes[att],
                          "ty": tcodes[att], "order": f["order"].to_numpy()[att]})
    first = first.groupby(["rt", "ph", "ty"], sort=False)["order"].min().reset_index()
    first["rank"] = first.groupby("rt")["order"].rank(method="first")
    mean_rank = first.groupby(["ty", "ph"])["rank"].mean().reset_index()
    mean_rank["name"] = [str(phases[p]) for p in mean_rank["ph"]]
    mean_rank = mean_rank.sort_values(["ty", "rank", "name"])
    type_phases: list[list[int]] = [[] for _ in type_names]
    for ty, ph in zip(mean_rank["ty"], mean_rank["ph"]):
        type_phases[int(ty)].append(int(ph))
    attempt = f["attempt"].to_numpy(np.int64)
    type_max = np.zeros(len(type_names), dtype=np.int64)
    np.maximum.at(type_max, tcodes[att], attempt[att])

    tokens = np.stack([f["input_tokens"].to_numpy(float) - f["cached_input_tokens"].to_numpy(float),
                       f["cached_input_tokens"].to_numpy(float),
                       f["output_tokens"].to_numpy(float)], axis=1)
    return ReplayLog(
        path=records.path, tasks=[str(x) for x in tasks], task_type=type_of_task,
        type_names=[str(x) for x in type_names], type_phases=type_phases,
        type_max_attempt=type_max, phase_names=[str(x) for x in phases],
        model_names=[str(x) for x in models], run_names=[str(x) for x in runs],
        combo=combo, combos=combos, has_signals=records.has_signals,
        r_task=task_codes.astype(np.int64), r_phase=phase_codes.astype(np.int64),
        r_model=model_codes.astype(np.int64), r_run=run_codes.astype(np.int64),
        r_attempt=attempt, r_summary=~att, r_success=f["success"].to_numpy(bool) & att,
        r_cost=f["cost"].to_numpy(float), r_tokens=tokens, priced_rows=records.priced_rows)


# --- record queues ---------------------------------------------------------------------------

class _Queues:
    """For each (task, phase, model): its records in queue order and how many are used."""

    def __init__(self, log: ReplayLog, summary: bool, run_rank: np.ndarray):
        NP, NM = len(log.phase_names), len(log.model_names)
        self.NP, self.NM = NP, NM
        # the order depends on the run ranks only: strategies that share them share it
        cache_key = (summary, run_rank.tobytes())
        if cache_key not in log.queue_cache:
            rows = np.flatnonzero(log.r_summary == summary)
            key = (log.r_task[rows] * NP + log.r_phase[rows]) * NM + log.r_model[rows]
            order = np.lexsort((log.r_attempt[rows], run_rank[log.r_run[rows]], key))
            keys, start, count = np.unique(key[order], return_index=True, return_counts=True)
            log.queue_cache[cache_key] = (rows[order], keys, start, count)
        self.rows, self.keys, self.start, self.count = log.queue_cache[cache_key]
        self.used = np.zeros(self.keys.size, dtype=np.int64)

    def take(self, task: np.ndarray, phase: int, model: np.ndarray) -> np.ndarray:
        """The next record of each (task[i], phase, model[i]) (tasks distinct); -1 where none is
        left (model codes >= the log's model count name models the log never shows). Marks the
        records taken as used."""
        out = np.full(task.size, -1, dtype=np.int64)
        ok = model < self.NM
        if not ok.any() or self.keys.size == 0:
            return out
        q = (task * self.NP + phase) * self.NM + model
        pos = np.minimum(np.searchsorted(self.keys, q), self.keys.size - 1)
        ok &= self.keys[pos] == q
        ok &= self.used[pos] < self.count[pos]
        hit = pos[ok]
        out[ok] = self.rows[self.start[hit] + self.used[hit]]
        self.used[hit] += 1
        return out


# --- one strategy ------------------------------------------------------------------------------

@dataclass
class Lack:
    """Tasks left out because no record was left for this (phase, model)."""

    phase: str
    model: str
    what: str          # "attempt" | "summary"
    tasks: int


@dataclass
class TaskOutcomes:
    """Per task of the log under one strategy (uncovered tasks: zeros)."""

    strategy: Strategy
    covered: np.ndarray           # [T] bool
    completed: np.ndarray         # [T] bool
    spend: np.ndarray             # [T]
    attempts: np.ndarray          # [T]
    retries: np.ndarray           # [T]
    summaries: np.ndarray         # [T]
    used: np.ndarray              # record indices used by covered tasks
    reach: dict[str, tuple[int, int]]   # phase -> (covered tasks that reached it, that passed it)
    lacks: list[Lack] = field(default_factory=list)


def check_routes(log: ReplayLog, strategy: Strategy) -> None:
    """A routed policy needs a route (or ``default``) for every phase of the log."""
    pol = strategy.policy
    if pol is None or "default" in pol.routes:
        return
    missing = [p for p in log.phase_names if p not in pol.routes]
    if missing:
        raise pol.error(("routes",), f"no route for phase '{missing[0]}' of the runs log "
                        f"{log.path} (add it, or a 'default' route)")


def max_attempts(log: ReplayLog, workload: Workload | None) -> np.ndarray:
    """Attempts per phase for each task type of the log: the workload's (a task type of the same
    name overrides it), else the largest attempt index the log records for the type."""
    if workload is None:
        return np.maximum(log.type_max_attempt, 1)
    by_name = {t.name: t for t in workload.task_types}
    out = []
    for name in log.type_names:
        t = by_name.get(name)
        own = t.max_attempts if t is not None else None
        out.append(own or workload.max_attempts)
    return np.array(out, dtype=np.int64)


def _model_of(strategy: Strategy, phase: str, active: tuple[str, ...], k: int) -> str:
    """The model of 1-based attempt k: the engine's routing (SPEC §3.1), not a copy of it."""
    if strategy.kind == "single":
        return strategy.model
    pol = strategy.policy
    tiers = list(pol.tiers.values())
    start = start_tier(pol, phase, active)
    return tiers[tier_of_attempt(start, k, pol.escalation.after_failures, len(tiers) - 1)]


def replay_strategy(log: ReplayLog, strategy: Strategy, K: np.ndarray,
                    summarizer: str | None = None) -> TaskOutcomes:
    """Replay ``strategy`` on every task of ``log``. ``K``: attempts per phase for each task type
    (:func:`max_attempts`); ``summarizer``: the summarizer's model id when the strategy hands
    over by summary, else None."""
    if strategy.kind not in ("single", "routed"):
        raise CostsimError(f"'{strategy.name}' cannot be replayed: only routed policies and "
                           f"single:MODEL strategies can", path="--engine replay")
    check_routes(log, strategy)
    names = list(log.model_names)
    code = {m: i for i, m in enumerate(names)}

    def code_of(m: str) -> int:
        if m not in code:            # a model the log never shows: a code no record has
            code[m] = len(names)
            names.append(m)
        return code[m]

    run_rank = np.arange(1, len(log.run_names) + 1, dtype=np.int64)
    if strategy.name in log.run_names:
        run_rank[log.run_names.index(strategy.name)] = 0
    attempts_q = _Queues(log, False, run_rank)
    summary_q = _Queues(log, True, run_rank) if summarizer else None
    s_code = code_of(summarizer) if summarizer else -1

    T = log.n_tasks
    covered = np.ones(T, dtype=bool)
    completed = np.zeros(T, dtype=bool)
    spend = np.zeros(T)
    n_att = np.zeros(T, dtype=np.int64)
    n_ret = np.zeros(T, dtype=np.int64)
    n_sum = np.zeros(T, dtype=np.int64)
    used_task: list[np.ndarray] = []
    used_rec: list[np.ndarray] = []
    reached: list[tuple[int, np.ndarray, np.ndarray]] = []
    lack_count: dict[tuple[str, str, str], int] = {}

    def leave_out(tasks: np.ndarray, phase: int, models: np.ndarray, what: str) -> None:
        covered[tasks] = False
        for m in np.unique(models):
            key = (log.phase_names[phase], names[int(m)], what)
            lack_count[key] = lack_count.get(key, 0) + int((models == m).sum())

    for ty, phases in enumerate(log.type_phases):
        tasks = np.flatnonzero(log.task_type == ty)
        if tasks.size == 0:
            continue
        Kt = int(K[ty])
        # model code of attempt k of phase i for each signal set of the log: [combos, P, K]
        tab = np.array([[[code_of(_model_of(strategy, log.phase_names[ph], active, k))
                          for k in range(1, Kt + 1)] for ph in phases]
                        for active in log.combos], dtype=np.int64).reshape(
            len(log.combos), len(phases), Kt)
        alive = tasks
        for i, ph in enumerate(phases):
            pending = alive
            passed = []
            for k in range(Kt):
                if pending.size == 0:
                    break
                m = tab[log.combo[pending], i, k]
                rec = attempts_q.take(pending, ph, m)
                miss = rec < 0
                if miss.any():
                    leave_out(pending[miss], ph, m[miss], "attempt")
                    pending, rec = pending[~miss], rec[~miss]
                spend[pending] += log.r_cost[rec]
                n_att[pending] += 1
                if k > 0:
                    n_ret[pending] += 1
                used_task.append(pending)
                used_rec.append(rec)
                ok = log.r_success[rec]
                won = pending[ok]
                if summary_q is not None and i < len(phases) - 1 and won.size:
                    srec = summary_q.take(won, ph, np.full(won.size, s_code, dtype=np.int64))
                    smiss = srec < 0
                    if smiss.any():
                        leave_out(won[smiss], ph, np.full(int(smiss.sum()), s_code), "summary")
                        won, srec = won[~smiss], srec[~smiss]
                    spend[won] += log.r_cost[srec]
                    n_sum[won] += 1
                    used_task.append(won)
                    used_rec.append(srec)
                passed.append(won)
                pending = pending[~ok]
            # what is still pending ran out of attempts: abandoned (covered, not completed)
            went_on = np.concatenate(passed) if passed else np.zeros(0, dtype=np.int64)
            reached.append((ph, alive, went_on))
            alive = went_on
        completed[alive] = True
    completed &= covered
    if used_task:
        ut, ur = np.concatenate(used_task), np.concatenate(used_rec)
        used = ur[covered[ut]]
    else:
        used = np.zeros(0, dtype=np.int64)
    reach: dict[str, tuple[int, int]] = {}
    for ph, went, passed in reached:
        a, b = reach.get(log.phase_names[ph], (0, 0))
        reach[log.phase_names[ph]] = (a + int(covered[went].sum()), b + int(covered[passed].sum()))
    lacks = [Lack(phase=p, model=m, what=w, tasks=n) for (p, m, w), n in
             sorted(lack_count.items(), key=lambda kv: (-kv[1], kv[0]))]
    zero = ~covered
    spend[zero] = 0.0
    for a in (n_att, n_ret, n_sum):
        a[zero] = 0
    return TaskOutcomes(strategy=strategy, covered=covered, completed=completed, spend=spend,
                        attempts=n_att, retries=n_ret, summaries=n_sum, used=used, reach=reach,
                        lacks=lacks)


# --- figures --------------------------------------------------------------------------------

@dataclass
class ReplayMetrics:
    """One strategy's figures over the tasks it covers (see :func:`metrics`)."""

    tasks: int                        # tasks in the log
    covered: int
    spend_per_task: float
    completion_rate: float
    cost_per_completed_task: float
    expected_attempts: float
    expected_retries: float
    summary_calls: float
    spend_by_model: dict[str, float]
    tokens: dict[str, float]          # per covered task: input (uncached), cached_input, output
    models: list[dict]                # per model: spend, attempts, tokens (per covered task)
    phases: list[dict]                # per phase: spend, share, reach_rate, success_rate ...
    cost_percentiles: dict[str, float]
    covered_mask: np.ndarray          # [T] the tasks it covers
    intervals: dict[str, list[float]] = field(default_factory=dict)
    lacks: list[Lack] = field(default_factory=list)

    @property
    def coverage(self) -> float:
        return self.covered / self.tasks if self.tasks else 0.0


def metrics(log: ReplayLog, out: TaskOutcomes) -> ReplayMetrics:
    """Means over the covered tasks; cost per completed task = total spend / completed tasks."""
    n = int(out.covered.sum())
    total = float(out.spend.sum())
    done = int(out.completed.sum())
    nan = math.nan
    per = (lambda x: float(x) / n) if n else (lambda x: nan)
    u = out.used
    M = len(log.model_names)
    spend_m = np.bincount(log.r_model[u], weights=log.r_cost[u], minlength=M)
    att_m = np.bincount(log.r_model[u], weights=(~log.r_summary[u]).astype(float), minlength=M)
    sum_m = np.bincount(log.r_model[u], weights=log.r_summary[u].astype(float), minlength=M)
    tok_m = np.stack([np.bincount(log.r_model[u], weights=log.r_tokens[u, j], minlength=M)
                      for j in range(3)], axis=1)
    models = []
    by_model = {}
    for j, name in enumerate(log.model_names):
        if att_m[j] + sum_m[j] == 0:
            continue
        by_model[name] = per(spend_m[j])
        models.append({"model": name, "spend": per(spend_m[j]),
                       "share": float(spend_m[j] / total) if total > 0 else 0.0,
                       "attempts": per(att_m[j]), "summaries": per(sum_m[j]),
                       "input_tokens": per(tok_m[j, 0]), "cached_input_tokens": per(tok_m[j, 1]),
                       "output_tokens": per(tok_m[j, 2])})
    P = len(log.phase_names)
    spend_p = np.bincount(log.r_phase[u], weights=log.r_cost[u], minlength=P)
    att_p = np.bincount(log.r_phase[u], weights=(~log.r_summary[u]).astype(float), minlength=P)
    phases = []
    for name, (reached, passed) in out.reach.items():
        j = log.phase_names.index(name)
        phases.append({"phase": name, "spend": per(spend_p[j]),
                       "share": float(spend_p[j] / total) if total > 0 else 0.0,
                       "reach_rate": per(reached),
                       "success_rate": passed / reached if reached else 0.0,
                       "attempts_per_reach": float(att_p[j]) / reached if reached else 0.0})
    if n:
        q = np.percentile(out.spend[out.covered], [50, 90, 99])
        pct = {"p50": float(q[0]), "p90": float(q[1]), "p99": float(q[2])}
    else:
        pct = {"p50": nan, "p90": nan, "p99": nan}
    tok = tok_m.sum(axis=0)
    return ReplayMetrics(
        tasks=log.n_tasks, covered=n, spend_per_task=per(total), completion_rate=per(done),
        cost_per_completed_task=(total / done if done else (math.inf if n else nan)),
        expected_attempts=per(out.attempts.sum()), expected_retries=per(out.retries.sum()),
        summary_calls=per(out.summaries.sum()), spend_by_model=by_model,
        tokens={"input": per(tok[0]), "cached_input": per(tok[1]), "output": per(tok[2])},
        models=models, phases=phases, cost_percentiles=pct, covered_mask=out.covered,
        lacks=list(out.lacks))


def check_bootstrap(b) -> int:
    if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or not 0 <= b <= MAX_BOOTSTRAP:
        raise CostsimError(f"bootstrap resamples must be an integer from 0 to {MAX_BOOTSTRAP:,}, "
                           f"got {b!r}", path="--bootstrap")
    return int(b)


def bootstrap(outcomes: list[TaskOutcomes], resamples: int, seed: int,
              level: float = LEVEL) -> list[dict[str, list[float]]]:
    """Percentile intervals for spend per task, completion rate and cost per completed task of
    every strategy: the log's tasks resampled with replacement (``resamples`` times; the same
    resamples for every strategy), each figure recomputed over the covered tasks drawn."""
    if resamples == 0 or not outcomes:
        return [{} for _ in outcomes]
    T = outcomes[0].covered.size
    S = len(outcomes)
    V = np.empty((T, 3 * S))
    for s, o in enumerate(outcomes):
        V[:, 3 * s] = o.spend
        V[:, 3 * s + 1] = o.completed
        V[:, 3 * s + 2] = o.covered
    rng = np.random.default_rng(seed)
    chunk = max(1, min(_CHUNK, 4_000_000 // max(T, 1)))
    sums = []
    done = 0
    while done < resamples:
        c = min(chunk, resamples - done)
        idx = rng.integers(0, T, size=(c, T))
        W = np.bincount((idx + (np.arange(c) * T)[:, None]).ravel(),
                        minlength=c * T).reshape(c, T).astype(float)
        sums.append(W @ V)
        done += c
    X = np.concatenate(sums)                                     # [B, 3S]
    lo_q, hi_q = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    out = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for s in range(S):
            spend, comp, cov = X[:, 3 * s], X[:, 3 * s + 1], X[:, 3 * s + 2]
            # a resample that draws none of the covered tasks says nothing (NaN, dropped)
            figs = {"spend_per_task": spend / cov, "completion_rate": comp / cov,
                    "cost_per_completed_task": np.where(
                        cov > 0, np.where(comp > 0, spend / comp, np.inf), np.nan)}
            d = {}
            for name, v in figs.items():
                v = v[~np.isnan(v)]
                if not v.size:
                    d[name] = [math.nan, math.nan]
                    continue
                # resamples without a completed task cost infinity per completed task: keep
                # them in the order, out of the interpolation
                q = np.percentile(np.minimum(v, _HUGE), [lo_q, hi_q])
                d[name] = [math.inf if x >= _HUGE else float(x) for x in q]
            out.append(d)
    return out


# --- all strategies --------------------------------------------------------------------------

def replay_all(log: ReplayLog, strategies: list[Strategy], workload: Workload,
               *, explicit_workload: bool, resamples: int = DEFAULT_BOOTSTRAP,
               seed: int = 0) -> list[ReplayMetrics]:
    """Replay every strategy; figures with bootstrap intervals, in the order given."""
    resamples = check_bootstrap(resamples)
    K = max_attempts(log, workload if explicit_workload else None)
    outs = []
    for s in strategies:
        handoff, summarizer = strategy_handoff(s, workload)
        outs.append(replay_strategy(log, s, K, summarizer if handoff.mode == "summary" else None))
    for o in outs:
        bad = o.used[np.isnan(log.r_cost[o.used])]
        if bad.size:
            m = log.model_names[int(log.r_model[bad[0]])]
            raise CostsimError(f"model '{m}' has rows without cost_usd and is not in the price "
                               f"table, so its attempts cannot be priced", log.path)
    res = [metrics(log, o) for o in outs]
    for r, iv in zip(res, bootstrap(outs, resamples, seed)):
        r.intervals = iv
    return res
