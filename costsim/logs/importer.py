"""`costsim log import`: turn what agents write into a runs log (SPEC.md §2.4).

>>> from costsim.logs.importer import import_logs
>>> res = import_logs("claude-code", ["~/.claude/projects"], "runs.parquet",
...                   outcomes="outcomes.csv")                      # doctest: +SKIP
>>> res.rows, res.tasks, res.tasks_without_outcome                  # doctest: +SKIP

How it streams: a source reads its files line by line and hands each record to a
:class:`_StagingSink`, which appends it to a staging CSV in a temporary folder (memory stays flat
however large the logs are). DuckDB (embedded, spilling to that folder past ``memory_limit``,
512 MB by default)
then does everything that needs the whole log at once, in one SQL pipeline:

1. **deduplicate** records that share a source key (Claude Code ``message.id`` + ``requestId``,
   LiteLLM ``request_id``, OTLP trace + span id), keeping the most complete copy (most tokens;
   on a tie the earliest timestamp, then the first one read);
2. **resolve** task (``--task-by``; a record without one falls back to a per-source key), phase
   (``--phase-by``; subagent ids named by their type) and run; an attempt is made by one model,
   so calls on another model inside it go to their own phase ``<phase>@<model>``;
3. **number** the calls of each attempt by time (``call``: 1, 2, ...);
4. **join outcomes** (``--outcomes`` and outcomes a source states, e.g. OTel evaluation
   events): a task's outcome is the success of its last attempt (the one holding its last
   call, calls moved to a ``@model`` phase aside); every earlier attempt of the task ended and
   handed on, so it succeeded, except an earlier attempt of that same phase, which was retried
   and so failed (a source's own per-attempt success is kept where it has one).
   ``reviewer_changes`` goes on the task's last row, ``task_type`` and ``signals`` on every row;
5. **sort** (run, task, attempt start time, phase, attempt, call) and write CSV, JSON Lines or
   Parquet to a temporary file next to ``--out``, renamed over it only when complete.

Same input, same bytes out: rows sorted on a total order, fixed column order, no wall clock.
"""

from __future__ import annotations

import contextlib
import csv
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CostsimError
from .outcomes import read_outcomes
from .reading import expand
from .sources import SOURCES, get_source
from .sources.base import DEFAULT_TASK_TYPE, Options

MAX_REASONS = 5           # malformed lines quoted in the report
OUT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl",
               ".ndjson": "jsonl"}

STAGING = (
    ("seq", "BIGINT"), ("run", "VARCHAR"), ("task", "VARCHAR"), ("fallback_task", "VARCHAR"),
    ("phase", "VARCHAR"), ("phase_ref", "VARCHAR"), ("attempt", "INTEGER"), ("model", "VARCHAR"),
    ("input_tokens", "BIGINT"), ("cached_input_tokens", "BIGINT"), ("output_tokens", "BIGINT"),
    ("cost_usd", "DOUBLE"), ("success", "BOOLEAN"), ("calls", "INTEGER"), ("ts", "VARCHAR"),
    ("dedup_key", "VARCHAR"),
)
MODEL_MAP = (("model", "VARCHAR"), ("matched", "VARCHAR"))
SOURCE_OUTCOMES = (("run", "VARCHAR"), ("task", "VARCHAR"), ("success", "BOOLEAN"))
FILE_OUTCOMES = (("task", "VARCHAR"), ("success", "BOOLEAN"), ("reviewer_changes", "BIGINT"),
                 ("task_type", "VARCHAR"), ("signals", "VARCHAR"))


def output_columns(per_call: bool) -> list[str]:
    """The runs-log columns written, in order (SPEC §2.4: required ones first)."""
    return ["task_id", "task_type", "phase", "attempt", "call" if per_call else "calls",
            "model", "input_tokens", "cached_input_tokens", "output_tokens", "cost_usd",
            "success", "reviewer_changes", "signals", "timestamp", "run"]


