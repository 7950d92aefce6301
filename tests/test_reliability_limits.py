"""Issue 13, points 4-6: tiny files that used to cost minutes and gigabytes, or end in `internal
error`, now fail fast with one located line and exit 2 (docs/limits.md lists every bound)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import yaml

from costsim import limits
from costsim.errors import CostsimError
from costsim.loader import load_policy, load_prices, load_workload
from costsim.yamlio import parse_yaml
from reliability import FX, run_child, run_main

PRICES, POLICY, WORKLOAD = FX / "prices.yaml", FX / "policy.yaml", FX / "workload.yaml"


def compare(tmp_path: Path, *, prices=None, policy=None, workload=None):
    args = ["compare", "--prices", prices or PRICES, "--policy", policy or POLICY,
            "--workload", workload or WORKLOAD]
    return run_main(*args)


def edited(tmp_path: Path, src: Path, old: str, new: str, name: str | None = None) -> Path:
    text = src.read_text()
    assert old in text, old
    p = tmp_path / (name or src.name)
    p.write_text(text.replace(old, new, 1))
    return p


def one_error(run, path: Path, line: int | None, *needles: str) -> str:
    run.check(codes=(2,))
    err = run.error_lines()[0]
    prefix = f"{path}:{line}: " if line else f"{path}"
    assert err.startswith(prefix), err
    for n in needles:
        assert n in err, err
    return err


# --- YAML: aliases, depth, numbers, characters ----------------------------------------------

def alias_bomb() -> str:
    """The classic 'billion laughs', 9 levels of 9 (9^9 = 387 million strings), in 267 bytes."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{cur}: &{cur} [" + ",".join(f"*{prev}" for _ in range(9)) + "]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_fails_fast(tmp_path):
    text = "version: 1\n" + alias_bomb()
    assert len(text) < 700
    p = tmp_path / "bomb.yaml"
    p.write_text(text)
    t0 = time.perf_counter()
    r = compare(tmp_path, workload=p)
    assert time.perf_counter() - t0 < 2
    # a/b/c expand to 10 + 91 + 820 values; d is where the expansion passes 100,000
    one_error(r, p, None, "aliases expand to more than 100,000 values")


def test_alias_bomb_within_a_gigabyte_as_a_child_process(tmp_path):
    p = tmp_path / "bomb.yaml"
    p.write_text("version: 1\n" + alias_bomb())
    r = run_child("price-table", "validate", p, timeout=30)
    r.check(codes=(2,))
    assert r.seconds < 10
    if r.max_rss_mb is not None:
        assert r.max_rss_mb < 1024


def test_reasonable_aliases_still_work(tmp_path):
    """Anchors that repeat a success map are a fair use of YAML: allowed."""
    text = WORKLOAD.read_text().replace(
        "success: {premium: [0.9, 0.95], budget: 0.5}}",
        "success: &s {premium: [0.9, 0.95], budget: 0.5}}")
    text = text.replace("output_tokens: 800, difficulty: 10}",
                        "output_tokens: 800, difficulty: 10, success: *s}")
    p = tmp_path / "w.yaml"
    p.write_text(text)
    wl = load_workload(p)
    assert wl.task_types[1].phases[0].success == {"premium": [0.9, 0.95], "budget": 0.5}


def test_recursive_alias_is_an_error():
    with pytest.raises(CostsimError, match=r"^f.yaml:2: .*recursive aliases"):
        parse_yaml("version: 1\nx: &a [1, *a]\n", "f.yaml")


@pytest.mark.parametrize("depth", [65, 486, 100_000])
def test_deep_nesting_is_located(tmp_path, depth):
    p = tmp_path / "deep.yaml"
    p.write_text("version: 1\nname: w\ntask_types: " + "[" * depth + "]" * depth + "\n")
    one_error(compare(tmp_path, workload=p), p, 3, "nested more than 64 levels deep")


def test_nesting_at_the_limit_reaches_validation(tmp_path):
    p = tmp_path / "deep.yaml"
    p.write_text("version: 1\nname: w\ntask_types: " + "[" * 63 + "]" * 63 + "\n")
    one_error(compare(tmp_path, workload=p), p, 3, "task_types[0]")


@pytest.mark.parametrize("digits", [31, 4_301, 100_000])
def test_huge_integer_is_located(tmp_path, digits):
    p = edited(tmp_path, WORKLOAD, "tasks_per_month: 100", "tasks_per_month: " + "9" * digits)
    one_error(compare(tmp_path, workload=p), p, 3, "tasks_per_month: number too large")


