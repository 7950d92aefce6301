"""`costsim price-table show | update | diff | validate`: parsing and rendering only.

The work is done by :mod:`costsim.pricetable` (``update_table``, ``diff_tables``, the loader);
this module turns flags into calls and results into text.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .common import (TYPER_SETTINGS, OutOpt, WideOpt, emit, guard_files, handle_errors,
                     warn)
from ..errors import CostsimError

app = typer.Typer(
    help="Show, refresh (from LiteLLM's price map or OpenRouter's models API), compare and "
    "check price tables. Prices are USD per 1M tokens.",
    **TYPER_SETTINGS,
)


class Source(str, Enum):
    litellm = "litellm"
    openrouter = "openrouter"


class DiffFormat(str, Enum):
    table = "table"
    json = "json"


TableOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--table",
        metavar="FILE",
        help="Work on this price table (a file, or 'bundled' or 'user') instead of the one in "
        "use (your user table if `update` made one, else the bundled table).",
        dir_okay=False,
    ),
]


def _which(path: Path) -> str:
    from ..paths import bundled_prices_path, user_prices_path

    try:
        if path.resolve() == user_prices_path().resolve():
            return "user table"
        if path.resolve() == bundled_prices_path().resolve():
            return "bundled table"
    except OSError:
        pass
    return "given table"


def _load_in_use(table: Path | None):
    from ..loader import load_prices
    from ..paths import resolve_prices_path

    path = resolve_prices_path(table)
    if table is not None and not path.exists():
        raise CostsimError("no such file", str(path))
    return path, load_prices(path)


def _fmt(value: Any) -> str:
    return getattr(value, "value", value)


# --- show ----------------------------------------------------------------------------------

SHOW_COLUMNS = [
    "id",
    "provider",
    "tier",
    "input",
    "output",
    "cache_read",
    "cache_write",
    "long_context_above",
    "long_context_input",
    "long_context_output",
    "long_context_cache_read",
    "long_context_cache_write",
    "context_window",
    "coding_score",
    "source",
]


def _rows(prices, providers: list[str], tiers: list[str]) -> list[dict[str, Any]]:
    prov = {p.casefold() for p in providers}
    rows = []
    for mid in sorted(prices.models):
        m = prices.models[mid]
        if prov and m.provider.casefold() not in prov:
            continue
        if tiers and m.tier not in tiers:
            continue
        lc = m.long_context
        rows.append(
            {
                "id": mid,
                "provider": m.provider,
                "tier": m.tier,
                "input": m.input,
                "output": m.output,
                "cache_read": m.cache_read,
                "cache_write": m.cache_write,
                "long_context_above": lc.above if lc else None,
                "long_context_input": lc.input if lc else None,
                "long_context_output": lc.output if lc else None,
                "long_context_cache_read": lc.cache_read if lc else None,
                "long_context_cache_write": lc.cache_write if lc else None,
                "context_window": m.context_window,
                "coding_score": m.coding_score,
                "source": m.source,
            }
        )
    return rows


def _human(rows: list[dict[str, Any]]):
    """(columns, cells) of the terminal table: what a reader compares first (model, tier,
    input, output, coding score), then the rest while the width allows (--wide: all)."""
    from ..pricetable.diff import format_price
    from ..render import Column

    def lc(r):
        if r["long_context_above"] is None:
            return "-"
        parts = [format_price(r[f"long_context_{k}"]) if r[f"long_context_{k}"] is not None
                 else "=" for k in ("input", "output")]
        return f">{r['long_context_above'] // 1000:,}k: {parts[0]}/{parts[1]}"

    cols = [Column("model", numeric=False), Column("tier", numeric=False), Column("input"),
            Column("output"), Column("cache\nread", level=1), Column("coding\nscore"),
            Column("provider", numeric=False, level=2), Column("long context\n(in/out)", level=3),
            Column("cache\nwrite", level=4), Column("context\nwindow", level=4)]
    body = [
        [
            r["id"],
            r["tier"],
            format_price(r["input"]),
            format_price(r["output"]),
            format_price(r["cache_read"]) if r["cache_read"] is not None else "-",
            f"{r['coding_score']:g}" if r["coding_score"] is not None else "-",
            r["provider"],
            lc(r),
            format_price(r["cache_write"]) if r["cache_write"] is not None else "-",
            f"{r['context_window']:,}" if r["context_window"] else "-",
        ]
        for r in rows
    ]
    return cols, body


class ShowFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"
    yaml = "yaml"


@app.command()
@handle_errors
def show(
    table: TableOpt = None,
    provider: Annotated[
        Optional[list[str]], typer.Option("--provider", metavar="NAME",
                                          help="Only this provider (repeatable).")
    ] = None,
    tier: Annotated[
        Optional[list[str]],
        typer.Option("--tier", metavar="TIER",
                     help="Only this tier: budget, midrange or premium (repeatable)."),
    ] = None,
    wide: WideOpt = False,
    format: Annotated[ShowFormat, typer.Option(
        "--format", "-f", help="Output format; yaml writes a price table (the models shown) "
        "that every command can load.")] = ShowFormat.table,
    out: OutOpt = None,
):
    """Show the price table in use (or --table FILE): where it is, how old, every model."""
    from ..pricetable import stale_warning, table_age_days
    from ..render import fit_table, render_rich, to_csv, to_json, to_markdown

    for t in tier or []:
        if t not in ("budget", "midrange", "premium"):
            raise CostsimError(f"--tier: unknown tier '{t}' (tiers: budget, midrange, premium)")
    path, prices = _load_in_use(table)
    guard_files(reads={"--table": path}, writes={"--out": out})
    kind = _which(path)
    age = table_age_days(prices)
    rows = _rows(prices, provider or [], tier or [])
    stale = stale_warning(prices)
    if stale:
        warn(stale)
    fmt = _fmt(format)
    if fmt == "json":
        text = to_json(
            {
                "version": 1,
                "table": str(path),
                "kind": kind,
                "as_of": prices.as_of.isoformat(),
                "age_days": age,
                "stale": stale is not None,
                "currency": prices.currency,
                "sources": [s.model_dump(exclude_none=True) for s in prices.sources],
                "models": rows,
            }
        )
    elif fmt == "csv":
        text = to_csv(SHOW_COLUMNS, [[r[c] for c in SHOW_COLUMNS] for r in rows])
    elif fmt == "yaml":
        from ..pricetable.writer import dump_price_table

        data = prices.model_dump(exclude_none=True)
        shown = {r["id"] for r in rows}
        data["models"] = {m: v for m, v in data["models"].items() if m in shown}
        text = dump_price_table(data, header=f"Exported by costsim price-table show from {path}")
    else:
        title = (
            f"{kind} {path}, as of {prices.as_of.isoformat()} ({age} day{'s' if age != 1 else ''} old); "
            f"{prices.currency} per 1M tokens; {len(rows)} of {len(prices.models)} models"
        )
        cols, body = _human(rows)
        if fmt == "markdown":
            text = f"**Price table**: {title}\n\n" + to_markdown([c.flat for c in cols], body)
        else:
            srcs = "; ".join(
                s.name + (f" ({s.fetched.isoformat()})" if s.fetched else "")
                for s in prices.sources
            )
            caption = f"sources: {srcs}" if srcs else None
            text = render_rich([fit_table(title, cols, body, caption=caption, wide=wide)])
    emit(text, out)


# --- update --------------------------------------------------------------------------------


def _render_update(result, detail: str = "normal") -> str:
    """``detail``: quiet (the counts and what was written), normal (plus the changes and what
    concerns this table's models) or verbose (plus the whole source report)."""
    from ..pricetable.diff import render_diff_text

    m = result.merge
    d = m.diff
    n_changed = len(d.changed_models)
    counts = (f"{n_changed} model{'s' if n_changed != 1 else ''} changed, "
              f"{len(d.added_models)} added, {len(d.removed_models)} removed, "
              f"{d.unchanged} unchanged")
    tail = []
    if result.unscored:
        shown = ", ".join(result.unscored[:5]) + (", ..." if len(result.unscored) > 5 else "")
        tail.append(
            f"{len(result.unscored)} model{'s have' if len(result.unscored) != 1 else ' has'} "
            f"no coding_score ({shown}): compare needs one unless a workload gives success "
            f"rates; add scores with `costsim price-table scores --table {result.path}`"
        )
    if m.missing and not m.pruned:
        tail.append(
            f"{len(m.missing)} model{'s' if len(m.missing) != 1 else ''} not in the source, "
            f"kept (--prune removes them): {', '.join(m.missing)}"
        )
    if m.pruned:
        tail.append(f"removed (--prune): {', '.join(m.pruned)}")
    if result.dry_run:
        tail.append("dry run: nothing written")
    elif result.written:
        tail.append(
            f"wrote {result.path}"
            + (f" (previous table kept as {result.backup})" if result.backup else "")
        )
    if detail == "quiet":
        return "\n".join([counts] + tail[-1:]) + "\n"
    r = result.report
    lines = [
        f"Table: {result.path} ({result.origin})",
        f"Source: {result.source_name} from {result.source_spec}: {r.total:,} entries, "
        f"{r.imported:,} chat models priced per token",
    ]
    if detail == "verbose":
        lines += ["", *r.lines()]
        for reason, ids in sorted(result.table_unrepresented.items(),
                                  key=lambda kv: (-len(kv[1]), kv[0])):
            lines.append(f"  this table: {reason}: {', '.join(ids)}")
    else:
        kinds = result.table_unrepresented
        models = {m for ids in kinds.values() for m in ids}
        if kinds:
            lines.append(f"  not kept: {len(kinds)} kind{'s' if len(kinds) != 1 else ''} of "
                         f"price the table has no field for (batch, priority, ...), for "
                         f"{len(models)} of its models; --verbose lists them")
    lines += [f"  {n}" for n in m.notes[:5]]
    if len(m.notes) > 5:
        lines.append(f"  ... and {len(m.notes) - 5} more models with several providers")
    lines.append("")
    text = "\n".join(lines) + render_diff_text(d, limit=None if detail == "verbose" else 20)
    return text + ("\n" + "\n".join(tail) + "\n" if tail else "")


@app.command()
@handle_errors
def update(
    source: Annotated[
        Source, typer.Option("--source", help="Kind of source: litellm or openrouter.")
    ],
    from_: Annotated[
        str,
        typer.Option(
            "--from",
            metavar="PATH_OR_URL",
            help="LiteLLM's model_prices_and_context_window.json or an OpenRouter "
            "/api/v1/models response: a local file or an http(s) URL.",
        ),
    ],
    table: Annotated[
        Optional[Path],
        typer.Option(
            "--table",
            metavar="FILE",
            help="Update this table. A new one starts as a copy of the bundled table (or "
            "empty with --empty). Default: your user table, made the same way the first time.",
            dir_okay=False,
        ),
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Import every chat model of the source.")
    ] = False,
    add: Annotated[
        Optional[list[str]],
        typer.Option(
            "--add",
            metavar="GLOB",
            help="Also import the models matching GLOB: a model id ('claude-haiku-*'), a "
            "source key or PROVIDER/MODEL ('anthropic/*') (repeatable).",
        ),
    ] = None,
    provider: Annotated[
        Optional[list[str]],
        typer.Option(
            "--provider",
            metavar="NAME",
            help="With --add/--all: import the entries of this provider (e.g. azure, bedrock), "
            "or 'all' for every provider's (repeatable). Default: one entry per model, from "
            "the company that makes it.",
        ),
    ] = None,
    empty: Annotated[
        bool, typer.Option("--empty", help="Start a new --table empty instead of from the "
                           "bundled table.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; write nothing.")
    ] = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Remove table models the source no longer has.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Allow an update that removes more than half the models."),
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only the counts and what was written.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also list everything the source had that "
                           "was skipped or that the table cannot hold.")
    ] = False,
    format: Annotated[
        DiffFormat, typer.Option("--format", "-f", help="Output format.")
    ] = DiffFormat.table,
):
    """Refresh prices from a source and show what changed (infracost-style diff).

    By default only the models the table already has are refreshed; their previous prices go
    to each model's history, and comments in the table are kept. The source is parsed and the
    new table validated before anything is written; the write is atomic and the previous file
    is kept as FILE.bak.
    """
    from ..pricetable.merge import update_table
    from ..render import to_json

    if all_ and add:
        raise CostsimError("--all and --add exclude each other (--all already imports every model)")
    if quiet and verbose:
        raise CostsimError("--quiet and --verbose exclude each other")
    if provider and not (all_ or add):
        raise CostsimError("--provider chooses among the entries --add or --all import; give "
                           "one of them too")
    guard_files(reads={"--from": from_}, writes={"--table": table})
    as_json = _fmt(format) == "json"
    level = "quiet" if quiet else "verbose" if verbose else "normal"
    # The report is rendered before the table is written: if it cannot be, nothing is.
    result = update_table(
        _fmt(source),
        from_,
        table=table,
        import_all=all_,
        patterns=add or (),
        dry_run=dry_run,
        prune=prune,
        force=force,
        providers=provider or None,
        empty=empty,
        render=lambda r: to_json(r.to_dict()) if as_json else _render_update(r, level),
    )
    emit(result.output, None)


