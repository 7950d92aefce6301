"""Per-attempt records of a runs log, for the replay engine.

The replay needs, for every recorded attempt (and every summarizer call), who made it, whether it
succeeded and what it cost: the rows of one attempt (per-call logs) are added up. This module
reads only the columns that needs.

The log is read and validated by :func:`costsim.logs.runslog.read_log` (DuckDB); this module
pulls the columns the replay needs and adds up the rows of each attempt.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..engine.compile import PER_MILLION, Rates
from ..engine.replay import AttemptRecords
from ..errors import CostsimError
from ..models import PriceTable
from . import runslog as rl


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
    """Read ``path`` with the runs-log reader (which validates every row and the checks across
    rows) and return one record per (run, task, phase, attempt, kind)."""
    path = str(path)
    log = rl.read_log(path)
    try:
        f = log.sql(f"""
            SELECT run, task_id, task_type, phase, attempt, model, is_summary, calls,
                   input_tokens, cached_input_tokens, output_tokens, success, cost_usd,
                   signals, pos
            FROM {log.relation} ORDER BY pos""")
    finally:
        log.close()
    for col in ("run", "task_id", "task_type", "phase", "model"):
        f[col] = f[col].fillna("").astype(str)
    f["order"] = np.arange(len(f), dtype=np.int64)
    f["summary"] = f["is_summary"].to_numpy(int) == 1
    f["attempt"] = f["attempt"].astype("int64")
    f["calls"] = f["calls"].fillna(1).astype(float)
    for col in ("input_tokens", "cached_input_tokens", "output_tokens"):
        f[col] = f[col].fillna(0).astype(float)
    says = f["success"].notna().to_numpy()
    f["success"] = (f["success"].fillna(0).to_numpy(float) == 1) & says
    cost = f["cost_usd"].to_numpy(float)
    lacking = np.isnan(cost)
    priced = row_costs(f, table) if lacking.any() else cost
    f["cost"] = np.where(lacking, priced, cost)
    f["_priced"] = lacking
    f["_nan"] = f["cost"].isna()
    keys = ["run", "task_id", "phase", "attempt", "summary"]
    g = f.groupby(keys, sort=False)
    rec = g.agg(task_type=("task_type", "first"), model=("model", "first"),
                success=("success", "max"), cost=("cost", "sum"), cost_nan=("_nan", "max"),
                input_tokens=("input_tokens", "sum"),
                cached_input_tokens=("cached_input_tokens", "sum"),
                output_tokens=("output_tokens", "sum"), order=("order", "min"),
                priced=("_priced", "max")).reset_index()
    rec.loc[rec["cost_nan"], "cost"] = math.nan
    rec["success"] = rec["success"].astype(bool) & ~rec["summary"]
    cols = ["run", "task_id", "task_type", "phase", "attempt", "model", "summary", "success",
            "cost", "input_tokens", "cached_input_tokens", "output_tokens", "order"]
    signals = None
    if log.has_signals:
        s = f["signals"].astype("string").str.strip()
        keep = s.notna() & (s != "")
        signals = f.loc[keep, ["task_id"]].assign(signals=s[keep].astype(str)).drop_duplicates()
    return AttemptRecords(frame=rec[cols], path=path, signals=signals,
                          priced_rows=int(rec["priced"].sum()))
