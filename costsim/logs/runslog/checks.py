"""The checks across rows, run on the normalised relation once every row is valid: one task
type per task, no repeated attempt or call, one model and one outcome per attempt.
"""

from __future__ import annotations

from .engine import RunsLog


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