# --- scores --------------------------------------------------------------------------------


@app.command()
@handle_errors
def scores(
    table: Annotated[
        Optional[Path],
        typer.Option("--table", metavar="FILE", dir_okay=False,
                     help="The table to give scores to. Default: your user table."),
    ] = None,
    from_: Annotated[
        str,
        typer.Option(
            "--from", metavar="PATH_OR_URL",
            help="An OpenRouter /api/v1/models response (file or URL), another price table, "
            "or your own .yaml (model: score) or .csv (model,coding_score).",
        ),
    ] = "https://openrouter.ai/api/v1/models",
    missing_only: Annotated[
        bool, typer.Option("--missing-only", help="Keep the scores the table already has.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; write nothing.")
    ] = False,
    format: Annotated[
        DiffFormat, typer.Option("--format", "-f", help="Output format.")
    ] = DiffFormat.table,
):
    """Set coding_score (the Artificial Analysis coding index) on a table's models.

    A model needs a coding_score for costsim to tell how often it succeeds, unless the
    workload gives success rates for it. LiteLLM has no scores; OpenRouter's models API
    does. Each table model takes the score of the same model in the source; the write is
    atomic, keeps comments and keeps the previous file as FILE.bak.
    """
    from ..pricetable.scores import merge_scores
    from ..render import to_json

    guard_files(reads={"--from": from_}, writes={"--table": table})
    as_json = _fmt(format) == "json"
    # The report is rendered before the table is written: if it cannot be, nothing is.
    res = merge_scores(table, from_, missing_only=missing_only, dry_run=dry_run,
                       render=lambda r: to_json(r.to_dict()) if as_json else _render_scores(r))
    emit(res.output, None)


