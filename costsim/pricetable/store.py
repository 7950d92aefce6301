"""Read and write price-table files safely.

A write is all or nothing (:func:`costsim.fsutil.atomic_write`): the new text goes to a temporary
file in the same directory, is fsynced and renamed over the table, and the previous file is kept
next to it as ``<name>.bak``. A symlinked table is written through the link. Interrupted or failed
writes leave the old table byte-identical. The text is validated by the loader before this module
is called; a read-modify-write holds :func:`costsim.fsutil.locked` around it.
"""

from __future__ import annotations

from pathlib import Path

from ..fsutil import atomic_write, real_target

__all__ = ["backup_path", "leading_comments", "write_table_text"]


def backup_path(path: str | Path) -> Path:
    """Where a write of ``path`` keeps the previous table: next to the file (next to the link's
    target when ``path`` is a symlink)."""
    p = Path(path)
    if p.is_symlink():
        p = real_target(p)
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


def write_table_text(path: str | Path, text: str) -> Path | None:
    """Atomically replace ``path`` with ``text``; return the backup path if a previous file was
    kept, else None (a new table)."""
    existed = real_target(path).is_file()
    atomic_write(path, text, backup=existed)
    return backup_path(path) if existed else None
