"""Quoting: SQL identifiers and string literals, and a value as an error message shows it."""

from __future__ import annotations

import re


def _show(value) -> str:
    """A value as the user wrote it, on one line: numbers bare, anything else quoted."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, (int, float)):
        return repr(value)
    s = str(value)
    t = s.strip()
    if re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", t):
        return t
    if len(s) > 60:
        s = s[:57] + "..."
    return repr(s).encode("ascii", "backslashreplace").decode("ascii")


def _q(name: str) -> str:
    """A SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"
