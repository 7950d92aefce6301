"""The engine interface measurements run SQL through (:class:`LogEngine`, DuckDB's
:class:`DuckDBEngine`) and the validated log it holds (:class:`RunsLog`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...errors import CostsimError


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
    """The measurements on the embedded DuckDB connection that read the log (the default)."""

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
