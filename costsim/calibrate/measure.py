"""Runs log -> measurements: spend per row, phase runs, tasks, and the summary tables
(per task type/phase/model, per route, per task type, overall, per ISO week)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..models import PriceTable

Z95 = 1.959963984540054


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


def _attempt_table(fr: _Frames):
    """successes and attempts per (task_type, phase, model, attempt index)."""
    df = fr.df
    g = df.groupby(["task_type", "phase", "model", "attempt"], observed=True, sort=True).agg(
        n=("success", "size"), k=("success", "sum")).reset_index()
    return g

