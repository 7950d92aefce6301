"""`costsim calibrate`: measure routing success from a runs log and recommend tier changes.

>>> import costsim.calibrate as cal
>>> result = cal.calibrate("runs.csv")                     # doctest: +SKIP
>>> result.overall["cost_per_completed_task"], result.recommendations[0]   # doctest: +SKIP

Decisions (also in the README):

- **Pricing a row** without ``cost_usd``: per-attempt token counts at the model's base rates —
  ``input_tokens`` at ``input``, ``cached_input_tokens`` at ``cache_read`` (the two are disjoint:
  ``input_tokens`` is the uncached part), ``output_tokens`` at ``output``. Long-context rates are
  not applied: a row is an attempt, possibly several calls, and the log does not say how its tokens
  split across calls. A row with ``cost_usd`` uses it as given.
- **Completed task** (SPEC §2.4): every phase the task ran ended in success, i.e. the row with the
  highest attempt index of each (task, phase) succeeded. A phase whose last row failed "ran out of
  attempts" (the agent gave up there, or the log stops there): the task is not completed.
- **Route** of a task: the sorted set of models it used, joined with ``+``.
- **Weeks**: ISO weeks (``2026-W07``) of each task's first timestamp.
- **Recommendations** look at the *route* of each (task type, phase): the model that makes the
  first attempt (from ``--policy`` if given, else the model the log shows most often there).
  *raise*: that model is below the top tier, has at least ``min_samples`` first attempts there
  and its first-attempt success is below ``raise_below``. *lower*: a cheaper-tier model started
  the same (task type, phase) at least ``min_samples`` times and its first-attempt success is
  within ``lower_max_gap`` of the route model's with overlapping Wilson 95% intervals (its
  results rarely differ); or, in the ``review`` phase, reviews by the route model led to
  reviewer changes in fewer than ``review_changes_below`` of at least ``min_samples`` tasks.
  A (task type, phase) gets at most one recommendation; when both rules fire, *raise* wins
  (quality first) and the suppressed *lower* is listed in ``notes``.
- **Projection**: the analytic engine (``compile_ladders`` + ``cell_stats``/``evaluate``) on the
  calibrated workload. A policy routes by phase, not by task type, so a change for one task type
  is evaluated as a per-task-type variant: the ladders of that (task type, phase) come from the
  changed route, every other slice from the current one (:func:`ladders_for_routes`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CostsimError
from .models import TIER_CLASSES, Policy, PriceTable, Workload

RESULT_VERSION = 1
Z95 = 1.959963984540054

DEFAULT_MIN_SAMPLES = 30
DEFAULT_RAISE_BELOW = 0.6
DEFAULT_LOWER_MAX_GAP = 0.05
DEFAULT_REVIEW_CHANGES_BELOW = 0.1


# --- statistics -----------------------------------------------------------------------------

def wilson(successes, n, z: float = Z95):
    """Wilson score interval (lo, hi) for arrays or scalars; (0, 1) where n == 0."""
    import numpy as np

    k = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(n > 0, k / n, 0.0)
        denom = 1.0 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
        lo = np.where(n > 0, np.clip(centre - half, 0.0, 1.0), 0.0)
        hi = np.where(n > 0, np.clip(centre + half, 0.0, 1.0), 1.0)
    if lo.ndim == 0:
        return float(lo), float(hi)
    return lo, hi


def _rate(k, n):
    return float(k) / float(n) if n else None


# --- result ---------------------------------------------------------------------------------

@dataclass
class CalibrationResult:
    log: str
    rows: int
    tasks: int
    prices: str
    prices_as_of: str
    baseline: str                       # the policy name, or "observed routes"
    by_model: list[dict]                # per (task_type, phase, model)
    by_route: list[dict]                # per (task_type, route)
    by_task_type: list[dict]
    overall: dict
    weekly: list[dict]
    recommendations: list[dict]
    workload: Workload                  # fitted from the log
    settings: dict
    tiers: dict[str, str]               # tier name -> model used for raise/lower
    fit: list[dict] = field(default_factory=list)   # measured vs engine on the fitted workload
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "version": RESULT_VERSION,
            "log": {"path": self.log, "rows": self.rows, "tasks": self.tasks},
            "prices": {"path": self.prices, "as_of": self.prices_as_of},
            "baseline": self.baseline,
            "tiers": dict(self.tiers),
            "settings": dict(self.settings),
            "overall": self.overall,
            "by_task_type": self.by_task_type,
            "by_model": self.by_model,
            "by_route": self.by_route,
            "weekly": self.weekly,
            "recommendations": self.recommendations,
            "fit": self.fit,
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        }

    def workload_dict(self) -> dict:
        return workload_to_dict(self.workload)

    def workload_yaml(self) -> str:
        return workload_yaml(self.workload, source=self.log)

    def write_workload(self, path: str | Path) -> None:
        from .fsutil import atomic_write

        atomic_write(path, self.workload_yaml())


# --- measurement ----------------------------------------------------------------------------

def _row_costs(log, table: PriceTable, prices_path: str):
    """Spend of every row: cost_usd where given, else priced (see module docstring)."""
    import numpy as np

    df = log.frame
    cats = list(df["model"].cat.categories)
    codes = df["model"].cat.codes.to_numpy()
    rate = np.full((len(cats), 3), np.nan)
    for i, m in enumerate(cats):
        mp = table.models.get(m)
        if mp is not None:
            rate[i] = (mp.input, mp.cache_read if mp.cache_read is not None else mp.input,
                       mp.output)
    given = df["cost_usd"].to_numpy(dtype=float)
    need = np.isnan(given)
    r = rate[codes]
    unpriced = need & np.isnan(r[:, 0])
    if unpriced.any():
        i = int(unpriced.argmax())
        raise log.locator.error(i, "model", f"'{cats[codes[i]]}' is not in the price table "
                                f"{prices_path} and the row has no cost_usd")
    priced = (df["input_tokens"].to_numpy() * r[:, 0]
              + df["cached_input_tokens"].to_numpy() * r[:, 1]
              + df["output_tokens"].to_numpy() * r[:, 2]) / 1_000_000.0
    return np.where(need, priced, given)


@dataclass
class _Frames:
    df: object            # rows (+ spend)
    runs: object          # one row per (task, phase): task, task_type, phase, start model, ...
    tasks: object         # one row per task
    phase_order: dict     # task_type -> [phase names in order]
    max_attempt: dict     # task_type -> max attempt index seen


def _frames(log, spend) -> _Frames:
    import numpy as np
    import pandas as pd

    df = log.frame
    df = df.assign(spend=spend)
    n = len(df)
    tcode = df["task_id"].cat.codes.to_numpy().astype(np.int64)
    pcode = df["phase"].cat.codes.to_numpy().astype(np.int64)
    mcode = df["model"].cat.codes.to_numpy().astype(np.int64)
    ttcode = df["task_type"].cat.codes.to_numpy().astype(np.int64)
    attempt = df["attempt"].to_numpy()
    success = df["success"].to_numpy()
    n_ph = len(df["phase"].cat.categories)
    n_task = len(df["task_id"].cat.categories)
    if log.has_timestamps:
        ts = df["timestamp"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        ts = np.where(df["timestamp"].isna().to_numpy(), np.iinfo(np.int64).max, ts)
    else:
        ts = None
    pos = np.arange(n, dtype=np.int64) if ts is None else ts

    # Phase runs: rows sorted by (task, phase, attempt).
    key = tcode * n_ph + pcode
    order = np.lexsort((attempt, key))
    ks = key[order]
    brk = np.empty(n, bool)
    brk[0] = True
    brk[1:] = ks[1:] != ks[:-1]
    starts = np.flatnonzero(brk)
    ends = np.r_[starts[1:], n] - 1
    first_i, last_i = order[starts], order[ends]
    big = np.iinfo(np.int64).max
    succ_at = np.minimum.reduceat(np.where(success[order], attempt[order], big), starts)
    first_pos = np.minimum.reduceat(pos[order], starts)
    # Within a run the rows are in attempt order, so the row position tie-breaks timestamps.
    runs = pd.DataFrame({
        "task": tcode[first_i], "task_type": ttcode[first_i], "phase": pcode[first_i],
        "start_model": mcode[first_i], "start_attempt": attempt[first_i],
        "attempts": np.diff(np.r_[starts, n]), "last_attempt": attempt[last_i],
        "last_success": success[last_i], "success_at": succ_at, "first_pos": first_pos,
        "first_row": np.minimum.reduceat(np.arange(n)[order], starts),
    })

    # Phase order within each task type: mean rank of a phase's first appearance in its tasks.
    ro = np.lexsort((runs["first_row"].to_numpy(), runs["first_pos"].to_numpy(),
                     runs["task"].to_numpy()))
    rt = runs["task"].to_numpy()[ro]
    tb = np.empty(len(ro), bool)
    tb[0] = True
    tb[1:] = rt[1:] != rt[:-1]
    tstart = np.maximum.accumulate(np.where(tb, np.arange(len(ro)), 0))
    rank = np.empty(len(ro), np.int64)
    rank[ro] = np.arange(len(ro)) - tstart
    runs["rank"] = rank
    tt_names = list(df["task_type"].cat.categories)
    ph_names = list(df["phase"].cat.categories)
    order_tab = (runs.groupby(["task_type", "phase"], sort=True)["rank"].mean()
                 .reset_index().sort_values(["task_type", "rank", "phase"]))
    phase_order: dict[str, list[str]] = {}
    for tt, ph in zip(order_tab["task_type"].to_numpy(), order_tab["phase"].to_numpy()):
        phase_order.setdefault(tt_names[tt], []).append(ph_names[ph])
    max_att = df.groupby("task_type", observed=True)["attempt"].max()
    max_attempt = {str(k): int(v) for k, v in max_att.items()}

    # Tasks.
    task_type = np.zeros(n_task, np.int64)
    task_type[tcode] = ttcode
    completed = np.ones(n_task, bool)
    np.logical_and.at(completed, runs["task"].to_numpy(), runs["last_success"].to_numpy())
    rc = df["reviewer_changes"].to_numpy(dtype=float)
    has_rc = ~np.isnan(rc)
    n_models = len(df["model"].cat.categories)
    pair = np.unique(tcode * n_models + mcode)
    if n_models <= 52:
        mask = np.bincount(pair // n_models, weights=np.exp2((pair % n_models).astype(float)),
                           minlength=n_task).astype(np.int64)
        uniq, inv = np.unique(mask, return_inverse=True)
        names = list(df["model"].cat.categories)
        labels = [" + ".join(names[b] for b in range(n_models) if (int(u) >> b) & 1) for u in uniq]
        route = pd.Categorical.from_codes(inv.astype(np.int64), categories=labels)
    else:  # more models than bits: join names per task (slower, still grouped)
        names = np.asarray(df["model"].cat.categories, dtype=object)
        pt = pd.DataFrame({"t": pair // n_models, "m": names[pair % n_models]})
        route = pt.groupby("t")["m"].agg(" + ".join).reindex(range(n_task)).to_numpy()
    tasks = pd.DataFrame({
        "task_type": pd.Categorical.from_codes(task_type, categories=tt_names),
        "route": route,
        "completed": completed,
        "spend": np.bincount(tcode, weights=df["spend"].to_numpy(), minlength=n_task),
        "attempts": np.bincount(tcode, minlength=n_task),
        "retries": np.bincount(tcode, weights=(attempt > 1).astype(float), minlength=n_task),
        "has_changes": np.bincount(tcode, weights=has_rc.astype(float), minlength=n_task) > 0,
        "changed": np.bincount(tcode, weights=np.where(has_rc, rc, 0.0), minlength=n_task) > 0,
    })
    if ts is not None:
        tmin = np.full(n_task, big)
        np.minimum.at(tmin, tcode, ts)
        first_ts = pd.to_datetime(np.where(tmin == big, np.iinfo(np.int64).min, tmin), utc=True)
        tasks["first_ts"] = first_ts
    return _Frames(df=df, runs=runs, tasks=tasks, phase_order=phase_order,
                   max_attempt=max_attempt)


def _summarise_tasks(tasks, keys: list[str]) -> list[dict]:
    """tasks, completion, cost per completed task, retries, reviewer-change rate per group."""
    t = tasks.assign(changed_n=tasks["has_changes"] & tasks["changed"])
    cols = dict(tasks=("completed", "size"), completed=("completed", "sum"),
                spend=("spend", "sum"), attempts=("attempts", "sum"),
                retries=("retries", "sum"), reviewed=("has_changes", "sum"),
                changed=("changed_n", "sum"))
    if keys:
        g = t.groupby(keys, observed=True, sort=True).agg(**cols).reset_index()
    else:
        g = _agg_all(t)
    n = g["tasks"].to_numpy(dtype=float)
    c = g["completed"].to_numpy(dtype=float)
    lo, hi = wilson(c, n)
    rv = g["reviewed"].to_numpy(dtype=float)
    ch = g["changed"].to_numpy(dtype=float)
    rlo, rhi = wilson(ch, rv)
    out = []
    for i in range(len(g)):
        row = {k: (str(g[k].iloc[i])) for k in keys}
        spend = float(g["spend"].iloc[i])
        row.update({
            "tasks": int(n[i]), "completed": int(c[i]),
            "completion_rate": c[i] / n[i], "completion_ci95": [float(lo[i]), float(hi[i])],
            "spend": spend, "spend_per_task": spend / n[i],
            "cost_per_completed_task": spend / c[i] if c[i] > 0 else math.inf,
            "attempts_per_task": float(g["attempts"].iloc[i]) / n[i],
            "retries_per_task": float(g["retries"].iloc[i]) / n[i],
            "reviewed_tasks": int(rv[i]),
            "reviewer_change_rate": ch[i] / rv[i] if rv[i] > 0 else None,
            "reviewer_change_ci95": [float(rlo[i]), float(rhi[i])] if rv[i] > 0 else None,
        })
        out.append(row)
    return out


def _agg_all(t):
    import pandas as pd

    return pd.DataFrame([{
        "tasks": len(t), "completed": int(t["completed"].sum()), "spend": float(t["spend"].sum()),
        "attempts": int(t["attempts"].sum()), "retries": float(t["retries"].sum()),
        "reviewed": int(t["has_changes"].sum()), "changed": int(t["changed_n"].sum())}])


def _by_model(fr: _Frames) -> tuple[list[dict], object]:
    import numpy as np

    df = fr.df
    a1 = df["attempt"].to_numpy() == 1
    ok = df["success"].to_numpy()
    d = df[["task_type", "phase", "model", "input_tokens", "cached_input_tokens",
            "output_tokens", "spend"]].assign(first=a1, first_ok=ok & a1, retry=~a1,
                                              retry_ok=ok & ~a1, ok=ok)
    g = d.groupby(["task_type", "phase", "model"], observed=True, sort=True).agg(
        attempts=("ok", "size"), successes=("ok", "sum"),
        first_attempts=("first", "sum"), first_successes=("first_ok", "sum"),
        retry_attempts=("retry", "sum"), retry_successes=("retry_ok", "sum"),
        mean_input_tokens=("input_tokens", "mean"),
        mean_cached_input_tokens=("cached_input_tokens", "mean"),
        mean_output_tokens=("output_tokens", "mean"), spend=("spend", "sum")).reset_index()

    # pass_rate_by_attempt: of the phase runs this model started, the share that had succeeded
    # by attempt k (Aider's pass_rate_1, pass_rate_2, ...).
    runs = fr.runs
    K = int(max(fr.max_attempt.values()))
    sa = np.minimum(runs["success_at"].to_numpy(), K + 1)
    r = runs[["task_type", "phase", "start_model"]].assign(sa=sa)
    counts = r.groupby(["task_type", "phase", "start_model", "sa"]).size().unstack(fill_value=0)
    counts = counts.reindex(columns=range(1, K + 2), fill_value=0)
    cum = counts.cumsum(axis=1)
    total = cum[K + 1]
    tt_names = list(df["task_type"].cat.categories)
    ph_names = list(df["phase"].cat.categories)
    m_names = list(df["model"].cat.categories)
    pass_rates = {}
    run_counts = {}
    for (tt, ph, m), row, tot in zip(cum.index, cum.to_numpy(), total.to_numpy()):
        key = (tt_names[tt], ph_names[ph], m_names[m])
        pass_rates[key] = [float(v) / tot for v in row[:K]]
        run_counts[key] = int(tot)

    flo, fhi = wilson(g["first_successes"], g["first_attempts"])
    rlo, rhi = wilson(g["retry_successes"], g["retry_attempts"])
    rows = []
    for i, rec in enumerate(g.to_dict("records")):
        key = (str(rec["task_type"]), str(rec["phase"]), str(rec["model"]))
        fa, fs = int(rec["first_attempts"]), int(rec["first_successes"])
        ra, rs = int(rec["retry_attempts"]), int(rec["retry_successes"])
        rows.append({
            "task_type": key[0], "phase": key[1], "model": key[2],
            "attempts": int(rec["attempts"]), "successes": int(rec["successes"]),
            "first_attempts": fa, "first_attempt_success": _rate(fs, fa),
            "first_attempt_ci95": [float(flo[i]), float(fhi[i])] if fa else None,
            "retry_attempts": ra, "retry_success": _rate(rs, ra),
            "retry_ci95": [float(rlo[i]), float(rhi[i])] if ra else None,
            "phase_runs_started": run_counts.get(key, 0),
            "pass_rate_by_attempt": pass_rates.get(key),
            "mean_input_tokens": float(rec["mean_input_tokens"]),
            "mean_cached_input_tokens": float(rec["mean_cached_input_tokens"]),
            "mean_output_tokens": float(rec["mean_output_tokens"]),
            "spend": float(rec["spend"]), "spend_per_attempt": float(rec["spend"]) / rec["attempts"],
        })
    return rows, g


def _weekly(fr: _Frames) -> list[dict]:
    t = fr.tasks
    if "first_ts" not in t.columns:
        return []
    t = t[t["first_ts"].notna()]
    if t.empty:
        return []
    iso = t["first_ts"].dt.isocalendar()
    week = iso["year"].astype("int64") * 100 + iso["week"].astype("int64")
    rows = _summarise_tasks(t.assign(week=week.to_numpy()), ["week"])
    for r in rows:
        w = int(r["week"])
        r["week"] = f"{w // 100}-W{w % 100:02d}"
    return rows


# --- the fitted workload --------------------------------------------------------------------

def _attempt_table(fr: _Frames):
    """successes and attempts per (task_type, phase, model, attempt index)."""
    df = fr.df
    g = df.groupby(["task_type", "phase", "model", "attempt"], observed=True, sort=True).agg(
        n=("success", "size"), k=("success", "sum")).reset_index()
    return g


def fit_workload(fr: _Frames, by_model_frame, table: PriceTable, log_path: str, *,
                 base: Workload | None = None, log=None) -> tuple[Workload, list[str]]:
    """A workload that replays the log (SPEC §2.3); see the README for every choice."""
    warnings: list[str] = []
    att = _attempt_table(fr)
    tasks = fr.tasks
    n_tasks = len(tasks)
    share = tasks["task_type"].value_counts(sort=False)
    system = base.system_tokens if base is not None else 0
    handoff = base.handoff if base is not None else None
    summary = handoff is not None and handoff.mode == "summary"

    # success lists: per (task_type, phase, model), p at attempt 1..K (missing leading indices
    # take the first observed value; the engine repeats the last one).
    succ: dict[tuple[str, str], dict[str, list[float]]] = {}
    unknown: set[str] = set()
    for (tt, ph, m), grp in att.groupby(["task_type", "phase", "model"], observed=True,
                                        sort=True):
        m = str(m)
        if m not in table.models:
            unknown.add(m)
            continue
        a = grp["attempt"].to_numpy()
        p = grp["k"].to_numpy() / grp["n"].to_numpy()
        K = int(a.max())
        seq = [None] * K
        for ai, pi in zip(a, p):
            seq[int(ai) - 1] = round(float(pi), 6)
        first = next(v for v in seq if v is not None)
        out = []
        for v in seq:
            out.append(first if v is None and not out else (out[-1] if v is None else v))
        succ.setdefault((str(tt), str(ph)), {})[m] = out
    if unknown:
        warnings.append("the fitted workload has no success entries for models missing from the "
                        "price table: " + ", ".join(sorted(unknown)))

    # difficulty fallback from first attempts of models with a coding_score (§3.3 inverted).
    bm = by_model_frame
    diff: dict[tuple[str, str], float] = {}
    for (tt, ph), grp in bm.groupby(["task_type", "phase"], observed=True, sort=True):
        num = den = 0.0
        for m, fa, fs in zip(grp["model"], grp["first_attempts"], grp["first_successes"]):
            mp = table.models.get(str(m))
            if mp is None or mp.coding_score is None or fa == 0:
                continue
            p1 = min(max(fs / fa, 0.01), 0.99)
            num += fa * (mp.coding_score - 10.0 * math.log(p1 / (1 - p1)))
            den += fa
        if den:
            diff[(str(tt), str(ph))] = round(num / den, 3)
    # feedback gain: pooled retry success vs pooled first-attempt success.
    fa = float(bm["first_attempts"].sum())
    fs = float(bm["first_successes"].sum())
    ra = float(bm["retry_attempts"].sum())
    rs = float(bm["retry_successes"].sum())
    gain = 0.0
    if fa and ra and fs < fa:
        p1, pr = fs / fa, rs / ra
        gain = min(max((pr - p1) / (1 - p1), 0.0), 1.0)

    # tokens: attempt-1 rows. calls: 1 (the log counts attempts, not calls). The engine adds the
    # earlier phases' transcript (full history) or the summary and system_tokens to every call,
    # so input_tokens is what is left of the observed attempt input after that context.
    first_rows = fr.df[fr.df["attempt"] == 1]
    tok = first_rows.groupby(["task_type", "phase"], observed=True, sort=True).agg(
        inp=("input_tokens", "mean"), cached=("cached_input_tokens", "mean"),
        out=("output_tokens", "mean"), n=("attempt", "size"))
    all_tok = fr.df.groupby(["task_type", "phase"], observed=True, sort=True).agg(
        inp=("input_tokens", "mean"), cached=("cached_input_tokens", "mean"),
        out=("output_tokens", "mean"), n=("attempt", "size"))
    task_types = []
    cached_sum = ctx_sum = 0.0
    for tt in share.index:
        tt = str(tt)
        phases = []
        prior = 0.0
        for i, ph in enumerate(fr.phase_order[tt]):
            src = tok if (tt, ph) in tok.index else all_tok
            row = src.loc[(tt, ph)]
            x = float(row["inp"] + row["cached"])
            ctx = system + ((base.handoff.summary_tokens if i > 0 else 0) if summary else prior)
            new_in = int(round(max(0.0, x - ctx)))
            out = int(round(float(row["out"])))
            cached_sum += float(row["cached"]) * float(row["n"])
            ctx_sum += ctx * float(row["n"])
            entry: dict = {"phase": ph, "calls": 1, "input_tokens": new_in, "output_tokens": out}
            d = diff.get((tt, ph))
            if d is None and base is not None:
                d = _base_difficulty(base, tt, ph)
            if d is not None:
                entry["difficulty"] = d
            s = succ.get((tt, ph))
            if s:
                entry["success"] = s
            phases.append(entry)
            prior += new_in + out
        tdict = {"name": tt, "share": float(share[tt]) / n_tasks, "phases": phases,
                 "max_attempts": int(fr.max_attempt[tt])}
        task_types.append(tdict)

    if base is not None:
        hit = base.cache_hit_rate
    else:
        hit = min(max(cached_sum / ctx_sum, 0.0), 1.0) if ctx_sum > 0 else 0.0
    tpm = n_tasks
    if log is not None and log.has_timestamps and "first_ts" in tasks.columns:
        ts = tasks["first_ts"].dropna()
        span_days = (ts.max() - ts.min()).total_seconds() / 86400.0 if len(ts) > 1 else 0.0
        if span_days >= 7:
            tpm = int(round(len(ts) / span_days * 30.4375))
    data: dict = {
        "version": 1,
        "name": f"calibrated-{Path(log_path).name.split('.')[0]}",
        "description": f"Fitted by `costsim calibrate` from {Path(log_path).name}: "
                       f"{n_tasks} tasks, {len(fr.df)} attempts.",
        "tasks_per_month": max(1, tpm),
        "max_attempts": int(max(fr.max_attempt.values())),
        "system_tokens": int(system),
        "cache_hit_rate": round(float(hit), 6),
        "feedback_gain": round(float(gain), 6),
        "task_types": task_types,
    }
    if base is not None:
        data["handoff"] = base.handoff.model_dump(exclude_none=True)
        if base.defects is not None:
            data["defects"] = base.defects.model_dump()
    else:
        data["handoff"] = {"mode": "full_history"}
    from .loader import check_workload_against

    wl = _validate_workload(data)
    check_workload_against(wl, table)
    return wl, warnings


def _base_difficulty(base: Workload, tt: str, ph: str) -> float | None:
    for t in base.task_types:
        if t.name == tt:
            for p in t.phases:
                if p.phase == ph:
                    return p.difficulty
    return None


def _validate_workload(data: dict) -> Workload:
    from .loader import _validate  # the same strict validation the loader applies
    from .yamlio import Document

    return _validate(Document(data=data, file="<calibrated workload>"), Workload)


def workload_to_dict(wl: Workload) -> dict:
    d = wl.model_dump(exclude_none=True, exclude_defaults=False, by_alias=True)
    if not d.get("signals"):
        d.pop("signals", None)
    for t in d["task_types"]:
        for k in ("signals", "defects"):
            if t.get(k) in (None, {}):
                t.pop(k, None)
    return d


def workload_yaml(wl: Workload, source: str | None = None) -> str:
    import yaml

    head = ("# Workload fitted by `costsim calibrate`"
            + (f" from {source}" if source else "") + ".\n"
            "# calls: 1 per attempt (the log records attempts, not calls); input_tokens = mean\n"
            "# attempt-1 input (cached included) minus the context the engine adds itself;\n"
            "# success: observed success rate by model id and attempt index.\n")
    return head + yaml.safe_dump(workload_to_dict(wl), sort_keys=False, width=100)


# --- routes, ladders and projections --------------------------------------------------------

def _has_success_info(table: PriceTable, ph, model: str) -> bool:
    mp = table.models[model]
    if ph.success and (model in ph.success or mp.tier in ph.success):
        return True
    return ph.difficulty is not None and mp.coding_score is not None


def ladders_for_routes(table: PriceTable, wl: Workload, routes: dict[tuple[str, str], list[str]]):
    """Ladders where (task type, phase) uses ``routes[(task_type, phase)][k-1]`` at attempt k
    (the last entry repeats).

    Built from ``compile_ladders(single:M)`` for every model M named: an attempt's cost, success,
    tokens, defect and catch rates depend only on the model, the phase and the attempt index
    (SPEC §3.2–3.3), so each (cell, phase, attempt) slice is copied from M's ladder. This lets a
    route differ per task type, which a policy (routes by phase) cannot express.
    """
    from .engine.compile import Rates, Strategy, compile_ladders

    models = sorted({m for seq in routes.values() for m in seq})
    for (tt, ph_name), seq in routes.items():
        t = next(t for t in wl.task_types if t.name == tt)
        ph = next(p for p in t.phases if p.phase == ph_name)
        for m in dict.fromkeys(seq):
            if m not in table.models:
                raise CostsimError(f"unknown model '{m}' (not in the price table)",
                                   path=f"{tt}/{ph_name}")
            if not _has_success_info(table, ph, m):
                raise CostsimError(f"cannot tell how often '{m}' succeeds on {tt}/{ph_name}: "
                                   f"the log has no attempts by it there and the price table "
                                   f"gives it no coding_score")
    # Compile each model on a copy of the workload where phases that lack data for it get a
    # placeholder p (never read: those slices are taken from another model's ladder).
    singles = {}
    for m in models:
        w2 = wl.model_copy(deep=True)
        for t in w2.task_types:
            for ph in t.phases:
                if not _has_success_info(table, ph, m):
                    ph.success = dict(ph.success or {})
                    ph.success[m] = 0.5
        singles[m] = compile_ladders(table, Strategy.single(m), w2)
    base = singles[models[0]]
    idx = {m: i for i, m in enumerate(models)}
    arrays = {k: getattr(base, k).copy() for k in ("model", "cost", "p", "summ_cost", "defect",
                                                   "catch", "tokens", "summ_tokens")}
    for c, cell in enumerate(base.cells):
        t = wl.task_types[cell.task]
        Kt = t.max_attempts or wl.max_attempts
        for i, ph in enumerate(t.phases):
            seq = routes[(t.name, ph.phase)]
            for k in range(Kt):
                m = seq[min(k, len(seq) - 1)]
                S = singles[m]
                arrays["model"][c, i, k] = idx[m]
                for name in ("cost", "p", "summ_cost", "defect", "tokens", "summ_tokens"):
                    arrays[name][c, i, k] = getattr(S, name)[c, i, k]
                if ph.phase == "review":
                    arrays["catch"][c, k] = S.catch[c, k]
    from dataclasses import replace

    rates = Rates.from_table(table, models)
    L = replace(base, strategy=Strategy(name="calibrated routes", kind="routed"), rates=rates,
                summ_model=-1, **arrays)
    return L


def _metrics(L) -> dict:
    """Workload-wide and per-task-type E, C, cost per completed task, defects (SPEC §3.4)."""
    import numpy as np

    from .engine.analytic import cell_stats

    s = cell_stats(L)
    w = L.weight
    out = {}
    task = np.array([c.task for c in L.cells])

    def pack(mask):
        ww = w[mask]
        tot = ww.sum()
        E = float(ww @ s.E[mask]) / tot
        C = float(ww @ s.C[mask]) / tot
        D = float(ww @ (s.C * s.defect)[mask]) / (C * tot) if C > 0 else 0.0
        return {"spend_per_task": E, "completion_rate": C,
                "cost_per_completed_task": E / C if C > 0 else math.inf, "defect_rate": D}

    out["workload"] = pack(np.ones(len(w), bool))
    for ti, t in enumerate(L.workload.task_types):
        out[t.name] = pack(task == ti)
    return out


def _delta(before: dict, after: dict) -> dict:
    b, a = before["cost_per_completed_task"], after["cost_per_completed_task"]
    d = a - b if math.isfinite(a) and math.isfinite(b) else None
    return {
        "cost_per_completed_task_before": b, "cost_per_completed_task_after": a,
        "delta": d, "delta_pct": (d / b if d is not None and b > 0 else None),
        "completion_rate_before": before["completion_rate"],
        "completion_rate_after": after["completion_rate"],
        "spend_per_task_before": before["spend_per_task"],
        "spend_per_task_after": after["spend_per_task"],
        "defect_rate_before": before["defect_rate"], "defect_rate_after": after["defect_rate"],
    }


def _tier_index(table: PriceTable, model: str) -> int | None:
    mp = table.models.get(model)
    return TIER_CLASSES.index(mp.tier) if mp is not None else None


def _blended(table: PriceTable, model: str) -> float:
    mp = table.models[model]
    return mp.input + mp.output


# --- the API --------------------------------------------------------------------------------

def calibrate(log_path: str | Path, *, prices=None, policies=None, workload=None,
              min_samples: int = DEFAULT_MIN_SAMPLES, raise_below: float = DEFAULT_RAISE_BELOW,
              lower_max_gap: float = DEFAULT_LOWER_MAX_GAP,
              review_changes_below: float = DEFAULT_REVIEW_CHANGES_BELOW) -> CalibrationResult:
    """Measure a runs log (SPEC §2.4), fit a workload and recommend tier changes.

    ``prices``: path, PriceTable or None (the default table); ``policies``: None (infer the
    routes from the log) or one policy (path or Policy) the team ran; ``workload``: None or a
    workload whose system_tokens, cache_hit_rate, handoff and defects the fitted workload keeps.
    """
    from . import paths
    from .api import _as_prices
    from .loader import load_policy, load_workload
    from .logs.runslog import read_log

    if min_samples < 1:
        raise CostsimError("must be at least 1", path="--min-samples")
    for name, v in (("--raise-below", raise_below), ("--lower-max-gap", lower_max_gap),
                    ("--review-changes-below", review_changes_below)):
        if not 0.0 <= v <= 1.0:
            raise CostsimError(f"must be between 0 and 1, got {v}", path=name)
    table, prices_path = _as_prices(prices)
    policy: Policy | None = None
    if policies:
        pols = [policies] if isinstance(policies, (str, Path, Policy)) else list(policies)
        if len(pols) > 1:
            raise CostsimError("give one policy: the routing policy the log was produced with",
                               path="--policy")
        policy = pols[0] if isinstance(pols[0], Policy) else load_policy(pols[0])
    base = None
    if workload is not None:
        base = workload if isinstance(workload, Workload) else load_workload(
            paths.resolve_workload_path(workload))

    log = read_log(log_path)
    spend = _row_costs(log, table, prices_path)
    fr = _frames(log, spend)
    by_model, bm = _by_model(fr)
    by_route = _summarise_tasks(fr.tasks, ["task_type", "route"])
    by_task_type = _summarise_tasks(fr.tasks, ["task_type"])
    overall = _summarise_tasks(fr.tasks, [])[0]
    overall["rows"] = len(fr.df)
    weekly = _weekly(fr)
    wl, warnings = fit_workload(fr, bm, table, str(log_path), base=base, log=log)
    if log.has_cost and log.frame["cost_usd"].isna().any():
        warnings.append("some rows have no cost_usd: those were priced from the price table")

    settings = {"min_samples": min_samples, "raise_below": raise_below,
                "lower_max_gap": lower_max_gap, "review_changes_below": review_changes_below}
    recs, notes, tiers, baseline, engine = _recommend(fr, by_model, table, wl, policy, settings)
    fit = _fit_check(engine, overall, by_task_type)
    return CalibrationResult(
        log=str(log_path), rows=len(fr.df), tasks=len(fr.tasks), prices=prices_path,
        prices_as_of=str(table.as_of), baseline=baseline, by_model=by_model,
        by_route=by_route, by_task_type=by_task_type, overall=overall, weekly=weekly,
        recommendations=recs, workload=wl, settings=settings, tiers=tiers, fit=fit,
        notes=notes, warnings=warnings)


def _fit_check(engine: dict | None, overall: dict, by_task_type: list[dict]) -> list[dict]:
    """Measured vs the engine on the fitted workload with the current routes: how well the
    calibrated workload replays the log (token growth on retries is the engine's, §3.2)."""
    if engine is None:
        return []
    rows = []
    for name, r in [("all tasks", overall)] + [(t["task_type"], t) for t in by_task_type]:
        e = engine["workload" if name == "all tasks" else name]
        rows.append({"scope": name,
                     "measured_completion_rate": r["completion_rate"],
                     "engine_completion_rate": e["completion_rate"],
                     "measured_cost_per_completed_task": r["cost_per_completed_task"],
                     "engine_cost_per_completed_task": e["cost_per_completed_task"]})
    return rows


def _observed_routes(fr: _Frames, wl: Workload) -> dict[tuple[str, str], list[str]]:
    """Per (task type, phase): the model seen most often at each attempt index."""
    att = _attempt_table(fr)
    att = att.sort_values(["task_type", "phase", "attempt", "n", "model"],
                          ascending=[True, True, True, False, True])
    top = att.drop_duplicates(["task_type", "phase", "attempt"], keep="first")
    routes: dict[tuple[str, str], list[str]] = {}
    for tt, ph, a, m in zip(top["task_type"], top["phase"], top["attempt"], top["model"]):
        seq = routes.setdefault((str(tt), str(ph)), [])
        while len(seq) < int(a) - 1:          # an attempt index nobody reached: repeat
            seq.append(seq[-1] if seq else str(m))
        seq.append(str(m))
    return {(t.name, ph.phase): routes[(t.name, ph.phase)] for t in wl.task_types
            for ph in t.phases}


def _policy_routes(policy: Policy, wl: Workload) -> dict[tuple[str, str], list[str]]:
    from .engine.compile import start_tier, tier_of_attempt

    tiers = list(policy.tiers.values())
    last = len(tiers) - 1
    out = {}
    for t in wl.task_types:
        Kt = t.max_attempts or wl.max_attempts
        for ph in t.phases:
            start = start_tier(policy, ph.phase, ())
            out[(t.name, ph.phase)] = [
                tiers[tier_of_attempt(start, k, policy.escalation.after_failures, last)]
                for k in range(1, Kt + 1)]
    return out


def _inferred_tiers(fr: _Frames, table: PriceTable) -> dict[str, str]:
    """Tier class -> the model of that class with the most attempts in the log."""
    counts = fr.df["model"].value_counts()
    out: dict[str, str] = {}
    for cls in TIER_CLASSES:
        best = None
        for m, n in counts.items():
            mp = table.models.get(str(m))
            if mp is not None and mp.tier == cls and n > 0:
                if best is None or n > best[1] or (n == best[1] and str(m) < best[0]):
                    best = (str(m), n)
        if best:
            out[cls] = best[0]
    return out


def _recommend(fr: _Frames, by_model: list[dict], table: PriceTable, wl: Workload,
               policy: Policy | None, settings: dict):
    from .loader import check_policy_against

    notes: list[str] = []
    if policy is not None:
        check_policy_against(policy, table, wl)
        base_routes = _policy_routes(policy, wl)
        tiers = dict(policy.tiers)
        baseline = f"policy {policy.name}"
    else:
        base_routes = _observed_routes(fr, wl)
        tiers = _inferred_tiers(fr, table)
        baseline = "observed routes"
    tier_names = list(tiers)
    tier_models = list(tiers.values())
    stats = {(r["task_type"], r["phase"], r["model"]): r for r in by_model}
    n_min = settings["min_samples"]

    def tier_pos(model: str) -> int | None:
        if policy is not None:
            return tier_models.index(model) if model in tier_models else None
        ti = _tier_index(table, model)
        if ti is None:
            return None
        classes = [TIER_CLASSES.index(c) for c in tier_names]
        # position of the model's class among the classes present
        return classes.index(ti) if ti in classes else None

    # reviewer changes of tasks whose review phase started with model M
    review_changes = _review_changes(fr)

    try:
        before_L = ladders_for_routes(table, wl, base_routes)
        before = _metrics(before_L)
    except CostsimError as exc:
        notes.append(f"no projections: the current routes cannot be evaluated ({exc})")
        before = None

    recs = []
    for t in wl.task_types:
        for ph in t.phases:
            key = (t.name, ph.phase)
            route = base_routes[key]
            M = route[0]
            pos = tier_pos(M)
            if pos is None:
                continue
            s = stats.get((t.name, ph.phase, M))
            raise_rec = lower_rec = None
            # raise: the route model reworks often
            if (s and pos < len(tier_models) - 1 and s["first_attempts"] >= n_min
                    and s["first_attempt_success"] < settings["raise_below"]):
                to = tier_models[pos + 1]
                raise_rec = {
                    "action": "raise", "task_type": t.name, "phase": ph.phase,
                    "from_model": M, "to_model": to,
                    "from_tier": tier_names[pos], "to_tier": tier_names[pos + 1],
                    "reason": (f"{M} succeeds at the first attempt in {s['first_attempt_success']:.0%}"
                               f" of {s['first_attempts']} {t.name}/{ph.phase} attempts "
                               f"(threshold {settings['raise_below']:.0%})"),
                    "evidence": _evidence_route(s, stats.get((t.name, ph.phase, to)), to),
                }
            # lower (a): a cheaper model does as well on the same work
            if s and pos > 0 and s["first_attempts"] >= n_min:
                cands = []
                for (tt2, ph2, m), r in stats.items():
                    if tt2 != t.name or ph2 != ph.phase or m == M:
                        continue
                    ti, tM = _tier_index(table, m), _tier_index(table, M)
                    if ti is None or tM is None or ti >= tM or r["first_attempts"] < n_min:
                        continue
                    gap = s["first_attempt_success"] - r["first_attempt_success"]
                    if gap <= settings["lower_max_gap"] and \
                            r["first_attempt_ci95"][1] >= s["first_attempt_ci95"][0]:
                        cands.append((ti, _blended(table, m), m, r, gap))
                if cands:
                    # The cheapest tier step down that holds up: nearest class first, then price.
                    cands.sort(key=lambda c: (-c[0], c[1], c[2]))
                    ti, _, m, r, gap = cands[0]
                    lower_rec = {
                        "action": "lower", "task_type": t.name, "phase": ph.phase,
                        "from_model": M, "to_model": m,
                        "from_tier": table.models[M].tier, "to_tier": table.models[m].tier,
                        "reason": (f"{m} succeeds at the first attempt in "
                                   f"{r['first_attempt_success']:.0%} of {r['first_attempts']} "
                                   f"attempts vs {s['first_attempt_success']:.0%} of "
                                   f"{s['first_attempts']} for {M} (gap {gap:+.1%}, "
                                   f"intervals overlap)"),
                        "evidence": _evidence_pair(s, r, gap, settings["lower_max_gap"]),
                    }
            # lower (b): premium reviews rarely lead to changes
            if lower_rec is None and pos > 0 and ph.phase == "review":
                rc = review_changes.get((t.name, M))
                if rc and rc[0] >= n_min and rc[1] / rc[0] < settings["review_changes_below"]:
                    to = tier_models[pos - 1]
                    lo, hi = wilson(rc[1], rc[0])
                    lower_rec = {
                        "action": "lower", "task_type": t.name, "phase": ph.phase,
                        "from_model": M, "to_model": to,
                        "from_tier": tier_names[pos], "to_tier": tier_names[pos - 1],
                        "reason": (f"reviews by {M} led to reviewer changes in "
                                   f"{rc[1] / rc[0]:.0%} of {rc[0]} tasks (threshold "
                                   f"{settings['review_changes_below']:.0%})"),
                        "evidence": {"counts": {"reviewed_tasks": rc[0], "changed": rc[1]},
                                     "rates": {"reviewer_change_rate": rc[1] / rc[0]},
                                     "ci95": {"reviewer_change_rate": [lo, hi]},
                                     "rule": "review_changes_below"},
                    }
            rec = raise_rec or lower_rec
            if raise_rec and lower_rec:
                notes.append(f"{t.name}/{ph.phase}: a 'lower' to {lower_rec['to_model']} was "
                             f"suppressed because the route also qualifies for 'raise'")
            if rec is None:
                continue
            rec["projected"] = _project(table, wl, policy, base_routes, before, rec, notes)
            recs.append(rec)
    return recs, notes, tiers, baseline, before


def _review_changes(fr: _Frames) -> dict[tuple[str, str], tuple[int, int]]:
    """(task type, model that started the review phase) -> (tasks with a reviewer_changes
    value, tasks with changes > 0)."""
    df = fr.df
    ph_names = list(df["phase"].cat.categories)
    if "review" not in ph_names:
        return {}
    runs = fr.runs
    r = runs[runs["phase"] == ph_names.index("review")]
    tasks = fr.tasks
    t = tasks.iloc[r["task"].to_numpy()]
    sel = t["has_changes"].to_numpy()
    g = (r.assign(changed=t["changed"].to_numpy())[sel]
         .groupby(["task_type", "start_model"]).agg(n=("changed", "size"),
                                                    k=("changed", "sum")))
    tt_names = list(df["task_type"].cat.categories)
    m_names = list(df["model"].cat.categories)
    return {(tt_names[a], m_names[b]): (int(n), int(k))
            for (a, b), n, k in zip(g.index, g["n"], g["k"])}


def _evidence_route(s: dict, to: dict | None, to_model: str) -> dict:
    ev = {
        "counts": {"first_attempts": s["first_attempts"], "retry_attempts": s["retry_attempts"],
                   "phase_runs": s["phase_runs_started"]},
        "rates": {"first_attempt_success": s["first_attempt_success"],
                  "retry_success": s["retry_success"]},
        "ci95": {"first_attempt_success": s["first_attempt_ci95"],
                 "retry_success": s["retry_ci95"]},
        "rule": "raise_below",
    }
    if to is not None and to["first_attempts"]:
        ev["to_model"] = {"model": to_model, "first_attempts": to["first_attempts"],
                          "first_attempt_success": to["first_attempt_success"],
                          "ci95": to["first_attempt_ci95"]}
    return ev


def _evidence_pair(s: dict, r: dict, gap: float, max_gap: float) -> dict:
    return {
        "counts": {"from_first_attempts": s["first_attempts"],
                   "to_first_attempts": r["first_attempts"]},
        "rates": {"from_first_attempt_success": s["first_attempt_success"],
                  "to_first_attempt_success": r["first_attempt_success"],
                  "from_retry_success": s["retry_success"], "to_retry_success": r["retry_success"],
                  "gap": gap, "max_gap": max_gap},
        "ci95": {"from_first_attempt_success": s["first_attempt_ci95"],
                 "to_first_attempt_success": r["first_attempt_ci95"]},
        "rule": "lower_max_gap",
    }


def _project(table, wl, policy, base_routes, before, rec, notes) -> dict | None:
    key = (rec["task_type"], rec["phase"])
    routes = dict(base_routes)
    if policy is not None:
        changed = policy.model_copy(deep=True)
        changed.routes = dict(changed.routes)
        changed.routes[rec["phase"]] = rec["to_tier"]
        routes[key] = _policy_routes(changed, wl)[key]
        how = (f"policy {policy.name} with routes.{rec['phase']}: {rec['to_tier']}, applied to "
               f"task type {rec['task_type']} only")
    else:
        routes[key] = [rec["to_model"] if m == rec["from_model"] else m for m in routes[key]]
        how = f"{rec['from_model']} replaced by {rec['to_model']} on {key[0]}/{key[1]}"
    if before is None:
        return None
    try:
        after = _metrics(ladders_for_routes(table, wl, routes))
    except CostsimError as exc:
        notes.append(f"{key[0]}/{key[1]}: no projection ({exc})")
        return None
    out = _delta(before[rec["task_type"]], after[rec["task_type"]])
    out["scope"] = f"task type {rec['task_type']}"
    out["route_after"] = routes[key]
    out["route_before"] = base_routes[key]
    out["change"] = how
    out["workload"] = _delta(before["workload"], after["workload"])
    out["monthly_spend_delta"] = wl.monthly_tasks * (
        after["workload"]["spend_per_task"] - before["workload"]["spend_per_task"])
    return out
