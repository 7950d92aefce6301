"""Compare two price tables and render the result the way infracost renders cost diffs.

:func:`diff_tables` computes a :class:`TableDiff` once; :func:`render_diff_text` and
:meth:`TableDiff.to_dict` are views of it (no arithmetic beyond formatting in the renderers)::

    Legend: ~ changed, + added, - removed

    ~ claude-opus-5  input $5.00 → $4.00 (-20%)
    ~ claude-opus-5  output $25.00 → $20.00 (-20%)
    + kimi-k3  input $3.00, output $15.00, cache_read $0.30 (midrange, moonshot)
    - grok-4.5  input $2.00, output $6.00

    1 model changed (2 fields), 1 added, 1 removed, 12 unchanged
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = ["Change", "TableDiff", "diff_tables", "format_price", "render_diff_text"]

#: Fields compared, in display order; ``long_context`` is flattened to ``long_context.<k>``.
FIELDS = (
    "input",
    "output",
    "cache_read",
    "cache_write",
    "long_context.above",
    "long_context.input",
    "long_context.output",
    "long_context.cache_read",
    "long_context.cache_write",
    "context_window",
    "coding_score",
    "tier",
    "provider",
)
PRICE_FIELDS = frozenset(
    f for f in FIELDS if f.split(".")[-1] in ("input", "output", "cache_read", "cache_write")
)


@dataclass(frozen=True)
class Change:
    model: str
    field: str
    old: Any
    new: Any

    @property
    def pct(self) -> float | None:
        """Relative change in percent for numbers (None when old is 0 or not a number)."""
        if (
            isinstance(self.old, (int, float))
            and isinstance(self.new, (int, float))
            and not isinstance(self.old, bool)
            and self.old != 0
        ):
            return (self.new - self.old) / self.old * 100
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "field": self.field, "old": self.old, "new": self.new}


@dataclass
class TableDiff:
    changed: list[Change] = field(default_factory=list)
    added: list[Change] = field(default_factory=list)
    removed: list[Change] = field(default_factory=list)
    unchanged: int = 0

    @property
    def changed_models(self) -> list[str]:
        return list(dict.fromkeys(c.model for c in self.changed))

    @property
    def added_models(self) -> list[str]:
        return list(dict.fromkeys(c.model for c in self.added))

    @property
    def removed_models(self) -> list[str]:
        return list(dict.fromkeys(c.model for c in self.removed))

    @property
    def empty(self) -> bool:
        return not (self.changed or self.added or self.removed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "changed": [c.to_dict() for c in self.changed],
            "added": [c.to_dict() for c in self.added],
            "removed": [c.to_dict() for c in self.removed],
            "summary": {
                "changed": len(self.changed_models),
                "added": len(self.added_models),
                "removed": len(self.removed_models),
                "unchanged": self.unchanged,
            },
        }


def _plain(table: Any) -> dict[str, Any]:
    if isinstance(table, dict):
        return table
    return table.model_dump(exclude_none=True)


def _flat(model: Any) -> dict[str, Any]:
    m = _plain(model)
    out: dict[str, Any] = {}
    for f in FIELDS:
        if f.startswith("long_context."):
            lc = m.get("long_context") or {}
            value = lc.get(f.split(".", 1)[1])
        else:
            value = m.get(f)
        if value is not None:
            out[f] = value
    return out


def diff_tables(old: Any, new: Any) -> TableDiff:
    """What changed from ``old`` to ``new`` (PriceTables or plain dicts), model by model in id
    order, field by field in :data:`FIELDS` order."""
    old_models = _plain(old).get("models") or {}
    new_models = _plain(new).get("models") or {}
    d = TableDiff()
    for mid in sorted(set(old_models) | set(new_models)):
        if mid not in new_models:
            d.removed += [Change(mid, f, v, None) for f, v in _flat(old_models[mid]).items()]
        elif mid not in old_models:
            d.added += [Change(mid, f, None, v) for f, v in _flat(new_models[mid]).items()]
        else:
            a, b = _flat(old_models[mid]), _flat(new_models[mid])
            changes = [Change(mid, f, a.get(f), b.get(f)) for f in FIELDS if a.get(f) != b.get(f)]
            if changes:
                d.changed += changes
            else:
                d.unchanged += 1
    return d


def format_price(x: float | None) -> str:
    """``$3.00``, ``$0.075``, ``$0.0208333333333333``: at least two decimals, never rounded."""
    if x is None:
        return "-"
    text = format(Decimal(repr(float(x))), "f")
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0")
    if len(frac) < 2:
        frac = frac.ljust(2, "0")
    return f"${int(whole):,}.{frac}" if not whole.startswith("-") else f"-${whole[1:]}.{frac}"


def _value(field_name: str, v: Any) -> str:
    if v is None:
        return "(none)"
    if field_name in PRICE_FIELDS:
        return format_price(v)
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def _pct(c: Change) -> str:
    p = c.pct
    if p is None:
        return ""
    return f" ({p:+.0f}%)" if abs(p) >= 1 or p == 0 else f" ({p:+.2g}%)"


_SUMMARY_FIELDS = ("input", "output", "cache_read", "cache_write")


def _brief(changes: list[Change], side: str) -> str:
    vals = {c.field: (c.new if side == "new" else c.old) for c in changes}
    parts = [f"{f} {_value(f, vals[f])}" for f in _SUMMARY_FIELDS if f in vals]
    if "long_context.above" in vals:
        parts.append(f"above {vals['long_context.above']:,} tokens: long-context rates")
    extra = [str(vals[k]) for k in ("tier", "provider") if k in vals]
    return ", ".join(parts) + (f" ({', '.join(extra)})" if extra else "")


def render_diff_text(diff: TableDiff, *, title: str | None = None,
                     limit: int | None = None) -> str:
    """Infracost-style text: legend, one ``~`` line per changed field, one ``+``/``-`` line per
    added/removed model, counts at the end. ``limit``: at most this many ``+`` and this many
    ``-`` lines, then one line saying how many more (``--format json`` lists them all)."""
    out: list[str] = []
    if title:
        out += [title, ""]
    out += ["Legend: ~ changed, + added, - removed", ""]
    for c in diff.changed:
        out.append(
            f"~ {c.model}  {c.field} {_value(c.field, c.old)} → {_value(c.field, c.new)}{_pct(c)}"
        )
    by_model: dict[str, list[Change]] = {}
    for c in diff.added:
        by_model.setdefault(c.model, []).append(c)
    def some(items, sign, side):
        items = list(items)
        shown = items if limit is None else items[:limit]
        for mid, changes in shown:
            out.append(f"{sign} {mid}  {_brief(changes, side)}")
        if len(shown) < len(items):
            out.append(f"{sign} ... and {len(items) - len(shown)} more (--format json lists "
                       f"them all)")

    some(by_model.items(), "+", "new")
    by_model = {}
    for c in diff.removed:
        by_model.setdefault(c.model, []).append(c)
    some(by_model.items(), "-", "old")
    if diff.empty:
        out.append("(no differences)")
    n_changed = len(diff.changed_models)
    out += [
        "",
        f"{n_changed} model{'s' if n_changed != 1 else ''} changed"
        f" ({len(diff.changed)} field{'s' if len(diff.changed) != 1 else ''}), "
        f"{len(diff.added_models)} added, {len(diff.removed_models)} removed, "
        f"{diff.unchanged} unchanged",
    ]
    return "\n".join(out) + "\n"
