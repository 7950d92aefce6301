"""Where the bundled defaults and the user's price table live.

Precedence for the price table: ``--prices FILE`` > the user table (once it exists) > the bundled
table. The user data directory is ``$COSTSIM_HOME`` if set, else ``$XDG_DATA_HOME/costsim``, else
``~/.local/share/costsim``.
"""

from __future__ import annotations

import os
from pathlib import Path

_PKG = Path(__file__).resolve().parent

DEFAULT_WORKLOAD = "medium-team.yaml"


def bundled_dir(kind: str) -> Path:
    """``kind`` is ``pricing``, ``policies`` or ``workloads``.

    In a wheel the folders travel as ``costsim/_bundled/<kind>``; in a source checkout (editable
    install, or tests run from the repository) they sit at the top of the repository.
    """
    inside = _PKG / "_bundled" / kind
    if inside.is_dir():
        return inside
    return _PKG.parent / kind


def bundled_prices_path() -> Path:
    return bundled_dir("pricing") / "default.yaml"


def bundled_workload_path() -> Path:
    return bundled_dir("workloads") / DEFAULT_WORKLOAD


def bundled_policy_paths() -> list[Path]:
    return sorted(bundled_dir("policies").glob("*.yaml"))


def user_data_dir() -> Path:
    env = os.environ.get("COSTSIM_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "costsim"


def user_prices_path() -> Path:
    return user_data_dir() / "prices.yaml"


def resolve_prices_path(explicit: str | Path | None = None) -> Path:
    """The price table in use: explicit > user table (if it exists) > bundled."""
    if explicit is not None:
        return Path(explicit)
    user = user_prices_path()
    if user.is_file():
        return user
    return bundled_prices_path()


def resolve_workload_path(explicit: str | Path | None = None) -> Path:
    return Path(explicit) if explicit is not None else bundled_workload_path()


def resolve_policy_paths(explicit: list[str | Path] | tuple = ()) -> list[Path]:
    if explicit:
        return [Path(p) for p in explicit]
    return bundled_policy_paths()
