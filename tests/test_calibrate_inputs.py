"""(c) Bad runs logs: one located line, exit 2, never a traceback. Plus the three formats."""

from __future__ import annotations

import gzip
import json
import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from calibrate_logs import CAL_PRICES, routed_log
from costsim.calibrate import calibrate
from costsim.cli import app
from costsim.errors import CostsimError

runner = CliRunner()

HEADER = "task_id,task_type,phase,attempt,model,input_tokens,output_tokens,success"


def _csv(tmp_path, body_rows: list[str], header: str = HEADER, name: str = "runs.csv"):
    p = tmp_path / name
    p.write_text("\n".join([header] + body_rows) + "\n")
    return p


def _good_rows(n: int) -> list[str]:
    return [f"t{k},bugfix,implement,1,cheap,100,10,true" for k in range(n)]


def _run(path, *extra):
    res = runner.invoke(app, ["calibrate", str(path), "--prices", str(CAL_PRICES), *extra])
    return res


def _one_line_error(res) -> str:
    assert res.exit_code == 2, res.output
    err = res.stderr.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_bad_boolean_cites_the_line_the_user_sees(tmp_path):
    rows = _good_rows(20)
    rows[15] = "t15,bugfix,implement,1,cheap,100,10,maybe"      # 16th data row: line 17
    p = _csv(tmp_path, rows)
    err = _one_line_error(_run(p))
    assert err == f"{p}:17: success: expected a boolean (true/false, 1/0, yes/no), got 'maybe'"


@pytest.mark.parametrize("row,column,message", [
    ("t3,bugfix,implement,0,cheap,100,10,true", "attempt", "expected an integer >= 1, got 0"),
    ("t3,bugfix,implement,1.5,cheap,100,10,true", "attempt", "expected an integer >= 1, got 1.5"),
    ("t3,bugfix,implement,1,cheap,-5,10,true", "input_tokens", "expected an integer >= 0, got -5"),
    ("t3,bugfix,implement,1,cheap,100,lots,true", "output_tokens",
     "expected an integer >= 0, got 'lots'"),
    ("t3,bugfix,,1,cheap,100,10,true", "phase", "required value missing"),
    ("t3,bugfix,implement,1,,100,10,true", "model", "required value missing"),
    # Empty success is an unknown outcome: fine for a task that has none (it is measured
    # apart), an error on an attempt of a task whose other attempts have one (t2's attempt 1).
    ("t2,bugfix,implement,2,cheap,100,10,", "success",
     "required value missing (other attempts of the task have an outcome)"),
])
def test_bad_values(tmp_path, row, column, message):
    rows = _good_rows(5)
    rows[3] = row                                               # line 5
    err = _one_line_error(_run(_csv(tmp_path, rows)))
    assert err.endswith(f":5: {column}: {message}"), err


def test_optional_columns_are_validated(tmp_path):
    header = HEADER + ",cached_input_tokens,cost_usd,reviewer_changes,timestamp"
    good = [r + ",0,0.01,,2026-01-05T10:00:00Z" for r in _good_rows(3)]
    for bad, col in [(",-1,0.01,,", "cached_input_tokens"), (",0,abc,,", "cost_usd"),
                     (",0,0.01,2.5,", "reviewer_changes"),
                     (",0,0.01,,yesterday", "timestamp")]:
        rows = good + [_good_rows(1)[0].replace("t0", "t9") + bad]
        err = _one_line_error(_run(_csv(tmp_path, rows, header)))
        assert f":5: {col}: expected" in err, err


def test_missing_column(tmp_path):
    header = HEADER.replace(",success", "")
    p = _csv(tmp_path, [r.rsplit(",", 1)[0] for r in _good_rows(2)], header)
    err = _one_line_error(_run(p))
    assert err.startswith(f"{p}:1: missing required column success")


@pytest.mark.parametrize("content,name,message", [
    ("", "runs.csv", "file is empty"),
    (HEADER + "\n", "runs.csv", "no rows"),
    ("a,b\n", "runs.txt", "unknown runs-log format '.txt'"),
    ("", "runs.jsonl", "file is empty"),
    ('{"task_id": "t1"}\n{not json\n', "runs.jsonl", "not valid JSON Lines"),
])
def test_unusable_files(tmp_path, content, name, message):
    p = tmp_path / name
    p.write_text(content)
    err = _one_line_error(_run(p))
    assert message in err and str(p) in err


def test_missing_file_and_directory(tmp_path):
    assert "file not found" in _one_line_error(_run(tmp_path / "nope.csv"))
    d = tmp_path / "dir.csv"
    d.mkdir()
    assert "is a directory" in _one_line_error(_run(d))


