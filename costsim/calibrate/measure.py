"""Runs log -> measurements, in SQL.

Every query here reads the normalised relation of :mod:`costsim.logs.runslog` through its
:class:`~costsim.logs.runslog.LogEngine` and returns a small aggregate table: per task type,
phase, model, attempt index, call index, signal set ... Pandas and SciPy only ever see these
aggregates, never one row per call or per attempt. The SQL is portable (GROUP BY, CASE, window
functions, VALUES lists, CREATE TEMPORARY TABLE); no engine-specific list or struct functions.

Two relations are materialised once and reused (``engine.materialize``):

- ``cal_att``: one row per attempt (and per summarizer call) with its token totals, outcome and
  spend;
- ``cal_task``: one row per task and run with its completion, spend, signals, reviewer changes
  and the set of models it used (a bit mask).

A task is a ``(run, task_id)``: the same task_id in two runs is the same task done twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import CostsimError
from ..models import PriceTable

Z95 = 1.959963984540054
PER_MILLION = 1_000_000.0
_BIG = 1e18          # "no long-context threshold" (portable: no infinity in SQL text)


# --- statistics -----------------------------------------------------------------------------

VARIATION_TASKS = 5_000    # tasks whose attempts the task-level fits read (a sample beyond)


def wilson(successes, n, z: float = Z95):
    """Wilson score interval (lo, hi) for arrays or scalars; (0, 1) where n == 0."""
    import numpy as np

    k = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(n > 0, k / n, 0.0)
        denom = 1.0 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
        lo = np.where(n > 0, np.clip(centre - half, 0.0, 1.0), 0.0)
        hi = np.where(n > 0, np.clip(centre + half, 0.0, 1.0), 1.0)
    if lo.ndim == 0:
        return float(lo), float(hi)
    return lo, hi


def _rate(k, n):
    return float(k) / float(n) if n else None


def canon_signals(text) -> str:
    """``'b; a'`` -> ``'a;b'`` (sorted, de-duplicated); None or '' -> ''."""
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return ""
    import re

    return ";".join(sorted({s.strip() for s in re.split(r"[;,]", str(text)) if s.strip()}))


def lit(value) -> str:
    """A SQL literal."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return repr(_BIG if value > 0 else -_BIG)
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def values(rows: list[tuple], names: list[str], alias: str) -> str:
    """A VALUES list usable as a relation: ``(VALUES (...), ...) AS alias(names)``."""
    body = ", ".join("(" + ", ".join(lit(v) for v in r) + ")" for r in rows)
    return f"(VALUES {body}) AS {alias}({', '.join(names)})"


def _missing(v) -> bool:
    import pandas as pd

    return v is None or bool(pd.isna(v))


# --- the measurements -----------------------------------------------------------------------

@dataclass
class Measurements:
    """Aggregates of one log (each a pandas DataFrame unless said otherwise)."""

    task_types: list[str]
    phase_order: dict[str, list[str]]
    runs: list[str]
    tokens: object            # per (run, tt, phase, is_summary, attempt, call, calls, model)
    attempts: object = None   # per (run, tt, phase, attempt, model, signals): n, k
    tasks: object = None      # per (run, tt, signals): tasks, completed, spend, ...
    abandoned: object = None  # per (run, tt, phase, last attempt): phase runs that ran out
    defects: object = None    # per (run, tt, signals, models of defect phases, reviewer,
                              #      changes): tasks
    starts: object = None     # per (run, tt, phase, signals, model): phase runs started by it
    by_model: list = field(default_factory=list)
    by_route: list = field(default_factory=list)
    by_task_type: list = field(default_factory=list)
    by_run: list = field(default_factory=list)
    overall: dict = field(default_factory=dict)
    weekly: list = field(default_factory=list)
    summaries: list = field(default_factory=list)
    groups: object = None     # per (run, tt, route mask): tasks, completion, spend ...
    unpriced_rows: int = 0    # rows without cost_usd in a log that has the column
    span_days: float | None = None
    distinct_tasks: int = 0
    first_days: object = None     # per UTC day: tasks first seen that day (day, n)
    first_range: tuple | None = None   # (first, last) task start, epoch seconds
    pivot_phases: list = field(default_factory=list)   # phases of ``defects``' d0, d1 ...
    review_phase: str | None = None
    no_outcome_tasks: int = 0     # tasks whose rows all leave success empty (measured apart)
    no_outcome_spend: float = 0.0
    records: object = None    # per attempt of up to VARIATION_TASKS tasks (variation, cost-only;
                              #   cost NaN when read before pricing: no phase is cost-only)
    records_sampled: bool = False
    unpriced_models: object = None  # per model the price table lacks: cost_moments' sums


