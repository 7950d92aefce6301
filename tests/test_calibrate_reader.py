"""The runs-log reader on hostile and revised-format input: one located line, exit 2, never a
traceback, never an allocation in proportion to a value in the file (issue 13's reproducers)."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import time
import zipfile

import pytest
from typer.testing import CliRunner

from calibrate_logs import CAL_PRICES
from costsim.cli import app
from costsim.logs.runslog import read_log

runner = CliRunner()
HEADER = "task_id,task_type,phase,attempt,model,input_tokens,output_tokens,success"
GOOD = [f"t{k},bugfix,implement,1,cheap,100,10,true" for k in range(6)]


def _csv(tmp_path, rows, header=HEADER, name="runs.csv"):
    p = tmp_path / name
    p.write_text("\n".join([header] + rows) + "\n")
    return p


def _error(path, *extra) -> str:
    res = runner.invoke(app, ["calibrate", str(path), "--prices", str(CAL_PRICES), *extra])
    assert res.exit_code == 2, res.output
    err = res.stderr.strip()
    assert "\n" not in err and "Traceback" not in err and "internal error" not in err, err
    return err


def _ok(path):
    res = runner.invoke(app, ["calibrate", str(path), "--prices", str(CAL_PRICES), "-f",
                              "json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


# --- compression and containers --------------------------------------------------------------

def test_a_zip_that_is_not_one(tmp_path):
    p = tmp_path / "runs.csv.zip"
    p.write_text("hello")
    assert _error(p) == f"{p}: not a valid .zip file"


def test_a_one_file_zip_is_read(tmp_path):
    p = tmp_path / "runs.csv.zip"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("runs.csv", "\n".join([HEADER] + GOOD) + "\n")
    assert _ok(p)["log"]["rows"] == 6


def test_bz2_xz_and_gz_are_read(tmp_path):
    text = "\n".join([HEADER] + GOOD) + "\n"
    (tmp_path / "b.csv.bz2").write_bytes(bz2.compress(text.encode()))
    (tmp_path / "x.csv.xz").write_bytes(lzma.compress(text.encode()))
    (tmp_path / "g.csv.gz").write_bytes(gzip.compress(text.encode()))
    for p in (tmp_path / "b.csv.bz2", tmp_path / "x.csv.xz", tmp_path / "g.csv.gz"):
        assert _ok(p)["log"]["rows"] == 6, p


def test_zst_needs_zstandard_or_says_so(tmp_path, monkeypatch):
    import builtins
    import duckdb

    plain = _csv(tmp_path, GOOD)
    zst = tmp_path / "runs.csv.zst"
    duckdb.execute(f"COPY (SELECT * FROM read_csv('{plain}', all_varchar=true)) TO '{zst}' "
                   f"(FORMAT csv, HEADER, COMPRESSION zstd)")
    try:
        import zstandard  # noqa: F401
        assert _ok(zst)["log"]["rows"] == 6
        bad = tmp_path / "bad.csv.zst"
        bad.write_bytes(b"not zstd at all")
        assert _error(bad).startswith(f"{bad}: not a valid zstd file")
    except ImportError:
        pass
    real = builtins.__import__

    def fake(name, *a, **kw):
        if name == "zstandard":
            raise ImportError(name)
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", fake)
    assert _error(zst) == f"{zst}: reading .zst needs the zstandard package (pip install " \
        f"zstandard), or decompress the file first"


def test_an_unsupported_compression_is_named(tmp_path):
    """runs.csv.lz4 names the compression and the ones that work, not an 'unknown format'."""
    p = tmp_path / "runs.csv.lz4"
    p.write_bytes(b"\x04\x22\x4d\x18 not read")
    assert _error(p) == (f"{p}: .lz4 compression is not supported (use .gz, .zst, .bz2, .xz or "
                         f".zip, or decompress the file first)")
    q = tmp_path / "notes.lz4"
    q.write_bytes(b"x")
    assert "unknown runs-log format '.lz4'" in _error(q)


def test_a_truncated_gz(tmp_path):
    g = tmp_path / "runs.csv.gz"
    data = gzip.compress(("\n".join([HEADER] + GOOD * 2000) + "\n").encode())
    g.write_bytes(data[: len(data) // 2])
    err = _error(g)
    assert err.startswith(f"{g}") and "truncated" in err


def test_a_directory_and_a_glob(tmp_path):
    d = tmp_path / "logs"
    d.mkdir()
    _csv(d, GOOD[:3], name="a.csv")
    _csv(d, ["u" + r[1:] for r in GOOD[:2]], name="b.csv")
    (d / "notes.txt").write_text("ignored")
    assert _ok(d)["log"]["rows"] == 5
    assert _ok(str(d / "*.csv"))["log"]["rows"] == 5
    empty = tmp_path / "empty.csv"
    empty.mkdir()
    assert "is a directory with no runs-log files" in _error(empty)
    assert "no file matches this pattern" in _error(str(tmp_path / "nothing-*.csv"))


def test_errors_in_the_second_file_cite_that_file(tmp_path):
    d = tmp_path / "logs"
    d.mkdir()
    _csv(d, GOOD[:3], name="a.csv")
    rows = GOOD[:3]
    rows[1] = "u1,bugfix,implement,1,cheap,100,10,maybe"
    b = _csv(d, rows, name="b.csv")
    assert _error(d) == f"{b}:3: success: expected a boolean (true/false, 1/0, yes/no), got " \
        f"'maybe'"


# --- CSV -----------------------------------------------------------------------------------------

def test_a_field_over_131072_characters(tmp_path):
    rows = list(GOOD)
    rows[2] = "x" * 200_000 + ",bugfix,implement,1,cheap,100,10,true"
    p = _csv(tmp_path, rows)
    assert _error(p) == f"{p}:4: task_id: text longer than 1,024 characters"
    # in a column calibrate does not read, it is only carried
    rows = [r + ",note" for r in GOOD]
    rows[2] = GOOD[2] + "," + "y" * 200_000
    assert _ok(_csv(tmp_path, rows, HEADER + ",notes", name="n.csv"))["log"]["rows"] == 6


def test_a_row_with_one_extra_field_and_one_missing(tmp_path):
    rows = list(GOOD)
    rows[3] = GOOD[3] + ",9"
    p = _csv(tmp_path, rows)
    assert _error(p) == f"{p}:5: this row has 9 fields, the header has 8"
    rows = list(GOOD)
    rows[1] = "t1,bugfix,implement,1,cheap,100,10"
    p = _csv(tmp_path, rows, name="m.csv")
    assert _error(p) == f"{p}:3: this row has 7 fields, the header has 8"


def test_a_repeated_first_column(tmp_path):
    p = _csv(tmp_path, [f"t{k}," + r for k, r in enumerate(GOOD)], "task_id," + HEADER)
    assert _error(p) == f"{p}:1: task_id: column 'task_id' appears twice in the header " \
        f"(columns 1 and 2)"


def test_a_lone_surrogate_in_csv_and_jsonl(tmp_path):
    p = tmp_path / "runs.csv"
    p.write_bytes(("\n".join([HEADER] + GOOD[:2]) + "\n").encode()
                  + b"t9,bugfix,implement,1,\xed\xa0\x80,100,10,true\n")
    err = _error(p)
    assert err.startswith(f"{p}:4: not UTF-8 text")
    j = tmp_path / "runs.jsonl"
    good = {"task_id": "t0", "task_type": "b", "phase": "p", "attempt": 1, "model": "cheap",
            "input_tokens": 1, "output_tokens": 1, "success": True}
    j.write_text(json.dumps(good) + "\n" + json.dumps(good).replace('"t0"', '"\\ud800"') + "\n")
    assert _error(j).startswith(f"{j}:2: text with a lone surrogate")


@pytest.mark.parametrize("value", ["1000000000", "101", "1e12"])
def test_attempt_above_the_ceiling_is_refused_before_anything_is_allocated(tmp_path, value):
    rows = list(GOOD)
    rows[4] = f"t4,bugfix,implement,{value},cheap,100,10,true"
    p = _csv(tmp_path, rows)
    t = time.perf_counter()
    err = _error(p)
    assert time.perf_counter() - t < 30
    assert err == f"{p}:6: attempt: attempt {value} is above the ceiling of 100 attempts per " \
        f"phase"


# --- JSON Lines ------------------------------------------------------------------------------

@pytest.mark.parametrize("line,kind", [("true", "true"), ("null", "null"), ("[1,2]", "an array"),
                                       ("7", "a number")])
def test_jsonl_lines_that_are_not_objects(tmp_path, line, kind):
    good = {"task_id": "t0", "task_type": "b", "phase": "p", "attempt": 1, "model": "cheap",
            "input_tokens": 1, "output_tokens": 1, "success": True}
    p = tmp_path / "runs.jsonl"
    p.write_text(json.dumps(good) + "\n\n" + line + "\n")
    assert _error(p) == f"{p}:3: not valid JSON Lines: expected a JSON object, got {kind}"


def test_jsonl_nested_1000_deep(tmp_path):
    good = {"task_id": "t0", "task_type": "b", "phase": "p", "attempt": 1, "model": "cheap",
            "input_tokens": 1, "output_tokens": 1, "success": True}
    deep = "[" * 1000 + "]" * 1000
    p = tmp_path / "runs.jsonl"
    p.write_text(json.dumps(good) + "\n" + json.dumps(good).replace('"t0"', deep) + "\n")
    assert _error(p).startswith(f"{p}:2: task_id: expected text, got '[[[[")
    q = tmp_path / "extra.jsonl"
    q.write_text(json.dumps(dict(good, notes=0)).replace("0}", deep + "}") + "\n")
    assert _ok(q)["log"]["rows"] == 1


def test_jsonl_repeated_key(tmp_path):
    p = tmp_path / "runs.jsonl"
    p.write_text('{"task_id": "a", "task_id": "b", "task_type": "b", "phase": "p", '
                 '"attempt": 1, "model": "cheap", "input_tokens": 1, "output_tokens": 1, '
                 '"success": true}\n')
    assert _error(p) == f"{p}:1: task_id: key appears twice in the object"


# --- Parquet ---------------------------------------------------------------------------------

def test_parquet_list_and_binary_columns(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")  # the test writes Parquet itself
    base = {"task_id": ["t0", "t1"], "task_type": ["b", "b"], "phase": ["p", "p"],
            "attempt": [1, 1], "model": ["cheap", "cheap"], "input_tokens": [1, 1],
            "output_tokens": [1, 1], "success": [True, True]}
    p = tmp_path / "list.parquet"
    pd.DataFrame(dict(base, signals=[["a"], ["b", "c"]])).to_parquet(p)
    assert _error(p) == f"{p}: signals: expected a column of plain values, got a varchar[] " \
        f"column (lists and structs are not supported)"
    q = tmp_path / "bin.parquet"
    pd.DataFrame(dict(base, task_id=[b"t0", b"t1"])).to_parquet(q)
    assert _error(q) == f"{q}: task_id: expected text or numbers, got binary data (blob)"


# --- the revised format ------------------------------------------------------------------------

CALL_HEADER = HEADER + ",call,kind"


def test_success_on_the_last_call_only_is_read_as_the_attempts(tmp_path):
    rows = ["t0,b,implement,1,cheap,100,10,,1,attempt", "t0,b,implement,1,cheap,150,10,false,2,",
            "t0,b,implement,2,cheap,100,10,,1,", "t0,b,implement,2,cheap,150,10,true,2,"]
    log = read_log(_csv(tmp_path, rows, CALL_HEADER))
    try:
        assert log.call_rows == 4
        d = log.sql("SELECT attempt, MAX(success) AS s FROM runs GROUP BY attempt "
                    "ORDER BY attempt")
        assert d["s"].isna().tolist() == [False, False]
        assert d["s"].tolist() == [0, 1]
    finally:
        log.close()


@pytest.mark.parametrize("rows,message", [
    (["t0,b,implement,1,cheap,100,10,true,1,", "t0,b,implement,1,cheap,150,10,false,2,"],
     ":3: success: attempt 1 of task 't0' phase 'implement' is both a success and a failure"),
    # An attempt without an outcome in a task that has one (a task with none is measured
    # apart: tests/test_logs_calibrate.py).
    (["t0,b,plan,1,cheap,100,10,true,1,", "t0,b,implement,1,cheap,100,10,,1,",
      "t0,b,implement,1,cheap,150,10,,2,"],
     ":4: success: required value missing: no row of attempt 1 of task 't0' phase "
     "'implement' says whether it succeeded (other attempts of the task do)"),
    (["t0,b,implement,1,cheap,100,10,true,1,", "t0,b,implement,1,cheap,150,10,true,,"],
     ":3: call: attempt 1 of task 't0' phase 'implement' has both a per-attempt row (no call) "
     "and per-call rows"),
    (["t0,b,implement,1,cheap,100,10,true,1,", "t0,b,implement,1,cheap,150,10,true,1,"],
     ":3: call: call 1 of attempt 1 of task 't0' phase 'implement' appears twice"),
    (["t0,b,implement,1,cheap,100,10,true,1,", "t0,b,implement,1,mid,150,10,true,2,"],
     ":3: model: attempt 1 of task 't0' phase 'implement' names more than one model"),
    (["t0,b,implement,1,cheap,100,10,true,1,weird"],
     ":2: kind: expected 'attempt' or 'summary', got 'weird'"),
])
def test_revised_format_errors(tmp_path, rows, message):
    assert _error(_csv(tmp_path, rows, CALL_HEADER)).endswith(message)


def test_cached_input_cannot_exceed_input(tmp_path):
    rows = [r + ",5" for r in GOOD]
    rows[2] = "t2,bugfix,implement,1,cheap,100,10,true,101"
    p = _csv(tmp_path, rows, HEADER + ",cached_input_tokens")
    assert _error(p) == f"{p}:4: cached_input_tokens: 101 cached tokens is more than " \
        f"input_tokens (input_tokens counts all input, cached included)"


def test_summary_rows_need_no_success_and_are_not_attempts(tmp_path):
    rows = ["t0,b,search,1,cheap,100,10,true,1,attempt", "t0,b,search,1,cheap,120,50,,1,summary",
            "t0,b,implement,1,cheap,100,10,true,1,attempt"]
    data = _ok(_csv(tmp_path, rows, CALL_HEADER))
    assert data["overall"]["tasks"] == 1 and data["overall"]["completion_rate"] == 1.0
    assert data["summaries"] == [{"task_type": "b", "phase": "search", "model": "cheap",
                                  "calls": 1, "mean_input_tokens": 120.0,
                                  "mean_output_tokens": 50.0,
                                  "spend": pytest.approx((120 * 1.0 + 50 * 2.0) / 1e6)}]
    assert data["overall"]["attempts_per_task"] == 2


def test_text_values_after_the_enum_sample_read_as_with_the_whole_file(tmp_path, monkeypatch):
    """A CSV file's ENUMs come from its first rows (fast path). A model, a task type, a phase
    and an untrimmed value that first appear after them make the fast path give up: the file
    is read exactly, and every row holds what the file says, in file order, with its line."""
    import costsim.logs.runslog as rl
    import costsim.logs.runslog.load as rl_load   # where the fast path reads ENUM_SAMPLE

    rows = [f"t{k},bugfix,implement,1,cheap,100,10,true" for k in range(4)]
    rows += ["t4,feature,plan,1,dear,200,20,false", "t5, bugfix ,review,1,cheap,300,30,true",
             "t4,feature,plan,2,cheap,400,40,true"]
    p = _csv(tmp_path, rows)

    def read():
        log = rl.read_log(str(p))
        try:
            return log.sql("SELECT row, pos, task_id, task_type, phase, attempt, model, "
                           "input_tokens, success FROM runs ORDER BY pos").values.tolist()
        finally:
            log.close()

    monkeypatch.setattr(rl_load, "ENUM_SAMPLE", 3)  # the first 3 rows: bugfix/implement/cheap
    sampled = read()
    monkeypatch.setattr(rl_load, "ENUM_SAMPLE", 10**9)
    assert sampled == read()
    assert [r[0] for r in sampled] == list(range(7)) == [r[1] for r in sampled]
    assert [(r[2], r[3], r[4], r[6], r[7]) for r in sampled[4:]] == [
        ("t4", "feature", "plan", "dear", 200), ("t5", "bugfix", "review", "cheap", 300),
        ("t4", "feature", "plan", "cheap", 400)]
    # an error after the sample is still located on its line (header = line 1)
    p.write_text(p.read_text() + "t6,bugfix,implement,x,cheap,1,1,true\n")
    monkeypatch.setattr(rl_load, "ENUM_SAMPLE", 3)
    with pytest.raises(Exception, match=r"runs\.csv:9: attempt: expected an integer >= 1"):
        rl.read_log(str(p))
