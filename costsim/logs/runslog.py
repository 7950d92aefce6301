"""Read and validate a runs log into DuckDB (the runs-log format: docs/calibrate.md, SPEC.md §2.4).

A log is CSV, JSON Lines or Parquet (optionally ``.gz``, ``.bz2``, ``.xz``, a one-file ``.zip``,
or ``.zst`` when the ``zstandard`` package is installed), a directory of such files, or a glob
pattern. Each file is read by DuckDB (CSV typed by its parser where every value parses,
else as text; Parquet keeps its types), every column is validated in SQL, and the rows of all
files become one normalised relation, ``runs`` (see :data:`RUNS_COLUMNS`): a view numbering
the rows of the table ``runs_rows``, stored in file order, by its rowid. Measurements then run SQL
against that relation through :class:`LogEngine`, so the same text can later run on another
engine.

Errors are one located line: ``file:line: column: what is wrong`` (CSV: the header is line 1, so
the first data row is line 2; JSON Lines: the first object is line 1; blank lines count as lines
but hold no row). Parquet has no lines: errors say ``row N``, counting data rows from 1. Only an
error walks a file line by line, to turn a row index into the line the user sees.

Nothing is allocated in proportion to a value in the file: ``attempt`` is checked against
``costsim.limits.MAX_ATTEMPTS`` before anything is grouped by it, and token counts against
``MAX_LOG_TOKENS``.
"""

from __future__ import annotations

import csv
import glob as globmod
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CostsimError
from ..limits import MAX_ATTEMPTS

REQUIRED = ("task_id", "task_type", "phase", "attempt", "model", "input_tokens", "output_tokens",
            "success")
OPTIONAL = ("call", "calls", "cached_input_tokens", "cost_usd", "kind", "signals",
            "reviewer_changes", "timestamp", "run")
KNOWN = REQUIRED + OPTIONAL

# Ceilings on what one row may say (checked before use; see costsim/limits.py for the idea).
MAX_LOG_TEXT = 1024               # characters in an id, phase, model, run or signals value
MAX_LOG_TOKENS = 10**12           # tokens in one row
MAX_LOG_CALLS = 100_000           # calls in one attempt (`call` index or `calls`)

#: The normalised relation every measurement reads (one row per call or per attempt).
RUNS_COLUMNS = {
    "src": "file index (0-based, in the order the files were read)",
    "row": "data row within its file (0-based)",
    "pos": "the row's place in the log: files in the order read, rows in file order",
    "run": "the run ('' when the log has no run column)",
    "task_id": "text", "task_type": "text", "phase": "text", "model": "text",
    "attempt": "integer >= 1",
    "call": "1-based call number on a call row, NULL on an attempt row",
    "calls": "calls the row stands for: 1 on a call row, `calls` (default 1) on an attempt row",
    "is_summary": "1 for a summarizer call (kind: summary), else 0",
    "input_tokens": "all input, cached included", "cached_input_tokens": "0 when absent",
    "output_tokens": "integer",
    "success": "1, 0 or NULL (NULL: not on this row; summary rows)",
    "cost_usd": "NULL when absent",
    "signals": "the row's signals as written, trimmed (NULL when empty; a task's signals "
               "are the non-empty value on any of its rows, none when every row is empty)",
    "reviewer_changes": "NULL when absent",
    "ts": "seconds since 1970-01-01 UTC, NULL when absent",
}

_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
            ".parquet": "parquet", ".pq": "parquet"}
_NATIVE = (".gz",)                               # DuckDB decompresses these itself
_UNPACK = (".bz2", ".xz", ".zip", ".zst")        # Python unpacks these to a temporary file
_COMPRESSED = _NATIVE + _UNPACK

_TRUE = ("true", "t", "yes", "y", "1", "1.0")
_FALSE = ("false", "f", "no", "n", "0", "0.0")


# --- the engine interface -------------------------------------------------------------------

class LogEngine:
    """Runs SQL over the normalised relation. ``relation`` names it; ``sql`` returns a pandas
    DataFrame; ``materialize`` keeps a query's result as a relation later queries can read.
    Measurement SQL is portable (GROUP BY, CASE, window functions, VALUES lists): another
    backend implements these three members and runs the same text."""

    relation: str = "runs"

    def sql(self, query: str):  # -> pandas.DataFrame
        raise NotImplementedError

    def materialize(self, name: str, query: str) -> None:
        raise NotImplementedError


class DuckDBEngine(LogEngine):
    def __init__(self, con, relation: str = "runs"):
        self.con = con
        self.relation = relation

    def sql(self, query: str):
        df = self.con.execute(query).df()
        for c in df.columns:     # ENUM columns come back as categories: plain text here
            if str(df[c].dtype) == "category":
                df[c] = df[c].astype(object).where(df[c].notna(), None)
        return df

    def materialize(self, name: str, query: str) -> None:
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {query}")

    def close(self) -> None:
        self.con.close()


# --- the result -----------------------------------------------------------------------------

@dataclass
class RunsLog:
    """The validated log, held by an engine as the relation ``engine.relation``."""

    engine: LogEngine
    path: str                       # what the user named (file, directory or pattern)
    files: list[str]
    fmt: str                        # csv | jsonl | parquet | mixed
    rows: int
    columns: frozenset[str]         # the optional columns present in at least one file
    has_cost: bool = False          # some row has a cost_usd
    has_changes: bool = False       # some row has reviewer_changes
    has_timestamps: bool = False
    has_signals: bool = False       # a signals column exists (values may all be empty)
    has_runs: bool = False          # more than one distinct run
    call_rows: int = 0              # rows with a `call` (per-call rows)
    summary_rows: int = 0
    locators: list = field(default_factory=list)
    _tmp: object = None             # temporary directory for unpacked files

    @property
    def relation(self) -> str:
        return self.engine.relation

    def sql(self, query: str):
        return self.engine.sql(query)

    def error(self, src: int, row: int, column: str | None, message: str) -> CostsimError:
        """A located error for data row ``row`` (0-based) of file ``src``."""
        return self.locators[int(src)].error(int(row), column, message)

    def close(self) -> None:
        close = getattr(self.engine, "close", None)
        if close:
            close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


# --- locating rows in files -----------------------------------------------------------------

def _open_text(path: str):
    low = path.lower()
    if low.endswith(".gz"):
        import gzip
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