class Measure:
    """Runs the measurement queries of one log (see the module docstring)."""

    def __init__(self, log, table: PriceTable, prices_path: str):
        self.log = log
        self.table = table
        self.prices_path = prices_path
        self.R = log.relation
        self._unknown: bool | None = None

    def sql(self, q: str):
        return self.log.sql(q)

    # --- structure ---------------------------------------------------------------------

    def structure(self) -> tuple[list[str], dict[str, list[str]], list[str]]:
        """Task types, each one's phases in the order tasks run them, and the runs."""
        R = self.R
        # A phase's start relative to its task's start, averaged per (task type, phase): tasks
        # run their phases in order, so this orders them (timestamps when the log has them).
        key = "ts" if self.log.has_timestamps else "CAST(pos AS DOUBLE)"

        def order_query(where: str):
            return self.sql(f"""
                WITH ph AS (
                  SELECT run, task_id, task_type, phase, MIN({key}) AS t0
                  FROM {R} WHERE is_summary = 0 AND (call IS NULL OR call = 1) {where}
                  GROUP BY run, task_id, task_type, phase),
                rk AS (SELECT task_type, phase,
                              t0 - MIN(t0) OVER (PARTITION BY run, task_id) AS rel FROM ph)
                SELECT task_type, phase, AVG(rel) AS rank, COUNT(*) AS n
                FROM rk GROUP BY task_type, phase""")

        # The order is the same in every task: the first 200,000 rows of the first file show
        # it; the whole log is read only when they miss a (task type, phase) it has.
        d = order_query("AND pos < 200000")
        seen = set(zip(d["task_type"], d["phase"]))
        allp = self.sql(f"SELECT DISTINCT task_type, phase FROM {R} WHERE is_summary = 0")
        if set(zip(allp["task_type"], allp["phase"])) - seen:
            d = order_query("")
        d = d.sort_values(["task_type", "rank", "phase"])
        order: dict[str, list[str]] = {}
        for tt, ph in zip(d["task_type"], d["phase"]):
            order.setdefault(str(tt), []).append(str(ph))
        runs = sorted(str(r) for r in self.sql(f"SELECT DISTINCT run FROM {R}")["run"])
        return sorted(order), order, runs

    def token_table(self, order: dict[str, list[str]] | None = None):
        """Token sums per (run, task type, phase, kind, attempt, call, calls, model).

        With ``order`` (each task type's phases in order), also each cell's tasks' relative
        size: ``xs`` the sum over the cell's rows of their task's :meth:`task_size_sql` and
        ``nxs`` how many rows have one. ``xs / nxs`` is the cell's mean size relative to all
        tasks of its type, what the token fit divides the cell's means by."""
        R = self.R
        if order is None:
            return self.sql(f"""
                SELECT run, task_type, phase, is_summary, attempt, call,
                       CASE WHEN call IS NULL THEN calls END AS calls, model,
                       COUNT(*) AS n, SUM(input_tokens) AS input,
                       SUM(cached_input_tokens) AS cached, SUM(output_tokens) AS output
                FROM {R}
                GROUP BY run, task_type, phase, is_summary, attempt, call,
                         CASE WHEN call IS NULL THEN calls END, model""")
        return self.sql(f"""
            WITH {self.task_size_sql(order)}
            SELECT r.run, r.task_type, r.phase, r.is_summary, r.attempt, r.call,
                   CASE WHEN r.call IS NULL THEN r.calls END AS calls, r.model,
                   COUNT(*) AS n, SUM(r.input_tokens) AS input,
                   SUM(r.cached_input_tokens) AS cached, SUM(r.output_tokens) AS output,
                   SUM(xn.xn) AS xs, COUNT(xn.xn) AS nxs
            FROM {R} r LEFT JOIN xn ON xn.run = r.run AND xn.task_id = r.task_id
            GROUP BY r.run, r.task_type, r.phase, r.is_summary, r.attempt, r.call,
                     CASE WHEN r.call IS NULL THEN r.calls END, r.model""")

    def task_size_sql(self, order: dict[str, list[str]]) -> str:
        """The common table expressions (``x, g, xn``) of each task's size relative to the
        other tasks of its type: ``xn(run, task_id, xn)``, ``xn`` the input tokens of its first
        phase's first attempt (all its calls) over their mean across the tasks of the same run
        and task type whose attempt made as many calls. Every task makes that attempt, whatever
        it does later, so ``xn`` reads its size with no selection (SPEC §3.5: every token count
        of a task is its size times one factor); call rows and attempt rows of the same runs
        give the same ``xn``. Exactly 1 when those inputs do not vary."""
        R = self.R
        first = values([(tt, phases[0]) for tt, phases in sorted(order.items()) if phases]
                       or [("", "")], ["ftt", "fph"], "fp")
        return f"""
            x AS (
              SELECT r.run, r.task_id, MIN(r.task_type) AS tt, SUM(r.calls) AS c,
                     SUM(r.input_tokens) AS x1
              FROM {R} r JOIN {first} ON fp.ftt = r.task_type AND fp.fph = r.phase
              WHERE r.is_summary = 0 AND r.attempt = 1
              GROUP BY r.run, r.task_id),
            g AS (SELECT run, tt, c, SUM(x1) AS sx, COUNT(*) AS nx FROM x GROUP BY run, tt, c),
            xn AS (
              SELECT x.run, x.task_id,
                     CASE WHEN g.sx > 0 THEN CAST(x.x1 AS DOUBLE) * g.nx / g.sx ELSE 1.0 END
                       AS xn
              FROM x JOIN g ON g.run = x.run AND g.tt = x.tt AND g.c = x.c)"""

    # --- pricing ------------------------------------------------------------------------

    def models_checked(self) -> list[str]:
        """The log's models, after checking that every row without cost_usd names a model of
        the price table."""
        R = self.R
        d = self.sql(f"SELECT model, MIN(CASE WHEN cost_usd IS NULL THEN pos END) AS pos "
                     f"FROM {R} GROUP BY model")
        bad = d[[str(m) not in self.table.models and not _missing(p)
                 for m, p in zip(d["model"], d["pos"])]]
        if not bad.empty:
            pos = int(bad["pos"].min())
            r = self.sql(f"SELECT src, row, model FROM {R} WHERE pos = {pos}").iloc[0]
            raise self.log.error(r["src"], r["row"], "model",
                                 f"'{r['model']}' is not in the price table "
                                 f"{self.prices_path} and the row has no cost_usd")
        return sorted(str(m) for m in d["model"])

    def cost_moments(self, models: list[str]):
        """For each of ``models`` (the log's models the price table lacks: every row of theirs
        states its cost), the sums a least-squares fit of per-token rates to those costs needs:
        row count, tokens (uncached input ``u``, cached input ``c``, output ``o``, in millions),
        their cross products and products with the cost. A few numbers per model, one pass.
        Only rows that show tokens count: a row with a cost and no tokens is shown by cost
        only (:mod:`.cost_only` prices such phases), no rate can bill it, and a model with no
        other rows is left out."""
        if not models:
            return None
        R = self.R
        names = ", ".join(lit(m) for m in models)
        u = "(CAST(input_tokens AS DOUBLE) - COALESCE(cached_input_tokens, 0)) / 1e6"
        c = "CAST(COALESCE(cached_input_tokens, 0) AS DOUBLE) / 1e6"
        o = "CAST(output_tokens AS DOUBLE) / 1e6"
        return self.sql(f"""
            SELECT model, COUNT(*) AS n, SUM(cost_usd) AS y, SUM(cost_usd * cost_usd) AS yy,
                   SUM(u) AS su, SUM(c) AS sc, SUM(o) AS so,
                   SUM(u * u) AS uu, SUM(u * c) AS uc, SUM(u * o) AS uo, SUM(c * c) AS cc,
                   SUM(c * o) AS co, SUM(o * o) AS oo,
                   SUM(u * cost_usd) AS uy, SUM(c * cost_usd) AS cy, SUM(o * cost_usd) AS oy
            FROM (SELECT model, cost_usd, {u} AS u, {c} AS c, {o} AS o FROM {R}
                  WHERE model IN ({names}) AND input_tokens + output_tokens > 0)
            GROUP BY model ORDER BY model""")

    def _price_values(self, models: list[str]) -> str:
        """Every model of the log: its rates (NULL when unpriced) and its route bit."""
        rows = []
        for i, m in enumerate(models):
            bit = (1 << i) if i < 62 else 0
            mp = self.table.models.get(m)
            if mp is None:
                rows.append((m, None, None, None, _BIG, None, None, None, bit))
                continue
            cr = mp.cache_read if mp.cache_read is not None else mp.input
            lc = mp.long_context
            if lc is None:
                above, li, lo, lcr = _BIG, mp.input, mp.output, cr
            else:
                above = float(lc.above)
                li = lc.input if lc.input is not None else mp.input
                lo = lc.output if lc.output is not None else mp.output
                lcr = lc.cache_read if lc.cache_read is not None else li
            rows.append((m, float(mp.input), float(cr), float(mp.output), above, float(li),
                         float(lcr), float(lo), bit))
        if not rows:
            rows = [("", 0.0, 0.0, 0.0, _BIG, 0.0, 0.0, 0.0, 0)]
        return values(rows, ["pmodel", "p_in", "p_cr", "p_out", "p_above", "p_lin", "p_lcr",
                             "p_lout", "p_bit"], "p")

    def row_spend_sql(self, one_call: bool = False) -> str:
        """SQL for the spend of one row of ``r`` (joined with ``p`` prices and ``gg`` growth;
        ``one_call``: every row stands for one call, so neither the split below nor ``gg``).

        cost_usd when given. Else a call row (or a one-call attempt row) is one call: billed at
        the long-context rates when its input exceeds the model's threshold. A row standing for
        n > 1 calls is split back into its calls: call j's input is ``a + (j-1)*g`` with ``g``
        the phase's fitted growth per call and ``a`` chosen so the inputs add up to the row's
        input; cached input and output are spread in proportion (an approximation,
        docs/calibrate.md)."""
        n = "CAST(r.calls AS DOUBLE)"
        inp = "CAST(r.input_tokens AS DOUBLE)"
        cac = "CAST(r.cached_input_tokens AS DOUBLE)"
        out = "CAST(r.output_tokens AS DOUBLE)"
        one = (f"CASE WHEN {inp} > p.p_above THEN ({inp} - {cac}) * p.p_lin + {cac} * p.p_lcr "
               f"+ {out} * p.p_lout ELSE ({inp} - {cac}) * p.p_in + {cac} * p.p_cr "
               f"+ {out} * p.p_out END")
        g = "COALESCE(gg.g, 0.0)"
        a = f"({inp} / {n} - {g} * ({n} - 1) / 2)"
        j0 = (f"(CASE WHEN {g} > 0 THEN LEAST(GREATEST(FLOOR((p.p_above - {a}) / {g}) + 2, 1), "
              f"{n} + 1) WHEN {a} > p.p_above THEN 1 ELSE {n} + 1 END)")
        m = f"({n} - {j0} + 1)"
        i_lc = f"({m} * {a} + {g} * (({n} - 1) * {n} / 2 - ({j0} - 2) * ({j0} - 1) / 2))"
        fc = f"(CASE WHEN {inp} > 0 THEN {cac} / {inp} ELSE 0 END)"
        o_lc = f"({out} * {m} / {n})"
        many = (f"(({inp} - {i_lc}) * (1 - {fc}) * p.p_in + ({cac} - {i_lc} * {fc}) * p.p_cr "
                f"+ ({out} - {o_lc}) * p.p_out + {i_lc} * (1 - {fc}) * p.p_lin "
                f"+ {i_lc} * {fc} * p.p_lcr + {o_lc} * p.p_lout)")
        priced = f"(CASE WHEN r.calls <= 1 THEN {one} ELSE {many} END) / {PER_MILLION}"
        if one_call:
            priced = f"({one}) / {PER_MILLION}"
        return f"COALESCE(r.cost_usd, {priced})"

    # --- the materialised relations -----------------------------------------------------

    def build(self, growth: dict[tuple[str, str], float], models: list[str]) -> None:
        """Materialise ``cal_att``, ``cal_phase`` and ``cal_task`` (the pricing of per-attempt
        rows needs each phase's growth per call)."""
        R = self.R
        gv = values([(tt, ph, float(g)) for (tt, ph), g in growth.items()] or [("", "", 0.0)],
                    ["gtt", "gph", "g"], "gg")
        eng = self.log.engine
        # spend in pico-dollars (integers): sums are exact and independent of their order;
        # bit: the model's bit in the route mask (the first 62 models).
        # A log without a ``calls`` column has one call per row (call rows, or attempts of
        # one call): priced as one call, without the growth join (0.06 s of CPU per 1M rows).
        one_call = "calls" not in self.log.columns
        spend = f"CAST(ROUND({self.row_spend_sql(one_call)} * 1e12) AS BIGINT)"
        joins = f"{R} r LEFT JOIN {self._price_values(models)} ON p.pmodel = r.model"
        if not one_call:
            joins += f" LEFT JOIN {gv} ON gg.gtt = r.task_type AND gg.gph = r.phase"
        # Tasks without an outcome (no row says whether it succeeded: a usage log imported
        # without outcomes) are measured apart, count and spend only; every rate, completion
        # and cost per completed task is over the others. Their tokens still reach the token
        # fit (token_table reads every row) and they count in the volume.
        has_unknown = self.has_unknown()
        eng.materialize("cal_unknown", f"""
            SELECT run, task_id FROM {R} WHERE is_summary = 0 {'' if has_unknown else 'AND 1 = 0'}
            GROUP BY run, task_id HAVING MAX(success) IS NULL""")
        self.no_outcome = (0, 0.0)
        if has_unknown:
            r = self.sql(f"""
                SELECT (SELECT COUNT(*) FROM (SELECT DISTINCT run, task_id FROM {R}) d) AS n,
                       (SELECT COUNT(*) FROM cal_unknown) AS unknown,
                       (SELECT SUM({spend}) FROM {joins}
                        JOIN cal_unknown u ON u.run = r.run AND u.task_id = r.task_id)
                         AS unknown_pico""")
            total, unknown = int(r["n"].iloc[0]), int(r["unknown"].iloc[0] or 0)
            pico = r["unknown_pico"].iloc[0]
            self.no_outcome = (unknown, 0.0 if _missing(pico) else float(pico) / 1e12)
            if unknown == total:
                raise CostsimError("no task in the log has an outcome (every success is "
                                   "empty): join outcomes with `costsim log import --outcomes "
                                   "FILE`", self.log.path)
        if has_unknown:    # the anti-join costs a probe per row: only when there is one
            joins += (" LEFT JOIN cal_unknown u ON u.run = r.run AND u.task_id = r.task_id"
                      " WHERE u.task_id IS NULL")
        if self.log.call_rows == 0:
            # one row per attempt already (summaries are one row too): no grouping needed
            eng.materialize("cal_att", f"""
                SELECT r.run, r.task_id, r.task_type, r.phase, r.attempt, r.is_summary,
                       r.model, r.calls, 1 AS nrows, r.input_tokens, r.cached_input_tokens,
                       r.output_tokens, r.success, r.pos, r.ts, r.signals,
                       r.reviewer_changes AS changes, p.p_bit AS bit, {spend} AS pico
                FROM {joins}""")
        else:
            eng.materialize("cal_att", f"""
                SELECT r.run, r.task_id, MIN(r.task_type) AS task_type, r.phase, r.attempt,
                       r.is_summary, MIN(r.model) AS model, SUM(r.calls) AS calls,
                       COUNT(*) AS nrows, SUM(r.input_tokens) AS input_tokens,
                       SUM(r.cached_input_tokens) AS cached_input_tokens,
                       SUM(r.output_tokens) AS output_tokens, MAX(r.success) AS success,
                       MIN(r.pos) AS pos, MIN(r.ts) AS ts, MAX(r.signals) AS signals,
                       MAX(r.reviewer_changes) AS changes, MIN(p.p_bit) AS bit,
                       SUM({spend}) AS pico
                FROM {joins}
                GROUP BY r.run, r.task_id, r.phase, r.attempt, r.is_summary""")
        # route: the OR of the task's model bits (each a power of two). BIT_OR, not
        # SUM(DISTINCT bit): a DISTINCT aggregate makes DuckDB group the attempts a second time
        # by (run, task, bit) and join the two back, half of this query's time; sqlglot writes
        # BIT_OR for Spark, Postgres, BigQuery and BITWISE_OR_AGG for Trino.
        # one row per phase run: whether it ended in success (its last attempt's outcome),
        # where it succeeded, its last attempt, the model that started it
        eng.materialize("cal_phase", """
            SELECT run, task_id, phase, MIN(task_type) AS task_type,
                   MOD(MAX(attempt * 2 + success), 2) AS ok, MAX(attempt) AS last_attempt,
                   MIN(CASE WHEN success = 1 THEN attempt END) AS success_at,
                   COALESCE(MIN(CASE WHEN attempt = 1 THEN model END), MIN(model))
                     AS start_model
            FROM cal_att WHERE is_summary = 0 GROUP BY run, task_id, phase""")
        eng.materialize("cal_task", """
            WITH pt AS (SELECT run, task_id, MIN(ok) AS completed FROM cal_phase
                        GROUP BY run, task_id),
            ag AS (SELECT run, task_id, MIN(task_type) AS task_type, SUM(pico) AS pico,
                          SUM(CASE WHEN is_summary = 0 THEN 1 ELSE 0 END) AS attempts,
                          SUM(CASE WHEN is_summary = 0 AND attempt > 1 THEN 1 ELSE 0 END)
                            AS retries,
                          MAX(signals) AS signals, MAX(changes) AS changes, MIN(ts) AS ts,
                          MIN(pos) AS pos, BIT_OR(bit) AS route
                   FROM cal_att GROUP BY run, task_id)
            SELECT ag.run, ag.task_id, ag.task_type, COALESCE(ag.signals, '') AS signals,
                   pt.completed, ag.pico, ag.attempts, ag.retries, ag.changes, ag.ts, ag.pos,
                   COALESCE(ag.route, 0) AS route
            FROM ag JOIN pt ON pt.run = ag.run AND pt.task_id = ag.task_id""")

    # --- aggregates over the materialised relations -----------------------------------

    def _signals_of(self, alias: str) -> tuple[str, str]:
        """(the task's signals, the join that brings them) for rows of ``alias``. A log without
        a signals column has '' for every task: no join of every row with cal_task (every
        attempt and phase run of cal_att/cal_phase has its task there, so the join drops none)."""
        if not self.log.has_signals:
            return "CAST('' AS VARCHAR)", ""
        return "t.signals", (f"JOIN cal_task t ON t.run = {alias}.run AND "
                             f"t.task_id = {alias}.task_id")

    def attempt_table(self):
        """Attempts and successes per (run, tt, phase, attempt, model, task signals)."""
        sig, join = self._signals_of("a")
        by_sig = ", t.signals" if join else ""
        return self.sql(f"""
            SELECT a.run, a.task_type, a.phase, a.attempt, a.model, {sig} AS signals,
                   COUNT(*) AS n, SUM(a.success) AS k
            FROM cal_att a {join}
            WHERE a.is_summary = 0
            GROUP BY a.run, a.task_type, a.phase, a.attempt, a.model{by_sig}""")

    def attempt_records(self, limit: int):
        """One row per recorded attempt (summaries left out) of at most ``limit`` tasks (a
        deterministic sample by a hash of the task id when there are more): what the task-level
        fits (variation, cost-only prices) need. Returns (frame, sampled)."""
        # Without summary rows cal_task has every task of cal_att (a row per task and run):
        # the count and the sample read it instead of every attempt. The task's signals are
        # joined only when the log has a signals column ('' otherwise).
        tasks = "cal_att" if self.log.summary_rows else "cal_task"
        n = int(self.sql(f"SELECT COUNT(DISTINCT task_id) AS n FROM {tasks}")["n"].iloc[0])
        where = ""
        if n > limit:
            where = (f"AND a.task_id IN (SELECT task_id FROM (SELECT DISTINCT task_id FROM "
                     f"{tasks}) d ORDER BY hash(task_id), task_id LIMIT {int(limit)})")
        sig, join = self._signals_of("a")
        f = self.sql(f"""
            SELECT a.run, a.task_id, a.task_type, a.phase, a.attempt, a.model, a.success,
                   a.calls, a.input_tokens, a.output_tokens,
                   CAST(a.pico AS DOUBLE) / 1e12 AS cost, COALESCE({sig}, '') AS signals
            FROM cal_att a {join}
            WHERE a.is_summary = 0 {where}
            ORDER BY a.pos""")
        return f, n > limit

    def has_unknown(self) -> bool:
        """Whether some attempt leaves success empty (a task without an outcome, measured
        apart): one query, asked by :meth:`early_records` and :meth:`build`."""
        if self._unknown is None:
            self._unknown = bool(self.sql(
                f"SELECT COUNT(*) AS n FROM (SELECT 1 FROM {self.R} WHERE is_summary = 0 AND "
                f"success IS NULL LIMIT 1) x")["n"].iloc[0])
        return self._unknown

    def early_records(self, limit: int):
        """The variation fit's part of :meth:`attempt_records` (every column but ``cost``), read
        from the log's rows before any pricing, so the fit can start while the queries that
        price the log run: the same tasks (the same sample), attempts, order and values.
        None when it cannot stand in for them: a task without an outcome (the sample is drawn
        among the others, which takes the pricing's anti-join) or no output tokens in the
        sample (the fit then sizes tasks by cost)."""
        R = self.R
        if self.has_unknown():
            return None
        n = int(self.sql(f"SELECT COUNT(DISTINCT task_id) AS n FROM {R}")["n"].iloc[0])
        where = ""
        if n > limit:
            where = (f"AND r.task_id IN (SELECT task_id FROM (SELECT DISTINCT task_id FROM "
                     f"{R}) d ORDER BY hash(task_id), task_id LIMIT {int(limit)})")
        if self.log.has_signals:     # the task's signals: over all its rows (cal_task's)
            sig = "COALESCE(t.signals, '')"
            join = (f"JOIN (SELECT run, task_id, MAX(signals) AS signals FROM {R} r "
                    f"WHERE 1 = 1 {where} GROUP BY run, task_id) t "
                    f"ON t.run = a.run AND t.task_id = a.task_id")
        else:
            sig, join = "CAST('' AS VARCHAR)", ""
        if self.log.call_rows == 0:
            att = (f"SELECT r.run, r.task_id, r.task_type, r.phase, r.attempt, r.model, "
                   f"r.success, r.calls, r.input_tokens, r.output_tokens, r.pos "
                   f"FROM {R} r WHERE r.is_summary = 0 {where}")
        else:
            att = (f"SELECT r.run, r.task_id, MIN(r.task_type) AS task_type, r.phase, "
                   f"r.attempt, MIN(r.model) AS model, MAX(r.success) AS success, "
                   f"SUM(r.calls) AS calls, SUM(r.input_tokens) AS input_tokens, "
                   f"SUM(r.output_tokens) AS output_tokens, MIN(r.pos) AS pos "
                   f"FROM {R} r WHERE r.is_summary = 0 {where} "
                   f"GROUP BY r.run, r.task_id, r.phase, r.attempt")
        f = self.sql(f"""
            SELECT a.run, a.task_id, a.task_type, a.phase, a.attempt, a.model, a.success,
                   a.calls, a.input_tokens, a.output_tokens, {sig} AS signals
            FROM ({att}) a {join}
            ORDER BY a.pos""")
        if not len(f) or not (f["output_tokens"].to_numpy(float) > 0).any():
            return None
        self.early_sampled = n > limit
        return f

    def start_table(self):
        """Phase runs per (run, tt, phase, signals, model of the first attempt, attempt at
        which it succeeded (NULL: ran out), last attempt)."""
        sig, join = self._signals_of("cp")
        by_sig = ", t.signals" if join else ""
        return self.sql(f"""
            SELECT cp.run, cp.task_type, cp.phase, {sig} AS signals, cp.start_model,
                   cp.success_at, cp.last_attempt, COUNT(*) AS n
            FROM cal_phase cp {join}
            GROUP BY cp.run, cp.task_type, cp.phase{by_sig}, cp.start_model, cp.success_at,
                     cp.last_attempt""")

    def task_table(self):
        """Tasks per (run, tt, signals, completed, changes > 0?, has changes)."""
        return self.sql("""
            SELECT run, task_type, signals, completed,
                   CASE WHEN changes IS NULL THEN -1 WHEN changes > 0 THEN 1 ELSE 0 END
                     AS changed,
                   COUNT(*) AS n, CAST(SUM(pico) AS DOUBLE) AS pico, SUM(attempts) AS attempts,
                   SUM(retries) AS retries
            FROM cal_task GROUP BY run, task_type, signals, completed,
                 CASE WHEN changes IS NULL THEN -1 WHEN changes > 0 THEN 1 ELSE 0 END""")

    def defect_table(self, defect_phases: list[str], review: str | None):
        """Completed tasks with a reviewer_changes value, per pattern: the model that succeeded
        in each defect phase, the model that succeeded in the review phase, the changes."""
        cols = []
        for k, ph in enumerate(defect_phases):
            cols.append(f"MAX(CASE WHEN phase = {lit(ph)} THEN model END) AS d{k}")
        cols.append(f"MAX(CASE WHEN phase = {lit(review)} THEN model END) AS rv"
                    if review else "CAST(NULL AS VARCHAR) AS rv")
        names = [f"s.d{k}" for k in range(len(defect_phases))] + ["s.rv"]
        return self.sql(f"""
            WITH s AS (SELECT run, task_id, {', '.join(cols)} FROM cal_att
                       WHERE is_summary = 0 AND success = 1 GROUP BY run, task_id)
            SELECT t.run, t.task_type, t.signals, {', '.join(names)}, t.changes, COUNT(*) AS n
            FROM cal_task t JOIN s ON s.run = t.run AND s.task_id = t.task_id
            WHERE t.completed = 1 AND t.changes IS NOT NULL
            GROUP BY t.run, t.task_type, t.signals, {', '.join(names)}, t.changes""")

    def model_table(self):
        """Per (run, tt, phase, model, is_summary, attempt = 1?): attempts, successes, tokens,
        spend."""
        return self.sql("""
            SELECT run, task_type, phase, model, is_summary,
                   CASE WHEN attempt = 1 THEN 1 ELSE 0 END AS first, COUNT(*) AS n,
                   SUM(success) AS k, SUM(calls) AS calls, SUM(input_tokens) AS input,
                   SUM(cached_input_tokens) AS cached, SUM(output_tokens) AS output,
                   CAST(SUM(pico) AS DOUBLE) AS pico
            FROM cal_att
            GROUP BY run, task_type, phase, model, is_summary,
                     CASE WHEN attempt = 1 THEN 1 ELSE 0 END""")

    def route_table(self):
        return self.sql("""
            SELECT run, task_type, route, COUNT(*) AS n, SUM(completed) AS completed,
                   CAST(SUM(pico) AS DOUBLE) AS pico,
                   SUM(POWER(CAST(pico AS DOUBLE) / 1e12, 2)) AS spend2,
                   SUM(CASE WHEN completed = 1 THEN CAST(pico AS DOUBLE) / 1e12 ELSE 0 END)
                     AS spend_done,
                     SUM(attempts) AS attempts, SUM(retries) AS retries,
                   SUM(CASE WHEN changes IS NOT NULL THEN 1 ELSE 0 END) AS reviewed,
                   SUM(CASE WHEN changes > 0 THEN 1 ELSE 0 END) AS changed,
                   SUM(CASE WHEN completed = 1 AND changes IS NOT NULL THEN 1 ELSE 0 END)
                     AS reviewed_completed,
                   SUM(CASE WHEN completed = 1 AND changes > 0 THEN 1 ELSE 0 END)
                     AS changed_completed
            FROM cal_task GROUP BY run, task_type, route""")

    def day_table(self):
        return self.sql("""
            SELECT FLOOR(ts / 86400) AS day, run, task_type, COUNT(*) AS n,
                   SUM(completed) AS completed, CAST(SUM(pico) AS DOUBLE) AS pico,
                   SUM(POWER(CAST(pico AS DOUBLE) / 1e12, 2)) AS spend2,
                   SUM(CASE WHEN completed = 1 THEN CAST(pico AS DOUBLE) / 1e12 ELSE 0 END)
                     AS spend_done,
                     SUM(attempts) AS attempts,
                   SUM(retries) AS retries,
                   SUM(CASE WHEN changes IS NOT NULL THEN 1 ELSE 0 END) AS reviewed,
                   SUM(CASE WHEN changes > 0 THEN 1 ELSE 0 END) AS changed,
                   SUM(CASE WHEN completed = 1 AND changes IS NOT NULL THEN 1 ELSE 0 END)
                     AS reviewed_completed,
                   SUM(CASE WHEN completed = 1 AND changes > 0 THEN 1 ELSE 0 END)
                     AS changed_completed
            FROM cal_task WHERE ts IS NOT NULL
            GROUP BY FLOOR(ts / 86400), run, task_type""")

    def volume(self):
        """Distinct task ids; the days between the first and the last task's start (None
        without two timestamps); tasks per UTC day of their first timestamp (a task in several
        runs counts once: columns day, n) and the first and last of those timestamps (epoch
        seconds), None without timestamps. One pass; a few thousand rows however long the
        log."""
        # cal_task holds every (run, task) with its first ts unless some tasks have no outcome
        # (measured apart) or a task could have summary rows only: then the raw rows are
        # grouped instead. From cal_task the GROUP BY reads a row per task, not per row.
        exact = not self.no_outcome[0] and not self.log.summary_rows
        src = "cal_task" if exact else self.R
        d = self.sql(f"""
            WITH f AS (SELECT task_id, MIN(ts) AS ts FROM {src} GROUP BY task_id)
            SELECT CAST(FLOOR(ts / 86400) AS BIGINT) AS day, COUNT(*) AS n, MIN(ts) AS lo,
                   MAX(ts) AS hi
            FROM f GROUP BY 1 ORDER BY 1""")
        n = int(d["n"].sum())
        days = d[d["day"].notna()]
        nts = int(days["n"].sum())
        if nts < 1:
            return n, None, None, None
        lo, hi = float(days["lo"].min()), float(days["hi"].max())
        first = (days[["day", "n"]].astype({"day": "int64"}), (lo, hi))
        if nts < 2 or not math.isfinite(hi - lo):
            return n, None, *first
        # n start times spread uniformly over D days span D * (n - 1) / (n + 1) on average.
        span = (hi - lo) / 86400.0 * (nts + 1) / max(nts - 1, 1)
        return n, span, *first