def test_float_that_overflows_is_located(tmp_path):
    p = edited(tmp_path, PRICES, "input: 3.0", "input: 1.0e+309")
    one_error(compare(tmp_path, prices=p), p, 17, "models.mid.input",
              "'1.0e+309' overflows a 64-bit float")


def test_date_that_does_not_exist_is_located(tmp_path):
    p = edited(tmp_path, PRICES, "as_of: 2026-11-20", "as_of: 2026-13-45")
    one_error(compare(tmp_path, prices=p), p, 2, "as_of: cannot read '2026-13-45'")


def test_nul_byte_gives_its_line(tmp_path):
    p = tmp_path / "policy.yaml"
    p.write_bytes(POLICY.read_bytes().replace(b"name: three-tier", b"name: three\x00tier"))
    one_error(compare(tmp_path, policy=p), p, 2, "a NUL byte is not allowed")


def test_lone_surrogate_escape_is_located():
    """libyaml refuses the escape itself; PyYAML's own parser lets it through to our check."""
    with pytest.raises(CostsimError, match=r"^f.yaml:2: (name: text contains a lone surrogate|"
                                           r"not valid YAML: .*escape)"):
        parse_yaml('version: 1\nname: "a\\ud800"\n', "f.yaml")


def test_too_many_values_stop_composition(tmp_path):
    """600,000 one-character list items fit in the 8 MB limit but would take a gigabyte of
    nodes: refused at the 500,001st value."""
    p = tmp_path / "many.yaml"
    p.write_text("version: 1\nname: x\ntask_types: [" + "1," * 600_000 + "]\n")
    one_error(compare(tmp_path, workload=p), p, 3, "more than 500,000 values in one file")


def test_oversized_yaml_file_is_refused_before_parsing(tmp_path):
    p = tmp_path / "huge.yaml"
    with open(p, "w") as fh:
        fh.write("version: 1\n# " + "x" * (limits.MAX_YAML_BYTES + 10) + "\n")
    one_error(compare(tmp_path, prices=p), p, None, "larger than 8 MB")


# --- sizes a workload asks for ----------------------------------------------------------------

@pytest.mark.parametrize("old,new,line,needle", [
    ("max_attempts: 3", "max_attempts: 100000", 4, "max_attempts: input should be less than or "
     "equal to 100, got 100000 (costsim's limit"),
    ("calls: 2, input_tokens: 1000", "calls: 2000000, input_tokens: 1000", 21,
     "calls: input should be less than or equal to 1000, got 2000000"),
    ("input_tokens: 1000, output_tokens: 100", "input_tokens: 1000000000000, output_tokens: 100",
     21, "input_tokens: input should be less than or equal to 100000000"),
    ("system_tokens: 1000", "system_tokens: 10000000000", 5, "system_tokens"),
    ("difficulty: 20}", "difficulty: 8000}", 21, "difficulty: input should be less than or "
     "equal to 1000, got 8000"),
    ("tasks_per_month: 100", "tasks_per_month: 10000000000000000", 3, "tasks_per_month"),
    ("review_minutes: {base: 10", "review_minutes: {base: 1.0e+300", 16, "review_minutes.base"),
])
def test_workload_sizes_are_bounded(tmp_path, old, new, line, needle):
    p = edited(tmp_path, WORKLOAD, old, new)
    one_error(compare(tmp_path, workload=p), p, line, needle)


def test_difficulty_with_every_signal_is_bounded(tmp_path):
    """Each value is within ±1000 but the phase plus its signals is not: p1 = 1/(1+exp(...))
    would overflow at 7,000 or so."""
    p = edited(tmp_path, WORKLOAD, "difficulty: 60}", "difficulty: 995}")
    one_error(compare(tmp_path, workload=p), p, 22, "task_types[0].phases[1].difficulty: "
              "difficulty 995 with every signal active (+15) is 1010; at most 1000")


def test_summary_tokens_that_overflow(tmp_path):
    for value in ("1.0e+309", "1e309", "1" + "0" * 309):
        p = edited(tmp_path, POLICY, "summary_tokens: 1000", f"summary_tokens: {value}")
        one_error(compare(tmp_path, policy=p), p, 16, "handoff.summary_tokens")