def _render_scores(res) -> str:
    from ..pricetable.diff import render_diff_text

    lines = [f"Table: {res.path}", f"Scores: {res.source_kind} from {res.source_spec}", ""]
    text = "\n".join(lines) + render_diff_text(res.diff)
    tail = []
    left = res.unscored
    if left:
        few = ", ".join(left[:8]) + (", ..." if len(left) > 8 else "")
        tail.append(f"{len(left)} model{'s' if len(left) != 1 else ''} still without a "
                    f"coding_score, not in the source: {few} (write coding_score: N under the "
                    f"model in {res.path}, or give the workload's phases success rates for it)")
    if res.dry_run:
        tail.append("dry run: nothing written")
    elif res.written:
        tail.append(f"wrote {res.path}" + (f" (previous table kept as {res.backup})"
                                           if res.backup else ""))
    else:
        tail.append("nothing to change")
    return text + "\n" + "\n".join(tail) + "\n"


# --- diff ----------------------------------------------------------------------------------


@app.command()
@handle_errors
def diff(
    old: Annotated[Path, typer.Argument(help="The older price table.", dir_okay=False)],
    new: Annotated[Path, typer.Argument(help="The newer price table.", dir_okay=False)],
    format: Annotated[
        DiffFormat, typer.Option("--format", "-f", help="Output format.")
    ] = DiffFormat.table,
):
    """Compare two price tables: ~ changed, + added, - removed, with counts."""
    from ..loader import load_prices
    from ..pricetable.diff import diff_tables, render_diff_text
    from ..render import to_json

    a, b = load_prices(old), load_prices(new)
    d = diff_tables(a, b)
    if _fmt(format) == "json":
        emit(
            to_json(
                {
                    "version": 1,
                    "old": {"table": str(old), "as_of": a.as_of.isoformat()},
                    "new": {"table": str(new), "as_of": b.as_of.isoformat()},
                    **d.to_dict(),
                }
            ),
            None,
        )
    else:
        title = f"{old} (as of {a.as_of}) → {new} (as of {b.as_of}), USD per 1M tokens"
        emit(render_diff_text(d, title=title), None)


