"""Pieces every command shares: output options, error handling, input options."""

from __future__ import annotations

import functools
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import CostsimError
from ..fsutil import atomic_write, is_stdout, write_stdout


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


class ReportFormat(str, Enum):
    """For commands whose output has no sensible CSV form."""

    table = "table"
    json = "json"
    markdown = "markdown"


FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
ReportFormatOpt = Annotated[ReportFormat, typer.Option("--format", "-f", help="Output format.")]
OutOpt = Annotated[Optional[Path], typer.Option(
    "--out", "-o", help="Write the output to FILE (atomically) instead of standard output.",
    dir_okay=False)]
PricesOpt = Annotated[Optional[Path], typer.Option(
    "--prices", help="Price table YAML. Default: your user table if `price-table update` made "
    "one, else the bundled table.", dir_okay=False)]
WorkloadOpt = Annotated[Optional[Path], typer.Option(
    "--workload", "-w", help="Workload YAML. Default: the bundled medium-team workload.",
    dir_okay=False)]
PolicyOpt = Annotated[Optional[list[Path]], typer.Option(
    "--policy", "-p", help="Routing policy YAML (repeatable). Default: the bundled policies.",
    dir_okay=False)]


def emit(text: str, out: Path | None) -> None:
    """Print ``text`` or write it atomically to ``out`` (``-`` or /dev/stdout: print it)."""
    if out is None or is_stdout(out):
        try:
            write_stdout(text)
        except BrokenPipeError:      # the reader stopped (`| head`): not an error
            raise typer.Exit(0) from None
    else:
        atomic_write(out, text)
        typer.echo(f"wrote {out}", err=True)


def warn(message: str) -> None:
    typer.echo(f"warning: {message}", err=True)


def handle_errors(fn):
    """A CostsimError becomes one line on stderr and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CostsimError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper
