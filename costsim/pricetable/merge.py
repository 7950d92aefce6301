"""Merge freshly parsed source prices into a price table, and the whole `update` operation.

Merge rules (issue 4):

* A table model is looked up in the source by its ``source`` reference (``litellm:<key>``),
  else by id (see :meth:`ParsedSource.lookup`). Found: ``input``/``output`` are replaced;
  ``cache_read``, ``cache_write``, ``long_context``, ``context_window`` and ``coding_score`` are
  replaced when the source has them and kept otherwise; ``provider``, ``tier`` and ``note`` are
  kept (the source does not know the table's classes); ``source`` records the new origin. If any
  of input/output/cache_read/cache_write changed, the previous values are appended to the
  model's ``history`` with the old table's ``as_of`` date and source.
* Models not found in the source are reported and kept; ``prune`` removes them. Removing more
  than half of the table's models is refused unless ``force``: that is what a truncated or wrong
  source looks like.
* ``import_all`` adds every model of the source; ``patterns`` (globs) add the matching ones. New
  models take the source key as id and a tier from :func:`~.sources.classify_tier`.

:func:`update_table` runs the whole operation: read the table (or seed it), read and parse the
source, merge, render and validate the new text, and only then write it atomically.
"""

from __future__ import annotations

import copy
import datetime as dt
import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import CostsimError
from .diff import TableDiff, diff_tables
from .sources import ImportReport, ParsedSource, SourceError, parse_litellm, parse_openrouter

__all__ = ["MergeResult", "SOURCES", "UpdateResult", "merge_prices", "update_table"]

SOURCES = {"litellm": parse_litellm, "openrouter": parse_openrouter}
HISTORY_FIELDS = ("input", "output", "cache_read", "cache_write")
REFRESHED_IF_PRESENT = ("cache_read", "cache_write", "long_context", "context_window", "coding_score")


@dataclass
class MergeResult:
    table: dict[str, Any]
    diff: TableDiff
    refreshed: list[str] = field(default_factory=list)  # table ids found in the source
    added: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # table ids not in the source
    pruned: list[str] = field(default_factory=list)


def _plain(table: Any) -> dict[str, Any]:
    data = table if isinstance(table, dict) else table.model_dump(exclude_none=True)
    return copy.deepcopy(data)


def _matches(key: str, patterns: Sequence[str]) -> list[str]:
    k = key.casefold()
    last = k.rsplit("/", 1)[-1]
    return [p for p in patterns if fnmatch.fnmatchcase(k, p.casefold()) or
            fnmatch.fnmatchcase(last, p.casefold())]


def _fits_schema(entry: dict[str, Any]) -> bool:
    """A parsed entry the table schema rejects (a source oddity the parser let through) is
    skipped and reported rather than failing a whole ``--all`` import."""
    from pydantic import ValidationError

    from ..models import ModelPrice

    try:
        ModelPrice.model_validate(entry)
    except ValidationError:
        return False
    return True


