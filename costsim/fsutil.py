"""Writing files a user owns: all or nothing."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import CostsimError


def atomic_write(path: str | Path, data: str | bytes, *, backup: bool = False) -> None:
    """Write via a temporary file in the same directory, fsync, then rename over ``path``.

    With ``backup`` the previous file (if any) is kept as ``path + '.bak'``.
    """
    p = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    parent = p.parent if str(p.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise CostsimError(f"cannot write: {exc.strerror}", str(p)) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        if backup and p.exists():
            bak = p.with_name(p.name + ".bak")
            with open(p, "rb") as src:
                old = src.read()
            atomic_write(bak, old)
        if p.exists():
            os.chmod(tmp, p.stat().st_mode & 0o7777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, p)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise CostsimError(f"cannot write: {exc.strerror}", str(p)) from None
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