# --- summary tables (plain arithmetic over the aggregates) ------------------------------------

def summarise(rows) -> dict:
    """tasks, completion, cost per completed task, retries, reviewer changes of a group (rows:
    an iterable of dicts or a DataFrame with the route_table/day_table columns)."""
    n = float(rows["n"].sum())
    c = float(rows["completed"].sum())
    spend = float(rows["pico"].sum()) / 1e12
    rv = float(rows["reviewed_completed"].sum())
    ch = float(rows["changed_completed"].sum())
    lo, hi = wilson(c, n)
    rlo, rhi = wilson(ch, rv)
    # Standard error of cost per completed task (a ratio of two sums over tasks, delta method):
    # var ~ sum((s_i - R c_i)^2) / C^2, with sum(s c) the spend of completed tasks.
    cost_se = None
    if c > 0 and "spend2" in rows:
        R = spend / c
        ss = float(rows["spend2"].sum()) - 2 * R * float(rows["spend_done"].sum()) + R * R * c
        cost_se = math.sqrt(max(ss, 0.0)) / c
    return {
        "tasks": int(n), "completed": int(c),
        "completion_rate": c / n if n else None, "completion_ci95": [lo, hi],
        "spend": spend, "spend_per_task": spend / n if n else None,
        "cost_per_completed_task": spend / c if c > 0 else math.inf,
        "cost_per_completed_task_se": cost_se,
        "attempts_per_task": float(rows["attempts"].sum()) / n if n else None,
        "retries_per_task": float(rows["retries"].sum()) / n if n else None,
        "reviewed_tasks": int(rv),
        "defect_rate": ch / rv if rv > 0 else None,
        "defect_ci95": [rlo, rhi] if rv > 0 else None,
    }


