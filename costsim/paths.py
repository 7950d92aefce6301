"""Where the bundled defaults and the user's price table live, and bundled names.

Precedence for the price table: ``--prices FILE`` > the user table (once it exists) > the bundled
table. The user data directory is ``$COSTSIM_HOME`` if set, else ``$XDG_DATA_HOME/costsim``, else
``~/.local/share/costsim``.

Every input option also takes a **bundled name** instead of a path, so the defaults can be named
from any directory after a plain ``pip install``: ``--workload large-team``, ``--policy
cheapest-routing``, ``--prices bundled`` (``--prices user``: the user table). A path that exists
always wins over a name; a name is a bare word (no directory, no extension).
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import CostsimError

_PKG = Path(__file__).resolve().parent

DEFAULT_WORKLOAD = "medium-team.yaml"

#: ``kind`` -> (bundled folder, what one file is called in messages)
KINDS = {"pricing": "price table", "policies": "policy", "workloads": "workload",
         "examples": "example"}


def bundled_dir(kind: str) -> Path:
    """``kind`` is ``pricing``, ``policies``, ``workloads`` or ``examples``.

    In a wheel the folders travel as ``costsim/_bundled/<kind>``; in a source checkout (editable
    install, or tests run from the repository) they sit at the top of the repository
    (``examples`` is ``docs/examples``).
    """
    inside = _PKG / "_bundled" / kind
    if inside.is_dir():
        return inside
    if kind == "examples":
        return _PKG.parent / "docs" / "examples"
    return _PKG.parent / kind


def bundled_prices_path() -> Path:
    return bundled_dir("pricing") / "default.yaml"


def bundled_workload_path() -> Path:
    return bundled_dir("workloads") / DEFAULT_WORKLOAD


def bundled_policy_paths() -> list[Path]:
    return sorted(bundled_dir("policies").glob("*.yaml"))


def bundled_names(kind: str) -> list[str]:
    """The names ``--workload``/``--policy`` accept (file stems), or ``['bundled', 'user']``
    for price tables."""
    if kind == "pricing":
        return ["bundled", "user"]
    return sorted(p.stem for p in bundled_dir(kind).glob("*.yaml"))


def user_data_dir() -> Path:
    env = os.environ.get("COSTSIM_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "costsim"


def user_prices_path() -> Path:
    return user_data_dir() / "prices.yaml"


def _is_name(text: str) -> bool:
    return bool(text) and "/" not in text and os.sep not in text and "." not in text


def resolve_named(kind: str, value: str | Path) -> Path:
    """``value`` as a path if it exists or looks like one; else the bundled file it names.

    A bare word that is neither an existing file nor a bundled name is an error listing the
    names (``--workload large-tem`` -> ``large-tem: no such file, and not a bundled workload
    (bundled: large-team, medium-team, small-team)``).
    """
    text = str(value)
    p = Path(os.path.expanduser(text))
    if p.exists() or not _is_name(text):
        return p
    if kind == "pricing":
        if text == "bundled":
            return bundled_prices_path()
        if text == "user":
            user = user_prices_path()
            if not user.is_file():
                raise CostsimError("there is no user price table yet (`costsim price-table "
                                   f"update` creates it at {user})", text)
            return user
    else:
        candidate = bundled_dir(kind) / f"{text}.yaml"
        if candidate.is_file():
            return candidate
    names = ", ".join(bundled_names(kind))
    raise CostsimError(f"no such file, and not a bundled {KINDS.get(kind, kind)} name "
                       f"(bundled: {names})", text)


def resolve_prices_path(explicit: str | Path | None = None) -> Path:
    """The price table in use: explicit (a path, ``bundled`` or ``user``) > user table (if it
    exists) > bundled."""
    if explicit is not None:
        return resolve_named("pricing", explicit)
    user = user_prices_path()
    if user.is_file():
        return user
    return bundled_prices_path()


def resolve_workload_path(explicit: str | Path | None = None) -> Path:
    if explicit is None:
        return bundled_workload_path()
    return resolve_named("workloads", explicit)


def resolve_policy_path(explicit: str | Path) -> Path:
    return resolve_named("policies", explicit)


def resolve_policy_paths(explicit: list[str | Path] | tuple = ()) -> list[Path]:
    """Each --policy: a file, a bundled name, or a folder (every ``*.yaml`` in it, sorted).
    None given: every bundled policy."""
    if not explicit:
        return bundled_policy_paths()
    out: list[Path] = []
    for p in explicit:
        path = resolve_policy_path(p)
        if path.is_dir():
            found = sorted(list(path.glob("*.yaml")) + list(path.glob("*.yml")))
            if not found:
                raise CostsimError("a folder with no policy in it (no *.yaml file)", str(path),
                                   path="--policy")
            out += found
        else:
            out.append(path)
    return out
