"""Running calibrate's measurement SQL on another engine, through Ibis (``--engine ibis:URL``).

The runs log is always read and validated by DuckDB (:func:`costsim.logs.runslog.read_log`:
streaming, within a memory limit, every error located). With ``--engine ibis:URL`` the
validated relation is then handed over: written once as Parquet and registered as ``runs`` in
the Ibis backend, and every measurement query (the same text DuckDB runs) goes to that backend.
Ibis transpiles it from DuckDB's dialect to the backend's (sqlglot), so the SQL is written once.

Engines:

- ``duckdb`` (default): DuckDB in process, no Ibis.
- ``ibis:duckdb://`` (or ``ibis:duckdb://PATH``): DuckDB again, through Ibis; a check that the
  Ibis route gives the same numbers.
- ``ibis:pyspark`` (or ``ibis:pyspark://``): a local Spark session (``local[*]``; needs Java
  and ``pip install 'costsim[spark]'``).
- ``ibis:URL``: any URL ``ibis.connect`` takes (``postgres://...``, ``trino://...``, ...), for a
  backend that can read a local Parquet file.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from ..errors import CostsimError

ENGINES_HELP = "duckdb (default) or ibis:URL (ibis:duckdb://, ibis:pyspark, any ibis.connect URL)"


def check_engine(spec: str) -> str:
    """``spec`` if it names an engine, else a CostsimError (before any work starts)."""
    if spec == "duckdb":
        return spec
    if spec.startswith("ibis:") and spec[5:].strip():
        return spec
    raise CostsimError(f"unknown engine '{spec}' (expected {ENGINES_HELP})", path="--engine")


def _spark_backend():
    import shutil

    try:
        import ibis
        from pyspark.sql import SparkSession
    except ImportError:
        raise CostsimError("the pyspark engine needs Ibis and PySpark: pip install "
                           "'costsim[spark]'", path="--engine") from None
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        raise CostsimError("the pyspark engine needs Java (java on the PATH or JAVA_HOME)",
                           path="--engine")
    session = (SparkSession.builder.master(f"local[{os.cpu_count() or 1}]")
               .appName("costsim-calibrate")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", str(max(2, os.cpu_count() or 1)))
               .config("spark.sql.session.timeZone", "UTC")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    return ibis.pyspark.connect(session)


def connect(spec: str):
    """The Ibis backend an ``ibis:URL`` engine names."""
    url = spec[5:].strip()
    if url in ("pyspark", "pyspark://"):
        return _spark_backend()
    try:
        import ibis
    except ImportError:
        raise CostsimError("--engine ibis:... needs Ibis: pip install 'costsim[ibis]'",
                           path="--engine") from None
    try:
        return ibis.connect(url)
    except Exception as exc:  # a bad URL, a backend not installed, a server not there
        raise CostsimError(f"cannot connect to '{url}': {exc}", path="--engine") from None


class IbisEngine:
    """The :class:`~costsim.logs.runslog.LogEngine` members on an Ibis backend: ``sql`` (DuckDB
    dialect, transpiled), ``materialize`` (a temporary table where the backend has them, else
    a view, cached where the backend can)."""

    def __init__(self, backend, relation: str = "runs"):
        self.backend = backend
        self.relation = relation

    def sql(self, query: str):
        with backend_errors():
            return self.backend.sql(query, dialect="duckdb").to_pandas()

    def materialize(self, name: str, query: str) -> None:
        with backend_errors():
            expr = self.backend.sql(query, dialect="duckdb")
            try:
                self.backend.create_table(name, expr, temp=True, overwrite=True)
            except NotImplementedError:                   # PySpark: no temporary tables
                self.backend.create_view(name, expr, overwrite=True)
                session = getattr(self.backend, "_session", None)
                if session is not None:
                    session.catalog.cacheTable(name)

    def close(self) -> None:
        disconnect = getattr(self.backend, "disconnect", None)
        if disconnect is not None:
            try:
                disconnect()
            except Exception:  # pragma: no cover - closing is best effort
                pass


def hand_over(con, spec: str, tmpdir: str, columns) -> IbisEngine:
    """Write DuckDB's validated ``runs`` (``columns`` of it) as Parquet in ``tmpdir`` and open
    it as ``runs`` on the Ibis backend ``spec`` names."""
    path = Path(tmpdir) / "runs.parquet"
    cols = ", ".join(columns)
    con.execute(f"COPY (SELECT {cols} FROM runs) TO '{path}' (FORMAT parquet)")
    backend = connect(spec)
    with backend_errors():
        backend.read_parquet(str(path), table_name="runs")
    return IbisEngine(backend)


@contextlib.contextmanager
def backend_errors():
    """A failure inside the Ibis backend (a backend that cannot read Parquet, an Ibis release
    that does not match its driver's: Ibis 12's DuckDB backend calls a method DuckDB 2 removed)
    is one line naming the engine, not an internal error."""
    try:
        yield
    except CostsimError:
        raise
    except Exception as exc:  # anything the backend raises: its driver, its SQL, its version
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CostsimError(f"the engine failed: {type(exc).__name__}: {text[:300]} (the "
                           f"default engine, duckdb, does not go through Ibis)",
                           path="--engine") from None
