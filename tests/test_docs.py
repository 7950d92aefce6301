"""README and --help must not drift apart (after sqlite-utils' test_docs.py)."""

import re
from pathlib import Path

import typer
from typer.testing import CliRunner

from costsim.cli import app

README = (Path(__file__).parent.parent / "README.md").read_text()
runner = CliRunner()


def _commands():
    group = typer.main.get_command(app)
    for name, cmd in group.commands.items():
        subs = getattr(cmd, "commands", None)
        if subs:
            for sub in subs:
                yield f"{name} {sub}"
        else:
            yield name


def test_every_command_has_help_and_a_readme_example():
    names = list(_commands())
    assert {"compare", "budget", "calibrate", "optimize", "price-table update"} <= set(names)
    for name in names:
        res = runner.invoke(app, [*name.split(), "--help"])
        assert res.exit_code == 0, name
        assert len(res.stdout.strip().splitlines()) > 3, name
        assert re.search(rf"costsim {re.escape(name)}\b", README), f"README lacks `costsim {name}`"


def test_quickstart_has_the_two_commands():
    quick = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)\n```", quick, re.S)
    assert any("pip install ." in b and b.strip().endswith("costsim compare") for b in blocks)
    assert any('pip install ".[test]"' in b and "pytest" in b for b in blocks)


def _help_pages():
    for name in ["", *_commands()]:
        res = runner.invoke(app, [*name.split(), "--help"], env={"COLUMNS": "80"})
        assert res.exit_code == 0, name
        yield name or "costsim", res.stdout


def test_help_reads_well_at_80_columns():
    """No Python types or <bool> in placeholders, no {braces}, nothing past column 80, and
    `pip install 'costsim[plot]'` printed as written (Rich markup used to eat '[plot]')."""
    seen_plot = False
    for name, text in _help_pages():
        for line in text.splitlines():
            assert len(line) <= 80, f"{name}: {line!r}"
        for bad in ("<bool>", "<int", "<float", "<str>", "<path>", "<file>", "list[", "range]",
                    "[x>=", "{"):
            assert bad not in text, f"{name} --help shows {bad!r}:\n{text}"
        if "pip install" in text:
            assert "pip install 'costsim[" in " ".join(text.split()), name
            seen_plot = True
    assert seen_plot
    compare = dict(_help_pages())["compare"]
    assert "--workload FILE" in compare and "--samples N" in compare
    assert "--breakdown  " in compare or "--breakdown\n" in compare     # a flag: no placeholder


def test_help_paragraphs_are_not_hard_wrapped():
    """A docstring's line breaks are not the terminal's: paragraphs reflow to the width."""
    text = dict(_help_pages())["compare"]
    first = text.split("Options:")[0]
    paragraph = first.split("\n\n")[2]          # usage, summary, then the description
    lines = paragraph.splitlines()
    assert all(len(ln) >= 60 for ln in lines[:-1]), paragraph


def test_docs_and_help_never_cite_the_spec():
    docs = [Path(__file__).parent.parent / "README.md",
            *sorted((Path(__file__).parent.parent / "docs").glob("*.md"))]
    for doc in docs:
        assert "SPEC" not in doc.read_text(), doc
    for name, text in _help_pages():
        assert "SPEC" not in text, name