class _Locator:
    """Turns a 0-based data-row index into ``file:line`` (work done only on an error)."""

    def __init__(self, shown: str, actual: str, fmt: str):
        self.shown, self.actual, self.fmt = shown, actual, fmt

    def error(self, row: int, column: str | None, message: str) -> CostsimError:
        if self.fmt == "parquet":
            return CostsimError(message, self.shown,
                                path=f"row {row + 1}" + (f": {column}" if column else ""))
        line = self.line(row)
        if line is None:
            return CostsimError(message, self.shown,
                                path=f"row {row + 1}" + (f": {column}" if column else ""))
        return CostsimError(message, self.shown, line, column)

    def line(self, row: int) -> int | None:
        try:
            with _open_text(self.actual) as fh:
                if self.fmt == "csv":
                    csv.field_size_limit(2**31 - 1)
                    reader = csv.reader(fh)
                    start = 1
                    seen = -1           # the header is record -1
                    for rec in reader:
                        if rec:         # DuckDB skips blank lines
                            if seen == row:
                                return start
                            seen += 1
                        start = reader.line_num + 1
                    return None
                seen = 0
                for n, text in enumerate(fh, start=1):
                    if text.strip():
                        if seen == row:
                            return n
                        seen += 1
        except (OSError, UnicodeDecodeError, ValueError, ImportError, EOFError, csv.Error):
            return None
        return None


def _show(value) -> str:
    """A value as the user wrote it, on one line: numbers bare, anything else quoted."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, (int, float)):
        return repr(value)
    s = str(value)
    t = s.strip()
    if re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", t):
        return t
    if len(s) > 60:
        s = s[:57] + "..."
    return repr(s).encode("ascii", "backslashreplace").decode("ascii")


def _q(name: str) -> str:
    """A SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


# --- finding the files ----------------------------------------------------------------------

def _kind(path: str) -> tuple[str, str | None]:
    """(format, compression suffix or None) from the file name."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    comp = None
    if suffixes and suffixes[-1] in _COMPRESSED:
        comp = suffixes[-1]
        suffixes = suffixes[:-1]
    ext = suffixes[-1] if suffixes else ""
    if ext not in _FORMATS:
        raise CostsimError(f"unknown runs-log format '{ext or '(no extension)'}' (expected .csv, "
                           f".jsonl/.ndjson/.json or .parquet, optionally compressed)", path)
    if Path(path).suffix.lower() in (".bz", ".lz4", ".7z", ".rar", ".tar"):
        raise CostsimError("this compression is not supported (use .gz or .zst)", path)
    return _FORMATS[ext], comp


def log_format(path: str | Path) -> str:
    return _kind(str(path))[0]


def _is_log_name(name: str) -> bool:
    try:
        _kind(name)
        return True
    except CostsimError:
        return False


def find_files(path: str) -> list[str]:
    """The files a path names: itself, the runs-log files of a directory, or a glob's matches."""
    p = Path(path)
    if any(ch in path for ch in "*?[") and not p.exists():
        files = sorted(f for f in globmod.glob(path, recursive=True) if Path(f).is_file())
        if not files:
            raise CostsimError("no file matches this pattern", path)
        return files
    if not p.exists():
        raise CostsimError("file not found", path)
    if p.is_dir():
        files = sorted(str(f) for f in p.iterdir() if f.is_file() and _is_log_name(f.name))
        if not files:
            raise CostsimError("is a directory with no runs-log files in it (.csv, .jsonl, "
                               ".parquet, optionally compressed)", path)
        return files
    if not p.is_file():
        raise CostsimError("not a regular file", path)
    return [path]


def _unpack(path: str, comp: str, tmpdir: str) -> str:
    """Decompress ``path`` into ``tmpdir``; return the new path."""
    name = Path(path).name[: -len(comp)]
    out = os.path.join(tmpdir, f"{len(os.listdir(tmpdir))}-{name}")
    try:
        if comp == ".zip":
            import zipfile

            try:
                zf = zipfile.ZipFile(path)
            except zipfile.BadZipFile:
                raise CostsimError("not a valid .zip file", path) from None
            with zf:
                members = [i for i in zf.infolist() if not i.is_dir()]
                if len(members) != 1:
                    raise CostsimError(f"a .zip runs log must hold exactly one file, this one "
                                       f"holds {len(members)}", path)
                with zf.open(members[0]) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            return out
        if comp == ".zst":
            try:
                import zstandard as mod
            except ImportError:
                raise CostsimError("reading .zst needs the zstandard package (pip install "
                                   "zstandard), or decompress the file first", path) from None
        elif comp == ".bz2":
            import bz2 as mod
        else:
            import lzma as mod
        with mod.open(path, "rb") as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        return out
    except CostsimError:
        raise
    except (OSError, EOFError, ValueError, Exception) as exc:  # lzma.LZMAError, zlib errors
        what = {".bz2": "bzip2", ".xz": "xz", ".zip": "zip", ".zst": "zstd"}[comp]
        raise CostsimError(f"not a valid {what} file, or truncated ({_reason(exc)})",
                           path) from None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.encode("ascii", "backslashreplace").decode("ascii")[:200]


# --- loading one file into a raw table -----------------------------------------------------

@dataclass
class _Raw:
    source: str           # SQL relation with the file's rows
    rowid: str            # expression for the 0-based row index in the file
    columns: dict         # known column -> (SQL expression for its raw value, DuckDB type, ...)
    fmt: str
    shown: str            # the file as the user named it
    actual: str           # the file DuckDB reads (unpacked when compressed by Python)
    header: list = field(default_factory=list)   # CSV: the header's column names


def _csv_header(shown: str, actual: str) -> list[str]:
    """The header's column names (the first non-blank record; only that line is decoded)."""
    import gzip

    try:
        opener = gzip.open if actual.lower().endswith(".gz") else open
        with opener(actual, "rb") as fh:
            for raw in fh:
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise CostsimError("the header is not UTF-8 text", shown, 1) from None
                if line.startswith("\ufeff"):
                    line = line[1:]
                if not line.strip():
                    continue
                rec = next(csv.reader([line]))
                return [c.strip() for c in rec]
    except (EOFError, OSError) as exc:
        raise CostsimError(f"cannot read the file: {_reason(exc)}", shown) from None
    except csv.Error as exc:
        raise CostsimError(f"not valid CSV: {_reason(exc)}", shown, 1) from None
    raise CostsimError("file is empty (expected a runs log with a header row)", shown)