def _workload_with(tmp_path, *, signals: int = 0, task_types: int = 1, phases: int = 1,
                   attempts: int = 3) -> Path:
    wl = {"version": 1, "name": "big", "max_attempts": attempts,
          "signals": {f"s{i}": {"share": 0.5} for i in range(signals)},
          "task_types": [{"name": f"t{t}", "share": 1 / task_types,
                          "phases": [{"phase": f"p{i}", "calls": 1, "input_tokens": 1,
                                      "output_tokens": 1, "difficulty": 10}
                                     for i in range(phases)]} for t in range(task_types)]}
    p = tmp_path / "big.yaml"
    p.write_text(yaml.safe_dump(wl, sort_keys=False))
    return p


def test_too_many_signals(tmp_path):
    p = _workload_with(tmp_path, signals=17)
    one_error(compare(tmp_path, workload=p), p, 4, "signals: dictionary should have at most "
              "16 items")


def test_cells_are_counted_before_they_are_built(tmp_path):
    """14 signals are allowed, but 2 task types x 2^14 combinations are 32,768 cells."""
    p = _workload_with(tmp_path, signals=14, task_types=2)
    t0 = time.perf_counter()
    one_error(compare(tmp_path, workload=p), p, 4, "32,768 cells", "at most 20,000")
    assert time.perf_counter() - t0 < 2


def test_ladder_size_is_bounded(tmp_path):
    """10 signals (1,024 cells) x 48 phases: 49,152 cell-phases, below 50,000; x 21
    attempts: 1,032,192 ladder entries, above 1 million."""
    p = _workload_with(tmp_path, signals=10, phases=48, attempts=21)
    one_error(compare(tmp_path, workload=p), p, 3, "cells x phases x attempts come to "
              "1,032,192 (1,024 x 48 x 21)")


def test_cell_phases_are_bounded(tmp_path):
    p = _workload_with(tmp_path, signals=11, phases=25)
    one_error(compare(tmp_path, workload=p), p, 30, "task_types[0].phases: cells x phases come "
              "to 51,200")


def test_variation_bounds_the_calls_evaluated_at_every_node(tmp_path):
    """With variation every call is integrated at each quadrature node: a 1-phase workload of
    1,000 calls x 5 attempts at variation.difficulty 10 took 1.7 GB and 43 s; now refused, while
    the same spread with 20 calls runs."""
    w = yaml.safe_load(WORKLOAD.read_text())
    w["variation"] = {"difficulty": 10, "tokens": 5, "tokens_follow_difficulty": 1}
    w["task_types"] = [{"name": "t", "share": 1.0, "max_attempts": 5, "phases": [
        {"phase": "implement", "calls": 1000, "input_tokens": 10000, "output_tokens": 1000,
         "difficulty": 60}]}]
    p = tmp_path / "w.yaml"
    p.write_text(yaml.safe_dump(w, sort_keys=False))
    one_error(compare(tmp_path, workload=p), p, None, "variation: with this variation every "
              "call is evaluated at", "at most 400,000")
    w["task_types"][0]["phases"][0]["calls"] = 20
    p.write_text(yaml.safe_dump(w, sort_keys=False))
    compare(tmp_path, workload=p).check(codes=(0,))


def test_variation_bounds_the_work_of_a_strategy_not_a_large_workload(tmp_path):
    """Issue 13's large comparison (50 task types x 16 cells x 20 phases x 4 attempts) with the
    bundled spread (100 nodes) is 6,400,000 cell-node-phase-attempts: it loads; one attempt more,
    8,000,000, is over the 7,000,000 and refused."""
    w = yaml.safe_load(WORKLOAD.read_text())
    w["variation"] = {"difficulty": 3.24, "tokens": 0.75, "tokens_follow_difficulty": 0.24}
    w["signals"] = {f"s{i}": {"share": 0.1} for i in range(4)}
    w["max_attempts"] = 4
    w["task_types"] = [{"name": f"t{k}", "share": 0.02, "phases": [
        {"phase": f"p{j}", "calls": 8, "input_tokens": 2000, "output_tokens": 500,
         "difficulty": 50} for j in range(20)]} for k in range(50)]
    p = tmp_path / "w.yaml"
    p.write_text(yaml.safe_dump(w, sort_keys=False))
    from costsim.engine.variation import Spread, node_rule
    assert len(node_rule(Spread(s=3.24, t=0.75, r=0.24)).z) == 100   # the count above
    load_workload(p)
    w["max_attempts"] = 5
    p.write_text(yaml.safe_dump(w, sort_keys=False))
    one_error(compare(tmp_path, workload=p), p, None, "variation: with this variation every "
              "cell is evaluated at 100 quadrature nodes", "come to 8,000,000", "at most 7,000,000")