def by_model_rows(models, starts) -> list[dict]:
    """Per (task type, phase, model): first-try and retry success, pass rate by attempt of
    the phase runs the model started, tokens, spend (all runs pooled). Plain Python over the
    aggregates (a few hundred rows)."""
    cols = ("n", "k", "calls", "input", "cached", "output", "pico")
    acc: dict = {}
    att = models[models["is_summary"] == 0]
    for row in zip(att["task_type"], att["phase"], att["model"], att["first"],
                   *(att[c] for c in cols)):
        key = (str(row[0]), str(row[1]), str(row[2]))
        d = acc.setdefault(key, {0: [0.0] * len(cols), 1: [0.0] * len(cols)})
        v = d[int(row[3])]
        for i, x in enumerate(row[4:]):
            v[i] += float(x)
    starts_acc: dict = {}
    for tt, ph, m, sa, last, n in zip(starts["task_type"], starts["phase"],
                                      starts["start_model"], starts["success_at"],
                                      starts["last_attempt"], starts["n"]):
        key = (str(tt), str(ph), str(m))
        starts_acc.setdefault(key, []).append((None if _missing(sa) else int(sa), int(last),
                                               float(n)))
    out = []
    for key in sorted(acc):
        f, r = acc[key][1], acc[key][0]
        fa, fs, ra, rs = int(f[0]), int(f[1]), int(r[0]), int(r[1])
        n_att = fa + ra
        flo, fhi = wilson(fs, fa)
        rlo, rhi = wilson(rs, ra)
        pass_rates = None
        runs_started = 0
        if key in starts_acc:
            s = starts_acc[key]
            total = sum(w for _, _, w in s)
            runs_started = int(total)
            K = max(max(last for _, last, _ in s), 1)
            pass_rates = [sum(w for sa, _, w in s if sa is not None and sa <= k) / total
                          for k in range(1, K + 1)]
        tot = [f[i] + r[i] for i in range(len(cols))]
        out.append({
            "task_type": key[0], "phase": key[1], "model": key[2], "attempts": n_att,
            "successes": fs + rs, "first_attempts": fa, "first_attempt_success": _rate(fs, fa),
            "first_attempt_ci95": [flo, fhi] if fa else None,
            "retry_attempts": ra, "retry_success": _rate(rs, ra),
            "retry_ci95": [rlo, rhi] if ra else None,
            "phase_runs_started": runs_started, "pass_rate_by_attempt": pass_rates,
            "calls_per_attempt": tot[2] / n_att if n_att else None,
            "mean_input_tokens": tot[3] / n_att if n_att else None,
            "mean_cached_input_tokens": tot[4] / n_att if n_att else None,
            "mean_output_tokens": tot[5] / n_att if n_att else None,
            "spend": tot[6] / 1e12,
            "spend_per_attempt": tot[6] / 1e12 / n_att if n_att else None,
        })
    return out