def _duck_error(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    first = re.sub(r"^[A-Za-z ]+Error: ", "", first)
    return first.encode("ascii", "backslashreplace").decode("ascii")[:200]


def _locate_csv_problem(shown: str, actual: str, width: int) -> CostsimError | None:
    """The first record DuckDB could not take: wrong field count or bad bytes."""
    try:
        with open(actual, "rb") as fh:
            if actual.lower().endswith(".gz"):
                import gzip

                fh = gzip.open(actual, "rb")
            line_no = 0
            for raw in fh:
                line_no += 1
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError:
                    return CostsimError("not UTF-8 text (a byte sequence that is not valid "
                                        "UTF-8, e.g. a lone surrogate)", shown, line_no)
    except EOFError:
        return CostsimError("the compressed file is truncated", shown)
    except OSError as exc:
        if "gzip" in str(exc).lower() or "compressed" in str(exc).lower():
            return CostsimError(f"not a valid gzip file ({_reason(exc)})", shown)
        return None
    try:
        with _open_text(actual) as fh:
            csv.field_size_limit(2**31 - 1)
            reader = csv.reader(fh, strict=True)
            start = 1
            header = True
            for rec in reader:
                if rec:
                    if header:
                        header = False
                    elif len(rec) != width:
                        return CostsimError(f"this row has {len(rec)} fields, the header has "
                                            f"{width}", shown, start)
                start = reader.line_num + 1
    except csv.Error as exc:
        return CostsimError(f"not valid CSV: {_reason(exc)}", shown, start)
    except (OSError, UnicodeDecodeError, EOFError, ImportError):
        return None
    return None


# The fast path: DuckDB's CSV parser types these columns itself (any value it cannot parse as
# that type fails the read, and the file is read again as text for a located error).
# Integer columns are read as DOUBLE: DuckDB would round '1.5' into a BIGINT column.
_CSV_TYPES = {"attempt": "DOUBLE", "call": "DOUBLE", "calls": "DOUBLE", "input_tokens": "DOUBLE",
              "cached_input_tokens": "DOUBLE", "output_tokens": "DOUBLE",
              "reviewer_changes": "DOUBLE", "cost_usd": "DOUBLE", "success": "BOOLEAN",
              "timestamp": "TIMESTAMPTZ"}


def _load_csv(i: int, shown: str, actual: str) -> _Raw:
    header = _csv_header(shown, actual)
    if not header:
        raise CostsimError("file is empty (expected a runs log with a header row)", shown)
    seen: dict[str, int] = {}
    for k, name in enumerate(header):
        if name in seen and name:
            raise CostsimError(f"column '{name}' appears twice in the header (columns "
                               f"{seen[name] + 1} and {k + 1})", shown, 1, name)
        seen[name] = k
    columns = {name: (f"c{k}", "VARCHAR") for name, k in seen.items() if name in KNOWN}
    return _Raw(source="", rowid="rowid", columns=columns, fmt="csv", shown=shown,
                actual=actual, header=header)


def _csv_source(raw: _Raw, typed: bool) -> str:
    """read_csv of the file; ``typed`` lets DuckDB parse the numeric columns itself (fast; any
    value it cannot parse fails the whole read, and the file is read again as text)."""
    types = {f"c{k}": "VARCHAR" for k in range(len(raw.header))}
    if typed:
        for name, (c, _) in raw.columns.items():
            if name in _CSV_TYPES:
                types[c] = _CSV_TYPES[name]
    cols = "{" + ", ".join(f"'{c}': '{t}'" for c, t in types.items()) + "}"
    return (f"read_csv({_lit(raw.actual)}, columns={cols}, header=true, auto_detect=false, "
            f"delim=',', quote='\"', escape='\"', strict_mode=true, null_padding=false, "
            f"max_line_size=4194304)")


def _csv_failure(raw: _Raw, exc: BaseException) -> CostsimError:
    err = _locate_csv_problem(raw.shown, raw.actual, len(raw.header))
    if err is not None:
        return err
    return CostsimError(f"not a valid CSV file: {_duck_error(exc)}", raw.shown)


def _locate_json_problem(shown: str, actual: str) -> CostsimError | None:
    try:
        with _open_text(actual) as fh:
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except RecursionError:
                    return CostsimError("JSON nested too deeply", shown, n)
                except ValueError as exc:
                    return CostsimError(f"not valid JSON Lines: line is not JSON "
                                        f"({getattr(exc, 'msg', exc)})", shown, n)
                if not isinstance(obj, dict):
                    return CostsimError(f"not valid JSON Lines: expected a JSON object, got "
                                        f"{_json_kind(obj)}", shown, n)
                try:
                    json.dumps(obj, ensure_ascii=False).encode("utf-8")
                except UnicodeEncodeError:
                    return CostsimError("text with a lone surrogate (\\ud800-\\udfff): not "
                                        "valid Unicode", shown, n)
                except RecursionError:
                    return CostsimError("JSON nested too deeply", shown, n)
    except UnicodeDecodeError:
        return CostsimError("not a UTF-8 text file", shown)
    except EOFError:
        return CostsimError("the compressed file is truncated", shown)
    except (OSError, ImportError):
        return None
    return None


def _json_kind(obj) -> str:
    if obj is None:
        return "null"
    if isinstance(obj, bool):
        return "true" if obj else "false"
    if isinstance(obj, list):
        return "an array"
    if isinstance(obj, (int, float)):
        return "a number"
    return "a string"


def _load_jsonl(con, i: int, shown: str, actual: str) -> _Raw:
    table = f"raw{i}"
    try:
        con.execute(f"CREATE TEMP TABLE {table} AS SELECT json AS j FROM "
                    f"read_ndjson_objects({_lit(actual)})")
    except Exception as exc:
        err = _locate_json_problem(shown, actual)
        if err is not None:
            raise err from None
        raise CostsimError(f"not valid JSON Lines: {_duck_error(exc)}", shown) from None
    loc = _Locator(shown, actual, "jsonl")
    bad = con.execute(f"SELECT min(rowid), min(json_type(j)) FROM {table} "
                      f"WHERE json_type(j) <> 'OBJECT'").fetchone()
    if bad[0] is not None:
        r = int(bad[0])
        got = con.execute(f"SELECT CAST(j AS VARCHAR) FROM {table} WHERE rowid = {r}").fetchone()
        try:
            kind = _json_kind(json.loads(got[0]))
        except (ValueError, RecursionError):
            kind = "something else"
        raise loc.error(r, None, f"not valid JSON Lines: expected a JSON object, got {kind}")
    keys = [k for (k,) in con.execute(
        f"SELECT DISTINCT unnest(json_keys(j)) FROM {table}").fetchall()]
    dup = con.execute(f"SELECT min(rowid) FROM {table} WHERE "
                      f"len(json_keys(j)) <> len(list_distinct(json_keys(j)))").fetchone()[0]
    if dup is not None:
        ks = con.execute(f"SELECT json_keys(j) FROM {table} WHERE rowid = {int(dup)}"
                         ).fetchone()[0]
        name = next(k for k in ks if ks.count(k) > 1)
        raise loc.error(int(dup), name, "key appears twice in the object")
    columns = {}
    for k in keys:
        if k in KNOWN:
            path = _lit('$."' + k.replace('"', '\\"') + '"')
            columns[k] = (f"json_extract_string(j, {path})", "JSON", f"json_type(j, {path})")
    return _Raw(source=table, rowid="rowid", columns=columns, fmt="jsonl", shown=shown,
                actual=actual)


def _load_parquet(con, i: int, shown: str, actual: str) -> _Raw:
    source = f"read_parquet({_lit(actual)}, file_row_number=true)"
    try:
        desc = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    except Exception as exc:
        raise CostsimError(f"not a valid Parquet file: {_duck_error(exc)}", shown) from None
    columns = {}
    seen = set()
    for name, typ, *_ in desc:
        if name == "file_row_number":
            continue
        key = name.strip()
        if key in seen and key in KNOWN:
            raise CostsimError(f"column '{key}' appears twice", shown, path=key)
        seen.add(key)
        if key not in KNOWN:
            continue
        t = str(typ).upper()
        if t.endswith("]") or t.startswith(("STRUCT", "MAP", "UNION", "LIST")):
            raise CostsimError(f"expected a column of plain values, got a {t.lower()} column "
                               f"(lists and structs are not supported)", shown, path=key)
        if t in ("BLOB", "BIT") or t.startswith("GEOMETRY"):
            raise CostsimError(f"expected text or numbers, got binary data ({t.lower()})",
                               shown, path=key)
        columns[key] = (_q(name), t)
    return _Raw(source=source, rowid="file_row_number", columns=columns, fmt="parquet",
                shown=shown, actual=actual)


# --- validation and normalisation -----------------------------------------------------------

_INT_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER",
              "UBIGINT", "HUGEINT", "UHUGEINT")
