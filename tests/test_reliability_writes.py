"""Issue 13, points 1-3: writes of a user's files are locked, checked before they start, atomic,
follow symlinks, refuse what they must not replace, and leave nothing behind when killed."""

from __future__ import annotations

import json
import os
import random
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from costsim.errors import CostsimError
from costsim.fsutil import atomic_write, locked, remove_stale_temps
from costsim.loader import load_prices
from costsim.pricetable.merge import update_table
from reliability import ENTRY, FX, run_child, run_main

N_RACERS = 8

TABLE = """\
version: 1
as_of: 2026-10-01
currency: USD
models:
  base-model:
    provider: acme
    tier: budget
    input: 1.0
    output: 2.0
"""


def source(tmp_path: Path, n: int = N_RACERS, **extra) -> Path:
    """A LiteLLM map with models race-0 .. race-{n-1} (race-i costs (i+1) per 1M input)."""
    data = {f"race-{i}": {"mode": "chat", "litellm_provider": "acme",
                          "input_cost_per_token": (i + 1) * 1e-06,
                          "output_cost_per_token": 2e-06} for i in range(n)}
    data["base-model"] = {"mode": "chat", "litellm_provider": "acme",
                          "input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06}
    data.update(extra)
    p = tmp_path / "source.json"
    p.write_text(json.dumps(data))
    return p


@pytest.fixture
def table(tmp_path) -> Path:
    d = tmp_path / "tables"
    d.mkdir()
    p = d / "prices.yaml"
    p.write_text(TABLE)
    return p


def leftovers(directory: Path, name: str) -> list[str]:
    """Files next to the table other than the table and its backup."""
    return sorted(f for f in os.listdir(directory) if f not in (name, name + ".bak"))


# --- 1. no lost updates -----------------------------------------------------------------------

def test_concurrent_cli_updates_all_land(table, tmp_path):
    """N processes each add their own model to one table at the same time: every model is in
    the table at the end, each process exited 0, and nothing is left next to the table."""
    src = source(tmp_path)
    procs = [subprocess.Popen([sys.executable, "-c", ENTRY, "price-table", "update",
                               "--source", "litellm", "--from", str(src), "--table", str(table),
                               "--add", f"race-{i}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(N_RACERS)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    models = load_prices(table).models
    assert sorted(models) == sorted(["base-model"] + [f"race-{i}" for i in range(N_RACERS)])
    assert models["race-3"].input == 4.0
    assert leftovers(table.parent, table.name) == []


def test_concurrent_api_updates_from_threads_all_land(table, tmp_path):
    src = source(tmp_path, n=16)
    errors = []

    def add(i):
        try:
            update_table("litellm", str(src), table=table, patterns=[f"race-{i}"])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert len(load_prices(table).models) == 17
    assert leftovers(table.parent, table.name) == []


def test_concurrent_update_and_scores_both_land(table, tmp_path):
    """`price-table scores` is a read-modify-write of the table too: racing an update, both
    changes are in the result."""
    from costsim.pricetable.scores import merge_scores

    scores = tmp_path / "scores.csv"
    scores.write_text("model,coding_score\nbase-model,61\n")
    src = source(tmp_path)
    errors = []

    def run(fn):
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    jobs = [lambda i=i: update_table("litellm", str(src), table=table, patterns=[f"race-{i}"])
            for i in range(4)] + [lambda: merge_scores(table, str(scores))] * 2
    threads = [threading.Thread(target=run, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    models = load_prices(table).models
    assert sorted(models) == ["base-model", "race-0", "race-1", "race-2", "race-3"]
    assert models["base-model"].coding_score == 61.0


def test_lock_is_reentrant_and_exclusive(tmp_path):
    target = tmp_path / "t.yaml"
    order = []
    with locked(target):
        with locked(target):                       # the same thread: no deadlock
            atomic_write(target, "a: 1\n")         # the write takes the lock it already holds

        def other():
            with locked(target):
                order.append("other")

        t = threading.Thread(target=other)
        t.start()
        time.sleep(0.3)
        order.append("first")                      # the other thread is still waiting
    t.join(timeout=30)
    assert order == ["first", "other"]
    assert not (tmp_path / ".t.yaml.lock").exists()


# --- 2. everything that can fail happens before the write -------------------------------------

def test_report_that_fails_writes_nothing(table, tmp_path):
    before = table.read_bytes()

    def broken_report(result):
        assert result.written and result.backup is not None   # what the report will say
        raise CostsimError("cannot render the report")

    with pytest.raises(CostsimError, match="cannot render"):
        update_table("litellm", str(source(tmp_path)), table=table, patterns=["race-1"],
                     render=broken_report)
    assert table.read_bytes() == before
    assert leftovers(table.parent, table.name) == []


def test_lone_surrogate_in_a_source_id_is_skipped_and_reported(table, tmp_path):
    """JSON can spell a lone surrogate ("\\ud800"), which no file can hold: the entry is skipped
    with a reason, the rest is imported, the report prints, and the table stays readable (diff
    too)."""
    src = tmp_path / "source.json"
    src.write_text('{"race-\\ud800": {"mode": "chat", "litellm_provider": "acme", '
                   '"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06}, '
                   '"race-ok": {"mode": "chat", "litellm_provider": "acme", '
                   '"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06}}')
    r = run_child("price-table", "update", "--source", "litellm", "--from", src, "--table",
                  table, "--add", "race-*", "--verbose").check(codes=(0,))  # a real stdout
    assert "skipped 1: id is not valid Unicode text (e.g. race-\\ud800)" in r.out
    assert sorted(load_prices(table).models) == ["base-model", "race-ok"]
    run_main("price-table", "diff", str(table) + ".bak", table).check(codes=(0,))
    r = run_main("price-table", "update", "--source", "litellm", "--from", src, "--table", table,
                 "--format", "json", "--dry-run").check(codes=(0,))
    assert json.loads(r.out)["report"]["skipped"][0]["keys"] == ["race-\ud800"]


@pytest.mark.parametrize("field,value", [
    ("max_input_tokens", 10 ** 400),
    ("max_input_tokens", 1e308),
    ("input_cost_per_token", 1e303),          # 1e309 per 1M: overflows
    ("input_cost_per_token", "1e999999"),     # overflows Decimal's exponent range
])
def test_out_of_range_source_values_never_reach_the_table(table, tmp_path, field, value):
    entry = {"mode": "chat", "litellm_provider": "acme", "input_cost_per_token": 1e-06,
             "output_cost_per_token": 2e-06, field: value}
    src = tmp_path / "source.json"
    src.write_text(json.dumps({"race-big": entry, "race-ok": entry | {field: 1000}}))
    r = run_main("price-table", "update", "--source", "litellm", "--from", src, "--table", table,
                 "--add", "race-*").check()
    t = load_prices(table)
    if r.code == 0:
        big = t.models.get("race-big")
        assert big is None or big.context_window is None
    run_main("price-table", "validate", table).check(codes=(0,))


def test_context_window_of_10_to_the_400_is_left_out_and_reported(table, tmp_path):
    src = tmp_path / "source.json"
    src.write_text('{"race-1": {"mode": "chat", "litellm_provider": "acme", '
                   '"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06, '
                   '"max_input_tokens": 1' + "0" * 400 + '}}')
    res = update_table("litellm", str(src), table=table, patterns=["race-1"])
    assert load_prices(table).models["race-1"].context_window is None
    assert res.report.unrepresented == {
        "context window out of range (left out; at most 1,000,000,000)": ["race-1"]}
    run_main("price-table", "diff", str(table) + ".bak", table).check(codes=(0,))


def test_invalid_merged_table_is_reported_and_not_written(table, tmp_path, monkeypatch):
    """If the text to be written would not load back, the error says so and nothing changes."""
    from costsim.pricetable import merge

    before = table.read_bytes()
    monkeypatch.setattr(merge, "_source_entry", lambda *a: {"name": "litellm",
                                                            "fetched": "not a date"})
    with pytest.raises(CostsimError, match=r"the updated table would not be valid, nothing "
                                           r"was written \(sources\[0\]\.fetched"):
        update_table("litellm", str(source(tmp_path)), table=table)
    assert table.read_bytes() == before


# --- 3. special targets -----------------------------------------------------------------------

def test_symlinked_table_is_written_through_the_link(table, tmp_path):
    link = tmp_path / "link.yaml"
    link.symlink_to(table)
    r = run_main("price-table", "update", "--source", "litellm", "--from", source(tmp_path),
                 "--table", link, "--add", "race-1").check(codes=(0,))
    assert link.is_symlink() and os.readlink(link) == str(table)
    assert "race-1" in load_prices(table).models                  # the target is fresh
    assert (table.parent / "prices.yaml.bak").read_text() == TABLE  # backup beside the target
    assert f"previous table kept as {table.parent / 'prices.yaml.bak'}" in r.out
    assert leftovers(tmp_path, "link.yaml") == ["source.json", "tables"]


def test_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "out.json"
    link.symlink_to(tmp_path / "real.json")
    atomic_write(link, "{}\n")
    assert link.is_symlink() and (tmp_path / "real.json").read_text() == "{}\n"


def test_read_only_table_is_refused(table, tmp_path):
    table.chmod(0o444)
    before = table.read_bytes()
    r = run_main("price-table", "update", "--source", "litellm", "--from", source(tmp_path),
                 "--table", table, "--add", "race-1").check(codes=(2,))
    assert r.error_lines() == [f"{table}: cannot write: the file is read-only (chmod u+w to let "
                               "costsim replace it)"]
    assert table.read_bytes() == before
    assert leftovers(table.parent, table.name) == []


def test_read_only_out_file_is_refused(tmp_path):
    out = tmp_path / "r.json"
    out.write_text("keep\n")
    out.chmod(0o400)
    r = run_main("compare", "--prices", FX / "prices.yaml", "--policy", FX / "policy.yaml",
                 "--workload", FX / "workload.yaml", "--format", "json", "--out", out)
    r.check(codes=(2,))
    assert out.read_text() == "keep\n"


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(CostsimError, match="cannot write: a named pipe, not a regular file"):
        atomic_write(fifo, "x")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


@pytest.mark.skipif(os.geteuid() != 0, reason="creating a device node needs root")
def test_device_node_is_refused_even_as_root(tmp_path):
    node = tmp_path / "null"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    r = run_main("compare", "--prices", FX / "prices.yaml", "--policy", FX / "policy.yaml",
                 "--workload", FX / "workload.yaml", "--out", node).check(codes=(2,))
    assert "cannot write: a device, not a regular file (use '-' for standard output)" in r.err
    assert stat.S_ISCHR(os.stat(node).st_mode)


@pytest.mark.parametrize("name", ["-", "/dev/stdout"])
def test_standard_output_names(name):
    r = run_main("compare", "--prices", FX / "prices.yaml", "--policy", FX / "policy.yaml",
                 "--workload", FX / "workload.yaml", "--format", "json", "--out", name)
    r.check(codes=(0,))
    assert json.loads(r.out)["version"] == 1 and "wrote" not in r.err


def test_new_file_mode_follows_umask_and_replacement_keeps_mode(tmp_path):
    p = tmp_path / "f.txt"
    old = os.umask(0o027)
    try:
        atomic_write(p, "a")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o640
    p.chmod(0o600)
    atomic_write(p, "b")
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600 and p.read_text() == "b"


# --- temp files and kills ---------------------------------------------------------------------

def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_temp_files_of_dead_runs_are_removed(table, tmp_path):
    dead = table.parent / f".prices.yaml.costsim-{_dead_pid()}-0badc0de.tmp"
    dead_bak = table.parent / f".prices.yaml.bak.costsim-{_dead_pid()}-0badc0de.tmp"
    alive = table.parent / f".prices.yaml.costsim-{os.getpid()}-0badc0de.tmp"
    other = table.parent / ".prices.yaml.mine.tmp"          # not ours: never touched
    for f in (dead, dead_bak, alive, other):
        f.write_text("partial")
    update_table("litellm", str(source(tmp_path)), table=table, patterns=["race-1"])
    assert not dead.exists() and not dead_bak.exists()
    assert alive.exists() and other.exists()
    assert remove_stale_temps(table) == []


_WRITER = """
import sys
from costsim.fsutil import atomic_write
path, size = sys.argv[1], int(sys.argv[2])
n = 0
print("ready", flush=True)
while True:
    atomic_write(path, (b"ab"[n % 2:n % 2 + 1]) * size, backup=True)
    n += 1
"""


def test_kills_during_writes_leave_old_or_new_and_the_next_write_cleans_up(tmp_path):
    """A writer replaces a 4 MB file over and over; SIGKILL at random moments. The file is
    always entirely one version; temp files a kill leaves are removed by the next write."""
    target = tmp_path / "data.bin"
    size = 4 * 1024 * 1024
    target.write_bytes(b"a" * size)
    rng = random.Random(13)
    for _ in range(8):
        p = subprocess.Popen([sys.executable, "-c", _WRITER, str(target), str(size)],
                             stdout=subprocess.PIPE)
        p.stdout.readline()
        time.sleep(rng.uniform(0.0, 0.3))
        p.send_signal(signal.SIGKILL)
        p.wait()
        data = target.read_bytes()
        assert data in (b"a" * size, b"b" * size)
    atomic_write(target, b"c", backup=True)
    assert leftovers(tmp_path, "data.bin") == []


def test_kills_during_cli_updates_leave_a_valid_table(table, tmp_path):
    """`price-table update` killed at random moments: the table always loads (old or new);
    one more run leaves only the table and its backup."""
    src = source(tmp_path, n=2000)
    rng = random.Random(7)
    for _ in range(5):
        p = subprocess.Popen([sys.executable, "-c", ENTRY, "price-table", "update", "--source",
                              "litellm", "--from", str(src), "--table", str(table), "--all"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 1.5))
        p.send_signal(signal.SIGKILL)
        p.wait()
        assert len(load_prices(table).models) in (1, 2001)
    run_child("price-table", "update", "--source", "litellm", "--from", src, "--table", table,
              "--all").check(codes=(0,))
    assert len(load_prices(table).models) == 2001
    assert leftovers(table.parent, table.name) == []
