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
from ..limits import MAX_MODELS
from .diff import TableDiff, diff_tables
from .pick import model_name, pick_entries
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
    notes: list[str] = field(default_factory=list)  # which provider's entry was taken


def _plain(table: Any) -> dict[str, Any]:
    data = table if isinstance(table, dict) else table.model_dump(exclude_none=True)
    return copy.deepcopy(data)


def _names(key: str, entry: dict[str, Any]) -> list[str]:
    """What a pattern may match for a source key: the key (``xai/grok-4.6``), its model id
    (``grok-4.6``) and PROVIDER/MODEL (``anthropic/claude-opus-5`` for LiteLLM's bare
    ``claude-opus-5``), all case-folded."""
    k = key.casefold()
    last = k.rsplit("/", 1)[-1]
    provider = str(entry.get("provider", "")).casefold()
    name = model_name(key)
    return [k, last, name, f"{provider}/{last}", f"{provider}/{name}"]


def _matches(key: str, entry: dict[str, Any], patterns: Sequence[str]) -> list[str]:
    names = _names(key, entry)
    return [p for p in patterns if any(fnmatch.fnmatchcase(n, p.casefold()) for n in names)]


def _no_match_message(pattern: str, parsed: ParsedSource, already: list[str]) -> str:
    """Why ``--add PATTERN`` added nothing, with ids and providers the source really has."""
    import difflib

    if already:
        shown = ", ".join(already[:3]) + (", ..." if len(already) > 3 else "")
        return (f"--add '{pattern}': every match is already in the table ({shown}); "
                f"`costsim price-table update` refreshes those without --add")
    ids = sorted({model_name(k) for k in parsed.models})
    close = difflib.get_close_matches(pattern.casefold().rsplit("/", 1)[-1].strip("*"), ids,
                                      n=3, cutoff=0.6)
    count: dict[str, int] = {}
    for e in parsed.models.values():
        count[str(e.get("provider"))] = count.get(str(e.get("provider")), 0) + 1
    providers = sorted(count, key=lambda p: (-count[p], p))
    example = "anthropic" if "anthropic" in count else (providers[0] if providers else "openai")
    near = f"; close ids: {', '.join(close)}" if close else ""
    prov = ", ".join(providers[:8]) + (", ..." if len(providers) > 8 else "")
    return (f"--add '{pattern}' matched no model of the {parsed.source} source{near} "
            f"(a pattern matches a model id such as 'claude-*', a source key, or "
            f"PROVIDER/MODEL such as '{example}/*'; largest providers: {prov})")


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
    providers: Sequence[str] | None = None,
) -> MergeResult:
    """The table after refreshing it from ``parsed`` (see the module docstring).

    ``providers`` (for ``import_all``/``patterns``): None imports one entry per model, the
    maker's own (:func:`~.pick.pick_entries`); ``["all"]`` every entry; names: those
    providers' entries."""
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
        matched: dict[str, list[str]] = {p: [] for p in patterns}
        # models the table has already (by any provider's key): not added again
        have = {model_name(k) for k in claimed} | {model_name(m) for m in models}
        candidates = []
        for key in sorted(parsed.models):
            hit = _matches(key, parsed.models[key], patterns) if patterns else []
            for p in hit:
                matched[p].append(key)
            if not (import_all or hit):
                continue
            if key in claimed or key in models:  # already priced by the table
                continue
            if providers is None and model_name(key) in have:
                continue
            candidates.append(key)
        chosen, notes, resold = pick_entries(candidates, parsed.models, providers)
        result.notes += notes
        if resold:
            n = len(resold)
            few = ", ".join(sorted(resold)[:4]) + (", ..." if n > 4 else "")
            result.notes.append(f"left out {n} model{'s' if n != 1 else ''} only resellers "
                                f"sell ({few}); --provider NAME or --provider all takes them")
        for key in chosen:
            if not _fits_schema(parsed.models[key]):
                parsed.report.skip("does not fit the price-table schema", key)
                continue
            models[key] = copy.deepcopy(parsed.models[key])
            result.added.append(key)
        for p in patterns:
            if not any(k in result.added for k in matched[p]):
                already = [k for k in matched[p] if k in claimed or k in models
                           or model_name(k) in have]
                only_resold = [k for ks in resold.values() for k in ks if k in matched[p]]
                if only_resold and not already:
                    few = ", ".join(only_resold[:3]) + (", ..." if len(only_resold) > 3 else "")
                    raise CostsimError(
                        f"--add '{p}' matched only models their maker does not sell in this "
                        f"source ({few}); --provider NAME (e.g. "
                        f"{parsed.models[only_resold[0]].get('provider')}) or --provider all "
                        f"imports them")
                raise CostsimError(_no_match_message(p, parsed, already))

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
    origin: str  # "existing table", "new empty table", "seeded from the bundled table"
    source_name: str
    source_spec: str
    report: ImportReport
    merge: MergeResult
    text: str
    dry_run: bool
    written: bool = False        # True once written (set before the write, for `render`)
    backup: Path | None = None
    output: Any = None           # what `render` returned

    @property
    def unscored(self) -> list[str]:
        """Models of the new table without a coding_score (strategies that need one say so)."""
        return sorted(m for m, e in self.merge.table["models"].items()
                      if e.get("coding_score") is None)

    @property
    def table_unrepresented(self) -> dict[str, list[str]]:
        """What the table cannot hold, for the models it now takes from the source only."""
        keys = {k: k for k in self.merge.added}           # added models keep the source key
        for mid in self.merge.refreshed:
            ref = str(self.merge.table["models"][mid].get("source", ""))
            keys[ref.split(":", 1)[1] if ":" in ref else mid] = mid
        out: dict[str, list[str]] = {}
        for reason, ids in self.report.unrepresented.items():
            hit = list(dict.fromkeys(keys[i] for i in ids if i in keys))
            if hit:
                out[reason] = hit
        return out

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
            "notes": self.merge.notes,
            "unscored": self.unscored,
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


