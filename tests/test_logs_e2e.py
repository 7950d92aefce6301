"""Issue 12's check, rehearsed: logs of every source written from a known truth
(tests/sessions_sim.py, which shares no code with costsim's importers), then `log import`,
`calibrate` and `compare` run as a user runs them, and every figure the truth fixes checked.

- import: tokens per run, task and model to the unit, stated cost to 1e-9, task and row counts,
  duplicates removed, malformed lines counted, outcomes joined on the last attempt, and the
  same bytes from a second run;
- calibrate (on the imported file, and in one step from the source files): tasks, completed,
  spend to 1e-9, completion, cost per completed task, tasks without an outcome and their spend,
  overall and per run;
- compare on the fitted workload: the log's own strategy's completion and cost per completed
  task within 2.5 standard errors of the log's (the log is a sample of ~12 tasks: the fit can
  only reproduce it up to its own sampling error; 2.5 is the bound calibrate's fit check uses).
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from pathlib import Path

import pytest
from typer.testing import CliRunner

from costsim.cli import app

import sessions_sim as sim
from reliability import run_main

pq = pytest.importorskip("pyarrow.parquet")
runner = CliRunner()
NAMES = list(sim.SOURCES)


def invoke(args: list[str]):
    return runner.invoke(app, [str(a) for a in args])


class Case:
    def __init__(self, root: Path, name: str):
        self.name = name
        self.root = root
        self.truth = sim.SOURCES[name](root / "in")
        self.prices = root / "prices.yaml"
        self.prices.write_text(sim.prices_yaml())
        # No --workload, as a user would run it: usage logs show one attempt per session, and
        # calibrate fits max_attempts 1 from such one-shot logs (docs/calibrate.md).

    def import_args(self, out: Path, *extra, outcomes: bool = True) -> list:
        args = ["log", "import", "--source", self.truth.source, *self.truth.paths,
                "--out", out, "--prices", self.prices, *extra]
        if self.truth.outcomes and outcomes:
            args += ["--outcomes", self.truth.outcomes]
        return args


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    made: dict[str, Case] = {}

    def get(name: str) -> Case:
        if name not in made:
            made[name] = Case(tmp_path_factory.mktemp(name), name)
        return made[name]
    return get


@pytest.fixture(scope="module")
def imported(cases):
    """name -> (case, summary, rows of the imported Parquet log)."""
    done: dict[str, tuple] = {}

    def get(name: str):
        if name not in done:
            case = cases(name)
            out = case.root / "runs.parquet"
            res = invoke(case.import_args(out, "--format", "json"))
            assert res.exit_code == 0, res.output
            done[name] = (case, json.loads(res.stdout), pq.read_table(out).to_pylist())
        return done[name]
    return get


# --- import ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_import_carries_every_token_and_cent(imported, name):
    case, summary, rows = imported(name)
    truth = case.truth
    per_call = truth.source not in ("openhands", "aider-bench")
    # Tokens per run, task and model, to the unit; stated cost to 1e-9.
    want, got = sim.truth_totals(truth), sim.row_totals(rows)
    assert sorted(got) == sorted(want)
    for key, w in want.items():
        g = got[key]
        assert g[:3] == w[:3], key
        assert abs(g[3] - w[3]) < 1e-9, key
        if per_call:
            assert g[4] == w[4], key                  # one row per call
    stated = any(c.cost is not None for t in truth.tasks for c in t.calls)
    assert all((r["cost_usd"] is not None) == stated for r in rows)
    # Counts in the summary.
    n_tasks = len({(t.run, t.id) for t in truth.tasks})
    assert summary["tasks"] == n_tasks
    assert summary["rows"] == len(rows) == (
        sum(len(t.calls) for t in truth.tasks) if per_call
        else sum(max(1, len(t.tries)) for t in truth.tasks))
    assert summary["duplicates"] == truth.duplicates
    assert summary["skipped"] == truth.malformed == len(summary["reasons"])
    assert summary["tasks_without_outcome"] == sum(t.outcome is None for t in truth.tasks)
    assert summary["outcomes_unmatched"] == truth.unmatched_outcomes
    assert summary["input_tokens"] == sum(t.totals()[0] for t in truth.tasks)
    assert summary["cached_input_tokens"] == sum(t.totals()[1] for t in truth.tasks)
    assert summary["output_tokens"] == sum(t.totals()[2] for t in truth.tasks)
    assert summary["cost_usd"] == pytest.approx(
        sum(c.cost or 0.0 for t in truth.tasks for c in t.calls), abs=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_import_outcomes_land_on_the_last_attempt(imported, name):
    case, _, rows = imported(name)
    by_task = defaultdict(list)
    for r in rows:
        by_task[(r["run"], r["task_id"])].append(r)
    for t in case.truth.tasks:
        rs = by_task[(t.run, t.id)]
        if t.tries:                                   # benchmark: the source's own per try
            tries = {}
            for r in rs:
                tries[r["attempt"]] = r["success"]
            want = [None] if t.outcome is None else t.tries
            assert [tries[k] for k in sorted(tries)] == want, t.id
            continue
        main = [r for r in rs if r["phase"] in ("main", "coder")]
        others = [r for r in rs if r not in main]
        assert {r["success"] for r in main} == {t.outcome}, t.id
        # A subagent handed its result back and the task went on: it succeeded.
        assert {r["success"] for r in others} <= ({True} if t.outcome is not None else {None})
        # Phases as the agent ran them.
        assert sorted({r["phase"] for r in rs}) == sorted({c.phase for c in t.calls})


def test_import_twice_same_bytes(imported):
    case, _, _ = imported("claude-code")
    out = case.root / "again.parquet"
    assert invoke(case.import_args(out, "--format", "json")).exit_code == 0
    assert out.read_bytes() == (case.root / "runs.parquet").read_bytes()


# --- calibrate ------------------------------------------------------------------------------

FIGURES = ("tasks", "completed", "spend", "completion_rate", "spend_per_task",
           "cost_per_completed_task", "tasks_without_outcome", "spend_without_outcome")


def _check_figures(got: dict, want: dict, where: str) -> None:
    for k in FIGURES:
        if k not in got:
            continue                      # by_run rows carry no *_without_outcome
        if want[k] is None:
            assert got[k] is None, (where, k)
        elif isinstance(want[k], int):
            assert got[k] == want[k], (where, k, got[k], want[k])
        else:
            assert got[k] == pytest.approx(want[k], abs=1e-9), (where, k)


def _calibrate(case: Case, log_args: list, *extra) -> dict:
    res = invoke(["calibrate", *log_args, "--prices", case.prices, "--format", "json",
                  *extra])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


@pytest.fixture(scope="module")
def calibrated(imported):
    """name -> (case, report) of `calibrate runs.parquet --write-workload ...`: the fitted
    workload, and what compare needs with it (the log's policy, prices for a cost-only log)."""
    done: dict[str, tuple] = {}

    def get(name: str):
        if name not in done:
            case, _, _ = imported(name)
            extra = ["--write-workload", case.root / "fitted.yaml"]
            if _cost_only(case):
                extra += ["--write-prices", case.root / "fitted-prices.yaml"]
            if _routed(case):
                extra += ["--write-policy", case.root / "policy.yaml"]
            done[name] = (case, _calibrate(case, [case.root / "runs.parquet"], *extra))
        return done[name]
    return get


def _cost_only(case: Case) -> bool:
    return all(c.input == c.out == 0 for t in case.truth.tasks for c in t.calls)


def _routed(case: Case) -> bool:
    return any(len({c.model for c in t.calls}) > 1 for t in case.truth.tasks)


@pytest.mark.parametrize("name", NAMES)
def test_calibrate_reports_the_log_as_it_was(calibrated, name):
    case, report = calibrated(name)
    want = sim.expected_calibrate(case.truth)
    _check_figures(report["overall"], want["overall"], "overall")
    if len(want["by_run"]) > 1:
        got_runs = {r["run"]: r for r in report["by_run"]}
        assert sorted(got_runs) == sorted(want["by_run"])
        for run, w in want["by_run"].items():
            _check_figures(got_runs[run], w, run)


@pytest.mark.parametrize("name", ["claude-code"])
def test_calibrate_in_one_step_reports_the_same(calibrated, name):
    case, report = calibrated(name)
    args = ["--source", case.truth.source, *case.truth.paths]
    if case.truth.outcomes:
        args += ["--outcomes", case.truth.outcomes]
    one = _calibrate(case, args)
    for k in FIGURES:
        assert one["overall"][k] == pytest.approx(report["overall"][k], abs=1e-12), k
    assert one["log"]["tasks"] == report["log"]["tasks"]


# --- compare on the fitted workload ---------------------------------------------------------

def _sampling_errors(tasks: list) -> tuple[float, float]:
    """Standard errors of the log's completion rate and cost per completed task, from the
    truth: binomial (with one pseudo-success and one pseudo-failure, so a rate of 0 or 1 still
    has an error) and the ratio estimator's linearisation sqrt(sum (x - R y)^2) / sum y."""
    known = [t for t in tasks if t.outcome is not None]
    n, k = len(known), sum(t.outcome for t in known)
    p = (k + 1) / (n + 2)
    se_c = math.sqrt(p * (1 - p) / n)
    r = sum(t.spend() for t in known) / k
    se_r = math.sqrt(sum((t.spend() - r * t.outcome) ** 2 for t in known)) / k
    return se_c, se_r


@pytest.mark.parametrize("name", NAMES)
def test_compare_reproduces_the_log(calibrated, name):
    case, report = calibrated(name)
    prices = case.root / ("fitted-prices.yaml" if _cost_only(case) else "prices.yaml")
    files, strategies = sim.compare_policies(report, case.root)
    args = ["compare", "--workload", case.root / "fitted.yaml", "--prices", prices,
            "--format", "json"] + [x for f in files for x in ("--policy", f)]
    if _routed(case):       # two models: the policy --write-policy wrote is the same one
        args += ["--policy", case.root / "policy.yaml"]
        strategies["inferred"] = next(iter(case.truth.runs))
    res = invoke(args)
    assert res.exit_code == 0, res.output
    got = {s["name"]: s for s in json.loads(res.stdout)["strategies"]}
    by_run = case.truth.by_run()
    want = sim.expected_calibrate(case.truth)["by_run"]
    assert sorted(set(strategies.values())) == sorted(by_run)
    for strategy, run in strategies.items():
        se_c, se_r = _sampling_errors(by_run[run])
        s, w = got[strategy], want[run]
        assert abs(s["completion_rate"] - w["completion_rate"]) <= 2.5 * se_c, (strategy, s, w)
        assert abs(s["cost_per_completed_task"] - w["cost_per_completed_task"]) <= 2.5 * se_r, (
            strategy, s, w)


def test_single_model_retries_that_start_afresh_are_the_logs_strategy(calibrated):
    """Aider's second try does not resend the first (the token fit reads retry_context none):
    the log's strategy is then a one-model policy that says so, not single:MODEL (which
    resends), so the fit check and compare bill the retries as the log did."""
    case, report = calibrated("aider-bench")
    (s,) = report["strategies"]
    assert report["fitted"]["runs"][s["run"]]["retry_context"] == "none"
    assert s["kind"] == "routed" and s["policy"]["tiers"] == {"midrange": "claude-sonnet-4-5"}
    assert s["policy"]["escalation"]["retry_context"] == "none"


# --- what the user sees ---------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_import_summary_fits_80_columns(cases, monkeypatch, name):
    """At 80 columns the import summary keeps to the width, but its first line (it names the
    output) and the indented lines (file:line reasons, ids)."""
    case = cases(name)
    monkeypatch.setenv("COLUMNS", "80")
    res = invoke(case.import_args(case.root / "w80.csv"))
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert [x for x in lines[1:] if len(x) > 80 and not x.startswith("  ")] == []


# Two runs with long names (OpenHands configs) and a cost-only log; two models in two phases.
@pytest.mark.parametrize("name", ["openhands-index", "claude-code"])
def test_calibrate_report_fits_80_columns(calibrated, monkeypatch, name):
    """At 80 columns the calibrate report keeps to the width and no number in it is cut."""
    case, report = calibrated(name)
    monkeypatch.setenv("COLUMNS", "80")
    res = invoke(["calibrate", case.root / "runs.parquet", "--prices", case.prices])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert max(map(len, lines)) <= 80
    # The fit check prints log -> engine for completion, cost and defects: each side whole.
    arrows = [x for x in lines if " → " in x and not x.startswith("Fit check")]
    assert len(arrows) >= len(report["fit"])
    for x in arrows:
        for side in re.findall(r"→ (\S+)", x):
            assert re.fullmatch(r"\d+\.\d+%|\$[\d,]+\.\d{4}|-", side), x
    # A run's line folds its long names onto one more line at most.
    if len(report["by_run"]) > 1:
        i = [x.strip() for x in lines].index("Per run")
        body = lines[i + 4:[x.strip() for x in lines].index("", i + 4)]
        assert len(body) <= 2 * len(report["by_run"]), body


def _one_line_error(res, *needles, after_summary=False):
    """Exit 2, one line on stderr (with `calibrate --source`, the last line: the import
    summary goes to stderr before it), no traceback."""
    assert res.exit_code == 2, res.output
    err = res.stderr.strip()
    assert "Traceback" not in res.output, err
    if after_summary:
        err = err.splitlines()[-1]
    assert len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, err
    return err


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_is_one_line_exit_2(cases, name, tmp_path):
    case = cases(name)
    src = case.truth.source
    empty = tmp_path / ("results.csv" if src == "litellm" else "output.jsonl")
    empty.write_text("")
    _one_line_error(invoke(["log", "import", "-s", src, empty, "--out", tmp_path / "o.csv"]),
                    str(empty), f"no {src} usage records found in 1 file")
    nothing = tmp_path / "nothing"
    (nothing / "sub").mkdir(parents=True)
    (nothing / "sub" / "notes.txt").write_text("hello\n")
    _one_line_error(invoke(["log", "import", "-s", src, nothing, "--out", tmp_path / "o.csv"]),
                    str(nothing), f"no {src} log files found")
    # An outcomes file with a value that is not a success: file:line: field: what is wrong.
    bad = tmp_path / "bad.csv"
    first = case.truth.tasks[0].id
    bad.write_text(f"task_id,success\n{first},true\n{first}x,perhaps\n")
    _one_line_error(invoke(case.import_args(tmp_path / "o.csv", outcomes=False) + ["--outcomes", bad]),
                    f"{bad}:3: success: expected true or false, got 'perhaps'")
    assert not (tmp_path / "o.csv").exists()


def test_outcomes_that_match_no_task(cases, tmp_path):
    """Outcome ids not in the logs are counted (the import goes on); in one step, a file of
    which no id matches is an error that names it (calibrate would have nothing to measure),
    and an error about the temporary imported log names the user's files, never the temp."""
    case = cases("codex")
    oc = tmp_path / "o.csv"
    oc.write_text("task_id,success\nTICKET-1,true\nTICKET-2,false\n")
    res = invoke(case.import_args(tmp_path / "r.csv", "--format", "json", outcomes=False)
                 + ["--outcomes", oc])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["outcomes_unmatched"] == 2 and data["tasks_with_outcome"] == 0
    one = ["calibrate", "--source", "codex", *case.truth.paths, "--prices", case.prices]
    _one_line_error(invoke(one + ["--outcomes", oc]), f"{oc}: no task id in the file matches",
                    "'TICKET-1' is not one", "--task-by session")
    err = _one_line_error(invoke(one), "no task in the log has an outcome",
                          after_summary=True)
    assert err.startswith(f"{case.truth.paths[0]} (codex): ") and "costsim-log-" not in err


def test_truncated_line_is_reported_with_its_column(imported):
    _, summary, _ = imported("codex")
    assert re.search(r"\.jsonl:5: not JSON \(Unterminated string starting at column \d+\)$",
                     summary["reasons"][0]), summary["reasons"]


def test_out_over_an_existing_file(cases, tmp_path):
    """--out names the file to write: an existing file there is replaced when the import
    succeeds (as `compare --out` does), and left as it was when it fails; an input, the
    outcomes file or a folder is never written over."""
    case = cases("litellm")
    mine = tmp_path / "runs.csv"
    mine.write_text("my own notes\n")
    assert invoke(case.import_args(mine)).exit_code == 0
    assert mine.read_text().startswith("task_id,task_type,phase,attempt,call,")
    mine.write_text("my own notes\n")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    _one_line_error(invoke(["log", "import", "-s", "litellm", empty, "--out", mine]))
    assert mine.read_text() == "my own notes\n"
    before = case.truth.outcomes.read_bytes()
    args = case.import_args(tmp_path / "x.csv")
    args[args.index("--out") + 1] = case.truth.outcomes
    _one_line_error(invoke(args), "--out: would overwrite the file given to --outcomes")
    assert case.truth.outcomes.read_bytes() == before
    # A folder: Click refuses it; through the console script's entry point (CliRunner shows
    # Click's own multi-line usage text) that is one line too.
    args[args.index("--out") + 1] = tmp_path
    run = run_main(*map(str, args)).check(codes=(2,))
    assert run.error_lines() == [f"costsim log import: Invalid value for '--out' / '-o': file "
                                 f"'{tmp_path}' is a directory. (see 'costsim log import "
                                 f"--help')"]


def test_task_by_tag_missing_on_some_lines(cases, tmp_path):
    """LiteLLM rows carry a `task:` tag on every other session: those are keyed by it, the
    others fall back to their session (and the summary counts them); nothing is lost."""
    case = cases("litellm")
    res = invoke(case.import_args(tmp_path / "r.parquet", "--task-by", "tag:task",
                                  "--format", "json"))
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    tasks = case.truth.tasks
    assert data["tasks"] == len(tasks) and data["tasks_from_fallback"] == len(tasks) // 2
    rows = pq.read_table(tmp_path / "r.parquet").to_pylist()
    want = {(t.branch if i % 2 == 0 else t.id): sum(c.input for c in t.calls)
            for i, t in enumerate(tasks)}
    got: dict = defaultdict(int)
    for r in rows:
        got[r["task_id"]] += r["input_tokens"]
    assert dict(got) == want
    # The outcomes file names sessions: the tagged tasks' outcomes no longer match.
    assert data["outcomes_unmatched"] == (case.truth.unmatched_outcomes + sum(
        t.outcome is not None for i, t in enumerate(tasks) if i % 2 == 0))
    res80 = invoke(case.import_args(tmp_path / "r.csv", "--task-by", "tag:task"))
    assert f"{len(tasks) // 2} tasks without a --task-by value: keyed by session" in (
        res80.stdout)


@pytest.mark.parametrize("name", ["claude-code", "codex"])
def test_task_by_branch(cases, tmp_path, name):
    """--task-by branch: a session resumed on the same branch is the same task (Claude Code's
    resumed file keeps only its new calls, which join the original's)."""
    case = cases(name)
    out = tmp_path / "r.parquet"
    res = invoke(case.import_args(out, "--task-by", "branch", "--format", "json", outcomes=False))
    assert res.exit_code == 0, res.output
    want = {k: v[:3] for k, v in sim.truth_totals(case.truth, lambda t, c: t.branch).items()}
    got = {k: v[:3] for k, v in sim.row_totals(pq.read_table(out).to_pylist(),
                                               lambda r: r["task_id"]).items()}
    assert got == want
    assert json.loads(res.stdout)["tasks"] == len(want)
