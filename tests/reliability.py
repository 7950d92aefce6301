"""Run costsim the way a user does (through ``costsim.cli.main``, in process or as a child
process) and check the reliability contract: exit 0 or 2, at most one line of error, no
``internal error``."""

from __future__ import annotations

import io
import os
import resource
import subprocess
import sys
import time
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

FX = Path(__file__).parent / "fixtures"
ENTRY = "from costsim.cli import main; main()"


@dataclass
class Run:
    code: int
    out: str
    err: str
    seconds: float = 0.0
    max_rss_mb: float | None = None

    def error_lines(self) -> list[str]:
        """stderr lines that are not warnings."""
        return [ln for ln in self.err.splitlines() if not ln.startswith("warning: ")]

    def check(self, codes=(0, 2)) -> "Run":
        """The contract every run must keep."""
        assert self.code in codes, (self.code, self.err[-2000:])
        assert "internal error" not in self.err, self.err[-2000:]
        assert "Traceback" not in self.err, self.err[-2000:]
        if self.code == 2:
            assert len(self.error_lines()) == 1, self.err[-2000:]
        return self


def run_main(*argv, env: dict | None = None) -> Run:
    """``costsim ARGV`` in this process (fast), through main() and its error handling."""
    out, err = io.StringIO(), io.StringIO()
    old = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    t0 = time.perf_counter()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                from costsim.cli import main

                main([str(a) for a in argv])
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return Run(code, out.getvalue(), err.getvalue(), time.perf_counter() - t0)


@contextmanager
def memory_cap(extra_mb: int):
    """Cap this process's address space at its current size plus ``extra_mb`` while the block
    runs (Linux): a run that would take gigabytes fails with MemoryError instead of taking the
    machine down."""
    try:
        with open("/proc/self/statm") as fh:
            size = int(fh.read().split()[0]) * resource.getpagesize()
    except OSError:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = size + extra_mb * 1024 * 1024
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def run_child(*argv, timeout: float = 60, stdout=subprocess.PIPE, env: dict | None = None,
              cwd=None) -> Run:
    """``costsim ARGV`` as a child process; reports its wall time and peak memory (RSS).

    The peak is the child's own (``os.wait4``), not ``RUSAGE_CHILDREN``: that one is the
    largest of every child this process ever reaped, and with the suite on several workers a
    worker's Spark JVM (about 1 GB) reaped while this child ran showed up as its peak."""
    import threading

    full_env = {**os.environ, **(env or {})}
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-c", ENTRY, *map(str, argv)], stdout=stdout,
                         stderr=subprocess.PIPE, text=True, env=full_env, cwd=cwd)
    got: dict = {}

    def read(name, fh):
        with fh:
            got[name] = fh.read()

    readers = [threading.Thread(target=read, args=(n, fh)) for n, fh in
               (("out", p.stdout), ("err", p.stderr)) if fh is not None]
    for t in readers:
        t.start()
    status = usage = None
    while True:
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() - t0 > timeout:
            p.kill()
            _, status, usage = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
            for t in readers:
                t.join()
            raise subprocess.TimeoutExpired(p.args, timeout)
        time.sleep(0.005)
    seconds = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    for t in readers:
        t.join()
    rss = usage.ru_maxrss / 1024      # KiB on Linux
    return Run(p.returncode, got.get("out") or "", got.get("err", ""), seconds, rss)