def test_in_memory_workload_is_checked_by_the_api(tmp_path):
    """A workload built in Python skips the file checks; the API still bounds it."""
    import costsim

    wl = load_workload(_workload_with(tmp_path, signals=10, phases=30, attempts=3))
    for t in wl.task_types:
        t.phases = t.phases * 2            # 60 phases: built in Python, not read from a file
    with pytest.raises(CostsimError, match="cells x phases come to"):
        costsim.compare(PRICES, [POLICY.parent / "policy.yaml"], wl)


# --- price tables -----------------------------------------------------------------------------

@pytest.mark.parametrize("old,new,line,needle", [
    ("input: 5.0", "input: 1.0e+308", 24, "models.top.input: input should be less than or equal "
     "to 1000000"),
    ("long_context: {above: 200000", "long_context: {above: 1000000000000", 27,
     "models.top.long_context.above"),
])
def test_price_table_sizes_are_bounded(tmp_path, old, new, line, needle):
    p = edited(tmp_path, PRICES, old, new)
    one_error(compare(tmp_path, prices=p), p, line, needle)


# --- messages on one line ----------------------------------------------------------------------

def test_values_with_newlines_are_escaped(tmp_path):
    p = edited(tmp_path, POLICY, "default: midrange", 'default: "mid\\nrange"')
    r = compare(tmp_path, policy=p)
    err = one_error(r, p, 8, "routes.default: unknown tier 'mid\\nrange'")
    assert "\n" not in err


def test_directory_argument_is_one_line(tmp_path):
    r = run_main("compare", "--prices", tmp_path)
    r.check(codes=(2,))
    assert r.error_lines() == [f"costsim compare: Invalid value for '--prices': file "
                               f"'{tmp_path}' is a directory. (see 'costsim compare --help')"]


def test_unknown_option_is_one_line():
    r = run_main("price-table", "show", "--bogus")
    r.check(codes=(2,))
    assert r.error_lines()[0].startswith("costsim price-table show: No such option: --bogus")


def test_no_arguments_still_show_the_help():
    r = run_main()
    assert r.code == 2 and "Usage" in r.out + r.err


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("argv", [["compare"], ["price-table", "show"],
                                  ["compare", "--format", "json", "--out", "-"]])
def test_full_disk_on_stdout_is_one_line(argv):
    with open("/dev/full", "w") as full:
        r = run_child(*argv, stdout=full, timeout=60)
    r.check(codes=(2,))
    assert r.error_lines() == ["cannot write to standard output: No space left on device"]


def test_closed_pipe_is_quiet(tmp_path):
    """`costsim compare | head -1`: the reader has what it wanted; no message, status 0."""
    import subprocess
    import sys

    from reliability import ENTRY

    models = "".join(f"  m{i}: {{provider: p, tier: budget, input: 1.0, output: 2.0}}\n"
                     for i in range(5000))
    table = tmp_path / "big.yaml"      # ~250 KB of CSV: more than a pipe holds
    table.write_text(f"version: 1\nas_of: 2026-11-20\nmodels:\n{models}")
    p = subprocess.Popen([sys.executable, "-c", ENTRY, "price-table", "show", "--table", table,
                          "--format", "csv"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.read(10)
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 0, err
    assert err == ""


# --- price sources ----------------------------------------------------------------------------

def test_source_with_too_many_values_is_refused_before_parsing(tmp_path):
    src = tmp_path / "source.json"
    src.write_text("[" + "{}," * 2_100_000 + "{}]")
    t0 = time.perf_counter()
    r = run_main("price-table", "update", "--source", "openrouter", "--from", src, "--table",
                 tmp_path / "t.yaml", "--all")
    one_error(r, src, None, "source has more than 2,000,000 values")
    assert time.perf_counter() - t0 < 5
    assert not (tmp_path / "t.yaml").exists()


def test_all_that_would_make_a_table_too_big_is_refused(tmp_path):
    import json

    src = tmp_path / "source.json"
    src.write_text(json.dumps({f"m{i}": {"mode": "chat", "litellm_provider": "p",
                                         "input_cost_per_token": 1e-06,
                                         "output_cost_per_token": 2e-06}
                               for i in range(10_001)}))
    r = run_main("price-table", "update", "--source", "litellm", "--from", src, "--table",
                 tmp_path / "t.yaml", "--all", "--empty")
    one_error(r, src, None, "--all would import 10,001 models; a table holds at most 10,000")
