"""Per-attempt records of a runs log, for the replay engine.

The replay needs, for every recorded attempt (and every summarizer call), who made it, whether it
succeeded and what it cost: the rows of one attempt (per-call logs) are added up. This module
reads only the columns that needs.

Interim: it parses the log with the column readers of :mod:`costsim.logs.runslog`, extended
with the revised format's ``run``, ``kind``, ``call``/``calls`` and ``signals`` columns; when the
DuckDB reader lands it becomes one aggregate query over that reader's relation.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..engine.compile import PER_MILLION, Rates
from ..engine.replay import AttemptRecords
from ..errors import CostsimError
from ..limits import MAX_ATTEMPTS
from ..models import PriceTable
from . import runslog as rl


def _optional_text(raw, col: str):
    s = raw[col]
    text = s.astype("string").str.strip()
    return text.where(~(s.isna() | (text == "")), None)


def _optional_bool(raw, col: str, loc):
    """True / False / NA (missing allowed: summary rows, and all but one row of an attempt)."""
    s = raw[col]
    missing = s.isna().to_numpy()
    if s.dtype == bool:
        return s.to_numpy(), missing
    if s.dtype.kind in "iuf":
        v = s.to_numpy(dtype=float)
        bad = rl._first(~missing & (v != 0) & (v != 1))
        if bad is not None:
            raise loc.error(bad, col, f"expected a boolean, got {rl._show(s.iloc[bad])}")
        return v == 1, missing
    text = s.astype("string").str.strip().str.lower()
    missing = missing | (text == "").fillna(True).to_numpy(bool)
    is_true = text.isin(rl._TRUE).fillna(False).to_numpy(bool)
    is_false = text.isin(rl._FALSE).fillna(False).to_numpy(bool)
    bad = rl._first(~missing & ~(is_true | is_false))
    if bad is not None:
        raise loc.error(bad, col, f"expected a boolean (true/false, 1/0, yes/no), got "
                        f"{rl._show(s.iloc[bad])}")
    return is_true, missing


def row_costs(frame, table: PriceTable | None) -> np.ndarray:
    """Each row's price from the table (NaN where its model is not there): input beyond the
    cached part at ``input``, cached at ``cache_read``, output at ``output``; a row whose input
    exceeds the model's long-context threshold uses those rates. A row standing for ``calls``
    > 1 calls is priced as that many equal calls."""
    n = len(frame)
    out = np.full(n, math.nan)
    if table is None or n == 0:
        return out
    ids = [m for m in frame["model"].unique() if m in table.models]
    if not ids:
        return out
    rates = Rates.from_table(table, ids)
    idx = frame["model"].map({m: i for i, m in enumerate(ids)})
    known = idx.notna().to_numpy()
    j = idx[known].to_numpy(dtype=np.int64)
    calls = frame["calls"].to_numpy(float)[known]
    inp = frame["input_tokens"].to_numpy(float)[known]
    cac = frame["cached_input_tokens"].to_numpy(float)[known]
    o = frame["output_tokens"].to_numpy(float)[known]
    long = inp / calls > rates.above[j]
    ri = np.where(long, rates.lc_input[j], rates.input[j])
    rc = np.where(long, rates.lc_cache_read[j], rates.cache_read[j])
    ro = np.where(long, rates.lc_output[j], rates.output[j])
    out[known] = ((inp - cac) * ri + cac * rc + o * ro) / PER_MILLION
    return out


def read_attempts(path: str | Path, table: PriceTable | None = None) -> AttemptRecords:
    """Read ``path`` and return one record per (run, task, phase, attempt, kind)."""
    import pandas as pd

    path = str(path)
    fmt = rl.log_format(path)
    raw = rl._read_raw(path, fmt)
    raw.columns = [str(c).strip() for c in raw.columns]
    missing = [c for c in rl.REQUIRED if c not in raw.columns]
    if missing:
        have = ", ".join(raw.columns[:12]) or "none"
        raise CostsimError(f"missing required column{'s' if len(missing) > 1 else ''} "
                           f"{', '.join(missing)} (columns found: {have})", path,
                           1 if fmt != "parquet" else None)
    if len(raw) == 0:
        raise CostsimError("no rows (the log has a header but no attempts)", path)
    loc = rl._Locator(path, fmt)
    n = len(raw)
    f = pd.DataFrame(index=pd.RangeIndex(n))
    f["order"] = np.arange(n, dtype=np.int64)
    for col in ("task_id", "task_type", "phase", "model"):
        f[col] = rl._text(raw, col, loc).astype(str)
    f["attempt"] = rl._number(raw, "attempt", loc, integer=True, minimum=1, required=True,
                              what="an integer >= 1").astype("int64")
    bad = rl._first(f["attempt"].to_numpy() > MAX_ATTEMPTS)
    if bad is not None:
        raise loc.error(bad, "attempt", f"attempt {int(f['attempt'].iloc[bad])} is above the "
                        f"ceiling of {MAX_ATTEMPTS} attempts per phase")
    for col in ("input_tokens", "output_tokens"):
        f[col] = rl._number(raw, col, loc, integer=True, minimum=0, required=True,
                            what="an integer >= 0").astype(float)
    f["cached_input_tokens"] = (rl._number(raw, "cached_input_tokens", loc, integer=True,
                                           minimum=0, required=False,
                                           what="an integer >= 0").fillna(0).astype(float)
                                if "cached_input_tokens" in raw.columns else 0.0)
    bad = rl._first((f["cached_input_tokens"] > f["input_tokens"]).to_numpy())
    if bad is not None:
        raise loc.error(bad, "cached_input_tokens", "more than input_tokens (input_tokens "
                        "counts all input, cached included)")
    per_call = "call" in raw.columns
    if per_call:
        call = rl._number(raw, "call", loc, integer=True, minimum=1, required=True,
                          what="an integer >= 1")
        f["call"] = call.astype("int64")
        f["calls"] = 1.0
    else:
        f["call"] = 1
        f["calls"] = (rl._number(raw, "calls", loc, integer=True, minimum=1, required=False,
                                 what="an integer >= 1").fillna(1).astype(float)
                      if "calls" in raw.columns else 1.0)
    if "kind" in raw.columns:
        kind = _optional_text(raw, "kind").fillna("attempt").str.lower()
        bad = rl._first(~kind.isin(["attempt", "summary"]).to_numpy(bool))
        if bad is not None:
            raise loc.error(bad, "kind", f"expected attempt or summary, got "
                            f"{rl._show(raw['kind'].iloc[bad])}")
        f["summary"] = (kind == "summary").to_numpy(bool)
    else:
        f["summary"] = False
    f["run"] = (_optional_text(raw, "run").fillna("").astype(str) if "run" in raw.columns
                else "")
    ok, ok_missing = _optional_bool(raw, "success", loc)
    f["success"] = ok & ~ok_missing
    f["_says"] = ~ok_missing
    has_signals = "signals" in raw.columns
    f["signals"] = _optional_text(raw, "signals") if has_signals else None
    if "cost_usd" in raw.columns:
        cost = rl._number(raw, "cost_usd", loc, integer=False, minimum=0, required=False,
                          what="a number >= 0").to_numpy(float)
    else:
        cost = np.full(n, math.nan)
    lacking = np.isnan(cost)
    priced = row_costs(f, table) if lacking.any() else cost
    f["cost"] = np.where(lacking, priced, cost)
    f["_priced"] = lacking

    # One task, one task type.
    pairs = f[["task_id", "task_type"]].drop_duplicates()
    dup = pairs["task_id"].duplicated().to_numpy()
    bad = rl._first(dup)
    if bad is not None:
        r = int(pairs.index[bad])
        tid = f["task_id"].iloc[r]
        first = f["task_type"][f["task_id"] == tid].iloc[0]
        raise loc.error(r, "task_type", f"task '{tid}' already appeared with task type "
                        f"'{first}'")
    keys = ["run", "task_id", "phase", "attempt", "summary"]
    dup = f.duplicated(keys + (["call"] if per_call else [])).to_numpy()
    bad = rl._first(dup)
    if bad is not None:
        what = "summary of attempt" if f["summary"].iloc[bad] else "attempt"
        call = f", call {int(f['call'].iloc[bad])}," if per_call else ""
        run = f" in run '{f['run'].iloc[bad]}'" if f["run"].iloc[bad] else ""
        raise loc.error(bad, "call" if per_call else "attempt",
                        f"{what} {int(f['attempt'].iloc[bad])}{call} of task "
                        f"'{f['task_id'].iloc[bad]}' phase '{f['phase'].iloc[bad]}'{run} "
                        f"appears twice")

    f["_nan"] = f["cost"].isna()
    g = f.groupby(keys, sort=False)
    rec = g.agg(task_type=("task_type", "first"), model=("model", "min"),
                model_max=("model", "max"), success=("success", "max"), says=("_says", "max"),
                cost=("cost", "sum"), cost_nan=("_nan", "max"),
                input_tokens=("input_tokens", "sum"),
                cached_input_tokens=("cached_input_tokens", "sum"),
                output_tokens=("output_tokens", "sum"), order=("order", "min"),
                priced=("_priced", "max")).reset_index()
    rec.loc[rec["cost_nan"], "cost"] = math.nan
    bad = rec[rec["model"] != rec["model_max"]]
    if len(bad):
        r = bad.iloc[0]
        raise loc.error(int(r["order"]), "model", f"attempt {int(r['attempt'])} of task "
                        f"'{r['task_id']}' phase '{r['phase']}' names more than one model")
    bad = rec[~rec["summary"] & ~rec["says"]]
    if len(bad):
        raise loc.error(int(bad["order"].min()), "success", "required value missing")
    rec["success"] = rec["success"].astype(bool) & ~rec["summary"]
    cols = ["run", "task_id", "task_type", "phase", "attempt", "model", "summary", "success",
            "cost", "input_tokens", "cached_input_tokens", "output_tokens", "order"]
    signals = None
    if has_signals:
        signals = f.loc[f["signals"].notna(), ["task_id", "signals"]].drop_duplicates()
    return AttemptRecords(frame=rec[cols], path=path, signals=signals,
                          priced_rows=int(rec["priced"].sum()))
