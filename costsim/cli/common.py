"""Pieces every command shares: output options, error handling, input options, the file guard
and help text that reads well in an 80-column terminal."""

from __future__ import annotations

import functools
import importlib.util
import os
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Iterable, Mapping, Optional

import typer
from typer.core import TyperGroup

from ..errors import CostsimError
from ..fsutil import atomic_write, check_writable, is_stdout, write_stdout


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
    "--out", "-o", metavar="FILE",
    help="Write the output to FILE (atomically) instead of standard output. Never a file the "
         "command reads.", dir_okay=False)]
PricesOpt = Annotated[Optional[Path], typer.Option(
    "--prices", metavar="FILE", help="Price table: a YAML file, or 'bundled' for the table "
    "that ships with costsim. Default: your user table if `costsim price-table update` made "
    "one, else the bundled table.", dir_okay=False)]
WorkloadOpt = Annotated[Optional[Path], typer.Option(
    "--workload", "-w", metavar="FILE", help="Workload: a YAML file or a bundled name "
    "(small-team, medium-team, large-team). Default: medium-team.", dir_okay=False)]
PolicyOpt = Annotated[Optional[list[Path]], typer.Option(
    "--policy", "-p", metavar="FILE", help="Routing policy: a YAML file, a folder of them, or a "
    "bundled name such as cheapest-routing (repeatable). Default: every bundled policy.")]
WideOpt = Annotated[bool, typer.Option(
    "--wide", help="Show every column, however wide the table gets (by default a table keeps "
    "to the terminal width and shows the figures a reader needs first).")]


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
    """One ``warning: ...`` line on stderr (a message that already says ``warning:`` is not
    prefixed twice)."""
    text = str(message)
    if not text.startswith("warning: "):
        text = "warning: " + text
    typer.echo(text, err=True)


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


# --- the file guard ------------------------------------------------------------------------------

#: File name extensions matplotlib writes (``savefig`` picks the format from the extension).
IMAGE_SUFFIXES = (".png", ".svg", ".pdf", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".eps",
                  ".ps", ".svgz")

_Paths = "str | Path | Iterable[str | Path] | None"


def _each(value: Any) -> list[Path]:
    if value is None:
        return []
    if isinstance(value, (str, Path)):
        value = [value]
    out = []
    for v in value:
        if v is None:
            continue
        s = str(v)
        if "://" in s:          # a URL is not a file this command could overwrite
            continue
        out.append(Path(os.path.expanduser(s)))
    return out


def _same_file(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name one file: the same path, a symlink to it or a hard link."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def guard_files(reads: Mapping[str, _Paths] | None = None,
                writes: Mapping[str, _Paths] | None = None,
                images: Iterable[str] = ()) -> None:
    """Check a command's files before any work starts; raise a one-line CostsimError if:

    - an output (``writes``) is a file the command reads (``reads``): the same path, a symlink
      to it or a hard link -- so ``compare -o team.yaml -w team.yaml`` never replaces the
      workload, and ``calibrate runs.csv --write-workload runs.csv`` never replaces the log;
    - two outputs are the same file, or an output is a directory;
    - an image output (the ``writes`` keys listed in ``images``) has no image extension
      (.png, .svg, .pdf, ...), or matplotlib, which draws it, is not installed.

    ``reads`` and ``writes`` map an option name (``"--workload"``, ``"LOG"``) to a path, a list
    of paths or None (ignored). Pass the files actually used, defaults included (the user price
    table in use is a file a command reads). URLs are ignored.

    Every command calls this once, first::

        guard_files(reads={"--prices": prices_path, "--workload": wl_path, "--policy": pols},
                    writes={"--out": out, "--plot": plot}, images=["--plot"])
    """
    reads = reads or {}
    writes = writes or {}
    images = set(images)
    ins = [(opt, p) for opt, v in reads.items() for p in _each(v)]
    outs = [(opt, p) for opt, v in writes.items() for p in _each(v)]
    for i, (opt, out) in enumerate(outs):
        if out.is_dir():
            raise CostsimError("is a directory; give a file name", str(out), path=opt)
        if not is_stdout(out):
            check_writable(out)     # read-only, not yours, a device: refused before any work
        for in_opt, src in ins:
            if _same_file(out, src):
                what = "the file given to " + in_opt if in_opt.startswith("-") else in_opt
                raise CostsimError(f"would overwrite {what}, which this command reads; "
                                   f"write to another file", str(out), path=opt)
        for other_opt, other in outs[:i]:
            if _same_file(out, other):
                raise CostsimError(f"is also given to {other_opt}; give each output its own "
                                   f"file", str(out), path=opt)
        if opt in images:
            check_image_output(out, opt)


