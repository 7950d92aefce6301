"""Task outcomes (``--outcomes FILE``): what happened to each task, joined onto usage logs.

CSV (header row) or JSON Lines (one object per task), ``.gz`` allowed. Columns: ``task_id``
(required), ``success`` (true/false, 1/0, yes/no, pass/fail; empty: unknown),
``reviewer_changes`` (int >= 0, optional), ``task_type`` (optional), ``signals`` (optional: a
``;``-separated string or, in JSON, a list). Other columns are ignored. The file is small (one
row per task) and is read whole; every problem is an error at ``file:line``.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import CostsimError
from .reading import Malformed, base_name, boolean, count, open_binary, text

KNOWN = ("task_id", "success", "reviewer_changes", "task_type", "signals")


@dataclass
class Outcome:
    success: bool | None
    reviewer_changes: int | None
    task_type: str | None
    signals: str | None


@dataclass
class Outcomes:
    path: str
    by_task: dict[str, Outcome]

    def rows(self):
        """Rows for the importer's outcome table, sorted by task id."""
        for tid in sorted(self.by_task):
            o = self.by_task[tid]
            yield (tid, None if o.success is None else ("true" if o.success else "false"),
                   o.reviewer_changes, o.task_type, o.signals)


def _signals(value, line_err) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, list):
        items = value
    elif isinstance(value, str):
        items = value.replace(",", ";").split(";")
    else:
        raise line_err("signals", f"expected a list or a ';'-separated string, got {value!r}")
    names = sorted({str(s).strip() for s in items if str(s).strip()})
    return ";".join(names) or None


def read_outcomes(path: str | Path) -> Outcomes:
    p = Path(path)
    if not p.exists():
        raise CostsimError("file not found", str(p))
    if p.is_dir():
        raise CostsimError("is a folder, expected an outcomes file (.csv or .jsonl)", str(p))
    name = base_name(p).lower()
    try:
        with open_binary(p) as fh:
            data = fh.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CostsimError("not UTF-8 text", str(p)) from None
    except (OSError, EOFError) as exc:
        raise CostsimError(f"cannot read: {exc}", str(p)) from None

    records: list[tuple[int, dict]] = []
    if name.endswith(".csv"):
        reader = csv.DictReader(io.StringIO(data, newline=""))
        if not reader.fieldnames:
            raise CostsimError("empty file (expected a header row with task_id, success)",
                               str(p))
        fields = [f.strip() for f in reader.fieldnames]
        reader.fieldnames = fields
        if "task_id" not in fields:
            raise CostsimError(f"missing column task_id (columns found: {', '.join(fields)})",
                               str(p), 1)
        for rec in reader:
            records.append((reader.line_num, rec))
    elif name.endswith((".jsonl", ".ndjson", ".json")):
        for n, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise CostsimError(f"not JSON ({getattr(exc, 'msg', exc)})", str(p), n) from None
            if not isinstance(obj, dict):
                raise CostsimError(f"expected a JSON object, got {type(obj).__name__}", str(p),
                                   n)
            records.append((n, obj))
    else:
        raise CostsimError("unknown outcomes format (expected .csv or .jsonl, optionally .gz)",
                           str(p))

    by_task: dict[str, Outcome] = {}
    first_line: dict[str, int] = {}
    for n, rec in records:
        def err(field_name, message, n=n):
            return CostsimError(message, str(p), n, field_name)

        tid = text(rec.get("task_id"))
        if tid is None:
            raise err("task_id", "required value missing")
        try:
            success = boolean(rec.get("success"), "success")
        except Malformed as exc:
            raise err("success", str(exc).split(": ", 1)[1]) from None
        try:
            changes = count(rec.get("reviewer_changes"), "reviewer_changes", default=None) \
                if rec.get("reviewer_changes") not in (None, "") else None
        except Malformed as exc:
            raise err("reviewer_changes", str(exc).split(": ", 1)[1]) from None
        task_type = text(rec.get("task_type"))
        signals = _signals(rec.get("signals"), err)
        if tid in by_task:
            raise err("task_id", f"task '{tid}' already has an outcome (line {first_line[tid]})")
        first_line[tid] = n
        by_task[tid] = Outcome(success, changes, task_type, signals)
    if not by_task:
        raise CostsimError("no outcomes in the file", str(p))
    return Outcomes(path=str(p), by_task=by_task)