_FLOAT_TYPES = ("FLOAT", "DOUBLE", "REAL")


@dataclass
class _Col:
    value: str            # typed SQL expression over the parsed columns (NULL when absent)
    checks: list          # [(predicate over the parsed columns, message or callable)]
    pre: dict = field(default_factory=dict)   # parsed column name -> SQL over the raw row
    raw: str = ""         # text columns: the raw value's SQL expression


def _text_expr(expr: str, typ: str) -> str:
    if typ in ("VARCHAR", "JSON"):
        return f"NULLIF(TRIM({expr}), '')"
    return f"NULLIF(TRIM(CAST({expr} AS VARCHAR)), '')"


def _is_number_type(typ: str) -> bool:
    return typ in _INT_TYPES or typ in _FLOAT_TYPES or typ.startswith("DECIMAL")


def _text_col(raw: _Raw, name: str, required: bool) -> _Col:
    expr, typ = raw.columns[name][:2]
    t = f"_t_{name}"
    pre = {t: _text_expr(expr, typ)}
    checks = []
    if raw.fmt == "jsonl":
        pre[f"_j_{name}"] = f"{raw.columns[name][2]} IN ('ARRAY', 'OBJECT')"
        checks.append((f"_j_{name}", lambda v: f"expected text, got {_show(v)}"))
    if required:
        checks.append((f"{t} IS NULL", "required value missing"))
    checks.append((f"length({t}) > {MAX_LOG_TEXT}",
                   f"text longer than {MAX_LOG_TEXT:,} characters"))
    return _Col(t, checks, pre, raw=expr)


def _num_col(raw: _Raw, name: str, *, integer: bool, minimum: float, maximum: float | None,
             required: bool, what: str, over=None) -> _Col:
    expr, typ = raw.columns[name][:2]
    d = f"_d_{name}"
    pre = {}
    if typ in _INT_TYPES and integer:
        # already integers: only the range can be wrong
        pre[d] = f"CAST({expr} AS BIGINT)"
        checks = [(f"{d} IS NULL", "required value missing")] if required else []
        checks.append((f"{d} < {minimum}", lambda v: f"expected {what}, got {_show(v)}"))
        if maximum is not None:
            checks.append((f"{d} > {maximum}",
                           over or (lambda v: f"expected {what}, at most {maximum:,.0f}, got "
                                              f"{_show(v)}")))
        return _Col(d, checks, pre)
    if _is_number_type(typ):
        pre[d] = f"CAST({expr} AS DOUBLE)"
        missing = f"{d} IS NULL"
        unparsed = "false"
    elif typ == "BOOLEAN":
        pre[d] = "CAST(NULL AS DOUBLE)"
        pre[f"_m_{name}"] = f"{expr} IS NULL"
        missing = f"_m_{name}"
        unparsed = f"NOT _m_{name}"
    else:
        m = f"_m_{name}"
        pre[d] = f"TRY_CAST({expr} AS DOUBLE)"
        pre[m] = (f"CASE WHEN {pre[d]} IS NOT NULL THEN false "
                  f"ELSE {_text_expr(expr, typ)} IS NULL END")
        missing = m
        unparsed = f"({d} IS NULL AND NOT {m})"
    checks = []
    if required:
        checks.append((missing, "required value missing"))
    bad = f"{unparsed} OR NOT isfinite({d})"
    if integer:
        bad += f" OR floor({d}) <> {d}"
    bad += f" OR {d} < {minimum}"
    checks.append((bad, lambda v: f"expected {what}, got {_show(v)}"))
    if maximum is not None:
        checks.append((f"{d} > {maximum}",
                       over or (lambda v: f"expected {what}, at most {maximum:,.0f}, got "
                                          f"{_show(v)}")))
    value = f"TRY_CAST({d} AS BIGINT)" if integer else d
    return _Col(value, checks, pre)


def _bool_col(raw: _Raw, name: str) -> _Col:
    expr, typ = raw.columns[name][:2]
    b = f"_b_{name}"
    msg = (lambda v: f"expected a boolean (true/false, 1/0, yes/no), got {_show(v)}")
    if typ == "BOOLEAN":
        return _Col(b, [], {b: f"CAST({expr} AS INTEGER)"})
    if _is_number_type(typ):
        v = f"CAST({expr} AS DOUBLE)"
        return _Col(f"TRY_CAST({b} AS INTEGER)", [(f"{b} NOT IN (0, 1)", msg)], {b: v})
    t = f"_t_{name}"
    trues = ", ".join(_lit(x) for x in _TRUE)
    falses = ", ".join(_lit(x) for x in _FALSE)
    pre = {t: f"lower({_text_expr(expr, typ)})"}
    pre[b] = f"CASE WHEN {pre[t]} IN ({trues}) THEN 1 WHEN {pre[t]} IN ({falses}) THEN 0 END"
    return _Col(b, [(f"{t} IS NOT NULL AND {b} IS NULL", msg)], pre)


def _ts_col(raw: _Raw, name: str) -> _Col:
    expr, typ = raw.columns[name][:2]
    s = f"_s_{name}"
    msg = (lambda v: f"expected an ISO 8601 timestamp, got {_show(v)}")
    if typ.startswith("TIMESTAMP") or typ == "DATE":
        return _Col(s, [], {s: f"epoch(CAST({expr} AS TIMESTAMPTZ))"})
    if _is_number_type(typ) or typ == "BOOLEAN":
        return _Col("NULL", [(f"{s} IS NOT NULL", msg)], {s: expr})
    t = f"_t_{name}"
    pre = {t: _text_expr(expr, typ)}
    # ISO 8601: DuckDB's parser; a bare number is not a timestamp.
    pre[s] = (f"CASE WHEN TRY_CAST({pre[t]} AS DOUBLE) IS NULL THEN "
              f"epoch(TRY_CAST({pre[t]} AS TIMESTAMPTZ)) END")
    return _Col(s, [(f"{t} IS NOT NULL AND {s} IS NULL", msg)], pre)


