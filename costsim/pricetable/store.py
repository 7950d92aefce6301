"""Read and write price-table files safely.

A write is all or nothing: the new text goes to a temporary file in the same directory, is
fsynced and renamed over the table (``os.replace`` is atomic on POSIX and Windows), and the
previous file is kept next to it as ``<name>.bak``. Interrupted or failed writes leave the old
table byte-identical. The text is validated by the loader before this module is called.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..fsutil import atomic_write

__all__ = ["backup_path", "leading_comments", "write_table_text"]


def backup_path(path: str | Path) -> Path:
    p = Path(path)
    return p.with_name(p.name + ".bak")


def leading_comments(path: str | Path) -> str | None:
    """The ``#`` comment block at the top of an existing table (kept across updates), without
    the ``# `` prefixes; None if there is none or the file cannot be read."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    block = []
    for line in lines:
        if not line.startswith("#"):
            break
        block.append(line[2:] if line.startswith("# ") else line[1:])
    return "\n".join(block) if block else None


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (POSIX); harmless where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_table_text(path: str | Path, text: str) -> Path | None:
    """Atomically replace ``path`` with ``text``; return the backup path if a previous file was
    kept, else None (a new table)."""
    p = Path(path)
    existed = p.is_file()
    atomic_write(p, text, backup=existed)
    _fsync_dir(p.parent if str(p.parent) else Path("."))
    return backup_path(p) if existed else None
