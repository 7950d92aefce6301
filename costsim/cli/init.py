"""`costsim init [DIR]`: parse flags, call :func:`costsim.project.init`, report. Nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import handle_errors


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def init(
        directory: Annotated[Path, typer.Argument(
            metavar="DIR", help="Folder to put the copies in (created if needed; default: the "
            "current folder).")] = Path("."),
        workload: Annotated[str, typer.Option(
            "--workload", "-w", metavar="NAME",
            help="Which bundled workload to copy: small-team, medium-team or large-team.")
        ] = "medium-team",
    ):
        """Copy the bundled price table, policies and a workload into DIR to edit them.

        Writes DIR/README.md (what to change first), prices.yaml, workload.yaml,
        policies/*.yaml and runs-example.csv. A file that exists is never overwritten: it is
        kept as it is, so running init again only restores what was deleted.
        """
        from ..project import init as run

        res = run(directory, workload)
        for p in res.written:
            typer.echo(f"wrote {p}")
        for p in res.kept:
            typer.echo(f"kept {p} (exists; not overwritten)")
        if res.written:
            readme = res.directory / "README.md"
            typer.echo(f"\nNext: read {readme}, edit workload.yaml and prices.yaml, then\n"
                       f"  cd {res.directory} && costsim compare --prices prices.yaml "
                       f"--workload workload.yaml --policy policies")
        else:
            typer.echo("nothing to do: every file exists")