def _kind_col(raw: _Raw) -> _Col:
    expr, typ = raw.columns["kind"][:2]
    t = "_t_kind"
    pre = {t: f"lower({_text_expr(expr, typ)})"}
    return _Col(f"CASE WHEN {t} = 'summary' THEN 1 ELSE 0 END",
                [(f"{t} IS NOT NULL AND {t} NOT IN ('attempt', 'summary')",
                  lambda v: f"expected 'attempt' or 'summary', got {_show(v)}")], pre)


def _columns(raw: _Raw) -> dict[str, _Col]:
    has = raw.columns
    cols: dict[str, _Col] = {}
    for name in ("task_id", "task_type", "phase", "model"):
        cols[name] = _text_col(raw, name, required=True)
    cols["attempt"] = _num_col(
        raw, "attempt", integer=True, minimum=1, maximum=MAX_ATTEMPTS, required=True,
        what="an integer >= 1",
        over=lambda v: f"attempt {_show(v)} is above the ceiling of {MAX_ATTEMPTS} attempts per "
                       f"phase")
    for name in ("input_tokens", "output_tokens"):
        cols[name] = _num_col(raw, name, integer=True, minimum=0, maximum=MAX_LOG_TOKENS,
                              required=True, what="an integer >= 0")
    if "cached_input_tokens" in has:
        cols["cached_input_tokens"] = _num_col(
            raw, "cached_input_tokens", integer=True, minimum=0, maximum=MAX_LOG_TOKENS,
            required=False, what="an integer >= 0")
    cols["success"] = _bool_col(raw, "success")
    if "call" in has:
        cols["call"] = _num_col(raw, "call", integer=True, minimum=1, maximum=MAX_LOG_CALLS,
                                required=False, what="an integer >= 1")
    if "calls" in has:
        cols["calls"] = _num_col(raw, "calls", integer=True, minimum=1, maximum=MAX_LOG_CALLS,
                                 required=False, what="an integer >= 1")
    if "kind" in has:
        cols["kind"] = _kind_col(raw)
    if "cost_usd" in has:
        cols["cost_usd"] = _num_col(raw, "cost_usd", integer=False, minimum=0, maximum=1e12,
                                    required=False, what="a number >= 0")
    if "reviewer_changes" in has:
        cols["reviewer_changes"] = _num_col(raw, "reviewer_changes", integer=True, minimum=0,
                                            maximum=1e9, required=False,
                                            what="an integer >= 0")
    if "timestamp" in has:
        cols["timestamp"] = _ts_col(raw, "timestamp")
    if "signals" in has:
        cols["signals"] = _text_col(raw, "signals", required=False)
    if "run" in has:
        cols["run"] = _text_col(raw, "run", required=False)
    if "cached_input_tokens" in has:
        # input_tokens counts cached input too, so the cached part cannot be larger.
        cols["cached_input_tokens"].checks.append((
            "_d_cached_input_tokens > _d_input_tokens",
            lambda v: f"{_show(v)} cached tokens is more than input_tokens (input_tokens "
                      f"counts all input, cached included)"))
    return cols


def _checks(cols: dict[str, _Col]) -> list[tuple[str, str, object]]:
    """Every check of a file, in the order a row reports them: (column, predicate, message)."""
    return [(name, pred, msg) for name, c in cols.items() for pred, msg in c.checks]


def _normalised_select(i: int, raw: _Raw, cols: dict[str, _Col], checks: list,
                       enums: dict) -> str:
    """Two stages: the inner SELECT parses each raw value once; the outer one builds the
    normalised columns and ``_bad``, the number of the first check the row fails (0: none).
    ``enums``: text column -> the ENUM type it is stored as. No row number: the rows are
    stored in file order and ``runs`` numbers them from the table's rowid (see read_log)."""
    def get(name, default):
        value = cols[name].value if name in cols else default
        if name in enums and name != "run":
            return f"CAST({value} AS {enums[name]})"
        return value

    pre = {k: v for c in cols.values() for k, v in c.pre.items()}
    inner = ", ".join(f"{v} AS {k}" for k, v in pre.items())
    call = get("call", "NULL")
    calls = get("calls", "NULL")
    bad = "0"
    if checks:
        bad = "CASE " + " ".join(f"WHEN {p} THEN {k + 1}" for k, (_, p, _) in
                                 enumerate(checks)) + " ELSE 0 END"
    out = [
        f"{i} AS src",
        (f"CAST(COALESCE({get('run', 'NULL')}, '') AS {enums['run']}) AS run" if "run" in enums
         else f"COALESCE({get('run', 'NULL')}, '') AS run"),
        f"{cols['task_id'].value} AS task_id", f"{get('task_type', None)} AS task_type",
        f"{get('phase', None)} AS phase", f"{get('model', None)} AS model",
        f"TRY_CAST({cols['attempt'].value} AS INTEGER) AS attempt",
        f"TRY_CAST({call} AS INTEGER) AS call",
        f"TRY_CAST(CASE WHEN {call} IS NOT NULL THEN 1 ELSE COALESCE({calls}, 1) END AS INTEGER)"
        f" AS calls",
        f"CAST({get('kind', '0')} AS INTEGER) AS is_summary",
        f"{cols['input_tokens'].value} AS input_tokens",
        f"COALESCE({get('cached_input_tokens', '0')}, 0) AS cached_input_tokens",
        f"{cols['output_tokens'].value} AS output_tokens",
        f"CAST({cols['success'].value} AS INTEGER) AS success",
        f"CAST({get('cost_usd', 'NULL')} AS DOUBLE) AS cost_usd",
        (f"{get('signals', 'NULL')} AS signals" if "signals" in enums
         else f"CAST({get('signals', 'NULL')} AS VARCHAR) AS signals"),
        f"{get('reviewer_changes', 'NULL')} AS reviewer_changes",
        f"CAST({get('timestamp', 'NULL')} AS DOUBLE) AS ts",
        f"{bad} AS _bad",
    ]
    return f"SELECT {', '.join(out)} FROM (SELECT {inner} FROM {raw.source})"


def _raw_value(con, raw: _Raw, row: int, column: str):
    """The value of ``column`` in data row ``row`` as written (error messages only)."""
    try:
        if raw.fmt == "parquet":
            expr = raw.columns[column][0]
            return con.execute(f"SELECT {expr} FROM {raw.source} WHERE {raw.rowid} = {row}"
                               ).fetchone()[0]
        if raw.fmt == "jsonl":
            expr = raw.columns[column][0]
            return con.execute(f"SELECT {expr} FROM {raw.source} WHERE {raw.rowid} = {row}"
                               ).fetchone()[0]
        k = raw.header.index(column)
        with _open_text(raw.actual) as fh:
            csv.field_size_limit(2**31 - 1)
            seen = -1
            for rec in csv.reader(fh):
                if rec:
                    if seen == row:
                        return rec[k] if k < len(rec) else None
                    seen += 1
    except Exception:  # only a nicer message is lost
        return None
    return None


