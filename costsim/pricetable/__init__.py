"""Price-table management: parse sources, merge, diff, write (``costsim price-table ...``)."""

from __future__ import annotations

import datetime as _dt
from typing import Any

#: A table older than this many days gets a warning from every command that uses it.
STALE_AFTER_DAYS = 60


def _as_of(table: Any) -> _dt.date | None:
    value = table.get("as_of") if isinstance(table, dict) else getattr(table, "as_of", None)
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, str):
        try:
            return _dt.date.fromisoformat(value)
        except ValueError:
            return None
    return None


def table_age_days(table: Any, today: _dt.date | None = None) -> int | None:
    """Days since the table's ``as_of`` date (None if it has none)."""
    as_of = _as_of(table)
    if as_of is None:
        return None
    return ((today or _dt.date.today()) - as_of).days


def stale_warning(table: Any, today: _dt.date | None = None) -> str | None:
    """A one-line warning if the table (a PriceTable or a plain dict) is older than
    :data:`STALE_AFTER_DAYS` days, else None."""
    age = table_age_days(table, today)
    if age is None or age <= STALE_AFTER_DAYS:
        return None
    return (
        f"prices are {age} days old (as_of {_as_of(table).isoformat()}); "
        "refresh with `costsim price-table update --source litellm --from URL`"
    )
