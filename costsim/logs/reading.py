"""Reading what agents write: walking folders, opening ``.gz``, JSON line by line.

Every reader here streams: a file is never read whole unless it is one JSON document (an OTLP
export, an OpenHands index file, a LiteLLM API dump), which is how those sources write them.
Values that cannot be read become :class:`Malformed` (the line is skipped and counted by the
importer), never an exception that escapes to the user.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import CostsimError


class Malformed(ValueError):
    """One record cannot be read; the message says why (it is shown as ``file:line: why``)."""


# --- files ------------------------------------------------------------------------------------

def base_name(path: Path) -> str:
    """The name without a trailing ``.gz`` (``a.jsonl.gz`` -> ``a.jsonl``)."""
    name = path.name
    return name[:-3] if name.lower().endswith(".gz") else name


def expand(paths: Iterable[str | Path], suffixes: tuple[str, ...],
           exclude: Iterable[Path] = (), wanted=None) -> list[Path]:
    """Files to read: each PATH that is a file, and under each folder every file whose name ends
    with one of ``suffixes`` (``.gz`` allowed after it) and that ``wanted(path)`` accepts, walked
    recursively. Sorted per argument, duplicates and ``exclude`` (the output file) removed."""
    skip = {p.resolve() for p in exclude}
    out: list[Path] = []
    seen: set[Path] = set()
    for arg in paths:
        p = Path(arg)
        if not p.exists():
            raise CostsimError("no such file or folder", str(p))
        if p.is_dir():
            found = sorted(f for f in p.rglob("*")
                           if f.is_file() and base_name(f).lower().endswith(suffixes)
                           and (wanted is None or wanted(f)))
        else:
            found = [p]
        for f in found:
            r = f.resolve()
            if r in seen or r in skip:
                continue
            seen.add(r)
            out.append(f)
    return out


def open_binary(path: Path):
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def json_lines(path: Path, on_bad) -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` for every JSON object line of ``path``. Blank lines are passed
    over; a line that is not a JSON object is reported through ``on_bad(line, reason)``. A
    truncated or corrupt ``.gz`` stops the file with one reason."""
    n = 0
    try:
        with open_binary(path) as fh:
            for n, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                try:
                    # Without its line end: a line cut inside a string (a truncated write) then
                    # reads "Unterminated string", not "Invalid control character" (the newline).
                    obj = json.loads(raw.rstrip(b"\r\n"))
                except UnicodeDecodeError:
                    on_bad(n, "not UTF-8 text")
                    continue
                except ValueError as exc:
                    col = getattr(exc, "colno", None)
                    where = f" at column {col}" if col else ""
                    on_bad(n, f"not JSON ({getattr(exc, 'msg', exc).removesuffix(' at')}{where})")
                    continue
                if not isinstance(obj, dict):
                    on_bad(n, f"expected a JSON object, got {type(obj).__name__}")
                    continue
                yield n, obj
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        on_bad(n + 1, f"cannot read further ({exc})")


def first_char(path: Path) -> str:
    """The first non-blank character of the file ('' for an empty or unreadable file)."""
    try:
        with open_binary(path) as fh:
            while True:
                chunk = fh.read(4096)
                if not chunk:
                    return ""
                s = chunk.lstrip()
                if s:
                    return s[:1].decode("latin-1")
    except (OSError, EOFError):
        return ""


def json_document(path: Path):
    """A whole-file JSON document, or :class:`Malformed`."""
    try:
        with open_binary(path) as fh:
            return json.load(fh)
    except UnicodeDecodeError:
        raise Malformed("not UTF-8 text") from None
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        raise Malformed(f"not JSON ({getattr(exc, 'msg', exc)})"
                        + (f" at line {line}" if line else "")) from None
    except (OSError, EOFError) as exc:
        raise Malformed(f"cannot read ({exc})") from None


# --- values -----------------------------------------------------------------------------------

def dig(obj, dotted: str):
    """``obj['a']['b']`` for ``'a.b'``; None where a step is missing. A key that itself holds
    dots (``{'a.b': 1}``) is found too."""
    if isinstance(obj, dict) and dotted in obj:
        return obj[dotted]
    cur = obj
    for part in dotted.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
        if cur is None:
            return None
    return cur


def count(value, what: str, *, default: int | None = 0) -> int:
    """A token count: an int >= 0 (an integral float or a numeric string is accepted). None or
    absent gives ``default``; ``default=None`` makes it required."""
    if value is None or value == "":
        if default is None:
            raise Malformed(f"{what}: missing")
        return default
    if isinstance(value, bool):
        raise Malformed(f"{what}: expected a token count, got {value!r}")
    if isinstance(value, int):
        v = value
    else:
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise Malformed(f"{what}: expected a token count, got {value!r}") from None
        if not math.isfinite(f) or f != int(f):
            raise Malformed(f"{what}: expected a token count, got {value!r}")
        v = int(f)
    if v < 0:
        raise Malformed(f"{what}: expected a token count >= 0, got {value!r}")
    return v


def money(value, what: str) -> float | None:
    """A stated cost in USD (>= 0), or None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise Malformed(f"{what}: expected a cost in USD, got {value!r}")
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise Malformed(f"{what}: expected a cost in USD, got {value!r}") from None
    if not math.isfinite(f) or f < 0:
        raise Malformed(f"{what}: expected a cost in USD >= 0, got {value!r}")
    return f + 0.0


_TRUE = {"true", "t", "yes", "y", "1", "pass", "passed", "resolved", "success", "succeeded"}
_FALSE = {"false", "f", "no", "n", "0", "fail", "failed", "unresolved", "failure", "error"}


def boolean(value, what: str) -> bool | None:
    """true/false, 1/0, yes/no, pass/fail; None or '' when unknown."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE:
        return True
    if isinstance(value, str) and value.strip().lower() in _FALSE:
        return False
    raise Malformed(f"{what}: expected true or false, got {value!r}")


def text(value) -> str | None:
    """A non-empty string (numbers are written out), or None."""
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    s = str(value).strip()
    return s or None


_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def timestamp(value) -> str | None:
    """An ISO 8601 UTC timestamp to the millisecond (``2026-01-05T10:00:00.250Z``) from an ISO
    string (offset or none, taken as UTC), or epoch seconds / milliseconds / nanoseconds; None
    if absent or unreadable."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if type(value) is str and len(value) in (20, 24) and value[-1] == "Z" \
            and value[10] == "T" and value[4] == "-" and value[13] == ":" \
            and value[19] in ".Z" and value[:4].isdigit() and value[17:19].isdigit() \
            and "01" <= value[5:7] <= "12" and "01" <= value[8:10] <= "31" \
            and value[11:13] <= "23" and value[14:16] <= "59" and value[17:19] <= "60":
        # Already the output form (JavaScript's toISOString: Claude Code, Codex), or whole
        # seconds: the common case, kept fast.
        return value if len(value) == 24 else value[:19] + ".000Z"
    when: _dt.datetime | None = None
    if isinstance(value, str) and not value.strip().lstrip("-").isdigit():
        s = value.strip()
        if s.endswith(("Z", "z")):
            s = s[:-1] + "+00:00"
        # fromisoformat reads at most 6 fraction digits: trim nanoseconds (OTel), pad short ones.
        head, dot, frac = s.partition(".")
        if dot:
            k = 0
            while k < len(frac) and frac[k].isdigit():
                k += 1
            digits, rest = frac[:k], frac[k:]
            s = f"{head}.{(digits + '000000')[:6]}{rest}"
        try:
            when = _dt.datetime.fromisoformat(s)
        except ValueError:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=_dt.timezone.utc)
    else:
        try:
            n = int(value) if not isinstance(value, float) else value
        except (TypeError, ValueError):
            return None
        if n > 1e17:
            when = _EPOCH + _dt.timedelta(microseconds=int(n) // 1000)   # nanoseconds
        elif n > 1e14:
            when = _EPOCH + _dt.timedelta(microseconds=int(n))           # microseconds
        elif n > 1e11:
            when = _EPOCH + _dt.timedelta(milliseconds=n)                # milliseconds
        else:
            when = _EPOCH + _dt.timedelta(seconds=n)
    when = when.astimezone(_dt.timezone.utc)
    # Always milliseconds (as JavaScript's toISOString writes them): fixed width, so the text
    # sorts in time order.
    return when.strftime("%Y-%m-%dT%H:%M:%S") + f".{when.microsecond // 1000:03d}Z"
