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