def summary_rows(models) -> list[dict]:
    """Summarizer calls per (task type, phase summarized, model)."""
    s = models[models["is_summary"] == 1]
    if s.empty:
        return []
    g = s.groupby(["task_type", "phase", "model"], sort=True)[
        ["n", "input", "output", "pico"]].sum().reset_index()
    return [{"task_type": r.task_type, "phase": r.phase, "model": r.model, "calls": int(r.n),
             "mean_input_tokens": r.input / r.n, "mean_output_tokens": r.output / r.n,
             "spend": float(r.pico) / 1e12} for r in g.itertuples()]


def route_label(mask: int, models: list[str]) -> str:
    return " + ".join(m for i, m in enumerate(models) if i < 62 and (int(mask) >> i) & 1) \
        or "(none)"


def weekly_rows(days) -> list[dict]:
    """Per ISO week of each task's first timestamp (all runs pooled)."""
    import datetime as dt

    if days is None or days.empty:
        return []
    d = days.copy()
    d["week"] = [dt.date.fromordinal(dt.date(1970, 1, 1).toordinal() + int(x)).isocalendar()[:2]
                 for x in d["day"]]
    out = []
    for (y, w), grp in sorted(d.groupby("week"), key=lambda kv: kv[0]):
        row = {"week": f"{y}-W{w:02d}"}
        row.update(summarise(grp))
        out.append(row)
    return out