def test_bad_json_line_number(tmp_path):
    p = tmp_path / "runs.jsonl"
    p.write_text('{"a": 1}\n{"a": 2}\n{oops}\n')
    assert f"{p}:3: not valid JSON Lines" in _one_line_error(_run(p))


def test_unknown_model_without_cost(tmp_path):
    rows = _good_rows(3)
    rows[2] = "t2,bugfix,implement,1,mystery,100,10,true"
    err = _one_line_error(_run(_csv(tmp_path, rows)))
    assert ":4: model: 'mystery' is not in the price table" in err


def test_duplicate_attempt_and_two_task_types(tmp_path):
    rows = _good_rows(3) + ["t1,bugfix,implement,1,cheap,5,5,false"]
    assert ":5: attempt: attempt 1 of task 't1' phase 'implement' appears twice" in \
        _one_line_error(_run(_csv(tmp_path, rows)))
    rows = _good_rows(3) + ["t1,docs,docs,1,cheap,5,5,false"]
    assert ":5: task_type: task 't1' already appeared with task type 'bugfix'" in \
        _one_line_error(_run(_csv(tmp_path, rows)))


def test_blank_lines_do_not_shift_line_numbers(tmp_path):
    p = tmp_path / "runs.csv"
    p.write_text(HEADER + "\n" + "t0,bugfix,implement,1,cheap,100,10,true\n\n"
                 "t1,bugfix,implement,1,cheap,100,10,nah\n")
    assert f"{p}:4: success:" in _one_line_error(_run(p))


def test_parquet_errors_name_the_row(tmp_path):
    pytest.importorskip("pyarrow")  # the test writes Parquet itself
    df = routed_log(20)
    df["attempt"] = df["attempt"].astype(object)
    df.loc[6, "attempt"] = "x"
    df["attempt"] = df["attempt"].astype(str)
    p = tmp_path / "runs.parquet"
    df.to_parquet(p)
    err = _one_line_error(_run(p))
    assert err == f"{p}: row 7: attempt: expected an integer >= 1, got 'x'"


def test_bad_options(tmp_path):
    p = tmp_path / "runs.csv"
    routed_log(20).to_csv(p, index=False)
    res = _run(p, "--raise-below", "1.5")
    assert res.exit_code == 2
    with pytest.raises(CostsimError, match="--min-samples"):
        calibrate(p, prices=CAL_PRICES, min_samples=0)
    with pytest.raises(CostsimError, match="one policy"):
        calibrate(p, prices=CAL_PRICES, policies=["a.yaml", "b.yaml"])


# --- formats --------------------------------------------------------------------------------

def test_csv_jsonl_parquet_gzip_agree(tmp_path):
    pytest.importorskip("pyarrow")  # the test writes Parquet itself
    df = routed_log(60)
    df["timestamp"] = pd.Timestamp("2026-03-02T09:00:00Z") + pd.to_timedelta(
        df.index.to_numpy() * 5, unit="min")
    paths = [tmp_path / "r.csv", tmp_path / "r.jsonl", tmp_path / "r.parquet",
             tmp_path / "r.csv.gz"]
    df.to_csv(paths[0], index=False)
    paths[1].write_text(df.assign(timestamp=df["timestamp"].astype(str))
                        .to_json(orient="records", lines=True))
    df.to_parquet(paths[2])
    with gzip.open(paths[3], "wt") as fh:
        df.to_csv(fh, index=False)
    results = [json.loads(json.dumps(calibrate(p, prices=CAL_PRICES).to_dict(), default=str))
               for p in paths]
    for r in results[1:]:
        for key in ("overall", "by_model", "by_route", "weekly", "recommendations", "fit"):
            _same(r[key], results[0][key], key)


