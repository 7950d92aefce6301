"""Match the model ids agents log to the ids of a price table.

Logs name models the way the provider or gateway answered: ``claude-sonnet-4-5-20250929``,
``anthropic/claude-sonnet-4-5``, ``litellm_proxy/gpt-4.1``, ``gpt-4.1-2025-04-14``. A price table
names them once, plainly. An id is matched, in this order: as it is; without routing prefixes
(``provider/`` segments, dropped from the left one at a time); then each of those without a date
suffix (``-20250929``, ``-2025-04-14``, ``@20250929``); case-insensitively. The first candidate
that is in the table wins; an id with no match is kept as it is (its rows then need a
``cost_usd`` or calibrate reports the unknown model). An id that is in the table is never changed.
"""

from __future__ import annotations

import re

_DATE = re.compile(r"[-@](?:\d{8}|\d{4}-\d{2}-\d{2})$")


def candidates(model: str) -> list[str]:
    out = [model]
    parts = model.split("/")
    out += ["/".join(parts[i:]) for i in range(1, len(parts))]
    out += [_DATE.sub("", c) for c in list(out) if _DATE.search(c)]
    return out


def match_models(models, table_ids) -> dict[str, str]:
    """``{logged id: table id}`` for the logged ids that match a different table id."""
    by_lower = {}
    for t in sorted(table_ids):
        by_lower.setdefault(t.lower(), t)
    out: dict[str, str] = {}
    for m in models:
        if m in table_ids:
            continue
        for c in candidates(m):
            hit = by_lower.get(c.lower())
            if hit is not None:
                if hit != m:
                    out[m] = hit
                break
    return out
