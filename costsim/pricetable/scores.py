"""Put ``coding_score`` into any price table (``costsim price-table scores``).

Scores decide how often a model succeeds when a workload gives no success rate for it, so a
model imported from LiteLLM (which has no scores) cannot be compared until it has one. The
scores come from:

* an OpenRouter ``/api/v1/models`` response (a file or the URL, the default), whose
  ``benchmarks.artificial_analysis.coding_index`` is the Artificial Analysis coding index;
* another price table (e.g. one imported from OpenRouter): its models' ``coding_score``;
* a YAML mapping ``model: score`` or a CSV with ``model`` and ``coding_score`` (or ``score``)
  columns -- your own numbers.

A table model takes the score of the source model with the same id, else of the one source
model that is the same model (``anthropic/claude-opus-5`` for ``claude-opus-5``, see
:func:`~costsim.pricetable.pick.model_name`). The write is the one ``update`` does: validated
first, atomic, previous file kept as ``FILE.bak``, comments kept.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import CostsimError
from .diff import TableDiff, diff_tables
from .pick import model_name

__all__ = ["OPENROUTER_MODELS_URL", "ScoresResult", "load_scores", "merge_scores"]

OPENROUTER_MODELS_URL = "https://openrouter.ai/api/v1/models"


def _score(value: Any, where: str) -> float:
    try:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            value = float(str(value).strip()[:100])
        value = float(value)
    except (ValueError, OverflowError):
        raise CostsimError(f"not a number: {str(value)[:40]!r}", where) from None
    if not (math.isfinite(value) and 0 <= value <= 100):
        raise CostsimError(f"a coding_score is 0-100, got {value:g}", where)
    return value


def load_scores(spec: str) -> tuple[dict[str, float], str]:
    """``{source model id: score}`` from ``spec`` and the kind of source (``openrouter``,
    ``price table``, ``file``)."""
    from . import fetch

    suffix = Path(spec).suffix.lower() if not fetch.is_url(spec) else ""
    if suffix in (".yaml", ".yml"):
        from ..yamlio import load_yaml

        doc = load_yaml(spec)
        data = doc.data
        models = data.get("models")
        if isinstance(models, dict) and all(isinstance(v, dict) for v in models.values()):
            return ({m: _score(v["coding_score"], f"{spec}:{doc.line_of(('models', m, 'coding_score'))}")
                     for m, v in models.items() if v.get("coding_score") is not None},
                    "price table")
        return ({str(m): _score(v, f"{spec}:{doc.line_of((m,))}") for m, v in data.items()},
                "file")
    if suffix == ".csv":
        raw = fetch.read_bytes(spec).decode("utf-8-sig", errors="replace")
        reader = csv.DictReader(io.StringIO(raw))
        try:
            rows = list(reader)
        except csv.Error as exc:            # e.g. a field over csv's 131,072-character limit
            raise CostsimError(f"not valid CSV: {exc}", spec, reader.line_num) from None
        if not rows:
            raise CostsimError("no rows (expected columns model, coding_score)", spec)
        cols = {c.strip().casefold(): c for c in rows[0] if isinstance(c, str)}
        mcol = cols.get("model") or cols.get("id")
        scol = cols.get("coding_score") or cols.get("score")
        if not (mcol and scol):
            raise CostsimError("expected columns model and coding_score (or score), got "
                               + ", ".join(c for c in rows[0] if isinstance(c, str)), spec)
        return ({r[mcol].strip(): _score(r[scol], f"{spec}:{i}")
                 for i, r in enumerate(rows, 2) if r.get(mcol) and r.get(scol)}, "file")
    from .sources import SourceError, parse_openrouter

    document = fetch.load_json(spec)
    try:
        parsed = parse_openrouter(document)
    except SourceError as exc:
        raise CostsimError(f"{exc} (expected an OpenRouter models response, a price table "
                           f"or a .yaml/.csv of scores)", spec) from None
    return ({k: e["coding_score"] for k, e in parsed.models.items()
             if e.get("coding_score") is not None}, "openrouter")


def _find(mid: str, scores: dict[str, float]) -> tuple[str, float] | None:
    if mid in scores:
        return mid, scores[mid]
    name = model_name(mid)
    hits = {k: v for k, v in scores.items() if model_name(k) == name}
    if len(set(hits.values())) == 1:
        k = sorted(hits)[0]
        return k, hits[k]
    return None


@dataclass
class ScoresResult:
    path: Path
    source_spec: str
    source_kind: str
    set: dict[str, str] = field(default_factory=dict)   # table id -> source id it took
    unmatched: list[str] = field(default_factory=list)  # table models the source lacks
    kept: list[str] = field(default_factory=list)       # had a score (--missing-only)
    diff: TableDiff = field(default_factory=TableDiff)
    text: str = ""
    dry_run: bool = False
    written: bool = False        # True once written (set before the write, for `render`)
    backup: Path | None = None
    output: Any = None           # what `render` returned

    @property
    def unscored(self) -> list[str]:
        from ..loader import prices_from_text

        t = prices_from_text(self.text, str(self.path))
        return sorted(m for m, e in t.models.items() if e.coding_score is None)

    def to_dict(self) -> dict[str, Any]:
        return {"version": 1, "table": str(self.path),
                "source": {"from": self.source_spec, "kind": self.source_kind},
                "set": self.set, "unmatched": self.unmatched, "kept": self.kept,
                "unscored": self.unscored, "dry_run": self.dry_run, "written": self.written,
                "backup": str(self.backup) if self.backup else None, **self.diff.to_dict()}


def merge_scores(table: str | Path | None = None, spec: str = OPENROUTER_MODELS_URL, *,
                 missing_only: bool = False, dry_run: bool = False,
                 today: dt.date | None = None,
                 render: Callable[[ScoresResult], Any] | None = None) -> ScoresResult:
    """Set ``coding_score`` on the models of ``table`` (default: the table in use, which must
    be a file you own: the user table or --table FILE) from ``spec``.

    As ``update_table``: the table is re-read, changed, rendered and validated under its lock
    (:func:`costsim.fsutil.locked`), ``render`` (if given) turns the finished result into the
    report (kept as ``result.output``) before the write, and a failure anywhere leaves the table
    untouched."""
    from ..fsutil import check_writable, locked
    from ..loader import load_prices
    from ..paths import bundled_prices_path, resolve_prices_path

    target = resolve_prices_path(table)
    if target.resolve() == bundled_prices_path().resolve():
        raise CostsimError("the bundled table is part of costsim and is not written; run "
                           "`costsim price-table update` once for a user table, or give "
                           "--table FILE", path="--table")
    load_prices(target)                 # a missing or broken table fails before the download
    scores, kind = load_scores(spec)
    if not scores:
        raise CostsimError("has no coding scores", spec)
    args = (target, spec, scores, kind, missing_only, dry_run, today, render)
    if dry_run:
        return _apply_scores(*args)
    check_writable(target)
    with locked(target):
        return _apply_scores(*args)


def _apply_scores(target: Path, spec: str, scores, kind: str, missing_only: bool, dry_run: bool,
                  today: dt.date | None, render) -> ScoresResult:
    from ..loader import load_prices
    from .fetch import is_url
    from .merge import render_table_text
    from .store import backup_path, write_table_text

    current = load_prices(target)
    try:
        old_text = target.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        old_text = None
    data = current.model_dump(exclude_none=True)
    res = ScoresResult(path=target, source_spec=spec, source_kind=kind, dry_run=dry_run)
    for mid, m in sorted(data["models"].items()):
        if missing_only and m.get("coding_score") is not None:
            res.kept.append(mid)
            continue
        hit = _find(mid, scores)
        if hit is None:
            res.unmatched.append(mid)
            continue
        res.set[mid] = hit[0]
        m["coding_score"] = float(hit[1])
    if res.set:
        today = today or dt.date.today()
        entry: dict[str, Any] = {"name": "openrouter" if kind == "openrouter" else "scores"}
        entry["url" if is_url(spec) else "ref"] = spec if is_url(spec) else Path(spec).name
        entry["fetched"] = today
        entry["note"] = "coding_score only (costsim price-table scores)"
        data["sources"] = [s for s in data.get("sources", [])
                           if s.get("note") != entry["note"] or s.get("name") != entry["name"]]
        data["sources"].append(entry)
    res.diff = diff_tables(current, data)
    res.text = render_table_text(data, target, old_text)
    write = not dry_run and not res.diff.empty
    if write:
        res.written, res.backup = True, backup_path(target)
    if render is not None:
        res.output = render(res)          # before the write: a report that fails writes nothing
    if write:
        write_table_text(target, res.text)
    return res
