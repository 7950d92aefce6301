"""The `costsim` command. Parses flags, calls the API, renders; nothing else."""

from __future__ import annotations

import errno
import os
import sys
from typing import Annotated

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


def _click():
    """The click that typer runs on: recent typer vendors it as ``typer._click``."""
    try:
        from typer import _click as click
    except ImportError:  # pragma: no cover - typer releases that depend on click
        import click
    return click


def _say(message: str) -> None:
    """One line on stderr (control characters escaped); never fails."""
    from ..errors import one_line

    try:
        sys.stderr.write(one_line(message) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _stdout_error(exc: OSError) -> int:
    """Standard output failed (a closed pipe, a full disk): 0 for a closed pipe (the reader
    has what it wanted, as with `| head`), else one line and status 2."""
    from ..fsutil import discard_stdout

    discard_stdout()
    if isinstance(exc, BrokenPipeError):
        return 0
    _say(f"costsim: cannot write to standard output: {exc.strerror or exc}")
    return 2


def _usage_error(exc) -> int:
    """Click's usage errors in one line instead of a boxed, multi-line message."""
    click = _click()
    if isinstance(exc, getattr(click.exceptions, "NoArgsIsHelpError", ())):
        typer.echo(exc.ctx.get_help())       # `costsim` alone: the help, as before
        return exc.exit_code
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "costsim"
    _say(f"{command}: {exc.format_message()} (see '{command} --help')")
    return exc.exit_code


def _run(argv: list[str] | None) -> int:
    click = _click()
    try:
        rv = app(args=argv, prog_name="costsim", standalone_mode=False)
    except click.exceptions.UsageError as exc:
        return _usage_error(exc)
    except click.exceptions.ClickException as exc:
        _say(f"costsim: {exc.format_message()}")
        return exc.exit_code
    except typer.Abort:
        _say("aborted")
        return 1
    return rv if isinstance(rv, int) and not isinstance(rv, bool) else 0


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: one line on stderr for every problem, never a traceback for
    a user's mistake; `internal error` only for a bug."""
    for stream in (sys.stdout, sys.stderr):
        try:   # a value that the terminal's encoding cannot show is escaped, not a crash
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):
            pass
    try:
        code = _run(argv)
    except KeyboardInterrupt:
        _say("interrupted")
        code = 130
    except SystemExit as exc:      # typer exits by itself on a closed pipe
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except OSError as exc:
        if exc.errno in (errno.EPIPE, errno.ENOSPC, errno.EDQUOT, errno.EIO) and _is_stdout(exc):
            code = _stdout_error(exc)
        else:
            code = _internal(exc)
    except Exception as exc:  # a bug: say so in one line unless debugging
        code = _internal(exc)
    try:
        sys.stdout.flush()
    except OSError as exc:
        code = max(code, _stdout_error(exc))
    except ValueError:
        pass
    sys.exit(code)


def _is_stdout(exc: OSError) -> bool:
    """An OSError that reached main() without a file name came from writing standard output
    (files are written by costsim.fsutil, which names them)."""
    return exc.filename is None


def _internal(exc: BaseException) -> int:
    if os.environ.get("COSTSIM_DEBUG"):
        raise exc
    _say(f"costsim: internal error: {type(exc).__name__}: {exc} "
         f"(set COSTSIM_DEBUG=1 for the traceback; please report it)")
    return 1


if __name__ == "__main__":
    main()
