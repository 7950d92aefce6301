"""Loading one file of each format (CSV, JSON Lines, Parquet) into a raw relation
(:class:`_Raw`): its known columns, their SQL and types; where DuckDB refuses a malformed
file, the first line at fault; and a raw value read back for an error message.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field

from ...errors import CostsimError
from .files import _Locator, _open_text, _reason
from .quoting import _lit, _q
from .schema import KNOWN


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
        if actual.lower().endswith(".gz"):
            import gzip

            opened = gzip.open(actual, "rb")
        else:
            opened = open(actual, "rb")
        with opened as fh:
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
    bad = con.execute(f"SELECT min(rowid) FROM {table} "
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


def _raw_value(con, raw: _Raw, row: int, column: str):
    """The value of ``column`` in data row ``row`` as written (error messages only)."""
    try:
        if raw.fmt in ("parquet", "jsonl"):
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