def _first_row(con, query: str):
    r = con.execute(query).fetchone()
    return None if r is None or r[0] is None else r


def _cross_checks(con, log: RunsLog) -> None:
    """Checks across rows: one task type per task, no repeated attempt or call, one model and
    one outcome per attempt, every attempt says whether it succeeded. Each is a GROUP BY; the
    offending row is looked for only when one fails."""
    R = log.relation
    # One task, one task type.
    if _first_row(con, f"SELECT task_id FROM {R} GROUP BY task_id "
                       f"HAVING MIN(task_type) <> MAX(task_type) LIMIT 1"):
        r = _first_row(con, f"""
            WITH bad AS (SELECT task_id FROM {R} GROUP BY task_id
                         HAVING COUNT(DISTINCT task_type) > 1),
                 rows AS (SELECT r.* FROM {R} r JOIN bad USING (task_id)),
                 first AS (SELECT task_id, task_type, row_number() OVER (PARTITION BY task_id
                           ORDER BY pos) AS k FROM rows)
            SELECT r.src, r.row, r.task_id, f.task_type FROM rows r JOIN first f
              ON f.task_id = r.task_id AND f.k = 1 AND r.task_type <> f.task_type
            ORDER BY r.pos LIMIT 1""")
        raise log.error(r[0], r[1], "task_type", f"task '{r[2]}' already appeared with task "
                        f"type '{r[3]}'")
    # Per attempt (summaries apart): repeated attempt rows or calls, attempt and call rows
    # mixed, more than one model, a success and a failure, or no outcome at all. One GROUP BY;
    # the offending row is looked for only when one fails.
    # A task whose rows all leave success empty has no outcome (a usage log imported without
    # outcomes): allowed, and measured apart (spend yes, success rates no). A task with an
    # outcome must give one on every attempt (``known``: the task has one somewhere).
    known = (f"SELECT run, task_id, MAX(success) AS known FROM {R} WHERE is_summary = 0 "
             f"GROUP BY run, task_id")
    agg = f"""
          SELECT g.*, tk.known FROM (
            SELECT run, task_id, phase, attempt, is_summary,
                   SUM(CASE WHEN call IS NULL THEN 1 ELSE 0 END) AS attempt_rows,
                   COUNT(call) AS call_rows,
                   MIN(model) AS m_lo, MAX(model) AS m_hi,
                   MIN(success) AS lo, MAX(success) AS hi, MAX(pos) AS last_pos
            FROM {R} GROUP BY run, task_id, phase, attempt, is_summary) g
          JOIN ({known}) tk ON tk.run = g.run AND tk.task_id = g.task_id"""
    cond = ("(a.is_summary = 1 AND (a.attempt_rows + a.call_rows) > 1) OR "
            "(a.is_summary = 0 AND (a.attempt_rows > 1 OR "
            "(a.attempt_rows > 0 AND a.call_rows > 0) OR a.m_lo <> a.m_hi OR a.lo <> a.hi "
            "OR (a.hi IS NULL AND a.known IS NOT NULL)))")
    if log.call_rows == 0:
        # Per-attempt rows: a row is an attempt, so only repeats and missing outcomes can be
        # wrong (cheaper than the full per-attempt aggregate).
        dup = _first_row(con, f"SELECT 1 FROM {R} GROUP BY run, task_id, phase, attempt, "
                              f"is_summary HAVING COUNT(*) > 1 LIMIT 1")
        miss = _first_row(con, f"SELECT 1 FROM {R} WHERE is_summary = 0 AND success IS NULL "
                               f"LIMIT 1")
        if miss:       # only an error in a task that has an outcome elsewhere
            miss = _first_row(con, f"SELECT 1 FROM {R} r JOIN ({known}) tk ON tk.run = r.run "
                                   f"AND tk.task_id = r.task_id WHERE r.is_summary = 0 AND "
                                   f"r.success IS NULL AND tk.known IS NOT NULL LIMIT 1")
        if not dup and not miss:
            return
    else:
        # A repeated call is its own GROUP BY: as COUNT(DISTINCT call) in the aggregate, DuckDB
        # grouped the rows a second time by call and joined the two back (twice the cost).
        dup = _first_row(con, f"SELECT 1 FROM {R} GROUP BY run, task_id, phase, attempt, "
                              f"is_summary, call HAVING COUNT(*) > 1 LIMIT 1")
        if not dup and not _first_row(con, f"SELECT 1 FROM ({agg}) a WHERE {cond} LIMIT 1"):
            return
    key = ("run, task_id, phase, is_summary, CASE WHEN is_summary = 1 THEN 0 ELSE attempt END, "
           "call")
    r = _first_row(con, f"""
        SELECT src, row, attempt, task_id, phase, call, is_summary FROM (
          SELECT *, row_number() OVER (PARTITION BY {key} ORDER BY pos) AS k
          FROM {R}) WHERE k > 1 ORDER BY pos LIMIT 1""")
    if r:
        src, row, attempt, tid, ph, call, summ = r
        if summ:
            raise log.error(src, row, "kind", f"a second summary of task '{tid}' phase '{ph}'")
        if call is not None:
            raise log.error(src, row, "call", f"call {call} of attempt {attempt} of task "
                            f"'{tid}' phase '{ph}' appears twice")
        raise log.error(src, row, "attempt", f"attempt {attempt} of task '{tid}' phase '{ph}' "
                        f"appears twice")
    r = _first_row(con, f"""
        WITH a AS ({agg})
        SELECT r.src, r.row, CASE
                 WHEN a.attempt_rows > 0 AND a.call_rows > 0 THEN 'mixed'
                 WHEN a.m_lo <> a.m_hi THEN 'models'
                 WHEN a.lo <> a.hi THEN 'conflict'
                 ELSE 'missing' END, a.attempt, a.task_id, a.phase, a.attempt_rows
        FROM a JOIN {R} r ON r.pos = a.last_pos
        WHERE a.is_summary = 0 AND ((a.attempt_rows > 0 AND a.call_rows > 0)
              OR a.m_lo <> a.m_hi OR a.lo <> a.hi OR (a.hi IS NULL AND a.known IS NOT NULL))
        ORDER BY r.pos LIMIT 1""")
    src, row, what, attempt, tid, ph, attempt_rows = r
    name = f"attempt {attempt} of task '{tid}' phase '{ph}'"
    if what == "mixed":
        raise log.error(src, row, "call", f"{name} has both a per-attempt row (no call) "
                        f"and per-call rows")
    if what == "models":
        raise log.error(src, row, "model", f"{name} names more than one model")
    if what == "conflict":
        raise log.error(src, row, "success", f"{name} is both a success and a failure")
    raise log.error(src, row, "success", "required value missing (other attempts of the task "
                    "have an outcome)" if attempt_rows
                    else f"required value missing: no row of {name} says whether it "
                         f"succeeded (other attempts of the task do)")


