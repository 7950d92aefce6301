"""docs/limits.md states every ceiling of costsim/limits.py with its value."""

import re
from pathlib import Path

from costsim import limits

DOC = (Path(__file__).parent.parent / "docs" / "limits.md").read_text()


def _shown(value) -> set[str]:
    """The ways the document may write ``value``."""
    v = float(value)
    out = {f"{v:,.0f}", f"{v:,g}"}
    if v >= 1e6 and v == int(v):
        exp = len(str(int(v))) - 1
        if v == 10 ** exp:
            out.add(f"10^{exp}")
        if v % (1024 * 1024) == 0:
            out.add(f"{int(v) // (1024 * 1024)} MB")
    return out


def test_every_limit_is_documented_with_its_value():
    names = [n for n in vars(limits) if n.startswith("MAX_")]
    assert len(names) >= 20
    for name in names:
        value = getattr(limits, name)
        assert any(re.search(rf"(?<![\d,.]){re.escape(s)}(?![\d,])", DOC) for s in _shown(value)), \
            f"docs/limits.md does not give {name} = {value}"


def test_docs_name_no_spec():
    for doc in ("limits.md", "writing-files.md"):
        text = (Path(__file__).parent.parent / "docs" / doc).read_text()
        assert "SPEC" not in text
