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
# The child reports its own peak resident memory at exit: VmHWM of /proc/self/status, which
# starts afresh with the exec (getrusage's ru_maxrss does not: a forked child starts from its
# parent's, and an xdist worker is ~1 GB by the time the limit tests run).
ENTRY = """
import atexit, os

def _peak(path=os.environ.get("COSTSIM_TEST_PEAK")):
    if path:
        with open("/proc/self/status") as fh:
            kib = next((ln.split()[1] for ln in fh if ln.startswith("VmHWM:")), None)
        if kib is not None:
            with open(path, "w") as out:
                out.write(kib)

atexit.register(_peak)
from costsim.cli import main
main()
"""


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
    """``costsim ARGV`` as a child process; reports its wall time and peak memory (RSS: the
    child's own, see :data:`ENTRY`; None when it did not exit normally)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        peak = os.path.join(tmp, "peak")
        full_env = {**os.environ, **(env or {}), "COSTSIM_TEST_PEAK": peak}
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-c", ENTRY, *map(str, argv)], stdout=stdout,
                           stderr=subprocess.PIPE, text=True, timeout=timeout, env=full_env,
                           cwd=cwd)
        seconds = time.perf_counter() - t0
        try:
            with open(peak) as fh:
                rss = int(fh.read()) / 1024          # KiB
        except (OSError, ValueError):
            rss = None
    return Run(p.returncode, p.stdout or "", p.stderr, seconds, rss)