_ENUMS = ("run", "task_type", "phase", "model", "signals")
MAX_ENUM = 100_000


def _enum_types(con, raws: list, sample: int = 0) -> tuple[dict, list]:
    """The low-cardinality text columns are stored as DuckDB ENUMs (dictionary codes): every
    GROUP BY and join of the measurements runs on small integers instead of strings, about a
    third faster. They read and compare as text. A column with more than MAX_ENUM distinct
    values stays text. One pass per file (GROUPING SETS: a CSV file is parsed once for all the
    columns) collects the distinct raw values; the trimming is done on the distinct values
    only. Returns (text column -> ENUM type, per file the set of enum columns whose raw values
    are all trimmed and short: see :func:`_skip_trim`).

    ``sample``: read only the first ``sample`` rows of each CSV file (the values a log's
    first rows show are nearly always all it has). The caller must then treat a value outside
    the types, or an untrimmed one, as a miss: the CAST to the ENUM fails the statement."""
    found: dict = {}
    too_many: set = set()
    clean: list = [set() for _ in raws]
    for i, raw in enumerate(raws):
        cols = [c for c in _ENUMS if c in raw.columns and c not in too_many]
        if not cols:
            continue
        exprs = ", ".join(f"{raw.columns[c][0]} AS e{k}" for k, c in enumerate(cols))
        sets = ", ".join(f"(e{k})" for k in range(len(cols)))
        flags = ", ".join(f"GROUPING(e{k}) AS g{k}" for k in range(len(cols)))
        source = raw.source
        if sample and raw.fmt == "csv":
            source = f"(SELECT * FROM {raw.source} LIMIT {int(sample)})"
        try:       # the first full read of a CSV file: where DuckDB finds it malformed
            con.execute(f"CREATE OR REPLACE TEMP TABLE _distinct AS SELECT {flags}, "
                        f"{', '.join(f'e{k}' for k in range(len(cols)))} FROM (SELECT {exprs} "
                        f"FROM {source}) GROUP BY GROUPING SETS ({sets})")
        except Exception as exc:
            if raw.fmt == "csv":
                raise _csv_failure(raw, exc) from None
            raise CostsimError(f"cannot read the file: {_duck_error(exc)}", raw.shown) from None
        sizes = con.execute("SELECT " + ", ".join(
            f"COUNT(*) FILTER (WHERE g{k} = 0)" for k in range(len(cols)))
            + " FROM _distinct").fetchone()
        for k, col in enumerate(cols):
            if sizes[k] > MAX_ENUM * 4:
                too_many.add(col)
                continue
            v = f"CAST(e{k} AS VARCHAR)"
            rows = con.execute(
                f"SELECT NULLIF(TRIM({v}), '') AS t, bool_and(e{k} IS NULL OR ({v} = TRIM({v}) "
                f"AND length({v}) <= {MAX_LOG_TEXT})) FROM _distinct WHERE g{k} = 0 "
                f"GROUP BY t").fetchall()
            values = found.setdefault(col, set())
            values |= {r[0] for r in rows if r[0] is not None}
            if len(values) > MAX_ENUM:
                too_many.add(col)
                continue
            if raw.columns[col][1] == "VARCHAR" and all(r[1] for r in rows):
                clean[i].add(col)
        con.execute("DROP TABLE _distinct")
    enums = {}
    for col in _ENUMS:
        if col in too_many or col not in found:
            continue
        values = found[col] | ({""} if col == "run" else set())
        if not values:
            continue
        con.execute(f"CREATE TYPE enum_{col} AS ENUM "
                    f"({', '.join(_lit(v) for v in sorted(values))})")
        enums[col] = f"enum_{col}"
    return enums, [c & set(enums) for c in clean]


def _skip_trim(cols: dict, clean: set) -> None:
    """Every raw value of these text columns is already trimmed and short (seen in the
    DISTINCT of :func:`_enum_types`): the per-row TRIM and the length check cannot change or
    flag anything, and cost a tenth of the reading pass. Only '' -> NULL remains to do."""
    for name in clean:
        c = cols[name]
        t = c.value
        c.pre[t] = c.pre[t].replace(f"NULLIF(TRIM({c.raw}), '')", f"NULLIF({c.raw}, '')")
        c.checks = [ch for ch in c.checks if not ch[0].startswith(f"length({t}) > ")]


ENUM_SAMPLE = 50_000      # CSV rows whose text values make the ENUMs on the fast path


def _typed(raw: _Raw) -> _Raw:
    """A CSV file read with DuckDB's parser typing the numeric, boolean and timestamp columns
    itself (fast); any value it cannot parse fails the statement."""
    return _Raw(**{**raw.__dict__, "source": _csv_source(raw, True), "columns": {
        n: ((c, _CSV_TYPES[n]) if n in _CSV_TYPES else (c, t))
        for n, (c, t) in raw.columns.items()}})


def _load_rows_fast(con, raws: list) -> list | None:
    """The ENUMs from the first ENUM_SAMPLE rows of each CSV file, then every file in one
    typed pass. Any failure (a text value the sample did not show, a value DuckDB's typed
    parse refuses, a malformed file) undoes it all and returns None: :func:`_load_rows` then
    does the exact work and gives the located error. Returns each file's checks."""
    try:
        enums, clean = _enum_types(con, raws, sample=ENUM_SAMPLE)
    except CostsimError:
        enums = None
    if enums is not None:
        done = []
        checks = []
        try:
            for i, raw in enumerate(raws):
                r = _typed(raw) if raw.fmt == "csv" else raw
                cols = _columns(r)
                _skip_trim(cols, clean[i])
                checks.append(_checks(cols))
                verb = "CREATE TEMP TABLE runs_rows AS" if i == 0 else "INSERT INTO runs_rows"
                con.execute(f"{verb} {_normalised_select(i, r, cols, checks[-1], enums)}")
                done.append(r)
            raws[:] = done
            return checks
        except Exception:  # noqa: BLE001 - any miss: the exact path below decides
            pass
    con.execute("DROP TABLE IF EXISTS runs_rows")
    for col in _ENUMS:
        con.execute(f"DROP TYPE IF EXISTS enum_{col}")
    return None


def _load_rows(con, raws: list) -> list:
    """Every file into ``runs_rows``, the ENUMs from all of every file's values. Returns each
    file's checks."""
    enums, clean = _enum_types(con, raws)
    checks = []
    for i, raw in enumerate(raws):
        verb = "CREATE TEMP TABLE runs_rows AS" if i == 0 else "INSERT INTO runs_rows"
        if raw.fmt == "csv":
            # Typed first; a value DuckDB's parser cannot take fails the statement (rolled
            # back), and the file is read again as text, every value checked in SQL.
            typed = _typed(raw)
            cols = _columns(typed)
            _skip_trim(cols, clean[i])
            checks.append(_checks(cols))
            try:
                con.execute(f"{verb} {_normalised_select(i, typed, cols, checks[-1], enums)}")
                raws[i] = typed
                continue
            except Exception:  # noqa: BLE001 - read again as text below
                checks.pop()
        cols = _columns(raw)
        _skip_trim(cols, clean[i])
        checks.append(_checks(cols))
        try:
            con.execute(f"{verb} {_normalised_select(i, raw, cols, checks[-1], enums)}")
        except Exception as exc:
            err = (_locate_csv_problem(raw.shown, raw.actual, len(raw.header))
                   if raw.fmt == "csv" else None)
            if err is not None:
                raise err from None
            raise CostsimError(f"cannot read the file: {_duck_error(exc)}", raw.shown) from None
    return checks