def _same(a, b, path):
    """Equal, numbers to 1e-12 relative: DuckDB sums in parallel, so the last bits of a sum
    depend on how its threads split the rows (the same file read twice can differ there)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), path
        for k in a:
            _same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, (int, float)) and not isinstance(b, bool):
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15), f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def test_weeks(tmp_path):
    # 3 tasks in ISO week 2026-W10 (Mon 2 March), 2 in W11; task t4 fails.
    rows = []
    days = ["2026-03-02", "2026-03-04", "2026-03-08", "2026-03-09", "2026-03-15"]
    for k, day in enumerate(days):
        rows.append({"task_id": f"t{k}", "task_type": "bugfix", "phase": "implement",
                     "attempt": 1, "model": "cheap", "input_tokens": 1000, "output_tokens": 0,
                     "success": k != 4, "timestamp": f"{day}T12:00:00+00:00"})
    p = tmp_path / "runs.jsonl"
    pd.DataFrame(rows).to_json(p, orient="records", lines=True)
    res = calibrate(p, prices=CAL_PRICES)
    weeks = {w["week"]: w for w in res.weekly}
    assert list(weeks) == ["2026-W10", "2026-W11"]
    assert weeks["2026-W10"]["tasks"] == 3 and weeks["2026-W10"]["completion_rate"] == 1.0
    assert weeks["2026-W11"]["tasks"] == 2 and weeks["2026-W11"]["completed"] == 1
    # 1000 input tokens at $1/1M = $0.001 per task; W11: $0.002 / 1 completed
    assert weeks["2026-W11"]["cost_per_completed_task"] == pytest.approx(0.002)


def test_no_timestamps_no_weeks(tmp_path):
    p = tmp_path / "runs.csv"
    routed_log(20).to_csv(p, index=False)
    assert calibrate(p, prices=CAL_PRICES).weekly == []


# --- the vectorised measures against a plain-Python reference --------------------------------

attempt_outcomes = st.lists(st.booleans(), min_size=1, max_size=3)
task = st.tuples(st.sampled_from(["bugfix", "docs"]),
                 st.lists(st.tuples(st.sampled_from(["search", "implement", "review"]),
                                    st.sampled_from(["cheap", "mid", "top"]), attempt_outcomes,
                                    st.integers(0, 5000), st.integers(0, 5000)),
                          min_size=1, max_size=3, unique_by=lambda x: x[0]))


@settings(max_examples=8, deadline=None)
@given(st.lists(task, min_size=1, max_size=12))
def test_measures_match_a_plain_python_reference(tmp_path_factory, tasks):
    rows = []
    for k, (ttype, phases) in enumerate(tasks):
        for phase, model, outcomes, inp, out in phases:
            for a, ok in enumerate(outcomes, start=1):
                rows.append({"task_id": f"t{k}", "task_type": ttype, "phase": phase,
                             "attempt": a, "model": model, "input_tokens": inp,
                             "output_tokens": out, "success": ok})
    p = tmp_path_factory.mktemp("h") / "runs.csv"
    pd.DataFrame(rows).sample(frac=1.0, random_state=1).to_csv(p, index=False)
    res = calibrate(p, prices=CAL_PRICES)
    price = {"cheap": (1.0, 2.0), "mid": (3.0, 15.0), "top": (5.0, 25.0)}

    # per (task type, phase, model)
    ref: dict = {}
    for r in rows:
        d = ref.setdefault((r["task_type"], r["phase"], r["model"]), [0, 0, 0, 0, 0.0])
        first = r["attempt"] == 1
        d[0 if first else 2] += 1
        d[1 if first else 3] += r["success"]
        d[4] += (r["input_tokens"] * price[r["model"]][0]
                 + r["output_tokens"] * price[r["model"]][1]) / 1e6
    got = {(r["task_type"], r["phase"], r["model"]): r for r in res.by_model}
    assert set(got) == set(ref)
    for key, (fa, fs, ra, rs, spend) in ref.items():
        g = got[key]
        assert g["first_attempts"] == fa and g["retry_attempts"] == ra
        assert g["first_attempt_success"] == (fs / fa if fa else None)
        assert g["retry_success"] == (rs / ra if ra else None)
        assert g["spend"] == pytest.approx(spend, abs=1e-12)

    # per (task type, route): completed = every phase's last attempt succeeded
    routes: dict = {}
    for k, (ttype, phases) in enumerate(tasks):
        route = " + ".join(sorted({m for _, m, _, _, _ in phases}))
        done = all(outcomes[-1] for _, _, outcomes, _, _ in phases)
        spend = sum(len(o) * (i * price[m][0] + x * price[m][1]) / 1e6
                    for _, m, o, i, x in phases)
        d = routes.setdefault((ttype, route), [0, 0, 0.0, 0])
        d[0] += 1
        d[1] += done
        d[2] += spend
        d[3] += sum(len(o) - 1 for _, _, o, _, _ in phases)
    got = {(r["task_type"], r["route"]): r for r in res.by_route}
    assert set(got) == set(routes)
    for key, (n, c, spend, retries) in routes.items():
        g = got[key]
        assert g["tasks"] == n and g["completed"] == c
        assert g["retries_per_task"] == pytest.approx(retries / n)
        if c:
            assert g["cost_per_completed_task"] == pytest.approx(spend / c, abs=1e-12)
        else:
            assert g["cost_per_completed_task"] == float("inf")
