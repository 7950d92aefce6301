"""The `costsim` command. Parses flags, calls the API, renders; nothing else."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Optional

import typer

from .. import __version__
from .common import TYPER_SETTINGS

app = typer.Typer(
    name="costsim",
    help="Cost estimator and routing-policy simulator for AI coding agents: what one completed "
         "task costs with each single model and with each routing policy.",
    **TYPER_SETTINGS,
)


def _version(value: bool):
    if value:
        typer.echo(f"costsim {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Show the version and exit.")] = False):
    """Cost estimator and routing-policy simulator for AI coding agents."""


def _register_subcommands() -> None:
    """Commands that live in their own modules (each imports its heavy parts lazily)."""
    from . import budget, calibrate, compare, init, log, optimize
    from .pricetable import app as price_table_app

    compare.register(app)
    app.add_typer(price_table_app, name="price-table")
    for mod in (budget, calibrate, log, optimize, init):
        mod.register(app)


_register_subcommands()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: never show a traceback for a user's mistake."""
    try:
        app(args=argv, prog_name="costsim")
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except SystemExit:
        raise
    except Exception as exc:  # a bug: say so in one line unless debugging
        if os.environ.get("COSTSIM_DEBUG"):
            raise
        typer.echo(f"costsim: internal error: {type(exc).__name__}: {exc} "
                   f"(set COSTSIM_DEBUG=1 for the traceback; please report it)", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
