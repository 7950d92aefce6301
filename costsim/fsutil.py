"""Writing files a user owns: all or nothing, one writer at a time, nothing left behind.

* :func:`atomic_write` writes a temporary file next to the target, fsyncs it, renames it over the
  target and fsyncs the directory, so the target is always either the old or the new file.
* The target is the file a symlink points to (the link stays a link). A read-only file, a file
  the user cannot write and anything that is not a regular file (a directory, a device, a FIFO)
  are refused before anything is written; ``-`` and ``/dev/stdout`` mean standard output.
* :func:`locked` holds an exclusive lock (``filelock``, on ``.NAME.lock`` next to the target)
  around a read-modify-write, so two concurrent updates of one file serialize instead of one
  losing the other's changes. Every write takes it too. The lock file is removed on release.
* Temporary files are named ``.NAME.costsim-<pid>-<random>.tmp``. A run killed in the middle of a
  write leaves one behind; the next run that locks the same file removes those whose process is
  gone.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
import sys
import threading
from pathlib import Path
from typing import Iterator

from .errors import CostsimError

__all__ = ["LOCK_TIMEOUT", "atomic_write", "check_writable", "create_new", "discard_stdout",
           "is_stdout", "locked", "real_target", "remove_stale_temps", "write_stdout"]

#: Seconds to wait for another costsim process that is writing the same file.
LOCK_TIMEOUT = 120.0
STDOUT_NAMES = ("-", "/dev/stdout")

_held = threading.local()


def is_stdout(path: str | Path) -> bool:
    """True for the names that mean standard output: ``-`` and ``/dev/stdout``."""
    return str(path) in STDOUT_NAMES


def real_target(path: str | Path) -> Path:
    """The file a write to ``path`` replaces: symlinks followed (also a dangling one, whose
    target is created)."""
    return Path(os.path.realpath(os.path.expanduser(str(path))))


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_writable(path: str | Path) -> Path:
    """The real target of ``path`` if costsim may replace it, else a CostsimError naming
    ``path``: not a regular file, read-only, or not writable by this user."""
    real = real_target(path)
    try:
        st = os.stat(real)
    except FileNotFoundError:
        return real
    except OSError as exc:
        raise CostsimError(f"cannot write: {exc.strerror or exc}", str(path)) from None
    if not stat.S_ISREG(st.st_mode):
        raise CostsimError(f"cannot write: {_kind(st.st_mode)}, not a regular file "
                           "(use '-' for standard output)", str(path))
    # The mode bits first: root may write anything, but a 0444 file says "do not replace me".
    if not st.st_mode & 0o222:
        raise CostsimError("cannot write: the file is read-only (chmod u+w to let costsim "
                           "replace it)", str(path))
    if not os.access(real, os.W_OK):
        raise CostsimError("cannot write: permission denied (the file is not writable by "
                           "you)", str(path))
    return real


# --- locking --------------------------------------------------------------------------------

def _lock_path(real: Path) -> Path:
    return real.with_name(f".{real.name}.lock")


@contextlib.contextmanager
def locked(path: str | Path, timeout: float = LOCK_TIMEOUT) -> Iterator[Path]:
    """Hold the exclusive lock of ``path``'s real target for a read-modify-write; yields the real
    target. Re-entrant within a thread; other threads and processes wait up to ``timeout``
    seconds. On entry, temporary files of killed runs are removed (:func:`remove_stale_temps`).
    """
    from filelock import FileLock, Timeout

    real = real_target(path)
    held: set[str] = getattr(_held, "paths", None) or set()
    _held.paths = held
    if str(real) in held:
        yield real
        return
    lock_file = _lock_path(real)
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CostsimError(f"cannot write: {exc.strerror or exc}", str(path)) from None
    lock = FileLock(str(lock_file), timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise CostsimError(f"another costsim process has been writing this file for over "
                           f"{timeout:g} s (lock {lock_file.name}); try again", str(path)) from None
    except OSError as exc:
        raise CostsimError(f"cannot lock for writing: {exc.strerror or exc}", str(path)) from None
    held.add(str(real))
    try:
        remove_stale_temps(real)
        remove_stale_temps(real.with_name(real.name + ".bak"))
        yield real
    finally:
        held.discard(str(real))
        # Unlink while holding: a waiter that opened this inode sees it unlinked once it gets
        # the lock and retries on a fresh file (filelock checks st_nlink), so removing the lock
        # file never lets two holders in, and nothing is left next to the table.
        with contextlib.suppress(OSError):
            os.unlink(lock_file)
        lock.release()


# --- temporary files ------------------------------------------------------------------------

def _temp_name(real: Path) -> Path:
    return real.with_name(f".{real.name}.costsim-{os.getpid()}-{secrets.token_hex(4)}.tmp")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    except OSError:
        return True
    return True


def remove_stale_temps(real: Path) -> list[Path]:
    """Remove ``.NAME.costsim-<pid>-*.tmp`` files next to ``real`` whose process is gone;
    return them."""
    pattern = re.compile(r"\." + re.escape(real.name) + r"\.costsim-(\d{1,10})-[0-9a-f]+\.tmp")
    removed = []
    try:
        names = os.listdir(real.parent)
    except OSError:
        return removed
    for name in names:
        m = pattern.fullmatch(name)
        if m and not _pid_alive(int(m.group(1))):
            with contextlib.suppress(OSError):
                os.unlink(real.parent / name)
                removed.append(real.parent / name)
    return removed


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable (POSIX); harmless where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _replace(real: Path, payload: bytes, like: os.stat_result | None) -> None:
    """Write ``payload`` to a temporary file, fsync, rename over ``real``, fsync the directory.
    ``like``: the stat of the file being replaced (its mode and owner are kept)."""
    tmp = _temp_name(real)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(tmp, flags, 0o600 if like is not None else 0o666)
    try:
        try:
            view = memoryview(payload)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            if like is not None:
                with contextlib.suppress(OSError):
                    os.fchown(fd, like.st_uid, like.st_gid)
                os.fchmod(fd, stat.S_IMODE(like.st_mode))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, real)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(real.parent)


def discard_stdout() -> None:
    """Point file descriptor 1 at /dev/null, so that flushing what is still buffered (later, or
    at interpreter exit) cannot fail again once standard output has gone away (a closed pipe,
    a full disk)."""
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError, AttributeError):
        return                      # not a real file (tests capture it): nothing to do
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
    except OSError:
        pass


def write_stdout(text: str | bytes) -> None:
    """Write to standard output and flush. A closed pipe raises BrokenPipeError (the caller
    stops quietly); any other failure (a full disk) is a one-line CostsimError. Either way
    standard output is discarded from then on."""
    try:
        _write_stdout(text)
    except BrokenPipeError:
        discard_stdout()
        raise
    except OSError as exc:
        discard_stdout()
        raise CostsimError(f"cannot write to standard output: {exc.strerror or exc}") from None


def _write_stdout(data: str | bytes) -> None:
    if isinstance(data, bytes):
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
    else:
        sys.stdout.write(data)
    sys.stdout.flush()


def create_new(path: str | Path, data: str | bytes) -> bool:
    """Create ``path`` with ``data`` only if nothing is there (not even a dangling symlink),
    all or nothing: the finished temporary file is hard-linked to the name, which fails if the
    name appeared meanwhile, so an existing file is never replaced. False if it exists."""
    p = Path(path)
    if p.exists() or p.is_symlink():
        return False
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(p)
        tmp = _temp_name(p)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(tmp, flags, 0o666)
        try:
            try:
                view = memoryview(payload)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, p)
            except FileExistsError:
                return False
            except OSError:              # no hard links on this file system: a checked rename
                if p.exists() or p.is_symlink():
                    return False
                os.replace(tmp, p)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    except OSError as exc:
        raise CostsimError(f"cannot write: {exc.strerror or exc}", str(path)) from None
    _fsync_dir(p.parent)
    return True


@contextlib.contextmanager
def _write_errors(path: str | Path) -> Iterator[None]:
    """An OSError while replacing ``path`` becomes one CostsimError naming it (a full disk
    says the file was not changed)."""
    try:
        yield
    except CostsimError:
        raise
    except OSError as exc:
        what = exc.strerror or str(exc)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            what += " (the file was not changed)"
        raise CostsimError(f"cannot write: {what}", str(path)) from None


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """For a writer that needs a file name (DuckDB's COPY): yields a temporary path next to
    ``path``'s real target; when the block ends without an error, the file written there is
    fsynced and renamed over the target (mode kept), all or nothing, under the target's lock.
    The same checks as :func:`atomic_write` come first; the temporary file is removed on any
    failure and named so that a later run removes it if this process is killed."""
    real = check_writable(path)
    with _write_errors(path):
        with locked(real):
            try:
                old = os.stat(real)
            except FileNotFoundError:
                old = None
            tmp = _temp_name(real)
            try:
                yield tmp
                fd = os.open(tmp, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
                try:
                    if old is not None:
                        with contextlib.suppress(OSError):
                            os.fchown(fd, old.st_uid, old.st_gid)
                        os.fchmod(fd, stat.S_IMODE(old.st_mode))
                    else:
                        umask = os.umask(0)
                        os.umask(umask)
                        os.fchmod(fd, 0o666 & ~umask)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp, real)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            _fsync_dir(real.parent)


def atomic_write(path: str | Path, data: str | bytes, *, backup: bool = False) -> None:
    """Replace ``path`` with ``data`` (text is written as UTF-8), all or nothing.

    ``-`` and ``/dev/stdout`` write to standard output. With ``backup`` the previous file (if
    any) is first kept as ``path + '.bak'``. Every check (encoding, file type, permissions)
    happens before anything is written; a failure is a CostsimError naming ``path``.
    """
    if is_stdout(path):
        write_stdout(data)
        return
    try:
        payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    except UnicodeEncodeError as exc:
        raise CostsimError(f"cannot write: the text is not valid Unicode (character "
                           f"{exc.start})", str(path)) from None
    real = check_writable(path)
    bak = real.with_name(real.name + ".bak")
    with _write_errors(path):
        with locked(real):
            try:
                old = os.stat(real)
            except FileNotFoundError:
                old = None
            if backup and old is not None:
                bak = check_writable(bak)
                with open(real, "rb") as fh:
                    previous = fh.read()
                _replace(bak, previous, old)
            _replace(real, payload, old)