def measure(log, table: PriceTable, prices_path: str, *, growth_fn, records_fn=None):
    """Run every query. ``growth_fn(measurements)`` fits the per-call growth the pricing of
    per-attempt rows needs; ``records_fn(records)``, when given, is called as soon as the
    variation fit's attempt records are read (it starts on them while the queries after go
    on): before any pricing when :meth:`Measure.early_records` can read them, else with
    ``measurements.records``. Returns :class:`Measurements`."""
    M = Measure(log, table, prices_path)
    early = M.early_records(VARIATION_TASKS) if records_fn is not None else None
    if early is not None:
        records_fn(early)
    models = M.models_checked()
    task_types, order, runs = M.structure()
    ms = Measurements(task_types=task_types, phase_order=order, runs=runs,
                      tokens=M.token_table(order))
    ms.unpriced_models = M.cost_moments([m for m in models if m not in table.models])
    growth = growth_fn(ms)
    M.build(growth, models)
    ms.attempts = M.attempt_table()
    from .cost_only import tokenless_phases

    if early is not None and not tokenless_phases(early):
        # The early records stand in for the priced ones (the same tasks, attempts and
        # values: tests/test_calibrate_measure.py): their cost is only read for the phases a
        # log shows by cost alone (cost_only.cost_only_phases: no tokens in the sample), and
        # the sample has none. One query over every attempt fewer (0.06-0.1 s per 1M rows).
        ms.records, ms.records_sampled = early.assign(cost=math.nan), M.early_sampled
    else:
        ms.records, ms.records_sampled = M.attempt_records(VARIATION_TASKS)
    if records_fn is not None and early is None:
        records_fn(ms.records)
    ms.starts = M.start_table()
    ms.tasks = M.task_table()
    ms.pivot_phases = sorted({ph for phases in order.values() for ph in phases})
    ms.review_phase = "review" if "review" in ms.pivot_phases else None
    ms.defects = M.defect_table(ms.pivot_phases, ms.review_phase)
    mt = M.model_table()
    ms.by_model = by_model_rows(mt, ms.starts)
    ms.summaries = summary_rows(mt)
    routes = M.route_table()
    ms.groups = routes
    routes["route_label"] = [route_label(x, models) for x in routes["route"]]
    ms.by_route = []
    for (tt, label), grp in sorted(routes.groupby(["task_type", "route_label"]),
                                   key=lambda kv: kv[0]):
        row = {"task_type": tt, "route": label}
        row.update(summarise(grp))
        ms.by_route.append(row)
    ms.by_task_type = []
    for tt, grp in sorted(routes.groupby("task_type"), key=lambda kv: kv[0]):
        row = {"task_type": tt}
        row.update(summarise(grp))
        ms.by_task_type.append(row)
    ms.by_run = []
    if len(runs) > 1:
        for run, grp in sorted(routes.groupby("run"), key=lambda kv: kv[0]):
            row = {"run": run}
            row.update(summarise(grp))
            ms.by_run.append(row)
    ms.overall = summarise(routes)
    ms.overall["rows"] = log.rows
    if log.has_timestamps:
        ms.weekly = weekly_rows(M.day_table())
    ms.distinct_tasks, ms.span_days, ms.first_days, ms.first_range = M.volume()
    ms.no_outcome_tasks, ms.no_outcome_spend = M.no_outcome
    ms.overall["tasks_without_outcome"] = ms.no_outcome_tasks
    ms.overall["spend_without_outcome"] = ms.no_outcome_spend
    if log.has_cost:
        ms.unpriced_rows = int(log.sql(f"SELECT COUNT(*) AS n FROM {log.relation} "
                                       f"WHERE cost_usd IS NULL")["n"].iloc[0])
    return ms


__all__ = ["wilson", "Measurements", "Measure", "measure", "canon_signals", "summarise",
           "CostsimError"]