def merge_prices(
    current: Any,
    parsed: ParsedSource,
    *,
    today: dt.date,
    source_entry: dict[str, Any],
    import_all: bool = False,
    patterns: Sequence[str] = (),
    prune: bool = False,
    force: bool = False,
) -> MergeResult:
    """The table after refreshing it from ``parsed`` (see the module docstring)."""
    old = _plain(current)
    new = copy.deepcopy(old)
    models: dict[str, dict[str, Any]] = new.setdefault("models", {}) or {}
    new["models"] = models
    old_as_of = old.get("as_of")
    if not parsed.models:
        raise CostsimError(
            f"the {parsed.source} source has no chat model priced per token "
            f"({parsed.report.total} entries); is it the right file for --source {parsed.source}?"
        )

    result = MergeResult(table=new, diff=TableDiff())
    claimed: set[str] = set()
    for mid in sorted(models):
        m = models[mid]
        key = parsed.lookup(mid, m.get("source"), m.get("provider"))
        if key is None:
            result.missing.append(mid)
            continue
        claimed.add(key)
        result.refreshed.append(mid)
        src = parsed.models[key]
        before = {f: m.get(f) for f in HISTORY_FIELDS}
        m["input"], m["output"] = src["input"], src["output"]
        for f in REFRESHED_IF_PRESENT:
            if f in src:
                m[f] = copy.deepcopy(src[f])
        m["source"] = src["source"]
        if any(before[f] != m.get(f) for f in HISTORY_FIELDS) and isinstance(old_as_of, dt.date):
            entry: dict[str, Any] = {"date": old_as_of}
            entry.update({f: v for f, v in before.items() if v is not None})
            old_source = old["models"][mid].get("source")
            if old_source:
                entry["source"] = old_source
            m.setdefault("history", []).append(entry)

    if import_all or patterns:
        used = set()
        for key in sorted(parsed.models):
            if key in claimed:
                continue
            hit = _matches(key, patterns) if patterns else []
            used.update(hit)
            if not (import_all or hit):
                continue
            if key in models:  # an unrelated table model already has this id
                continue
            if not _fits_schema(parsed.models[key]):
                parsed.report.skip("does not fit the price-table schema", key)
                continue
            models[key] = copy.deepcopy(parsed.models[key])
            result.added.append(key)
        unused = [p for p in patterns if p not in used]
        if unused:
            shown = ", ".join(f"'{p}'" for p in unused)
            raise CostsimError(
                f"--add {shown} matched no new model of the {parsed.source} source "
                "(patterns are globs on the source's model ids, e.g. 'anthropic/*' or 'claude-*')"
            )

    if prune and result.missing:
        total = len(old.get("models") or {})
        if 2 * len(result.missing) > total and not force:
            raise CostsimError(
                f"refusing to remove {len(result.missing)} of {total} models (more than half): "
                "the source may be truncated or the wrong one; check it, or pass --force"
            )
        for mid in result.missing:
            del models[mid]
        result.pruned = list(result.missing)

    if not models:
        raise CostsimError(
            "nothing to write: the table would have no models "
            "(a new or empty table needs --all or --add PATTERN)"
        )
    new["version"] = 1
    new["as_of"] = today
    new.setdefault("currency", "USD")
    sources = [s for s in (new.get("sources") or []) if s.get("name") != source_entry["name"]]
    new["sources"] = sources + [source_entry]
    result.diff = diff_tables(old, new)
    return result


# ----------------------------------------------------------------------------------------------
# The whole update
# ----------------------------------------------------------------------------------------------


@dataclass
class UpdateResult:
    path: Path  # the table written (or that would be written)
    origin: str  # "existing table", "new table", "seeded from the bundled table"
    source_name: str
    source_spec: str
    report: ImportReport
    merge: MergeResult
    text: str
    dry_run: bool
    written: bool = False        # True once written (set before the write, for `render`)
    backup: Path | None = None
    output: Any = None           # what `render` returned

    def to_dict(self) -> dict[str, Any]:
        d = self.merge.diff.to_dict()
        return {
            "version": 1,
            "table": str(self.path),
            "origin": self.origin,
            "source": {"name": self.source_name, "from": self.source_spec},
            "dry_run": self.dry_run,
            "written": self.written,
            "backup": str(self.backup) if self.backup else None,
            "as_of": self.merge.table["as_of"].isoformat(),
            "models": len(self.merge.table["models"]),
            "refreshed": self.merge.refreshed,
            "added_models": self.merge.added,
            "missing": self.merge.missing,
            "pruned": self.merge.pruned,
            "changed": d["changed"],
            "added": d["added"],
            "removed": d["removed"],
            "summary": d["summary"],
            "report": self.report.to_dict(),
        }


def _source_entry(name: str, spec: str, today: dt.date) -> dict[str, Any]:
    from .fetch import is_url

    entry: dict[str, Any] = {"name": name}
    if is_url(spec):
        entry["url"] = spec
    else:
        entry["ref"] = Path(spec).name
    entry["fetched"] = today
    entry["note"] = "costsim price-table update"
    return entry


