"""Every command example in README.md and docs/*.md runs, from an empty directory.

The ```sh blocks of each document are run in order, in one empty directory per document (so a
file an example writes, e.g. with `costsim init` or `--out`, is there for the examples after
it), with a fresh user data directory. Only the `costsim ...` parts of a line run (`pip
install`, `python -m venv`, `cd` are the reader's business). A line whose comment says
`needs network` or `needs your ...` (a file the reader brings) is skipped; one whose comment
says `exits N` must exit with N; every other must exit 0 with no traceback.

Run in process (typer's CliRunner), with Monte Carlo months cut down: this checks that the
examples work as written, not their numbers, and keeps the test to a few seconds.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from costsim.cli import app

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))


def _lines(block: str) -> list[tuple[int, str]]:
    """(offset of its first line, logical line): backslash continuations joined."""
    out, cur, first = [], "", 0
    for i, raw in enumerate(block.splitlines()):
        if not cur:
            first = i
        if raw.rstrip().endswith("\\"):
            cur += raw.rstrip()[:-1] + " "
            continue
        out.append((first, cur + raw))
        cur = ""
    if cur:
        out.append((first, cur))
    return out


def examples(doc: Path) -> list[tuple[int, str, str]]:
    """(line number, command, comment) of every `costsim` command in the doc's sh blocks."""
    text = doc.read_text()
    found = []
    for m in re.finditer(r"^```(?:sh|bash|shell)[^\n]*\n(.*?)^```", text, re.S | re.M):
        start = text[:m.start(1)].count("\n") + 1
        for offset, line in _lines(m.group(1)):
            lineno = start + offset
            code, comment = _split_comment(line)
            for part in re.split(r"&&|;|\|\|", code):
                part = part.split("|")[0].strip()     # a pipe: run what feeds it
                if part.startswith("costsim "):
                    found.append((lineno, part, comment))
    return found


def _split_comment(line: str) -> tuple[str, str]:
    """The command and its `# comment` (a # outside quotes, after a space)."""
    quote = None
    for i, c in enumerate(line):
        if quote:
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i], line[i + 1:].strip()
    return line, ""


CASES = [(doc, lineno, cmd, comment) for doc in DOCS for lineno, cmd, comment in examples(doc)]


def test_there_are_examples_to_run():
    assert len(CASES) > 20
    assert {doc.name for doc, *_ in CASES} >= {"README.md"}


@pytest.mark.parametrize("doc", [d for d in DOCS if examples(d)], ids=lambda d: d.name)
def test_every_example_runs_from_an_empty_directory(doc, tmp_path, monkeypatch):
    import costsim.budget

    monkeypatch.setattr(costsim.budget, "DEFAULT_MONTHS", 200)
    monkeypatch.setattr(costsim.budget, "MIN_AUTO_MONTHS", 100)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    runner = CliRunner()
    ran = 0
    for lineno, cmd, comment in examples(doc):
        where = f"{doc.name}:{lineno}: {cmd}"
        if "needs network" in comment or "needs your" in comment:
            continue
        args = shlex.split(cmd)[1:]
        if "--months" in args:                       # the doc's own count: keep it small
            args[args.index("--months") + 1] = "200"
        m = re.search(r"\bexits (\d)\b", comment)
        want = int(m.group(1)) if m else 0
        res = runner.invoke(app, args)
        out = (res.stdout or "") + (res.stderr or "")
        assert res.exit_code == want, f"{where}\nexit {res.exit_code}\n{out}"
        assert "Traceback" not in out and "internal error" not in out, f"{where}\n{out}"
        ran += 1
    assert ran, f"{doc.name}: every example was skipped"