@dataclass
class ImportResult:
    source: str
    out: str
    files: int
    rows: int = 0
    records: int = 0             # records read, before deduplication
    duplicates: int = 0
    ignored: int = 0             # lines that are not LLM calls (user messages, metadata ...)
    skipped: int = 0             # malformed lines
    reasons: list[str] = field(default_factory=list)
    tasks: int = 0
    tasks_with_outcome: int = 0
    tasks_without_outcome: int = 0
    outcomes_unmatched: int = 0
    outcomes_unmatched_examples: list[str] = field(default_factory=list)
    tasks_from_fallback: int = 0  # tasks keyed by the source's fallback (no session/branch/tag)
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0         # the sum of stated costs
    rows_with_cost: int = 0
    runs: int = 0
    per_call: bool = True
    models_matched: dict = field(default_factory=dict)   # logged id -> price-table id
    calls_moved: int = 0          # calls on a second model of an attempt: phase "<phase>@<model>"

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return {"version": 1, **asdict(self)}


class _StagingSink:
    """Receives records from a source and appends them to the staging CSV."""

    def __init__(self, fh, default_run: str | None):
        self._w = csv.writer(fh, lineterminator="\n")
        self._w.writerow([c for c, _ in STAGING])
        self.seq = 0
        self.default_run = default_run
        self.ignored = 0
        self.skipped = 0
        self.reasons: list[str] = []
        self.outcomes: dict[tuple[str | None, str], bool] = {}
        self.phase_names: dict[str, str] = {}

    def _row(self, run, task, fallback_task, phase, phase_ref, attempt, model, inp, cached, out,
             cost, success, calls, ts, key):
        if cached is not None and inp is not None and cached > inp:
            raise ValueError("cached > input")  # sources guarantee this; a bug otherwise
        self.seq += 1
        self._w.writerow((
            self.seq, run if run is not None else self.default_run, task, fallback_task, phase,
            phase_ref, attempt, model, inp, cached, out,
            repr(cost) if cost is not None else None,
            None if success is None else ("true" if success else "false"), calls, ts, key))

    def call(self, *, file, line, task, fallback_task, phase, model, input_tokens,
             cached_input_tokens, output_tokens, timestamp, run=None, cost_usd=None,
             dedup_key=None, phase_ref=None):
        self._row(run, task, fallback_task, phase, phase_ref, None, model, input_tokens,
                  cached_input_tokens, output_tokens, cost_usd, None, None, timestamp, dedup_key)

    def attempt(self, *, file, line, task, phase, attempt, model, input_tokens,
                cached_input_tokens, output_tokens, success, run, cost_usd=None, calls=None,
                timestamp=None, dedup_key=None):
        if input_tokens is None and output_tokens is None and cost_usd is None:
            # Nothing says what it cost (an OpenHands instance that never ran, metrics: null):
            # a row with neither could not be billed, and calibrate would refuse the whole log.
            self.skip(file, line, f"{task}: no cost and no token counts (nothing to bill)")
            return
        self._row(run, task, task, phase, None, attempt, model, input_tokens, cached_input_tokens,
                  output_tokens, cost_usd, success, calls, timestamp, dedup_key)

    def skip(self, file, line, reason):
        self.skipped += 1
        if len(self.reasons) < MAX_REASONS:
            self.reasons.append(f"{file}:{line}: {reason}" if line else f"{file}: {reason}")

    def ignore(self, n=1):
        self.ignored += n

    def outcome(self, run, task, success):
        self.outcomes[(run if run is not None else self.default_run, task)] = success

    def name_phase(self, ref, phase):
        self.phase_names.setdefault(ref, phase)


def _out_format(out: Path) -> str:
    suffix = out.suffix.lower()
    if suffix not in OUT_FORMATS:
        raise CostsimError(f"--out: unknown runs-log format '{suffix or '(no extension)'}' "
                           f"(expected .csv, .jsonl or .parquet)", str(out))
    return OUT_FORMATS[suffix]