def read_log(path: str | Path, *, engine: str = "duckdb") -> RunsLog:
    """Read, validate and normalise ``path`` (a file, a directory of logs or a glob pattern).

    Returns a :class:`RunsLog` whose engine holds the relation ``runs`` with the columns of
    :data:`RUNS_COLUMNS`. Every problem is a :class:`CostsimError` naming file, line and column.
    The caller closes it (:meth:`RunsLog.close`) when done.
    """
    from .engines import check_engine

    check_engine(engine)
    import duckdb

    shown_path = str(path)
    files = find_files(shown_path)
    threads = int(os.environ.get("COSTSIM_DUCKDB_THREADS", 0)) or max(1, min(os.cpu_count()
                                                                             or 1, 8))
    con = duckdb.connect(config={"threads": threads})
    # No progress bar: on a long query DuckDB draws one on stdout, into the report.
    con.execute("SET enable_progress_bar = false")
    # Memory stays flat however long the log: past this DuckDB spills to the temp directory
    # (a 50M-row log calibrates within 1.5 GB all told; docs/performance.md).
    con.execute(f"SET memory_limit = {_lit(os.environ.get('COSTSIM_DUCKDB_MEMORY', '800MB'))}")
    tmp = tempfile.TemporaryDirectory(prefix="costsim-log-")
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"SET temp_directory = {_lit(os.path.join(tmp.name, 'spill'))}")
        locators, raws, fmts, tables = [], [], set(), []
        for i, shown in enumerate(files):
            fmt, comp = _kind(shown)
            fmts.add(fmt)
            try:
                size = os.stat(shown).st_size
            except OSError as exc:
                raise CostsimError(f"cannot read file: {exc.strerror}", shown) from None
            if size == 0:
                raise CostsimError("file is empty (expected a runs log with a header row)",
                                   shown)
            if not os.access(shown, os.R_OK):
                raise CostsimError("cannot read file: permission denied", shown)
            actual = _unpack(shown, comp, tmp.name) if comp in _UNPACK else shown
            if fmt == "csv":
                # Read straight from the file (no copy of it as a table): as text for the
                # ENUM pass, typed for the normalised one (see below).
                raw = _load_csv(i, shown, actual)
                raw.source = _csv_source(raw, typed=False)
            elif fmt == "jsonl":
                raw = _load_jsonl(con, i, shown, actual)
                tables.append(raw.source)
            else:
                raw = _load_parquet(con, i, shown, actual)
            missing = [c for c in REQUIRED if c not in raw.columns]
            if missing:
                found = ", ".join(list(raw.columns)[:12]) or "none of the known ones"
                raise CostsimError(f"missing required column{'s' if len(missing) > 1 else ''} "
                                   f"{', '.join(missing)} (columns found: {found})", shown,
                                   1 if fmt != "parquet" else None)
            locators.append(_Locator(shown, actual, fmt))
            raws.append(raw)
        all_cols = frozenset(c for raw in raws for c in raw.columns if c in OPTIONAL)

        # One pass per file: typed values plus the number of the first check the row fails,
        # stored in file order (preserve_insertion_order, DuckDB's default): `runs_rows`'
        # rowid is the row's place in the log, and the view ``runs`` numbers the rows from it.
        # CSV files are read straight into it, with no copy of the file as a table (DuckDB's
        # CSV reader gives no row numbers: the rowid does), first on the fast path below.
        checks = _load_rows_fast(con, raws) if any(r.fmt == "csv" for r in raws) else None
        if checks is None:
            checks = _load_rows(con, raws)
        per_file = con.execute("""SELECT src, count(*), count(cost_usd), count(reviewer_changes),
                count(ts), MIN(run), MAX(run), count(call), SUM(is_summary), MAX(_bad)
                FROM runs_rows GROUP BY src""").fetchall()
        counts = {r[0]: r[1] for r in per_file}
        for i, raw in enumerate(raws):
            if counts.get(i, 0) == 0:
                raise CostsimError("no rows (the log has a header but no attempts)", raw.shown)
        runs_lo = min(r[5] for r in per_file)
        runs_hi = max(r[6] for r in per_file)
        stats = [sum(r[1] for r in per_file), sum(r[2] for r in per_file),
                 sum(r[3] for r in per_file), sum(r[4] for r in per_file),
                 2 if runs_lo != runs_hi else 1, sum(r[7] for r in per_file),
                 sum(r[8] or 0 for r in per_file), max(r[9] for r in per_file)]
        # row: the data row within its file (files were appended in order); pos: rowid.
        starts = [0]
        for i in range(len(raws) - 1):
            starts.append(starts[-1] + counts.get(i, 0))
        if stats[7]:
            src, rowid, k = con.execute("SELECT src, rowid, _bad FROM runs_rows WHERE _bad > 0 "
                                        "ORDER BY rowid LIMIT 1").fetchone()
            row = rowid - starts[src]
            column, _, msg = checks[src][k - 1]
            if callable(msg):
                msg = msg(_raw_value(con, raws[src], row, column))
            raise locators[src].error(row, column, msg)
        row = ("rowid" if len(raws) == 1
               else f"rowid - CAST([{', '.join(map(str, starts))}][src + 1] AS BIGINT)")
        con.execute(f"CREATE TEMP VIEW runs AS SELECT src, {row} AS row, rowid AS pos, "
                    f"* EXCLUDE (src) FROM runs_rows")
        for table in tables:
            con.execute(f"DROP TABLE {table}")
        log = RunsLog(
            engine=DuckDBEngine(con), path=shown_path, files=files,
            fmt=next(iter(fmts)) if len(fmts) == 1 else "mixed", rows=int(stats[0]),
            columns=all_cols, has_cost=stats[1] > 0, has_changes=stats[2] > 0,
            has_timestamps=stats[3] > 0, has_signals="signals" in all_cols,
            has_runs=stats[4] > 1, call_rows=int(stats[5]), summary_rows=int(stats[6] or 0),
            locators=locators, _tmp=tmp)
        _cross_checks(con, log)
        if engine != "duckdb":       # measurements run elsewhere: costsim/logs/engines.py
            from .engines import hand_over

            log.engine = hand_over(con, engine, tmp.name, list(RUNS_COLUMNS))
            con.close()
        return log
    except BaseException:
        con.close()
        tmp.cleanup()
        raise
