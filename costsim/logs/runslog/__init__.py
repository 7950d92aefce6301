"""Read and validate a runs log into DuckDB (the runs-log format: docs/calibrate.md, SPEC.md §2.4).

A log is CSV, JSON Lines or Parquet (optionally ``.gz``, ``.bz2``, ``.xz``, a one-file ``.zip``,
or ``.zst`` when the ``zstandard`` package is installed), a directory of such files, or a glob
pattern. Each file is read by DuckDB (CSV typed by its parser where every value parses,
else as text; Parquet keeps its types), every column is validated in SQL, and the rows of all
files become one normalised relation, ``runs`` (see :data:`RUNS_COLUMNS`): a view numbering
the rows of the table ``runs_rows``, stored in file order, by its rowid, and supplying as
constants the columns that hold one value on every row (``columns.constant_columns``: not
stored). Measurements then run SQL
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

import os
import tempfile
from pathlib import Path

from ...errors import CostsimError
from .checks import _cross_checks
from .columns import constant_columns
from .engine import DuckDBEngine, LogEngine, RunsLog
from .files import _UNPACK, _Locator, _kind, _unpack, find_files, log_format
from .formats import _csv_source, _load_csv, _load_jsonl, _load_parquet, _raw_value
from .load import ENUM_SAMPLE, MAX_ENUM, _load_rows, _load_rows_fast
from .quoting import _lit
from .schema import (KNOWN, MAX_LOG_CALLS, MAX_LOG_TEXT, MAX_LOG_TOKENS, OPTIONAL, REQUIRED,
                     RUNS_COLUMNS)

# What other modules, tests and benchmarks import from costsim.logs.runslog (the package's
# interface; the modules behind it are one job each: see their docstrings).
__all__ = ["DuckDBEngine", "ENUM_SAMPLE", "KNOWN", "LogEngine", "MAX_ENUM", "MAX_LOG_CALLS",
           "MAX_LOG_TEXT", "MAX_LOG_TOKENS", "OPTIONAL", "REQUIRED", "RUNS_COLUMNS", "RunsLog",
           "find_files", "log_format", "read_log"]


def read_log(path: str | Path, *, engine: str = "duckdb") -> RunsLog:
    """Read, validate and normalise ``path`` (a file, a directory of logs or a glob pattern).

    Returns a :class:`RunsLog` whose engine holds the relation ``runs`` with the columns of
    :data:`RUNS_COLUMNS`. Every problem is a :class:`CostsimError` naming file, line and column.
    The caller closes it (:meth:`RunsLog.close`) when done.
    """
    from ..engines import check_engine

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
        # Columns with one value on every row are not stored (constant_columns): `rows` is
        # the table with them added back, and the rowid as _rid.
        consts = constant_columns(raws)
        omit = frozenset(consts)
        checks = (_load_rows_fast(con, raws, omit) if any(r.fmt == "csv" for r in raws)
                  else None)
        if checks is None:
            checks = _load_rows(con, raws, omit)
        rows = "(SELECT rowid AS _rid, *" + "".join(f", {v} AS {k}" for k, v in consts.items()) \
            + " FROM runs_rows)"
        per_file = con.execute(f"""SELECT src, count(*), count(cost_usd), count(reviewer_changes),
                count(ts), MIN(run), MAX(run), count(call), SUM(is_summary), MAX(_bad)
                FROM {rows} GROUP BY src""").fetchall()
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
            src, rowid, k = con.execute(f"SELECT src, _rid, _bad FROM {rows} WHERE _bad > 0 "
                                        f"ORDER BY _rid LIMIT 1").fetchone()
            row = rowid - starts[src]
            column, _, msg = checks[src][k - 1]
            if callable(msg):
                msg = msg(_raw_value(con, raws[src], row, column))
            raise locators[src].error(row, column, msg)
        row = ("_rid" if len(raws) == 1
               else f"_rid - CAST([{', '.join(map(str, starts))}][src + 1] AS BIGINT)")
        names = [c for c in RUNS_COLUMNS if c not in ("src", "row", "pos")] + ["_bad"]
        con.execute(f"CREATE TEMP VIEW runs AS SELECT src, {row} AS row, _rid AS pos, "
                    f"{', '.join(names)} FROM {rows}")
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
            from ..engines import hand_over

            log.engine = hand_over(con, engine, tmp.name, list(RUNS_COLUMNS))
            con.close()
        return log
    except BaseException:
        con.close()
        tmp.cleanup()
        raise