def check_image_output(path: str | Path, option: str = "--plot") -> None:
    """An image output needs an image extension and matplotlib (checked before any work)."""
    suffix = Path(path).suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        got = f"'{suffix}'" if suffix else "no extension"
        raise CostsimError(f"an image needs an image file name (.png, .svg or .pdf), got {got}",
                           str(path), path=option)
    if importlib.util.find_spec("matplotlib") is None:
        raise CostsimError("drawing a chart needs matplotlib: pip install 'costsim[plot]'",
                           path=option)


# --- help that reads well at 80 columns ---------------------------------------------------------

def _placeholder(param) -> str | None:
    """FILE, DIR, N, NUMBER, TEXT or the choices -- never a Python type -- for a value option;
    None for flags."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return None
    desc = getattr(param, "type_descriptor", None)
    if desc is not None:                           # typer >= 0.20 (its own click)
        if desc.is_choice:
            return "|".join(str(getattr(c, "value", c)) for c in desc.choices or ())
        ann = desc.annotation
        args = getattr(ann, "__args__", None)
        if desc.is_list and args:
            ann = args[0]
        if desc.is_path or ann is Path:
            kind = getattr(desc, "path_type", "path")
            return {"file": "FILE", "dir": "DIR", "directory": "DIR"}.get(kind, "PATH")
        name = getattr(ann, "__name__", str(ann))
    else:                                          # click types
        t = getattr(param, "type", None)
        name = getattr(t, "name", "") or ""
        if hasattr(t, "choices"):
            return "|".join(str(getattr(c, "value", c)) for c in t.choices)
        if name == "path":
            file_ok, dir_ok = getattr(t, "file_okay", True), getattr(t, "dir_okay", True)
            return "FILE" if not dir_ok else ("DIR" if not file_ok else "PATH")
    name = name.lower()
    if name.startswith(("int", "integer")):
        return "N"
    if name.startswith("float"):
        return "NUMBER"
    if name in ("bool", "boolean"):
        return None
    return "TEXT"


def _first_sentence(text: str) -> str:
    para = " ".join(text.strip().split("\n\n", 1)[0].split())
    end = para.find(". ")
    return para if end < 0 else para[:end + 1]


def readable_help(cmd) -> None:
    """Give every option of ``cmd`` a placeholder (FILE, N, ...) unless it has one, show no
    ``[x>=1]`` ranges (the help text says what is allowed), and make the one-line summary the
    whole first sentence. Idempotent."""
    for param in getattr(cmd, "params", ()):
        if getattr(param, "param_type_name", "") == "argument":
            # An argument is its name (LOG, OLD): no type beside it, no {braces} in the usage.
            if param.metavar is None:
                param.metavar = (param.name or "ARG").upper()
            name = param.metavar + ("..." if param.nargs != 1 else "")
            if hasattr(param, "display_type_rich"):
                param.display_type_rich = lambda ctx=None: None
            if hasattr(param, "_usage_display_name"):
                param._usage_display_name = (lambda n=name, req=param.required:
                                             n if req else f"[{n}]")
        elif getattr(param, "metavar", None) is None:
            ph = _placeholder(param)
            if ph is not None:
                param.metavar = ph
        if hasattr(param, "_get_number_range_help_str"):
            param._get_number_range_help_str = lambda: None
    if getattr(cmd, "short_help", None) is None and getattr(cmd, "help", None):
        cmd.short_help = _first_sentence(cmd.help)


class HelpGroup(TyperGroup):
    """The command group of ``costsim`` and ``costsim price-table``: :func:`readable_help` on
    every command it hands out, so help pages show ``--workload FILE``, ``--samples N`` and no
    ``<bool>`` on flags, whoever declared the options."""

    def get_command(self, ctx, cmd_name):
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None:
            readable_help(cmd)
        return cmd

    def format_help(self, ctx, formatter):
        readable_help(self)
        return super().format_help(ctx, formatter)


#: Settings for every ``typer.Typer`` of costsim: plain help (no Rich markup, so
#: ``pip install 'costsim[plot]'`` prints as written and paragraphs reflow to the terminal).
TYPER_SETTINGS: dict[str, Any] = dict(
    cls=HelpGroup,
    rich_markup_mode=None,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
