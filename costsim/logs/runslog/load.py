"""Loading every file's rows into ``runs_rows``: the ENUM types of the low-cardinality text
columns, then the fast path (ENUMs from a sample, CSV typed by DuckDB's parser) or the
exact one (every value, a located error).
"""

from __future__ import annotations

from ...errors import CostsimError
from .columns import _checks, _columns, _normalised_select
from .formats import _CSV_TYPES, _Raw, _csv_failure, _csv_source, _duck_error, _locate_csv_problem
from .quoting import _lit
from .schema import MAX_LOG_TEXT

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
            # raw values, before trimming: several spellings (' bugfix', 'bugfix ') may
            # trim to one value, so the trimmed count is checked below; past 4x the ceiling
            # the column is text without counting further
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


def _load_rows_fast(con, raws: list, omit=frozenset()) -> list | None:
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
                con.execute(f"{verb} {_normalised_select(i, r, cols, checks[-1], enums, omit)}")
                done.append(r)
            raws[:] = done
            return checks
        except Exception:  # noqa: BLE001 - any miss: the exact path below decides
            pass
    con.execute("DROP TABLE IF EXISTS runs_rows")
    for col in _ENUMS:
        con.execute(f"DROP TYPE IF EXISTS enum_{col}")
    return None


def _load_rows(con, raws: list, omit=frozenset()) -> list:
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
                con.execute(f"{verb} "
                            f"{_normalised_select(i, typed, cols, checks[-1], enums, omit)}")
                raws[i] = typed
                continue
            except Exception:  # noqa: BLE001 - read again as text below
                checks.pop()
        cols = _columns(raw)
        _skip_trim(cols, clean[i])
        checks.append(_checks(cols))
        try:
            con.execute(f"{verb} {_normalised_select(i, raw, cols, checks[-1], enums, omit)}")
        except Exception as exc:
            err = (_locate_csv_problem(raw.shown, raw.actual, len(raw.header))
                   if raw.fmt == "csv" else None)
            if err is not None:
                raise err from None
            raise CostsimError(f"cannot read the file: {_duck_error(exc)}", raw.shown) from None
    return checks
