"""Simulated runs logs: agent runs drawn exactly by the cost model, written as SPEC.md §2.4 logs.

A test utility, written apart from costsim's engine (it imports nothing from costsim and nothing
from tests/reference_model.py): it reads the price table, the workload and the strategies as
plain dicts (what ``yaml.safe_load`` returns, or the files' paths) and plays every task call by
call, vectorised over tasks with NumPy (loops run over task types, phases and attempts only).

    simulate_log(prices, workload, strategies, ...)  -> pandas.DataFrame, one row per call/attempt
    write_log(df, path)                              -> .csv / .jsonl / .parquet (optionally .gz)
    simulate_truth(prices, workload, strategy, ...)  -> large-sample metrics, no rows built
    measure_log(df_or_path, prices=None)             -> what a log shows, computed plainly
    task_outcomes(df_or_path, prices=None)           -> one row per (run, task) of a log

What a task does (SPEC §3; the same readings as tests/reference_model.py R1-R14):

- Task type by ``share``; each signal of the task type's ``signals`` block (else the workload's)
  independently active with its ``share``; with ``variation`` a difficulty ``z ~ N(0,1)`` and a
  size noise ``e ~ N(0,1)`` per task.  Everything about a task (type, signals, z, e, arrival
  time) is drawn once: all its phases, attempts and runs share it.
- Routing §3.1 (R7: start tier from the route, min_tier and raise of the active signals in
  their phases; one tier up every ``after_failures`` failures).  Success §3.3 (R5: success map
  by model id, then the model's price-table tier class, a list indexed by attempt, a number for
  every attempt; else the logistic of coding_score and difficulty + the difficulty of every
  active signal (R6), with feedback_gain from attempt 2).  Given z, attempts are independent.
- Tokens §3.2 call by call: call j of attempt k resends ``ctx_j = system + prior + retry +
  (j-1) g`` and adds ``in``; ``prior`` is the transcript of one attempt of each earlier phase
  (full_history) or ``summary_tokens`` (summary, phases after the first); ``retry = (k-1) n g``.
  A call uses the long-context rates when its input exceeds ``above`` (R2).  In ``summary`` mode
  a summarizer call follows every successful phase but the task type's last (R3).
- Abandonment after ``max_attempts`` failures in a phase ends the task; defects §3.4 (R8): in
  every defect phase the succeeding model adds a defect with its rate, the model that
  succeeded in the phase named ``review`` catches each defect independently with its catch rate.

Readings where SPEC is open (the lead's decisions; the reference follows the same):

D1  ``retry_context: none`` (routed policies; ``single:M`` always resends): ``retry = 0`` for
    every call; the summarizer's input after a success at attempt k is ``system + prior + n g``.
D2  With variation EVERY token count of the task is multiplied by
    ``u = exp(t (r z + sqrt(1-r^2) e) - t^2/2)``: system tokens, prior, retries, ``in``, ``out``,
    the summarizer's input and its output (summary_tokens); the long-context rule sees the
    multiplied counts.  Defect and catch rates do not depend on z.
D3  A task type's own ``variation`` block replaces the workload's; absent everywhere: s = t = 0.
D4  No summarizer named: the policy's first tier (``single:M``: M).
D5  An attempt succeeds with ``sigmoid(b - s z)``, ``b`` solved so that its mean over z equals
    the §3.3 rate p (:func:`solve_b`); p = 0 and p = 1 stay 0 and 1 for every z.

Log rows (SPEC §2.4):

L1  Token counts are integers: per call, ``input_tokens = round(u (ctx_j + in))`` (all input,
    cached included), ``cached_input_tokens = round(h u ctx_j)``, ``output_tokens = round(u out)``,
    rounding half to even (NumPy).  Without variation and with integral ``h ctx_j`` nothing is
    rounded.  A per-attempt row carries the sums of its calls' rounded counts and ``calls = n``.
    ``cost_usd`` (with ``cost=True``) prices each call's rounded counts: cached at ``cache_read``,
    the rest of the input at ``input``, output at ``output``, all at the long-context rates when
    the call's ``input_tokens > above``; a per-attempt row carries the sum over its calls.
    ``simulate_truth`` does not round (it is the model's expectation, sampled).
L2  Summary rows: ``kind = summary``, ``phase`` = the phase summarized, ``attempt`` = the attempt
    that succeeded, ``success`` empty, ``model`` = the summarizer, ``input_tokens`` =
    ``round(u (system + prior + k n g))`` (``n g`` with retry_context none), cached 0,
    ``output_tokens = round(u summary_tokens)``, ``call = 1`` / ``calls = 1``.
L3  ``reviewer_changes`` = defects the task ships (introduced minus caught), only for completed
    tasks: on the task's last row (``changes_on="last"``), on every attempt row of its ``review``
    phase (``"review"``; nothing when the task type has no review phase) or no column
    (``"none"``).  Empty on other rows and for abandoned tasks.
L4  ``signals`` = the task's active signals joined by ``;`` in the order of the signals block,
    empty when none; on every row (``signals_on="all"``), only on the task's first row
    (``"first"``: other rows empty) or no column (``"none"``).
L5  Time: tasks arrive uniformly over ``days`` from ``start`` (whole seconds), task ids are
    numbered in order of arrival (``task-000000``, ...).  A task's calls follow each other
    CALL_GAP_S seconds apart from its arrival; a per-attempt row carries the time of its first
    call.  Every run of a task starts at the task's arrival.  Rows are sorted by timestamp (then
    run, task and sequence), so the tasks of a log interleave as in a real one.
    With ``months``, the number of tasks of each calendar month is Poisson (``tasks_per_month``
    a number) or gamma-Poisson (``{mean, cv}``: a gamma rate with that mean and coefficient of
    variation), arrivals uniform inside the month; ``tasks`` and ``days`` are then ignored.
L6  ``assign="all"``: every strategy runs every task (run = strategy name), with its own outcome
    draws; ``"split"``: each task goes to one strategy chosen uniformly at random;
    ``"switch"``: the tasks, in order of arrival, are cut into as many consecutive equal parts
    as there are strategies (two strategies: the first half runs the first).  ``run`` holds the
    strategy name when ``run_column`` (default: more than one strategy).
L7  Random streams: ``np.random.SeedSequence(seed)`` spawns one stream for the tasks and one per
    strategy for its outcomes, so ``rows="call"`` and ``rows="attempt"`` with the same seed play
    the same runs, and adding a strategy does not change the runs of the others under "all".
"""

