"""--engine: the measurement SQL of calibrate runs unchanged on another engine through Ibis.

The Spark check starts a local Spark session (tens of seconds): it runs where PySpark, Ibis and
Java are installed (the test extra brings the first two), and says why it is skipped elsewhere.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from costsim.calibrate import calibrate
from costsim.cli import app
from costsim.errors import CostsimError
from costsim.logs.importer import import_logs

LOGS = Path(__file__).parent / "fixtures" / "logs"
runner = CliRunner()

PRICES = """version: 1
as_of: 2026-11-20
currency: USD
models:
  claude-sonnet-4-5: {provider: anthropic, tier: midrange, input: 3.0, output: 15.0,
                      cache_read: 0.3, coding_score: 60}
  claude-haiku-4-5: {provider: anthropic, tier: budget, input: 1.0, output: 5.0,
                     cache_read: 0.1, coding_score: 40}
"""


def test_unknown_engine_is_one_line(tmp_path):
    log = tmp_path / "r.csv"
    log.write_text("task_id,task_type,phase,attempt,model,input_tokens,output_tokens,success\n"
                   "t,b,p,1,m,1,1,true\n")
    res = runner.invoke(app, ["calibrate", str(log), "--engine", "spark"])
    assert res.exit_code == 2
    assert res.stderr.strip().endswith("--engine: unknown engine 'spark' (expected duckdb "
                                       "(default) or ibis:URL (ibis:duckdb://, ibis:pyspark, "
                                       "any ibis.connect URL))")


def _close(a, b, path=""):
    """Every number of two report dicts equal to 1e-9 (relative), everything else equal."""
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, (int, float)):
        assert (math.isinf(a) and a == b) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), \
            f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def test_a_backend_that_fails_is_one_line(tmp_path):
    """Ibis's SQLite backend cannot read Parquet: a clear line naming the engine, exit 2."""
    pytest.importorskip("ibis", reason="Ibis is not installed (pip install 'costsim[ibis]')")
    log = tmp_path / "runs.csv"
    log.write_text("task_id,task_type,phase,attempt,model,input_tokens,output_tokens,success\n"
                   "t,b,p,1,m,1,1,true\n")
    res = runner.invoke(app, ["calibrate", str(log), "--engine", "ibis:sqlite://"])
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("--engine: the engine failed: "), lines
    assert "internal error" not in res.stderr


def test_pyspark_engine_gives_the_duckdb_numbers(tmp_path):
    pytest.importorskip("pyspark", reason="PySpark is not installed (pip install "
                        "'costsim[spark]')")
    pytest.importorskip("ibis", reason="Ibis is not installed (pip install 'costsim[spark]')")
    if not shutil.which("java"):
        pytest.skip("no Java on this machine: Spark cannot start")
    prices = tmp_path / "prices.yaml"
    prices.write_text(PRICES)
    oc = tmp_path / "outcomes.csv"
    oc.write_text("task_id,success,reviewer_changes\n"
                  "0b7d3c2e-5f1a-4c8e-9d2b-7e6f5a4b3c21,true,1\n"
                  "5e8a1d90-2c3b-4f7e-8a6d-1b2c3d4e5f60,false,\n")
    log = tmp_path / "runs.parquet"
    import_logs("claude-code", [LOGS / "claude_code"], log, outcomes=oc, prices=prices)
    native = calibrate(log, prices=prices).to_dict()
    spark = calibrate(log, prices=prices, engine="ibis:pyspark").to_dict()
    native.pop("log"), spark.pop("log")
    _close(json.loads(json.dumps(native, default=str)), json.loads(json.dumps(spark,
                                                                              default=str)))