# --- validate ------------------------------------------------------------------------------


def _checks(prices) -> list[str]:
    """Plausibility warnings a schema cannot express (the table is still valid)."""
    from ..checks import price_table_warnings

    return price_table_warnings(prices)


@app.command()
@handle_errors
def validate(
    file: Annotated[
        Optional[Path],
        typer.Argument(help="Table to check (same as --table).", dir_okay=False, show_default=False),
    ] = None,
    table: TableOpt = None,
    format: Annotated[
        DiffFormat, typer.Option("--format", "-f", help="Output format.")
    ] = DiffFormat.table,
):
    """Check a price table strictly (exit 2 with file:line: field: message if it is invalid)."""
    from ..pricetable import stale_warning, table_age_days
    from ..render import to_json

    if file is not None and table is not None and file != table:
        raise CostsimError("give the table once: as an argument or with --table")
    path, prices = _load_in_use(table or file)
    warnings = _checks(prices)
    stale = stale_warning(prices)
    if _fmt(format) == "json":
        emit(
            to_json(
                {
                    "version": 1,
                    "table": str(path),
                    "valid": True,
                    "models": len(prices.models),
                    "as_of": prices.as_of.isoformat(),
                    "age_days": table_age_days(prices),
                    "warnings": warnings + ([stale] if stale else []),
                }
            ),
            None,
        )
        return
    shown = warnings if len(warnings) <= 12 else warnings[:10]
    for w in shown:
        warn(w)
    if len(shown) < len(warnings):
        warn(f"... and {len(warnings) - len(shown)} more (--format json lists them all)")
    if stale:
        warn(stale)
    emit(
        f"ok: {path}: {len(prices.models)} models, as of {prices.as_of.isoformat()} "
        f"({_which(path)})\n",
        None,
    )