from __future__ import annotations

import copy
import gzip
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

CALL_GAP_S = 120          # seconds between a task's consecutive calls (L5)
TIER_CLASSES = ("budget", "midrange", "premium")
# the mean over z ~ N(0,1) of a smooth function: the trapezoid rule on [-12, 12] with step 0.05
# (spectrally accurate for the logistic, error ~ exp(-2 pi^2 / (0.05 s)) for spread s)
_Q_Z = np.linspace(-12.0, 12.0, 481)
_Q_W = 0.05 * np.exp(-_Q_Z ** 2 / 2) / math.sqrt(2 * math.pi)


def _doc(x) -> dict:
    if isinstance(x, dict):
        return copy.deepcopy(x)
    return yaml.safe_load(Path(x).read_text())


def _sigmoid(x):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def solve_b(p, s: float):
    """``b`` with mean over z ~ N(0,1) of sigmoid(b - s z) equal to ``p`` (elementwise; p = 0 and
    p = 1 give -inf and +inf).  Trapezoid-rule mean, bisection to full precision."""
    p = np.asarray(p, dtype=float)
    out = np.where(p <= 0, -np.inf, np.where(p >= 1, np.inf, 0.0))
    inner = (p > 0) & (p < 1)
    if not inner.any():
        return out
    if s == 0:
        out[inner] = np.log(p[inner] / (1 - p[inner]))
        return out
    q = p[inner]
    lo = np.full(q.shape, -60.0 - 12 * s)
    hi = np.full(q.shape, 60.0 + 12 * s)
    for _ in range(200):
        mid = (lo + hi) / 2
        mean = _sigmoid(mid[:, None] - s * _Q_Z[None, :]) @ _Q_W
        up = mean < q
        lo = np.where(up, mid, lo)
        hi = np.where(up, hi, mid)
        if np.all(hi - lo <= 1e-13 * np.maximum(1.0, np.abs(lo))):
            break
    out[inner] = (lo + hi) / 2
    return out


# --- the documents, compiled to arrays ---------------------------------------------------------

class _Prices:
    def __init__(self, prices: dict):
        models = prices["models"]
        self.ids = list(models)
        self.index = {m: i for i, m in enumerate(self.ids)}
        self.tier = [models[m]["tier"] for m in self.ids]
        self.score = [models[m].get("coding_score") for m in self.ids]
        n = len(self.ids)
        self.base = np.zeros((n, 3))   # input, output, cache_read per 1M (R1)
        self.long = np.zeros((n, 3))
        self.above = np.full(n, np.inf)
        for i, m in enumerate(self.ids):
            d = models[m]
            inp, out = float(d["input"]), float(d["output"])
            cr = float(d["cache_read"]) if d.get("cache_read") is not None else inp
            self.base[i] = inp, out, cr
            lc = d.get("long_context")
            if lc is not None:
                li = float(lc["input"]) if lc.get("input") is not None else inp
                lo = float(lc["output"]) if lc.get("output") is not None else out
                lcr = float(lc["cache_read"]) if lc.get("cache_read") is not None else li
                self.long[i] = li, lo, lcr
                self.above[i] = float(lc["above"])
            else:
                self.long[i] = self.base[i]

    def lookup(self, mapping: dict | None, model: int) -> float:
        """A per-model number keyed by model id, else by the model's tier class, else 0."""
        mapping = mapping or {}
        if self.ids[model] in mapping:
            return float(mapping[self.ids[model]])
        return float(mapping.get(self.tier[model], 0.0))

    def cost(self, model, inp, cached, out):
        """Cost of calls (arrays broadcast): long-context rates where ``inp > above``."""
        long = inp > self.above[model]
        r = np.where(long[..., None], self.long[model], self.base[model])
        return (cached * r[..., 2] + (inp - cached) * r[..., 0] + out * r[..., 1]) / 1e6