def update_table(
    source: str,
    spec: str,
    *,
    table: str | Path | None = None,
    import_all: bool = False,
    patterns: Sequence[str] = (),
    dry_run: bool = False,
    prune: bool = False,
    force: bool = False,
    today: dt.date | None = None,
    timeout: float | None = None,
    max_bytes: int | None = None,
    render: Callable[[UpdateResult], Any] | None = None,
) -> UpdateResult:
    """Refresh a price table from a LiteLLM map or an OpenRouter models response.

    ``table`` None means the user table (seeded from the bundled table the first time; never
    the installed package). The source is read and parsed first; then, holding the table's lock
    (:func:`costsim.fsutil.locked`, so concurrent updates serialize and none is lost), the table
    is read, merged, diffed, rendered to text and validated, ``render`` (if given) is called with
    the finished result (its return value is kept as ``result.output``: a report that cannot be
    produced aborts the update) and only then is the table written. Any failure before that
    leaves the table untouched. ``dry_run`` writes nothing at all.
    """
    from ..fsutil import check_writable, locked
    from . import fetch

    if source not in SOURCES:
        raise CostsimError(f"unknown source '{source}' (sources: {', '.join(SOURCES)})")
    today = today or dt.date.today()
    target = Path(table) if table is not None else _user_prices_path()

    # The source first: a download may take a while and needs no lock.
    kwargs: dict[str, Any] = {}
    if timeout is not None:
        kwargs["timeout"] = timeout
    if max_bytes is not None:
        kwargs["max_bytes"] = max_bytes
    document = fetch.load_json(spec, **kwargs)
    try:
        parsed = SOURCES[source](document)
    except SourceError as exc:
        raise CostsimError(f"{exc} (is this a {source} source?)", spec) from None

    if dry_run:
        return _update_locked(source, spec, target, table, parsed, today, import_all, patterns,
                              prune, force, dry_run, render)
    check_writable(target)          # a read-only table or a device: refused before any work
    with locked(target):
        return _update_locked(source, spec, target, table, parsed, today, import_all, patterns,
                              prune, force, dry_run, render)


def _user_prices_path() -> Path:
    from ..paths import user_prices_path

    return user_prices_path()


def _update_locked(source, spec, target: Path, table, parsed: ParsedSource, today, import_all,
                   patterns, prune, force, dry_run, render) -> UpdateResult:
    """Read, merge, validate, render, write: the part of :func:`update_table` under the lock."""
    from ..loader import load_prices, prices_from_text
    from ..paths import bundled_prices_path
    from .store import backup_path, leading_comments, write_table_text
    from .writer import dump_price_table

    if target.exists():
        if target.is_dir():
            raise CostsimError("is a directory, not a price table", str(target))
        base: Any = load_prices(target)
        origin, header_from = "existing table", target
    elif table is not None:
        base = {"version": 1, "as_of": today, "currency": "USD", "sources": [], "models": {}}
        origin, header_from = "new table", None
    else:
        base = load_prices(bundled_prices_path())
        origin, header_from = "seeded from the bundled table", None

    merged = merge_prices(
        base,
        parsed,
        today=today,
        source_entry=_source_entry(source, spec, today),
        import_all=import_all,
        patterns=patterns,
        prune=prune,
        force=force,
    )
    header = leading_comments(header_from) if header_from is not None else None
    text = dump_price_table(merged.table, header=header)
    try:
        prices_from_text(text, str(target))  # the exact text to be written must load back
    except CostsimError as exc:
        where = ": ".join(x for x in (exc.path, exc.message) if x)
        raise CostsimError(f"the updated table would not be valid, nothing was written "
                           f"({where})", str(target)) from None

    result = UpdateResult(
        path=target,
        origin=origin,
        source_name=source,
        source_spec=spec,
        report=parsed.report,
        merge=merged,
        text=text,
        dry_run=dry_run,
        written=not dry_run,
        backup=backup_path(target) if not dry_run and origin == "existing table" else None,
    )
    if render is not None:
        result.output = render(result)   # before the write: a report that fails writes nothing
    if not dry_run:
        write_table_text(target, text)
    return result
