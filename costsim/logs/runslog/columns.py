"""Validation and normalisation in SQL: per column, the expression that parses its raw value
and the checks a row must pass (:class:`_Col`), and the SELECT that turns a raw relation
into normalised rows, each with the number of the first check it fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...limits import MAX_ATTEMPTS
from .formats import _Raw
from .quoting import _lit, _show
from .schema import MAX_LOG_CALLS, MAX_LOG_TEXT, MAX_LOG_TOKENS

_TRUE = ("true", "t", "yes", "y", "1", "1.0")
_FALSE = ("false", "f", "no", "n", "0", "0.0")


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


#: normalised column -> (the raw columns that give it a value per row, the value without them)
_CONSTANT_WITHOUT = {
    "run": (("run",), "CAST('' AS VARCHAR)"),
    "call": (("call",), "CAST(NULL AS INTEGER)"),
    "calls": (("call", "calls"), "CAST(1 AS INTEGER)"),
    "is_summary": (("kind",), "CAST(0 AS INTEGER)"),
    "cost_usd": (("cost_usd",), "CAST(NULL AS DOUBLE)"),
    "signals": (("signals",), "CAST(NULL AS VARCHAR)"),
}


def constant_columns(raws: list) -> dict[str, str]:
    """The normalised columns that hold one value on every row of the log (no file has the
    column they come from; ``src`` with one file), as SQL constants of their stored type. They
    are not stored: the view ``runs`` supplies them (writing 1M copies of a constant costs as
    much as a real column)."""
    have = {c for raw in raws for c in raw.columns}
    out = {"src": "CAST(0 AS INTEGER)"} if len(raws) == 1 else {}
    out.update({name: value for name, (sources, value) in _CONSTANT_WITHOUT.items()
                if not have.intersection(sources)})
    return out


def _normalised_select(i: int, raw: _Raw, cols: dict[str, _Col], checks: list,
                       enums: dict, omit=frozenset()) -> str:
    """Two stages: the inner SELECT parses each raw value once; the outer one builds the
    normalised columns and ``_bad``, the number of the first check the row fails (0: none).
    ``enums``: text column -> the ENUM type it is stored as; ``omit``: columns not stored
    (:func:`constant_columns`). No row number: the rows are stored in file order and ``runs``
    numbers them from the table's rowid (see read_log)."""
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
    out = [o for o in out if o.rsplit(" AS ", 1)[1] not in omit]
    return f"SELECT {', '.join(out)} FROM (SELECT {inner} FROM {raw.source})"