class _Strategy:
    def __init__(self, spec, prices: dict, workload: dict, px: _Prices):
        if isinstance(spec, str) and spec.startswith("single:"):
            model = spec.split(":", 1)[1]
            if model not in px.index:
                raise ValueError(f"unknown model {model!r}")
            self.name, self.single = spec, model
            self.handoff = workload.get("handoff") or {"mode": "full_history"}
            self.summarizer = model
            self.retry_full = True
            return
        pol = _doc(spec)
        self.name, self.single, self.policy = pol["name"], None, pol
        self.tier_names = list(pol["tiers"])
        self.tier_models = [pol["tiers"][t] for t in self.tier_names]
        esc = pol.get("escalation") or {}
        self.after = esc.get("after_failures", 2)
        self.retry_full = esc.get("retry_context", "full") != "none"
        self.handoff = pol.get("handoff") or workload.get("handoff") or {"mode": "full_history"}
        name = self.handoff.get("summarizer")
        if name is None:
            self.summarizer = self.tier_models[0]
        elif name in pol["tiers"]:
            self.summarizer = pol["tiers"][name]
        elif name in px.index:
            self.summarizer = name
        else:   # a tier class named by the workload's handoff
            found = [m for m in self.tier_models if px.tier[px.index[m]] == name]
            if not found:
                raise ValueError(f"cannot resolve summarizer {name!r}")
            self.summarizer = found[0]

    def model_for(self, phase: str, k: int, active: set[str]) -> str:
        if self.single is not None:
            return self.single
        pol = self.policy
        routes = pol["routes"]
        idx = self.tier_names.index(routes[phase] if phase in routes else routes["default"])
        last = len(self.tier_names) - 1
        raised = 0
        for name, sig in (pol.get("signals") or {}).items():
            if name not in active:
                continue
            if sig.get("phases") is not None and phase not in sig["phases"]:
                continue
            if sig.get("min_tier") is not None:
                idx = max(idx, self.tier_names.index(sig["min_tier"]))
            raised += sig.get("raise", 0) or 0
        start = min(idx + raised, last)
        return self.tier_models[min(start + (k - 1) // self.after, last)]


def _p_success(px: _Prices, workload: dict, ph: dict, model: int, k: int, extra_d: float) -> float:
    smap = ph.get("success") or {}
    key = px.ids[model] if px.ids[model] in smap else (
        px.tier[model] if px.tier[model] in smap else None)
    if key is not None:
        v = smap[key]
        return float(v[min(k, len(v)) - 1]) if isinstance(v, list) else float(v)
    score = px.score[model]
    if score is None or ph.get("difficulty") is None:
        raise ValueError(f"phase {ph['phase']}: no success entry for {px.ids[model]} and no "
                         f"coding_score/difficulty to fall back on")
    p1 = 1.0 / (1.0 + math.exp(-(score - (ph["difficulty"] + extra_d)) / 10.0))
    if k == 1:
        return p1
    return p1 + (1 - p1) * (workload.get("feedback_gain", 0.0) or 0.0)


@dataclass
class _TypeInfo:
    """What every strategy shares about a task type."""
    name: str
    share: float
    phases: list
    K: int
    signal_names: list
    signal_shares: np.ndarray
    signal_difficulty: np.ndarray
    defects: dict | None
    s: float
    t: float
    r: float
    combo_label: list = field(default_factory=list)


def _type_infos(workload: dict) -> list[_TypeInfo]:
    out = []
    for tt in workload["task_types"]:
        sig = tt["signals"] if tt.get("signals") is not None else (workload.get("signals") or {})
        var = tt["variation"] if tt.get("variation") is not None else workload.get("variation")
        var = var or {}
        names = list(sig)
        info = _TypeInfo(
            name=tt["name"], share=float(tt["share"]), phases=tt["phases"],
            K=int(tt.get("max_attempts") or workload.get("max_attempts", 3)),
            signal_names=names,
            signal_shares=np.array([float(sig[n]["share"]) for n in names]),
            signal_difficulty=np.array([float(sig[n].get("difficulty", 0.0) or 0.0)
                                        for n in names]),
            defects=tt["defects"] if tt.get("defects") is not None else workload.get("defects"),
            s=float(var.get("difficulty", 0.0) or 0.0), t=float(var.get("tokens", 0.0) or 0.0),
            r=float(var.get("tokens_follow_difficulty", 0.0) or 0.0))
        info.combo_label = [";".join(n for j, n in enumerate(names) if c >> j & 1)
                            for c in range(2 ** len(names))]
        out.append(info)
    return out


class _Plan:
    """One (strategy, task type): per phase, tables over (signal combination, attempt)."""

    def __init__(self, st: _Strategy, info: _TypeInfo, px: _Prices, workload: dict):
        self.info = info
        C, K = 2 ** len(info.signal_names), info.K
        self.sys = float(workload.get("system_tokens", 0) or 0)
        self.h = float(workload.get("cache_hit_rate", 0.0) or 0.0)
        self.mode = st.handoff["mode"]
        self.S = float(st.handoff.get("summary_tokens", 1500))
        self.summarizer = px.index[st.summarizer]
        self.retry_full = st.retry_full
        self.model, self.b, self.p, self.tok, self.prior = [], [], [], [], []
        full = 0.0
        for i, ph in enumerate(info.phases):
            n, inn, out = int(ph["calls"]), float(ph["input_tokens"]), float(ph["output_tokens"])
            g = inn + out
            self.prior.append(full if self.mode == "full_history" else (self.S if i else 0.0))
            full += n * g
            self.tok.append((n, inn, out, g))
            model = np.zeros((C, K), dtype=np.int64)
            p = np.zeros((C, K))
            for c in range(C):
                active = {nm for j, nm in enumerate(info.signal_names) if c >> j & 1}
                extra = float(sum(info.signal_difficulty[j] for j, nm in
                                  enumerate(info.signal_names) if nm in active))
                for k in range(1, K + 1):
                    m = px.index[st.model_for(ph["phase"], k, active)]
                    model[c, k - 1] = m
                    p[c, k - 1] = _p_success(px, workload, ph, m, k, extra)
            self.model.append(model)
            self.p.append(p)
            self.b.append(solve_b(p, info.s) if info.s > 0 else None)
        names = [ph["phase"] for ph in info.phases]
        d = info.defects or {}
        self.defect_phases = [i for i, nm in enumerate(names) if nm in (d.get("phases") or [])]
        self.review = names.index("review") if "review" in names else None
        self.rate = np.array([px.lookup(d.get("rate"), m) for m in range(len(px.ids))])
        self.catch = np.array([px.lookup(d.get("catch_rate"), m) for m in range(len(px.ids))])


# --- playing tasks ------------------------------------------------------------------------------

class _Rows:
    """Row chunks in the order they happen within each task."""

    def __init__(self, per_call: bool):
        self.per_call = per_call
        self.chunks: list[dict] = []

    def add(self, **cols):
        self.chunks.append(cols)


def _play(plan: _Plan, px: _Prices, tasks: np.ndarray, z, e, combo, rng, rows: _Rows | None,
          run: int):
    """Play the tasks ``tasks`` (global indices; z, e, combo aligned with them) of one task type
    under one strategy.  Returns per task: spend, completed, shipped defects."""
    info = plan.info
    m = tasks.size
    if info.t > 0:
        u = np.exp(info.t * (info.r * z + math.sqrt(max(0.0, 1 - info.r ** 2)) * e)
                   - info.t ** 2 / 2)
    else:
        u = np.ones(m)
    round_ = rows is not None
    spend = np.zeros(m)
    alive = np.ones(m, dtype=bool)
    n_ph = len(info.phases)
    winner = np.full((n_ph, m), -1, dtype=np.int64)
    for i in range(n_ph):
        n, inn, out, g = plan.tok[i]
        prior = plan.prior[i]
        pending = np.flatnonzero(alive)
        for k in range(1, info.K + 1):
            if pending.size == 0:
                break
            cmb = combo[pending]
            mod = plan.model[i][cmb, k - 1]
            if info.s > 0:
                prob = _sigmoid(plan.b[i][cmb, k - 1] - info.s * z[pending])
            else:
                prob = plan.p[i][cmb, k - 1]
            ok = rng.random(pending.size) < prob
            retry = (k - 1) * n * g if plan.retry_full else 0.0
            ctx = plan.sys + prior + retry + np.arange(n) * g          # (n,)
            uu = u[pending][:, None]
            t_in = uu * (ctx + inn)[None, :]
            t_cached = uu * (plan.h * ctx)[None, :]
            t_out = np.broadcast_to(uu * out, t_in.shape)
            if round_:
                t_in, t_cached, t_out = np.rint(t_in), np.rint(t_cached), np.rint(t_out)
            cost = px.cost(mod[:, None], t_in, t_cached, t_out)     # (tasks, n)
            spend[pending] += cost.sum(axis=1)
            if rows is not None:
                if rows.per_call:
                    rows.add(task=np.repeat(tasks[pending], n), run=run, phase=(info, i),
                             attempt=k, call=np.tile(np.arange(1, n + 1), pending.size),
                             ncalls=1, kind=0, model=np.repeat(mod, n),
                             input=t_in.ravel(), cached=t_cached.ravel(), output=t_out.ravel(),
                             success=np.repeat(ok, n), last_call=np.tile(np.arange(n) == n - 1,
                                                                       pending.size),
                             cost=cost.ravel())
                else:
                    rows.add(task=tasks[pending], run=run, phase=(info, i), attempt=k, call=n,
                             ncalls=n, kind=0, model=mod, input=t_in.sum(axis=1),
                             cached=t_cached.sum(axis=1), output=t_out.sum(axis=1),
                             success=ok, last_call=True, cost=cost.sum(axis=1))
            won = pending[ok]
            winner[i, won] = mod[ok]
            if plan.mode == "summary" and i < n_ph - 1 and won.size:
                x = plan.sys + prior + (k if plan.retry_full else 1) * n * g
                s_in, s_out = u[won] * x, u[won] * plan.S
                if round_:
                    s_in, s_out = np.rint(s_in), np.rint(s_out)
                smod = np.full(won.size, plan.summarizer)
                s_cost = px.cost(smod, s_in, 0.0, s_out)
                spend[won] += s_cost
                if rows is not None:
                    rows.add(task=tasks[won], run=run, phase=(info, i), attempt=k, call=1,
                             ncalls=1, kind=1, model=smod, input=s_in, cached=0.0, output=s_out,
                             success=False, last_call=True, cost=s_cost)
            pending = pending[~ok]
        alive[pending] = False
    shipped = np.zeros(m, dtype=np.int64)
    done = np.flatnonzero(alive)
    if plan.defect_phases and done.size:
        catch = plan.catch[winner[plan.review, done]] if plan.review is not None else 0.0
        for i in plan.defect_phases:
            added = rng.random(done.size) < plan.rate[winner[i, done]]
            missed = rng.random(done.size) >= catch
            shipped[done] += added & missed
    return spend, alive, shipped


@dataclass
class _Tasks:
    type_: np.ndarray      # task type index
    combo: np.ndarray      # bitmask of active signals (bit j: signal j of the type's block)
    z: np.ndarray
    e: np.ndarray
    arrival: np.ndarray    # seconds after start (int64)


def _draw_tasks(infos, n: int, rng, arrival: np.ndarray) -> _Tasks:
    shares = np.array([i.share for i in infos])
    type_ = rng.choice(len(infos), size=n, p=shares / shares.sum())
    combo = np.zeros(n, dtype=np.int64)
    for ti, info in enumerate(infos):
        idx = np.flatnonzero(type_ == ti)
        on = rng.random((idx.size, len(info.signal_names))) < info.signal_shares[None, :]
        combo[idx] = (on * (1 << np.arange(len(info.signal_names)))).sum(axis=1)
    z = rng.standard_normal(n)
    e = rng.standard_normal(n)
    return _Tasks(type_, combo, z, e, arrival)


def _arrivals(workload, rng, tasks, start, days, months) -> np.ndarray:
    """Arrival seconds after ``start``, sorted (L5)."""
    if months is None:
        return np.sort(np.floor(rng.random(tasks) * days * 86400)).astype(np.int64)
    tpm = workload.get("tasks_per_month", 1000)
    t0 = pd.Timestamp(start)
    out = []
    for mo in range(months):
        if isinstance(tpm, dict):
            mean, cv = float(tpm["mean"]), float(tpm.get("cv", 0.0) or 0.0)
            lam = rng.gamma(1 / cv ** 2, mean * cv ** 2) if cv > 0 else mean
        else:
            lam = float(tpm)
        k = rng.poisson(lam)
        a = (t0 + pd.DateOffset(months=mo) - t0).total_seconds()
        b = (t0 + pd.DateOffset(months=mo + 1) - t0).total_seconds()
        out.append(np.sort(np.floor(a + rng.random(k) * (b - a))))
    return np.concatenate(out).astype(np.int64)


def _setup(prices, workload, strategies):
    prices, workload = _doc(prices), _doc(workload)
    px = _Prices(prices)
    if isinstance(strategies, (str, dict, Path)):
        strategies = [strategies]
    strats = [_Strategy(s, prices, workload, px) for s in strategies]
    names = [s.name for s in strats]
    if len(set(names)) != len(names):
        raise ValueError(f"strategy names must differ: {names}")
    infos = _type_infos(workload)
    plans = [[_Plan(st, info, px, workload) for info in infos] for st in strats]
    return prices, workload, px, strats, infos, plans


# --- simulate_log -------------------------------------------------------------------------------

def simulate_log(prices, workload, strategies, *, tasks: int = 30_000, seed: int = 0,
                 rows: str = "call", assign: str = "all", success_on: str = "all",
                 signals_on: str = "all", changes_on: str = "last", cost: bool = False,
                 run_column: bool | None = None, start: str = "2026-09-01T00:00:00Z",
                 days: float = 61.0, months: int | None = None) -> pd.DataFrame:
    """A runs log of the strategies on simulated tasks (see the module docstring, L1-L7)."""
    for name, val, ok in (("rows", rows, ("call", "attempt")),
                          ("assign", assign, ("all", "split", "switch")),
                          ("success_on", success_on, ("all", "last")),
                          ("signals_on", signals_on, ("all", "first", "none")),
                          ("changes_on", changes_on, ("last", "review", "none"))):
        if val not in ok:
            raise ValueError(f"{name} must be one of {ok}, not {val!r}")
    prices, workload, px, strats, infos, plans = _setup(prices, workload, strategies)
    ss = np.random.SeedSequence(seed)
    task_ss, *run_ss = ss.spawn(1 + len(strats))
    trng = np.random.default_rng(task_ss)
    arrival = _arrivals(workload, trng, tasks, start, days, months)
    N = arrival.size
    T = _draw_tasks(infos, N, trng, arrival)
    S = len(strats)
    if assign == "all":
        owner = None
    elif assign == "split":
        owner = trng.integers(0, S, size=N)
    else:
        owner = (np.arange(N) * S) // max(N, 1)

    out = _Rows(per_call=rows == "call")
    shipped = np.zeros((S, N), dtype=np.int64)
    completed = np.zeros((S, N), dtype=bool)
    for si in range(S):
        rng = np.random.default_rng(run_ss[si])
        for ti, info in enumerate(infos):
            mask = T.type_ == ti
            if owner is not None:
                mask &= owner == si
            idx = np.flatnonzero(mask)
            if idx.size == 0:
                continue
            _, done, ship = _play(plans[si][ti], px, idx, T.z[idx], T.e[idx], T.combo[idx],
                                  rng, out, si)
            completed[si, idx] = done
            shipped[si, idx] = ship
    return _frame(out, infos, px, strats, T, completed, shipped, rows=rows,
                  success_on=success_on, signals_on=signals_on, changes_on=changes_on,
                  cost=cost, run_column=(S > 1) if run_column is None else run_column,
                  start=start)


def _frame(out: _Rows, infos, px, strats, T: _Tasks, completed, shipped, *, rows, success_on,
           signals_on, changes_on, cost, run_column, start) -> pd.DataFrame:
    N = T.arrival.size
    phase_names = sorted({ph["phase"] for info in infos for ph in info.phases})
    pcode = {nm: j for j, nm in enumerate(phase_names)}
    cols = {k: [] for k in ("task", "run", "phase", "attempt", "call", "ncalls", "kind", "model",
                            "input", "cached", "output", "success", "last_call", "cost")}
    for ch in out.chunks:
        size = np.size(ch["task"])
        info, i = ch["phase"]
        for k in cols:
            v = pcode[info.phases[i]["phase"]] if k == "phase" else ch[k]
            cols[k].append(np.broadcast_to(v, (size,)))
    a = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in cols.items()}
    task = a["task"].astype(np.int64)
    run = a["run"].astype(np.int64)
    # order within each (run, task): the order the chunks were played in (stable sort)
    key = run * N + task
    order = np.argsort(key, kind="stable")
    a = {k: v[order] for k, v in a.items()}
    task, run, key = task[order], run[order], key[order]
    n_rows = key.size
    first = np.ones(n_rows, dtype=bool)
    first[1:] = key[1:] != key[:-1]
    last = np.ones(n_rows, dtype=bool)
    last[:-1] = key[1:] != key[:-1]
    ncalls = a["ncalls"].astype(np.int64)
    cum = np.cumsum(ncalls)
    start_cum = (cum - ncalls)[first]
    group = np.cumsum(first) - 1
    calls_before = cum - ncalls - start_cum[group]
    seq = np.arange(n_rows) - np.flatnonzero(first)[group]
    t0 = pd.Timestamp(start)
    t0 = t0.tz_localize("UTC") if t0.tzinfo is None else t0.tz_convert("UTC")
    ts_ns = t0.value + (T.arrival[task] + calls_before * CALL_GAP_S) * 1_000_000_000

    # the final order (L5), applied to plain arrays before pandas sees them
    final = np.lexsort((seq, task, run, ts_ns))
    task, run, ts_ns, first, last = task[final], run[final], ts_ns[final], first[final], last[final]
    a = {k: v[final] for k, v in a.items()}
    kind = a["kind"].astype(np.int64)
    success = pd.array(a["success"].astype(bool), dtype="boolean")
    na = kind == 1
    if rows == "call" and success_on == "last":
        na |= ~a["last_call"].astype(bool)
    success[na] = pd.NA

    def text(values, codes):
        return pd.Index(list(values), dtype="str").take(codes, allow_fill=True, fill_value=None)

    ttype = T.type_[task]
    phase = a["phase"].astype(np.int64)
    data = {
        "task_id": text((f"task-{i:06d}" for i in range(N)), task),
        "task_type": text((info.name for info in infos), ttype),
        "phase": text(phase_names, phase),
        "attempt": a["attempt"].astype(np.int64),
        ("call" if rows == "call" else "calls"): a["call"].astype(np.int64),
        "kind": text(["attempt", "summary"], kind),
        "model": text(px.ids, a["model"].astype(np.int64)),
        "input_tokens": a["input"].astype(np.int64),
        "cached_input_tokens": a["cached"].astype(np.int64),
        "output_tokens": a["output"].astype(np.int64),
        "success": success,
    }
    if signals_on != "none":
        labels = [lab for info in infos for lab in info.combo_label]
        offset = np.cumsum([0] + [len(info.combo_label) for info in infos])[:-1]
        code = offset[ttype] + T.combo[task]
        if signals_on == "first":
            code = np.where(first, code, -1)
        data["signals"] = text(labels, code)
    if changes_on != "none":
        done = completed[run, task]
        if changes_on == "last":
            where = last & done
        else:
            where = done & (phase == pcode.get("review", -1)) & (kind == 0)
        ch = pd.array(np.where(where, shipped[run, task], 0), dtype="Int64")
        ch[~where] = pd.NA
        data["reviewer_changes"] = ch
    data["timestamp"] = pd.to_datetime(ts_ns, unit="ns", utc=True)
    if run_column:
        data["run"] = text((st.name for st in strats), run)
    if cost:
        data["cost_usd"] = a["cost"].astype(float)
    return pd.DataFrame(data)


# --- writing ------------------------------------------------------------------------------------

def write_log(df: pd.DataFrame, path) -> None:
    """Write by extension: .csv, .jsonl (or .ndjson, .json), .parquet; a final .gz compresses.
    Timestamps are written as ISO 8601 ``YYYY-MM-DDTHH:MM:SSZ`` in CSV and JSON Lines."""
    p = Path(path)
    suffixes = [s.lower() for s in p.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    ext = suffixes[-2] if gz and len(suffixes) > 1 else (suffixes[-1] if suffixes else "")
    out = df
    if ext in (".csv", ".jsonl", ".ndjson", ".json") and "timestamp" in df.columns:
        out = df.copy()
        ts = df["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[s]")
        out["timestamp"] = np.char.add(np.datetime_as_string(ts, unit="s"), "Z")
    if ext == ".csv":
        out.to_csv(p, index=False, compression="gzip" if gz else None)
    elif ext in (".jsonl", ".ndjson", ".json"):
        out.to_json(p, orient="records", lines=True, compression="gzip" if gz else None)
    elif ext == ".parquet":
        buf = io.BytesIO()
        out.to_parquet(buf, index=False)
        data = buf.getvalue()
        p.write_bytes(gzip.compress(data) if gz else data)
    else:
        raise ValueError(f"unknown log extension {''.join(p.suffixes)!r}")


def read_log(path) -> pd.DataFrame:
    """Read a log written by :func:`write_log` (plain pandas; not costsim's reader)."""
    p = Path(path)
    suffixes = [s.lower() for s in p.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    ext = suffixes[-2] if gz and len(suffixes) > 1 else (suffixes[-1] if suffixes else "")
    if ext == ".csv":
        return pd.read_csv(p, compression="gzip" if gz else None, keep_default_na=False,
                           na_values=[""])
    if ext in (".jsonl", ".ndjson", ".json"):
        return pd.read_json(p, lines=True, compression="gzip" if gz else None, dtype=False)
    if ext == ".parquet":
        data = p.read_bytes()
        return pd.read_parquet(io.BytesIO(gzip.decompress(data) if gz else data))
    raise ValueError(f"unknown log extension {''.join(p.suffixes)!r}")


# --- measuring a log ----------------------------------------------------------------------------

def _bool_col(col: pd.Series) -> pd.Series:
    """True / False / NA from booleans or their text forms."""
    if col.dtype == bool or str(col.dtype) == "boolean":
        return col.astype("boolean")
    text = col.astype("string").str.strip().str.lower()
    out = pd.Series(pd.NA, index=col.index, dtype="boolean")
    out[text.isin(["true", "1", "1.0", "t", "yes"])] = True
    out[text.isin(["false", "0", "0.0", "f", "no"])] = False
    return out


def _row_costs(df: pd.DataFrame, prices) -> np.ndarray:
    if "cost_usd" in df.columns and df["cost_usd"].notna().all():
        return df["cost_usd"].to_numpy(float)
    if prices is None:
        raise ValueError("the log has no cost_usd: pass prices to price it")
    px = _Prices(_doc(prices))
    model = df["model"].map(px.index).to_numpy()
    if np.isnan(model.astype(float)).any():
        raise ValueError("the log names a model the price table lacks")
    model = model.astype(np.int64)
    per_call = "call" in df.columns
    calls = df["calls"].to_numpy() if "calls" in df.columns else np.ones(len(df))
    summary = (df["kind"] == "summary").to_numpy() if "kind" in df.columns else np.zeros(len(df),
                                                                                        bool)
    if not per_call and np.any((calls > 1) & ~summary & np.isfinite(px.above[model])):
        raise ValueError("per-attempt rows of a model with long-context rates cannot be priced "
                         "exactly without cost_usd (which call crossed the threshold?)")
    inp = df["input_tokens"].to_numpy(float)
    cached = (df["cached_input_tokens"].fillna(0).to_numpy(float)
              if "cached_input_tokens" in df.columns else np.zeros(len(df)))
    return px.cost(model, inp, cached, df["output_tokens"].to_numpy(float))


def task_outcomes(df, prices=None) -> pd.DataFrame:
    """One row per (run, task_id) of a log: task_type, spend, completed, changes (the task's
    reviewer_changes, NA when none recorded) -- plain pandas, independent of costsim.calibrate.

    A task is completed when every phase it attempted has a successful attempt (an abandoned
    task stops at a phase that never succeeded)."""
    if not isinstance(df, pd.DataFrame):
        df = read_log(df)
    d = pd.DataFrame({"task_id": df["task_id"].astype(str), "task_type": df["task_type"],
                      "phase": df["phase"],
                      "run": df["run"].astype(str) if "run" in df.columns else "",
                      "cost": _row_costs(df, prices)})
    is_attempt = (df["kind"].fillna("attempt") != "summary") if "kind" in df.columns else \
        pd.Series(True, index=df.index)
    d["ok"] = _bool_col(df["success"]).fillna(False).astype(bool) & is_attempt
    keys = ["run", "task_id"]
    att = d[is_attempt.to_numpy()]
    phase_ok = att.groupby(keys + ["phase"], sort=False)["ok"].any()
    completed = phase_ok.groupby(level=[0, 1], sort=False).all()
    g = d.groupby(keys, sort=False)
    res = pd.DataFrame({"task_type": g["task_type"].first(), "spend": g["cost"].sum()})
    res["completed"] = completed.reindex(res.index).fillna(False).astype(bool)
    if "reviewer_changes" in df.columns:
        ch = pd.to_numeric(df["reviewer_changes"], errors="coerce")
        res["changes"] = ch.groupby([d["run"], d["task_id"]], sort=False).max() \
            .reindex(res.index).astype("Float64")
    else:
        res["changes"] = pd.array([pd.NA] * len(res), dtype="Float64")
    return res.reset_index()


def _metrics(t: pd.DataFrame) -> dict:
    n = len(t)
    spend = t["spend"].to_numpy(float)
    done = t["completed"].to_numpy(bool)
    C = done.mean() if n else math.nan
    E = spend.mean() if n else math.nan
    C, E = float(C), float(E)
    out = {"tasks": n, "completion_rate": C, "spend_per_task": E,
           "cost_per_completed_task": E / C if C > 0 else math.inf}
    out["completion_rate_se"] = math.sqrt(C * (1 - C) / n) if n else math.nan
    out["spend_per_task_se"] = float(spend.std(ddof=1)) / math.sqrt(n) if n > 1 else math.nan
    if C > 0 and n > 1:
        resid = spend - out["cost_per_completed_task"] * done
        out["cost_per_completed_task_se"] = float(resid.std(ddof=1)) / math.sqrt(n) / C
    else:
        out["cost_per_completed_task_se"] = math.nan
    ch = t.loc[done, "changes"]
    if len(ch) and ch.notna().any():
        d = float((ch.fillna(0) > 0).mean())
        out["defect_rate"] = d
        out["defect_rate_se"] = math.sqrt(d * (1 - d) / len(ch))
    else:
        out["defect_rate"] = out["defect_rate_se"] = None
    return out


def measure_log(df, prices=None) -> dict:
    """What a log shows, computed plainly from its rows (a DataFrame or a log file's path).

    ``tasks`` counts (run, task) pairs; ``spend_per_task`` is the mean of each task's summed row
    costs (``cost_usd``, else priced from ``prices``); ``completion_rate`` the share of tasks
    completed; ``cost_per_completed_task`` their ratio; ``defect_rate`` the share of completed
    tasks with ``reviewer_changes > 0`` (a completed task without a value counts as 0; None when
    the log has no reviewer_changes).  Each with a standard error (``*_se``; the ratio by the
    delta method).  ``by_task_type`` and ``by_run`` hold the same for each task type and run."""
    t = task_outcomes(df, prices)
    out = _metrics(t)
    out["by_task_type"] = {k: _metrics(g) for k, g in t.groupby("task_type", sort=True)}
    out["by_run"] = {k: _metrics(g) for k, g in t.groupby("run", sort=True)}
    return out


# --- simulate_truth ------------------------------------------------------------------------------

def simulate_truth(prices, workload, strategy, *, tasks: int = 400_000, seed: int = 0,
                   chunk: int = 100_000) -> dict:
    """Large-sample metrics of one strategy without building rows (token counts not rounded):
    spend_per_task, completion_rate, cost_per_completed_task, defect_rate, each with ``*_se``."""
    prices, workload, px, strats, infos, plans = _setup(prices, workload, [strategy])
    ss = np.random.SeedSequence(seed)
    sum_x = sum_x2 = sum_y = sum_xy = 0.0
    n_def = 0
    for ci, cs in enumerate(ss.spawn(math.ceil(tasks / chunk))):
        rng = np.random.default_rng(cs)
        n = min(chunk, tasks - ci * chunk)
        T = _draw_tasks(infos, n, rng, np.zeros(n, dtype=np.int64))
        spend = np.zeros(n)
        done = np.zeros(n, dtype=bool)
        ship = np.zeros(n, dtype=np.int64)
        for ti in range(len(infos)):
            idx = np.flatnonzero(T.type_ == ti)
            if idx.size:
                spend[idx], done[idx], ship[idx] = _play(plans[0][ti], px, idx, T.z[idx],
                                                         T.e[idx], T.combo[idx], rng, None, 0)
        sum_x += spend.sum()
        sum_x2 += (spend ** 2).sum()
        sum_y += done.sum()
        sum_xy += spend[done].sum()
        n_def += int((ship[done] > 0).sum())
    N = tasks
    E, C = float(sum_x) / N, float(sum_y) / N
    var_x = (sum_x2 - N * E * E) / (N - 1)
    R = E / C if C > 0 else math.inf
    # delta method for the ratio: Var(x - R y) = Var x - 2 R Cov(x, y) + R^2 Var y
    cov = (sum_xy - N * E * C) / (N - 1)
    var_y = C * (1 - C) * N / (N - 1)
    d = n_def / float(sum_y) if sum_y else 0.0
    return {
        "name": strats[0].name, "tasks": N,
        "spend_per_task": E, "spend_per_task_se": math.sqrt(var_x / N),
        "completion_rate": C, "completion_rate_se": math.sqrt(C * (1 - C) / N),
        "cost_per_completed_task": R,
        "cost_per_completed_task_se": (math.sqrt(max(0.0, var_x - 2 * R * cov + R * R * var_y) / N)
                                       / C if C > 0 else math.nan),
        "defect_rate": d,
        "defect_rate_se": math.sqrt(d * (1 - d) / sum_y) if sum_y else math.nan,
    }
