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
        return one_line(": ".join(parts))


# C0 and C1 controls, DEL, Unicode line/paragraph separators and lone surrogates (which no
# terminal encoding can print).
_CONTROL = {i: f"\\x{i:02x}" for i in [*range(0x20), *range(0x7F, 0xA0)]}
_CONTROL.update({i: f"\\u{i:04x}" for i in [0x2028, 0x2029, *range(0xD800, 0xE000)]})
_CONTROL.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped (``\\n``, ``\\x00``), so
    that a message echoing a user's value stays on one line of a terminal."""
    if text.isprintable():
        return text
    return text.translate(_CONTROL)


def format_path(loc: tuple | list) -> str:
    """``("task_types", 0, "phases", 2, "calls")`` -> ``task_types[0].phases[2].calls``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out