def _target(table: str | Path | None) -> Path:
    """The table file an update writes."""
    from ..paths import resolve_named, user_prices_path

    if table is not None and str(table) == "bundled":
        raise CostsimError("the bundled table is part of costsim and is not written; give "
                           "--table FILE for a new table (it starts from the bundled one)",
                           path="--table")
    return resolve_named("pricing", table) if table is not None else user_prices_path()


def _target_and_base(table: str | Path | None, empty: bool, today: dt.date):
    """The table file to write, its current content (a PriceTable or a new dict), where that
    came from, and the current text (for its comments)."""
    from ..loader import load_prices
    from ..paths import bundled_prices_path

    target = _target(table)
    if target.exists():
        if target.is_dir():
            raise CostsimError("is a directory, not a price table", str(target))
        try:
            text = target.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = None
        return target, load_prices(target), "existing table", text
    if empty:
        base = {"version": 1, "as_of": today, "currency": "USD", "sources": [], "models": {}}
        return target, base, "new empty table", None
    return target, load_prices(bundled_prices_path()), "seeded from the bundled table", None


def render_table_text(table: dict[str, Any], target: Path, old_text: str | None) -> str:
    """The exact text a rewritten table gets: the stable layout of the writer, with the
    user's comments carried over from ``old_text``, checked to load back before any write."""
    from ..loader import prices_from_text
    from .comments import carry_comments
    from .writer import dump_price_table

    text = dump_price_table(table)
    if old_text:
        text, _lost = carry_comments(old_text, text)
    prices_from_text(text, str(target))  # the exact text to be written must load back
    return text


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
    providers: Sequence[str] | None = None,
    empty: bool = False,
    render: Callable[[UpdateResult], Any] | None = None,
) -> UpdateResult:
    """Refresh a price table from a LiteLLM map or an OpenRouter models response.

    ``table`` None means the user table. A table that does not exist yet starts as a copy of
    the bundled table (so the ids the bundled policies name are there), or empty with
    ``empty``; the installed package is never written. Comments in an existing table are kept.
    ``providers``: see :func:`merge_prices`.

    The source is read and parsed first; then, holding the table's lock
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
    target = _target(table)

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

    if import_all and len(parsed.models) > MAX_MODELS:
        raise CostsimError(f"--all would import {len(parsed.models):,} models; a table holds at "
                           f"most {MAX_MODELS:,} (choose some with --add PATTERN)", spec)

    def run() -> UpdateResult:
        return _update_locked(source, spec, table, parsed, today, empty, render, dry_run,
                              dict(import_all=import_all, patterns=patterns, prune=prune,
                                   force=force, providers=providers))

    if dry_run:
        return run()
    check_writable(target)          # a read-only table or a device: refused before any work
    with locked(target):
        return run()


def _update_locked(source, spec, table, parsed: ParsedSource, today, empty, render, dry_run,
                   options: dict[str, Any]) -> UpdateResult:
    """Read, merge, validate, render, write: the part of :func:`update_table` under the lock."""
    from .store import backup_path, write_table_text

    target, base, origin, old_text = _target_and_base(table, empty, today)
    merged = merge_prices(base, parsed, today=today,
                          source_entry=_source_entry(source, spec, today), **options)
    if len(merged.table["models"]) > MAX_MODELS:
        raise CostsimError(f"the updated table would hold {len(merged.table['models']):,} models; "
                           f"at most {MAX_MODELS:,} (choose fewer with --add PATTERN)",
                           str(target))
    try:
        text = render_table_text(merged.table, target, old_text)
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
