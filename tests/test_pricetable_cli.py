"""`price-table show` and `validate`, the table-in-use rules and the staleness warning."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from costsim.cli import app
from costsim.loader import load_prices
from costsim.paths import bundled_prices_path, user_prices_path
from costsim.pricetable import STALE_AFTER_DAYS, stale_warning, table_age_days

runner = CliRunner()

SMALL = """\
version: 1
as_of: {as_of}
currency: USD
models:
  cheap: {{provider: acme, tier: budget, input: 0.3, output: 1.2, cache_read: 0.006}}
  big:
    provider: zen
    tier: premium
    input: 5.0
    output: 25.0
    long_context: {{above: 200000, input: 10.0, output: 37.5}}
    context_window: 1000000
    coding_score: 78
"""


def small(tmp_path: Path, as_of: str = "2026-11-20") -> Path:
    p = tmp_path / "small.yaml"
    p.write_text(SMALL.format(as_of=as_of))
    return p


def pt(*args):
    return runner.invoke(app, ["price-table", *map(str, args)])


def test_show_bundled_by_default():
    r = pt("show")
    assert r.exit_code == 0, r.stderr
    assert f"bundled table {bundled_prices_path()}" in r.stdout
    assert "as of 2026-11-25" in r.stdout
    for mid in ("claude-opus-5", "claude-sonnet-5", "deepseek-v4-flash"):
        assert mid in r.stdout


def test_user_table_takes_precedence_once_it_exists(tmp_path):
    user = user_prices_path()
    user.parent.mkdir(parents=True, exist_ok=True)
    user.write_text(SMALL.format(as_of="2026-11-20"))
    r = pt("show", "--format", "json")
    d = json.loads(r.stdout)
    assert d["kind"] == "user table" and d["table"] == str(user)
    assert [m["id"] for m in d["models"]] == ["big", "cheap"]
    # --table beats the user table
    d = json.loads(pt("show", "--format", "json", "--table", bundled_prices_path()).stdout)
    assert d["kind"] == "bundled table"


def test_show_filters_and_formats(tmp_path):
    p = small(tmp_path)
    d = json.loads(pt("show", "--table", p, "--format", "json", "--tier", "premium").stdout)
    assert [m["id"] for m in d["models"]] == ["big"]
    assert d["models"][0]["long_context_above"] == 200000
    d = json.loads(pt("show", "--table", p, "--format", "json", "--provider", "ACME").stdout)
    assert [m["id"] for m in d["models"]] == ["cheap"]
    csv = pt("show", "--table", p, "--format", "csv").stdout.splitlines()
    assert csv[0].startswith("id,provider,tier,input,output,cache_read")
    assert csv[2].startswith("cheap,acme,budget,0.3,1.2,0.006,")
    md = pt("show", "--table", p, "--format", "markdown").stdout
    assert "| cheap | budget | $0.30 | $1.20 | $0.006 | - | acme |" in md
    table = pt("show", "--table", p).stdout
    assert ">200k: $10.00/$37.50" in table and "given table" in table


def test_show_unknown_tier_is_a_user_error(tmp_path):
    r = pt("show", "--table", small(tmp_path), "--tier", "premum")
    assert r.exit_code == 2
    assert r.stderr.strip() == "--tier: unknown tier 'premum' (tiers: budget, midrange, premium)"


def test_stale_table_warns(tmp_path):
    p = small(tmp_path, as_of="2020-01-01")
    r = pt("show", "--table", p)
    assert r.exit_code == 0
    assert "warning: prices are" in r.stderr and "days old (as_of 2020-01-01)" in r.stderr
    assert json.loads(pt("show", "--table", p, "--format", "json").stdout)["stale"] is True


def test_stale_warning_function():
    t = {"as_of": dt.date(2026, 1, 1)}
    assert stale_warning(t, today=dt.date(2026, 1, 1) + dt.timedelta(days=STALE_AFTER_DAYS)) is None
    assert stale_warning(t, today=dt.date(2026, 3, 2)) is None  # 60 days: not yet stale
    w = stale_warning(t, today=dt.date(2026, 3, 3))
    assert w == (
        "prices are 61 days old (as_of 2026-01-01); refresh with "
        "`costsim price-table update --source litellm --from URL`"
    )
    table = load_prices(bundled_prices_path())
    assert table_age_days(table, today=dt.date(2026, 12, 5)) == 10
    assert stale_warning(table, today=dt.date(2026, 12, 5)) is None
    assert stale_warning({"as_of": "2026-01-01"}, today=dt.date(2027, 1, 1)) is not None
    assert stale_warning({}) is None


def test_validate_ok_and_json(tmp_path):
    p = small(tmp_path)
    r = pt("validate", "--table", p)
    assert r.exit_code == 0
    assert r.stdout == f"ok: {p}: 2 models, as of 2026-11-20 (given table)\n"
    assert pt("validate", p).stdout == r.stdout  # the table may also be given as an argument
    d = json.loads(pt("validate", "--table", p, "--format", "json").stdout)
    assert d["valid"] is True and d["models"] == 2
    assert pt("validate").exit_code == 0  # the table in use (bundled)


@pytest.mark.parametrize(
    "edit, expected",
    [
        (("input: 5.0", "input: -5.0"), ":9: models.big.input: input should be greater"),
        (("coding_score: 78", "coding_score: 78\n    colour: red"), ":14: models.big.colour: "
         "unknown field"),
        (("tier: premium", "tier: premum"), ":8: models.big.tier: input should be 'budget'"),
        (("  big:", "  cheap:"), ":6: models.cheap: duplicate key 'cheap'"),
    ],
)
def test_validate_errors_are_one_line(tmp_path, edit, expected):
    p = small(tmp_path)
    p.write_text(p.read_text().replace(*edit))
    r = pt("validate", "--table", p)
    assert r.exit_code == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.output
    assert r.stderr.startswith(str(p) + expected), r.stderr


def test_validate_missing_file(tmp_path):
    r = pt("validate", "--table", tmp_path / "nope.yaml")
    assert r.exit_code == 2
    assert r.stderr.strip() == f"{tmp_path / 'nope.yaml'}: no such file"


def test_validate_plausibility_warnings(tmp_path):
    p = small(tmp_path)
    p.write_text(p.read_text().replace("cache_read: 0.006", "cache_read: 0.5"))
    r = pt("validate", "--table", p)
    assert r.exit_code == 0
    assert "warning: cheap: cache_read 0.5 is above input 0.3" in r.stderr


def test_every_command_has_help():
    for cmd in ("show", "update", "diff", "validate"):
        r = pt(cmd, "--help")
        assert r.exit_code == 0
        assert "--table" in r.stdout or cmd == "diff"
    r = pt("update", "--help")
    for opt in ("--source", "--from", "--all", "--add", "--dry-run", "--prune", "--force",
                "--format"):
        assert opt in r.stdout
