"""User-facing errors.

Every problem a user can fix (a bad file, an unknown model, a missing path) is a
:class:`CostsimError`. The CLI prints ``str(err)`` on one line and exits with status 2; anything
else escaping is a bug.
"""

from __future__ import annotations

from pathlib import Path


class CostsimError(Exception):
    """A problem with the user's input, rendered as ``file:line: field.path: message``."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        file: str | Path | None = None,
        line: int | None = None,
        path: str | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.path = path or None
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = []
        if self.file:
            parts.append(f"{self.file}:{self.line}" if self.line else self.file)
        if self.path:
            parts.append(self.path)
        parts.append(self.message)
        return ": ".join(parts)


def format_path(loc: tuple | list) -> str:
    """``("task_types", 0, "phases", 2, "calls")`` -> ``task_types[0].phases[2].calls``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out
