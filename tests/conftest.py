import os
from pathlib import Path

import pytest
from hypothesis import settings

# CI runs must be reproducible: the same examples every run (still many of them).
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def _isolated_user_dir(tmp_path_factory, monkeypatch):
    """Never read or write the real user price table; pin the terminal width for Rich."""
    home = tmp_path_factory.mktemp("costsim_home")
    monkeypatch.setenv("COSTSIM_HOME", str(home))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("COSTSIM_DEBUG", raising=False)
    yield


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES
