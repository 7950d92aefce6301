"""Write a price table as YAML text with a stable, human-friendly layout.

Layout: ``version``, ``as_of``, ``currency``, ``sources`` (one flow mapping per line), then
``models`` sorted by id, each model's keys in a fixed order (provider, tier, prices,
long_context, context_window, coding_score, source, note, history). Floats are printed in their
shortest form that reads back to the same float, without exponent (``3.0``, ``0.075``), so that
``yaml.safe_load`` returns exactly the values that were written. Two dumps of equal tables are
byte-identical, which keeps diffs of the bundled table readable in review.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
from decimal import Decimal
from typing import Any

import yaml

__all__ = ["dump_price_table", "format_scalar"]

TOP_ORDER = ("version", "as_of", "currency", "sources", "models")
SOURCE_ORDER = ("name", "ref", "url", "fetched", "note")
MODEL_ORDER = (
    "provider",
    "tier",
    "input",
    "output",
    "cache_read",
    "cache_write",
    "long_context",
    "context_window",
    "coding_score",
    "source",
    "note",
    "history",
)
LONG_CONTEXT_ORDER = ("above", "input", "output", "cache_read", "cache_write")
HISTORY_ORDER = ("date", "input", "output", "cache_read", "cache_write", "source")

# Strings that may be written without quotes: no YAML indicators, no ": ", no " #", and not
# something YAML would read as another type (checked by round-tripping through safe_load).
_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/+@ ]*\Z")   # \Z: "$" also matches before a final newline


def _ordered(mapping: dict[str, Any], order: tuple[str, ...]) -> list[tuple[str, Any]]:
    known = [(k, mapping[k]) for k in order if k in mapping and mapping[k] is not None]
    extra = sorted((k, v) for k, v in mapping.items() if k not in order and v is not None)
    return known + extra


def _float_text(x: float) -> str:
    if not math.isfinite(x):
        raise ValueError(f"cannot write a non-finite number: {x!r}")
    text = format(Decimal(repr(x)), "f")  # shortest round-trip digits, no exponent
    if "." not in text:
        text += ".0"
    if text.startswith("-0") and float(text) == 0:
        text = text[1:]
    return text


_RESOLVER = yaml.resolver.Resolver()
_STR_TAG = "tag:yaml.org,2002:str"


def _reads_back(s: str) -> bool:
    """A plain scalar ``s`` (already restricted by :data:`_PLAIN`) that YAML reads back as this
    string, not as another type (``yes``, ``1.5``, ``null``, ``2026-01-01``): what
    ``yaml.safe_load(s) == s`` says, by the resolver alone (a thousand times faster, which
    matters for a table of thousands of models)."""
    return _RESOLVER.resolve(yaml.ScalarNode, s, (True, False)) == _STR_TAG


def _string_text(s: str) -> str:
    if s and _PLAIN.match(s) and not s.endswith(" ") and _reads_back(s):
        return s
    # A JSON string is a YAML double-quoted scalar; characters YAML does not accept raw
    # (controls, DEL, NEL, BOM, ...) are escaped.
    text = json.dumps(s, ensure_ascii=False)
    return "".join(c if c.isprintable() or c == "\t" else _escape(c) for c in text)


def _escape(c: str) -> str:
    return f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}"


def format_scalar(value: Any) -> str:
    """YAML text of one scalar: bool, int, float, date or string."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, _dt.datetime):
        return _string_text(value.isoformat())
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return _float_text(float(value))
    if isinstance(value, str):
        return _string_text(value)
    raise TypeError(f"cannot write {type(value).__name__} value {value!r}")


def _flow(mapping: dict[str, Any], order: tuple[str, ...]) -> str:
    parts = []
    for k, v in _ordered(mapping, order):
        if isinstance(v, (dict, list)):
            raise TypeError(f"nested value under {k!r} cannot be written in a flow mapping")
        parts.append(f"{_string_text(str(k))}: {format_scalar(v)}")
    return "{" + ", ".join(parts) + "}"


def _block(mapping: dict[str, Any], order: tuple[str, ...], indent: int, out: list[str]) -> None:
    pad = " " * indent
    for k, v in _ordered(mapping, order):
        key = _string_text(str(k))
        if k == "long_context" and isinstance(v, dict):
            out.append(f"{pad}{key}:")
            _block(v, LONG_CONTEXT_ORDER, indent + 2, out)
        elif k == "history" and isinstance(v, list):
            if not v:
                continue
            out.append(f"{pad}{key}:")
            for item in v:
                out.append(f"{pad}  - {_flow(item, HISTORY_ORDER)}")
        elif isinstance(v, dict):
            out.append(f"{pad}{key}:")
            _block(v, (), indent + 2, out)
        elif isinstance(v, list):
            out.append(f"{pad}{key}: [{', '.join(format_scalar(x) for x in v)}]")
        else:
            out.append(f"{pad}{key}: {format_scalar(v)}")


def _plain_data(table: Any) -> dict[str, Any]:
    """Accept a plain dict or a pydantic model (``model_dump`` without unset/None fields)."""
    if isinstance(table, dict):
        return table
    dump = getattr(table, "model_dump", None)
    if dump is not None:
        return dump(exclude_none=True)
    raise TypeError(f"cannot write a price table from {type(table).__name__}")


def dump_price_table(table: Any, header: str | None = None) -> str:
    """The YAML text of a price table (a dict in the CONTRACT.md schema, or a PriceTable).

    ``header`` (optional) is written first as ``#`` comment lines.
    """
    data = _plain_data(table)
    out: list[str] = []
    if header:
        out.extend(f"# {line}".rstrip() for line in header.strip("\n").splitlines())
    for k, v in _ordered(data, TOP_ORDER):
        if k in ("sources", "models") and not v:
            out.append(f"{k}: {'[]' if k == 'sources' else '{}'}")
        elif k == "sources":
            out.append("sources:")
            for src in v:
                out.append(f"  - {_flow(_plain_data(src), SOURCE_ORDER)}")
        elif k == "models":
            out.append("models:")
            for mid in sorted(v):
                out.append(f"  {_string_text(str(mid))}:")
                _block(_plain_data(v[mid]), MODEL_ORDER, 4, out)
        elif isinstance(v, dict):
            out.append(f"{_string_text(str(k))}:")
            _block(v, (), 2, out)
        else:
            out.append(f"{_string_text(str(k))}: {format_scalar(v)}")
    return "\n".join(out) + "\n"
