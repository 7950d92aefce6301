"""Read and validate a runs log (SPEC.md §2.4): CSV, JSON Lines or Parquet, one row per attempt.

Everything is vectorised: a column is parsed as a whole and the first bad value is located with
``argmax`` over a mask. Only the error path does per-line work, to turn a row index into the line
number the user sees in the file (CSV: the header is line 1, so the first data row is line 2;
JSON Lines: the first object is line 1; Parquet has no lines, so errors say ``row N`` counting
from 1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import CostsimError

REQUIRED = ("task_id", "task_type", "phase", "attempt", "model", "input_tokens", "output_tokens",
            "success")
OPTIONAL = ("cached_input_tokens", "cost_usd", "reviewer_changes", "timestamp")

_COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zip")
_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
            ".parquet": "parquet", ".pq": "parquet"}

_TRUE = ("true", "t", "yes", "y", "1", "1.0")
_FALSE = ("false", "f", "no", "n", "0", "0.0")


@dataclass
class RunsLog:
    """The validated log: one row per attempt, columns normalised (see :func:`read_log`)."""

    frame: object            # pandas.DataFrame
    path: str
    fmt: str                 # csv | jsonl | parquet
    has_cost: bool           # a cost_usd column with at least one value
    has_changes: bool
    has_timestamps: bool
    locator: object = None   # cites file:line for a row index (see _Locator.error)


def log_format(path: str | Path) -> str:
    p = Path(path)
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        suffixes = suffixes[:-1]
    ext = suffixes[-1] if suffixes else ""
    if ext not in _FORMATS:
        raise CostsimError(f"unknown runs-log format '{ext or '(no extension)'}' (expected .csv, "
                           f".jsonl/.ndjson/.json or .parquet, optionally compressed)", str(path))
    return _FORMATS[ext]


class _Locator:
    """Turns a 0-based data-row index into ``file:line`` (computed only when there is an error)."""

    def __init__(self, path: str, fmt: str):
        self.path, self.fmt = path, fmt

    def error(self, row: int, column: str, message: str) -> CostsimError:
        if self.fmt == "parquet":
            return CostsimError(message, self.path, path=f"row {row + 1}: {column}")
        return CostsimError(message, self.path, self._line(row), column)

    def _open_text(self):
        import pandas as pd  # noqa: F401  (compression handling below mirrors pandas')
        p = self.path
        low = p.lower()
        if low.endswith(".gz"):
            import gzip
            return gzip.open(p, "rt", encoding="utf-8", newline="")
        if low.endswith(".bz2"):
            import bz2
            return bz2.open(p, "rt", encoding="utf-8", newline="")
        if low.endswith(".xz"):
            import lzma
            return lzma.open(p, "rt", encoding="utf-8", newline="")
        return open(p, encoding="utf-8", newline="")

    def _line(self, row: int) -> int | None:
        try:
            with self._open_text() as fh:
                if self.fmt == "csv":
                    import csv

                    reader = csv.reader(fh)
                    start = 1
                    seen = -1           # the header is record -1
                    for rec in reader:
                        if rec:         # pandas skips blank lines
                            if seen == row:
                                return start
                            seen += 1
                        start = reader.line_num + 1
                    return None
                seen = 0
                for n, line in enumerate(fh, start=1):
                    if line.strip():
                        if seen == row:
                            return n
                        seen += 1
        except (OSError, UnicodeDecodeError, ValueError):
            return None
        return None


def _read_raw(path: str, fmt: str):
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise CostsimError("file not found", path)
    if p.is_dir():
        raise CostsimError("is a directory, expected a runs log", path)
    try:
        if p.stat().st_size == 0:
            raise CostsimError("file is empty (expected a runs log with a header row)", path)
    except OSError as exc:
        raise CostsimError(f"cannot read file: {exc.strerror}", path) from None
    try:
        if fmt == "csv":
            return pd.read_csv(path, keep_default_na=False, na_values=[""], low_memory=False,
                               skipinitialspace=True)
        if fmt == "jsonl":
            return _read_jsonl(path)
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise CostsimError("reading Parquet needs pyarrow: pip install 'costsim[parquet]'",
                               path) from None
        return pq.read_table(path).to_pandas()
    except CostsimError:
        raise
    except pd.errors.EmptyDataError:
        raise CostsimError("file is empty (expected a runs log with a header row)", path) from None
    except pd.errors.ParserError as exc:
        raise CostsimError(f"not valid CSV: {str(exc).strip()}", path) from None
    except UnicodeDecodeError:
        raise CostsimError("not a text file (expected UTF-8)", path) from None
    except PermissionError as exc:
        raise CostsimError(f"cannot read file: {exc.strerror}", path) from None
    except OSError as exc:
        raise CostsimError(f"cannot read file: {exc.strerror or exc}", path) from None
    except Exception as exc:  # pyarrow's ArrowInvalid and friends: a file that isn't Parquet
        if fmt == "parquet":
            raise CostsimError(f"not a valid Parquet file: {exc}", path) from None
        raise


def _read_jsonl(path: str):
    import pandas as pd

    try:
        df = pd.read_json(path, lines=True, dtype=False)
    except ValueError as exc:
        loc = _Locator(path, "jsonl")
        line = _first_bad_json_line(loc)
        raise CostsimError(f"not valid JSON Lines: {line[1] if line else exc}", path,
                           line[0] if line else None) from None
    if len(df.columns) and all(isinstance(c, int) for c in df.columns):
        raise CostsimError("not JSON Lines of objects (each line must be a {...} object)", path, 1)
    return df


def _first_bad_json_line(loc: _Locator):
    try:
        with loc._open_text() as fh:
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except ValueError as exc:
                    return n, f"line is not JSON ({exc.msg})"
                if not isinstance(obj, dict):
                    return n, f"expected a JSON object, got {type(obj).__name__}"
    except (OSError, UnicodeDecodeError):
        return None
    return None


# --- column parsing -------------------------------------------------------------------------

def _first(mask) -> int | None:
    import numpy as np

    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return None
    return int(m.argmax())


def _show(value) -> str:
    return repr(value.item() if hasattr(value, "item") else value)


def _text(df, col: str, loc: _Locator):
    s = df[col]
    missing = s.isna()
    if s.dtype == object or str(s.dtype).startswith("str") or str(s.dtype) == "string":
        s = s.astype("string").str.strip()
        missing = missing | (s == "")
    else:
        s = s.astype("string")
    bad = _first(missing)
    if bad is not None:
        raise loc.error(bad, col, "required value missing")
    return s


def _number(df, col: str, loc: _Locator, *, integer: bool, minimum: float, required: bool,
            what: str):
    import numpy as np
    import pandas as pd

    raw = df[col]
    if raw.dtype == bool:
        bad = 0 if len(raw) else None
        raise loc.error(bad, col, f"expected {what}, got {_show(raw.iloc[bad])}")
    num = pd.to_numeric(raw, errors="coerce") if raw.dtype.kind not in "iuf" else raw
    num = num.astype("float64")
    missing = raw.isna().to_numpy()
    unparsed = num.isna().to_numpy() & ~missing
    if required:
        bad = _first(missing)
        if bad is not None:
            raise loc.error(bad, col, "required value missing")
    values = num.to_numpy()
    problems = unparsed | (~missing & ~np.isfinite(np.where(missing, 0.0, values)))
    if integer:
        with np.errstate(invalid="ignore"):
            problems |= ~missing & (np.floor(values) != values)
    bad = _first(problems)
    if bad is not None:
        raise loc.error(bad, col, f"expected {what}, got {_show(raw.iloc[bad])}")
    with np.errstate(invalid="ignore"):
        low = ~missing & (values < minimum)
    bad = _first(low)
    if bad is not None:
        raise loc.error(bad, col, f"expected {what}, got {_show(raw.iloc[bad])}")
    return num


def _boolean(df, col: str, loc: _Locator):
    import numpy as np
    import pandas as pd

    raw = df[col]
    if raw.dtype == bool:
        return raw.to_numpy()
    missing = raw.isna().to_numpy()
    bad = _first(missing)
    if bad is not None:
        raise loc.error(bad, col, "required value missing")
    if raw.dtype.kind in "iuf":
        v = raw.to_numpy(dtype=float)
        bad = _first((v != 0) & (v != 1))
        if bad is not None:
            raise loc.error(bad, col, f"expected a boolean, got {_show(raw.iloc[bad])}")
        return v == 1
    text = raw.astype("string").str.strip().str.lower()
    is_true = text.isin(_TRUE).to_numpy(dtype=bool)
    is_false = text.isin(_FALSE).to_numpy(dtype=bool)
    bad = _first(~(is_true | is_false))
    if bad is not None:
        raise loc.error(bad, col, f"expected a boolean (true/false, 1/0, yes/no), got "
                        f"{_show(raw.iloc[bad])}")
    del pd
    return is_true


def _timestamp(df, col: str, loc: _Locator):
    import pandas as pd

    raw = df[col]
    missing = raw.isna()
    if raw.dtype.kind == "M":
        ts = raw.dt.tz_localize("UTC") if raw.dt.tz is None else raw.dt.tz_convert("UTC")
        return ts
    text = raw.astype("string").str.strip()
    missing = missing | (text == "")
    ts = pd.to_datetime(text.where(~missing), errors="coerce", utc=True, format="ISO8601")
    bad = _first(ts.isna().to_numpy() & ~missing.to_numpy())
    if bad is not None:
        raise loc.error(bad, col, f"expected an ISO 8601 timestamp, got {_show(raw.iloc[bad])}")
    return ts


def read_log(path: str | Path):
    """Read and validate ``path``; return a :class:`RunsLog` whose frame has the columns
    ``task_id, task_type, phase, model`` (categorical), ``attempt`` (int64), ``input_tokens,
    cached_input_tokens, output_tokens`` (int64, cached 0 when absent), ``success`` (bool),
    ``cost_usd, reviewer_changes`` (float, NaN when absent), ``timestamp`` (UTC, NaT when
    absent) and ``row`` (0-based position in the file, used to cite lines)."""
    import numpy as np
    import pandas as pd

    path = str(path)
    fmt = log_format(path)
    raw = _read_raw(path, fmt)
    raw.columns = [str(c).strip() for c in raw.columns]
    missing = [c for c in REQUIRED if c not in raw.columns]
    if missing:
        have = ", ".join(raw.columns[:12]) or "none"
        raise CostsimError(f"missing required column{'s' if len(missing) > 1 else ''} "
                           f"{', '.join(missing)} (columns found: {have})", path,
                           1 if fmt != "parquet" else None)
    if len(raw) == 0:
        raise CostsimError("no rows (the log has a header but no attempts)", path)
    loc = _Locator(path, fmt)
    n = len(raw)
    out = pd.DataFrame(index=pd.RangeIndex(n))
    out["row"] = np.arange(n, dtype=np.int64)
    for col in ("task_id", "task_type", "phase", "model"):
        out[col] = _text(raw, col, loc).astype("category")
    out["attempt"] = _number(raw, "attempt", loc, integer=True, minimum=1, required=True,
                             what="an integer >= 1").astype("int64")
    for col in ("input_tokens", "output_tokens"):
        out[col] = _number(raw, col, loc, integer=True, minimum=0, required=True,
                           what="an integer >= 0").astype("int64")
    if "cached_input_tokens" in raw.columns:
        out["cached_input_tokens"] = _number(raw, "cached_input_tokens", loc, integer=True,
                                             minimum=0, required=False,
                                             what="an integer >= 0").fillna(0).astype("int64")
    else:
        out["cached_input_tokens"] = np.zeros(n, dtype=np.int64)
    out["success"] = _boolean(raw, "success", loc)
    has_cost = has_changes = has_ts = False
    if "cost_usd" in raw.columns:
        out["cost_usd"] = _number(raw, "cost_usd", loc, integer=False, minimum=0,
                                  required=False, what="a number >= 0")
        has_cost = bool(out["cost_usd"].notna().any())
    else:
        out["cost_usd"] = np.full(n, np.nan)
    if "reviewer_changes" in raw.columns:
        out["reviewer_changes"] = _number(raw, "reviewer_changes", loc, integer=True, minimum=0,
                                          required=False, what="an integer >= 0")
        has_changes = bool(out["reviewer_changes"].notna().any())
    else:
        out["reviewer_changes"] = np.full(n, np.nan)
    if "timestamp" in raw.columns:
        out["timestamp"] = _timestamp(raw, "timestamp", loc)
        has_ts = bool(out["timestamp"].notna().any())
    else:
        out["timestamp"] = pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns, UTC]")

    # One task, one task type.
    pairs = out[["task_id", "task_type"]].drop_duplicates()
    dup = pairs["task_id"].duplicated().to_numpy()
    bad = _first(dup)
    if bad is not None:
        r = int(pairs.index[bad])
        tid = out["task_id"].iloc[r]
        raise loc.error(r, "task_type", f"task '{tid}' already appeared with task type "
                        f"'{out['task_type'][out['task_id'] == tid].iloc[0]}'")
    # An attempt index appears once per task and phase.
    dup = out.duplicated(["task_id", "phase", "attempt"]).to_numpy()
    bad = _first(dup)
    if bad is not None:
        raise loc.error(bad, "attempt", f"attempt {int(out['attempt'].iloc[bad])} of task "
                        f"'{out['task_id'].iloc[bad]}' phase '{out['phase'].iloc[bad]}' appears "
                        f"twice")
    return RunsLog(frame=out, path=path, fmt=fmt, has_cost=has_cost, has_changes=has_changes,
                   has_timestamps=has_ts, locator=loc)