def _write_csv(path: Path, header: list[str], rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def _sql_str(s: str | Path) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def _columns_clause(cols) -> str:
    return "{" + ", ".join(f"{_sql_str(c)}: {_sql_str(t)}" for c, t in cols) + "}"


def _read_csv(path: Path, cols) -> str:
    return (f"read_csv({_sql_str(path)}, header=true, auto_detect=false, "
            f"columns={_columns_clause(cols)}, quote='\"', escape='\"', nullstr='', "
            f"delim=',', strict_mode=false)")


def import_logs(source: str, paths, out, *, outcomes=None, task_by: str = "session",
                phase_by: str = "agent", run: str | None = None,
                task_type: str = DEFAULT_TASK_TYPE, prices=None,
                memory_limit: str = "512MB") -> ImportResult:
    """Read ``paths`` (files or folders, ``.gz`` allowed) of log ``source`` and write the runs
    log ``out`` (``.csv``, ``.jsonl`` or ``.parquet``). See the module docstring.

    ``prices`` (a price-table path or :class:`~costsim.models.PriceTable`): match logged model
    ids to the table's (:mod:`costsim.logs.model_ids`); None keeps them as logged."""
    src = get_source(source)
    opts = Options(task_by=task_by, phase_by=phase_by)
    opts.check()
    if not str(task_type).strip():
        raise CostsimError("--task-type: must not be empty")
    out = Path(out)
    fmt = _out_format(out)
    paths = [Path(os.path.expanduser(str(p))) for p in paths]
    if not paths:
        raise CostsimError("no log files or folders given")
    if any(p.is_file() and p.resolve() == out.resolve() for p in paths):
        raise CostsimError("--out would overwrite an input (choose another file)", str(out))
    files = expand(paths, src.suffixes, exclude=[out], wanted=src.wanted)
    inputs = {f.resolve() for f in files}
    outcome_path = Path(outcomes) if outcomes is not None else None
    if outcome_path is not None:
        inputs.add(outcome_path.resolve())
    if out.resolve() in inputs or (out.exists() and out.is_dir()):
        raise CostsimError("--out would overwrite an input (choose another file)", str(out))
    if not files:
        raise CostsimError(f"no {src.name} log files found (looked for "
                           f"{', '.join('*' + s for s in src.suffixes)}, optionally .gz)",
                           str(paths[0]))
    table = read_outcomes(outcome_path) if outcome_path is not None else None
    price_ids = _price_ids(prices) if prices is not None else None

    import duckdb

    result = ImportResult(source=src.name, out=str(out), files=len(files), per_call=src.per_call)
    with tempfile.TemporaryDirectory(prefix="costsim-import-") as tmp:
        tmpdir = Path(tmp)
        staging = tmpdir / "staging.csv"
        with open(staging, "w", newline="", encoding="utf-8") as fh:
            sink = _StagingSink(fh, run if run is not None else src.name)
            src.read(files, opts, sink)
        result.ignored, result.skipped, result.reasons = sink.ignored, sink.skipped, sink.reasons
        result.records = sink.seq
        if sink.seq == 0:
            why = f"; first problem: {sink.reasons[0]}" if sink.reasons else ""
            raise CostsimError(f"no {src.name} usage records found in {len(files)} file"
                               f"{'s' if len(files) != 1 else ''} ({sink.ignored} records of "
                               f"other kinds, {sink.skipped} malformed){why}", str(paths[0]))

        _write_csv(tmpdir / "phases.csv", ["ref", "phase"], sorted(sink.phase_names.items()))
        _write_csv(tmpdir / "src_outcomes.csv", ["run", "task", "success"],
                   sorted(((r, t, "true" if s else "false") for (r, t), s in
                           sink.outcomes.items()), key=lambda x: (x[0] or "", x[1])))
        _write_csv(tmpdir / "outcomes.csv",
                   ["task", "success", "reviewer_changes", "task_type", "signals"],
                   table.rows() if table is not None else [])

        # A database file in the temporary folder: the one materialised table lives on disk
        # and memory stays within memory_limit however long the log.
        con = duckdb.connect(str(tmpdir / "import.duckdb"))
        try:
            con.execute(f"SET memory_limit={_sql_str(memory_limit)}")
            con.execute(f"SET temp_directory={_sql_str(tmpdir / 'spill')}")
            con.execute("SET preserve_insertion_order=true")
            con.execute("SET enable_progress_bar=false")   # stdout carries the summary
            _match_models(con, tmpdir, staging, price_ids, result)
            _pipeline(con, tmpdir, staging, src, task_type, result)
            _write(con, out, fmt, src, result)
        except duckdb.Error as exc:  # pragma: no cover - disk full, out of memory
            raise CostsimError(f"import failed: {exc}", str(out)) from None
        finally:
            con.close()
    return result


def _price_ids(prices) -> set[str]:
    from ..loader import load_prices
    from ..models import PriceTable

    table = prices if isinstance(prices, PriceTable) else load_prices(prices)
    return set(table.models)


def _match_models(con, tmpdir: Path, staging: Path, price_ids, result: ImportResult) -> None:
    """The table ``mm(model, matched)`` of logged ids renamed to price-table ids."""
    from .model_ids import match_models

    con.execute(f"CREATE VIEW raw AS SELECT * FROM {_read_csv(staging, STAGING)}")
    pairs: dict[str, str] = {}
    if price_ids is not None:
        logged = [m for (m,) in con.execute("SELECT DISTINCT model FROM raw").fetchall()]
        pairs = match_models(logged, price_ids)
    _write_csv(tmpdir / "models.csv", ["model", "matched"], sorted(pairs.items()))
    con.execute(f"CREATE TABLE mm AS SELECT * FROM "
                f"{_read_csv(tmpdir / 'models.csv', MODEL_MAP)}")
    result.models_matched = dict(sorted(pairs.items()))


def _pipeline(con, tmpdir: Path, staging: Path, src, task_type: str, result: ImportResult):
    con.execute("CREATE VIEW s AS SELECT raw.* REPLACE (coalesce(mm.matched, raw.model) AS model) "
                "FROM raw LEFT JOIN mm ON raw.model = mm.model")
    con.execute(f"CREATE TABLE pm AS SELECT * FROM "
                f"{_read_csv(tmpdir / 'phases.csv', [('ref', 'VARCHAR'), ('phase', 'VARCHAR')])}")
    con.execute(f"CREATE TABLE so AS SELECT * FROM "
                f"{_read_csv(tmpdir / 'src_outcomes.csv', SOURCE_OUTCOMES)}")
    con.execute(f"CREATE TABLE fo AS SELECT * FROM "
                f"{_read_csv(tmpdir / 'outcomes.csv', FILE_OUTCOMES)}")
    fallback_phase = _sql_str(src.fallback_phase)
    # 1-2: deduplicate, resolve task / phase / attempt.
    con.execute(f"""
        CREATE VIEW k AS
        SELECT s.seq, s.run, coalesce(s.task, s.fallback_task) AS task_id,
               s.task IS NULL AS from_fallback,
               coalesce(s.phase, pm.phase, {fallback_phase}) AS phase,
               coalesce(s.attempt, 1) AS attempt, s.model, s.input_tokens,
               s.cached_input_tokens, s.output_tokens, s.cost_usd, s.success, s.calls, s.ts,
               TRY_CAST(s.ts AS TIMESTAMP) AS t
        FROM s LEFT JOIN pm ON s.phase_ref = pm.ref
        QUALIFY s.dedup_key IS NULL OR row_number() OVER (
            PARTITION BY s.dedup_key
            ORDER BY coalesce(s.input_tokens, 0) + coalesce(s.output_tokens, 0) DESC,
                     TRY_CAST(s.ts AS TIMESTAMP) NULLS LAST, s.seq) = 1
    """)
    # 2b: one model per attempt. Calls on another model inside an attempt (Claude Code's quick
    # haiku calls for titles and command checks, a model switched mid-session) are their own
    # phase, "<phase>@<model>"; the attempt keeps the model that made most of its calls (then
    # most tokens).
    con.execute("""
        CREATE VIEW k2 AS
        WITH mc AS (SELECT run, task_id, phase, attempt, model, count(*) AS calls_on,
                           sum(coalesce(input_tokens, 0) + coalesce(output_tokens, 0)) AS toks,
                           min(seq) AS first_seq
                    FROM k GROUP BY run, task_id, phase, attempt, model),
             dom AS (SELECT run, task_id, phase, attempt, model AS main_model FROM (
                       SELECT *, row_number() OVER (PARTITION BY run, task_id, phase, attempt
                                                    ORDER BY calls_on DESC, toks DESC,
                                                             first_seq) AS rk
                       FROM mc) WHERE rk = 1)
        SELECT k.* REPLACE (CASE WHEN k.model = dom.main_model THEN k.phase
                                 ELSE k.phase || '@' || k.model END AS phase),
               k.model <> dom.main_model AS moved
        FROM k JOIN dom ON k.run = dom.run AND k.task_id = dom.task_id
             AND k.phase = dom.phase AND k.attempt = dom.attempt
    """)
    # 3: call numbers, the task's last row, each attempt's start.
    con.execute("""
        CREATE VIEW n AS
        SELECT *,
            row_number() OVER (PARTITION BY run, task_id, phase, attempt
                               ORDER BY t NULLS LAST, seq) AS call,
            row_number() OVER (PARTITION BY run, task_id
                               ORDER BY moved, t DESC NULLS LAST, seq DESC) = 1 AS is_last,
            min(t) OVER (PARTITION BY run, task_id, phase, attempt) AS attempt_start,
            min(seq) OVER (PARTITION BY run, task_id, phase, attempt) AS attempt_seq
        FROM k2
    """)
    # 4: outcomes. The file's (by task id) win over the source's (by run and task id).
    con.execute(f"""
        CREATE TABLE r AS
        WITH last AS (SELECT run, task_id, phase AS lphase, attempt AS lattempt
                      FROM n WHERE is_last),
             o AS (SELECT l.*, coalesce(fo.success, so.success) AS osuccess,
                          fo.reviewer_changes, fo.task_type, fo.signals,
                          fo.task IS NOT NULL AS in_file
                   FROM last l
                   LEFT JOIN fo ON fo.task = l.task_id
                   LEFT JOIN so ON so.run = l.run AND so.task = l.task_id)
        SELECT n.*, coalesce(o.task_type, {_sql_str(task_type)}) AS task_type, o.signals,
            CASE WHEN n.is_last THEN o.reviewer_changes END AS reviewer_changes,
            CASE WHEN o.osuccess IS NULL THEN n.success
                 WHEN n.phase = o.lphase AND n.attempt = o.lattempt THEN o.osuccess
                 WHEN n.success IS NOT NULL THEN n.success
                 WHEN n.phase = o.lphase AND n.attempt < o.lattempt THEN false
                 ELSE true END AS success_out,
            o.in_file
        FROM n JOIN o ON n.run = o.run AND n.task_id = o.task_id
    """)
    q = con.execute("""
        SELECT count(*) AS tasks,
               count(*) FILTER (WHERE has_outcome) AS with_outcome,
               count(*) FILTER (WHERE fallback) AS from_fallback,
               count(DISTINCT run) AS runs
        FROM (SELECT run, task_id, bool_or(success_out IS NOT NULL) AS has_outcome,
                     bool_and(from_fallback) AS fallback
              FROM r GROUP BY run, task_id)
    """).fetchone()
    result.tasks, result.tasks_with_outcome, result.tasks_from_fallback, result.runs = q
    result.tasks_without_outcome = result.tasks - result.tasks_with_outcome
    unmatched = con.execute("""
        SELECT task FROM fo WHERE task NOT IN (SELECT DISTINCT task_id FROM r) ORDER BY task
    """).fetchall()
    result.outcomes_unmatched = len(unmatched)
    result.outcomes_unmatched_examples = [u[0] for u in unmatched[:MAX_REASONS]]
    t = con.execute("""
        SELECT count(*), coalesce(sum(input_tokens), 0), coalesce(sum(cached_input_tokens), 0),
               coalesce(sum(output_tokens), 0), coalesce(sum(cost_usd), 0),
               count(cost_usd), count(*) FILTER (WHERE moved)
        FROM r
    """).fetchone()
    (result.rows, result.input_tokens, result.cached_input_tokens, result.output_tokens,
     result.cost_usd, result.rows_with_cost, result.calls_moved) = t
    result.duplicates = result.records - result.rows
    result.input_tokens = int(result.input_tokens)
    result.cached_input_tokens = int(result.cached_input_tokens)
    result.output_tokens = int(result.output_tokens)
    result.cost_usd = float(result.cost_usd)


def _write(con, out: Path, fmt: str, src, result: ImportResult) -> None:
    cols = output_columns(src.per_call)
    # A row that states its cost but no tokens (the OpenHands index, Aider results files from
    # before token counts) is written with 0 tokens: the runs log requires token counts, and
    # calibrate reads a row with a cost and 0 tokens as billed by its cost (docs/calibrate.md,
    # "Logs that show costs but no tokens"). Left empty, calibrate refused the imported log.
    cost_only = "(cost_usd IS NOT NULL AND input_tokens IS NULL AND output_tokens IS NULL)"

    def tokens(col: str) -> str:
        return f"CASE WHEN {cost_only} THEN coalesce({col}, 0) ELSE {col} END"

    select = {
        "task_id": "task_id", "task_type": "task_type", "phase": "phase", "attempt": "attempt",
        "call": "call::INTEGER", "calls": "calls", "model": "model",
        "input_tokens": tokens("input_tokens"),
        "cached_input_tokens": tokens("cached_input_tokens"),
        "output_tokens": tokens("output_tokens"), "cost_usd": "cost_usd", "success": "success_out",
        "reviewer_changes": "reviewer_changes", "signals": "signals", "timestamp": "ts",
        "run": "run",
    }
    body = ", ".join(f"{select[c]} AS {c}" for c in cols)
    query = (f"SELECT {body} FROM r ORDER BY run, task_id, attempt_start NULLS LAST, "
             f"attempt_seq, phase, attempt, call")
    options = {"csv": "FORMAT csv, HEADER true",
               "jsonl": "FORMAT json",
               "parquet": "FORMAT parquet, COMPRESSION zstd"}[fmt]
    from ..fsutil import replacing

    with replacing(out) as tmp:
        # One thread for the writer: the row groups (and so the bytes) are then the same on
        # every run.
        con.execute("SET threads=1")
        con.execute(f"COPY ({query}) TO {_sql_str(tmp)} ({options})")


@contextlib.contextmanager
def imported_log(source: str, paths, **options):
    """Import into a temporary runs log for the length of the ``with`` block (for
    ``calibrate --source``): yields ``(path, ImportResult)``. Parquet when pyarrow is there to
    read it back, else CSV."""
    try:
        import pyarrow  # noqa: F401
        ext = "parquet"
    except ImportError:
        ext = "csv"
    with tempfile.TemporaryDirectory(prefix="costsim-log-") as tmp:
        out = Path(tmp) / f"runs.{ext}"
        result = import_logs(source, paths, out, **options)
        if options.get("outcomes") is not None and result.tasks_with_outcome == 0:
            example = (f" ('{result.outcomes_unmatched_examples[0]}' is not one)"
                       if result.outcomes_unmatched_examples else "")
            raise CostsimError(f"no task id in the file matches an imported task{example}: "
                               f"task ids are what --task-by {options.get('task_by', 'session')}"
                               f" gives (see `costsim log import`)", str(options["outcomes"]))
        try:
            yield out, result
        except CostsimError as exc:
            # The temporary log means nothing to the user: name what they gave (a row number
            # of the temporary log neither).
            if exc.file != str(out):
                raise
            where = exc.path
            if where and where.startswith("row "):
                where = where.split(": ", 1)[1] if ": " in where else None
            raise CostsimError(exc.message, f"{', '.join(map(str, paths))} ({source})",
                               None, where) from None


__all__ = ["ImportResult", "SOURCES", "import_logs", "imported_log", "output_columns"]
