"""`costsim price-table update`: merge, history, prune/force, dry run, safety, HTTP.

Sources are the real excerpts in tests/fixtures/; expected prices are per-token values from
those files times 1,000,000, worked by hand.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from costsim.cli import app
from costsim.errors import CostsimError
from costsim.loader import load_prices
from costsim.paths import bundled_prices_path, resolve_prices_path, user_prices_path
from costsim.pricetable.merge import update_table

FIX = Path(__file__).parent / "fixtures"
LITELLM = FIX / "litellm_excerpt.json"
OPENROUTER = FIX / "openrouter_excerpt.json"
TODAY = dt.date(2026, 11, 25)

runner = CliRunner()

TABLE = """\
# my team's prices
version: 1
as_of: 2026-10-01
currency: USD
sources:
  - {name: litellm, ref: old.json, fetched: 2026-10-01}
models:
  claude-opus-5:
    provider: anthropic
    tier: premium
    input: 6.0
    output: 25.0
    cache_read: 0.5
    coding_score: 78.0
    source: "litellm:claude-opus-5"
    note: keep me
  grok-4.6:
    provider: xai
    tier: midrange
    input: 2.0
    output: 6.0
    coding_score: 76.8
  gone-model:
    provider: acme
    tier: budget
    input: 1.0
    output: 2.0
"""


@pytest.fixture
def table(tmp_path) -> Path:
    p = tmp_path / "prices.yaml"
    p.write_text(TABLE)
    return p


def cli(*args):
    result = runner.invoke(app, ["price-table", *map(str, args)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def assert_user_error(result, *fragments):
    """Exit 2, one line on stderr, no traceback."""
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for f in fragments:
        assert f in lines[0], lines[0]


# --- merge semantics -----------------------------------------------------------------------


def test_refresh_updates_prices_keeps_fields_and_records_history(table):
    res = update_table("litellm", str(LITELLM), table=table, today=TODAY)
    t = load_prices(table)
    opus = t.models["claude-opus-5"]
    # claude-opus-5: 5e-06 / 2.5e-05 / 5e-07 / 6.25e-06 per token
    assert (opus.input, opus.output, opus.cache_read, opus.cache_write) == (5.0, 25.0, 0.5, 6.25)
    assert (opus.tier, opus.coding_score, opus.note) == ("premium", 78.0, "keep me")
    assert opus.context_window == 1_000_000
    assert [h.model_dump(exclude_none=True) for h in opus.history] == [
        {"date": dt.date(2026, 10, 1), "input": 6.0, "output": 25.0, "cache_read": 0.5,
         "source": "litellm:claude-opus-5"}
    ]
    grok = t.models["grok-4.6"]  # found by id as xai/grok-4.6
    assert (grok.input, grok.output, grok.cache_read) == (2.0, 6.0, 0.5)
    assert grok.long_context.model_dump(exclude_none=True) == {
        "above": 200_000, "input": 4.0, "output": 12.0, "cache_read": 1.0}
    assert grok.source == "litellm:xai/grok-4.6"
    # cache_read was absent (billed as input): a price change, so the old prices are history
    assert [h.model_dump(exclude_none=True) for h in grok.history] == [
        {"date": dt.date(2026, 10, 1), "input": 2.0, "output": 6.0}]
    assert "gone-model" in t.models  # missing from the source: kept without --prune
    assert res.merge.missing == ["gone-model"]
    assert t.as_of == TODAY
    assert [s.name for s in t.sources] == ["litellm"]
    assert t.sources[0].fetched == TODAY and t.sources[0].ref == "litellm_excerpt.json"
    assert table.read_text().startswith("# my team's prices\n")  # header comment kept
    changed = {(c.model, c.field) for c in res.merge.diff.changed}
    assert ("claude-opus-5", "input") in changed and ("grok-4.6", "cache_read") in changed


def test_history_accumulates_over_updates(table, tmp_path):
    update_table("litellm", str(LITELLM), table=table, today=TODAY)
    moved = json.loads(LITELLM.read_text())
    moved["claude-opus-5"]["input_cost_per_token"] = 4e-06
    src = tmp_path / "later.json"
    src.write_text(json.dumps(moved))
    update_table("litellm", str(src), table=table, today=dt.date(2026, 12, 20))
    hist = load_prices(table).models["claude-opus-5"].history
    assert [(h.date, h.input) for h in hist] == [(dt.date(2026, 10, 1), 6.0), (TODAY, 5.0)]
    assert load_prices(table).models["claude-opus-5"].input == 4.0


def test_cli_update_shows_infracost_diff_and_keeps_backup(table):
    before = table.read_bytes()
    r = cli("update", "--source", "litellm", "--from", LITELLM, "--table", table)
    assert r.exit_code == 0, r.stderr
    out = r.stdout
    assert "Legend: ~ changed, + added, - removed" in out
    assert "~ claude-opus-5  input $6.00 → $5.00 (-17%)" in out
    assert "~ claude-opus-5  cache_write (none) → $6.25" in out
    assert "~ grok-4.6  long_context.above (none) → 200,000" in out
    assert "2 models changed" in out and "0 added, 0 removed" in out
    assert "not in the source, kept (--prune removes them): gone-model" in out
    assert "13 entries, 10 chat models priced per token" in out  # the import report
    assert f"wrote {table}" in out
    assert table.with_name("prices.yaml.bak").read_bytes() == before


def test_cli_update_json(table):
    r = cli("update", "--source", "litellm", "--from", LITELLM, "--table", table,
            "--format", "json", "--dry-run")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert {"model": "claude-opus-5", "field": "input", "old": 6.0, "new": 5.0} in d["changed"]
    assert d["added"] == [] and d["removed"] == []
    assert d["missing"] == ["gone-model"] and d["written"] is False and d["dry_run"] is True
    assert d["report"]["imported"] == 10


def test_dry_run_writes_nothing(table):
    before = table.read_bytes()
    r = cli("update", "--source", "litellm", "--from", LITELLM, "--table", table, "--dry-run",
            "--all")
    assert r.exit_code == 0, r.stderr
    assert "dry run: nothing written" in r.stdout
    assert "+ xai/grok-4.6" not in r.stdout  # claimed by the table's grok-4.6
    assert "+ gpt-5.6-luna  input $0.20, output $1.20" in r.stdout
    assert table.read_bytes() == before
    assert not table.with_name("prices.yaml.bak").exists()
    assert sorted(p.name for p in table.parent.iterdir()) == ["prices.yaml"]


def test_dry_run_new_table_is_not_created(tmp_path):
    new = tmp_path / "new.yaml"
    r = cli("update", "--source", "litellm", "--from", LITELLM, "--table", new, "--all",
            "--dry-run")
    assert r.exit_code == 0, r.stderr
    assert not new.exists()


# --- prune / force -------------------------------------------------------------------------


def test_prune_removes_missing_models(table):
    r = cli("update", "--source", "litellm", "--from", LITELLM, "--table", table, "--prune")
    assert r.exit_code == 0, r.stderr
    assert "- gone-model  input $1.00, output $2.00 (budget, acme)" in r.stdout
    assert set(load_prices(table).models) == {"claude-opus-5", "grok-4.6"}


def test_prune_losing_more_than_half_needs_force(table):
    before = table.read_bytes()
    # OpenRouter ids: claude-opus-5 is found (by id), grok-4.6 too; use a source without grok
    src = json.loads(OPENROUTER.read_text())
    src["data"] = [m for m in src["data"] if not m["id"].startswith("x-ai/")]
    path = table.parent / "or.json"
    path.write_text(json.dumps(src))
    r = cli("update", "--source", "openrouter", "--from", path, "--table", table, "--prune")
    assert_user_error(r, "refusing to remove 2 of 3 models", "--force")
    assert table.read_bytes() == before
    r = cli("update", "--source", "openrouter", "--from", path, "--table", table, "--prune",
            "--force")
    assert r.exit_code == 0, r.stderr
    t = load_prices(table)
    assert list(t.models) == ["claude-opus-5"]
    assert t.models["claude-opus-5"].source == "openrouter:anthropic/claude-opus-5"


# --- importing -----------------------------------------------------------------------------


def test_all_into_a_new_table_is_exact_and_valid(tmp_path):
    new = tmp_path / "sub" / "litellm.yaml"
    r = cli("update", "--source", "litellm", "--from", LITELLM, "--table", new, "--all",
            "--empty", "--provider", "all")
    assert r.exit_code == 0, r.stderr
    assert "10 added" in r.stdout
    t = load_prices(new)
    assert len(t.models) == 10
    assert t.models["dashscope/qwen-flash"].input == 0.05  # tiered 5e-08
    assert t.models["opencode_go/claude-haiku-5-5"].input == 0.1  # 1.0000000000000001e-07
    assert t.models["deepseek-v4-flash"].cache_read == 0.006  # 6e-09
    assert t.models["gpt-5.6-luna"].long_context.cache_write == 0.5
    text = new.read_text()
    assert "input: 0.05\n" in text and "9999" not in text and "0000001" not in text
    assert cli("validate", "--table", new).exit_code == 0


def test_openrouter_all_into_a_new_table(tmp_path):
    new = tmp_path / "or.yaml"
    r = cli("update", "--source", "openrouter", "--from", OPENROUTER, "--table", new, "--all",
            "--empty", "--verbose")
    assert r.exit_code == 0, r.stderr
    assert "skipped 1: router entry (priced -1)" in r.stdout
    assert "skipped 1: free variant (:free)" in r.stdout
    t = load_prices(new)
    assert set(t.models) == {
        "anthropic/claude-opus-5", "x-ai/grok-4.6", "deepseek/deepseek-v4-pro",
        "google/gemini-3.7-flash", "anthropic/claude-sonnet-4.5", "qwen/qwen3-coder-next"}
    g = t.models["google/gemini-3.7-flash"]
    assert (g.input, g.output, g.cache_write, g.coding_score) == (
        0.375, 1.875, 0.0208333333333333, 76.1)


def test_add_glob_imports_matching_models(table):
    r = cli("update", "--source", "litellm", "--from", LITELLM, "--table", table,
            "--add", "dashscope/*", "--add", "minimax-m3")
    assert r.exit_code == 0, r.stderr
    t = load_prices(table)
    assert {"dashscope/qwen-flash", "dashscope/qwen3-max", "minimax/MiniMax-M3"} <= set(t.models)
    assert "gpt-5.6-luna" not in t.models
    assert t.models["dashscope/qwen3-max"].tier == "budget"  # (3*1.2 + 6)/4 = 2.4 < 2.5


def test_add_glob_matching_nothing_is_an_error(table):
    before = table.read_bytes()
    r = cli("update", "--source", "litellm", "--from", LITELLM, "--table", table,
            "--add", "no-such-*")
    assert_user_error(r, "--add 'no-such-*' matched no model of the litellm source",
                      "PROVIDER/MODEL such as 'anthropic/*'")
    assert table.read_bytes() == before


def test_all_and_add_exclude_each_other(table):
    r = cli("update", "--source", "litellm", "--from", LITELLM, "--table", table, "--all",
            "--add", "x*")
    assert_user_error(r, "--all and --add")


def test_new_empty_table_without_all_or_add_is_refused(tmp_path):
    new = tmp_path / "new.yaml"
    r = cli("update", "--source", "litellm", "--from", LITELLM, "--table", new, "--empty")
    assert_user_error(r, "nothing to write", "--all")
    assert not new.exists()


def test_a_new_table_starts_from_the_bundled_one(tmp_path):
    new = tmp_path / "new.yaml"
    r = cli("update", "--source", "litellm", "--from", LITELLM, "--table", new)
    assert r.exit_code == 0, r.stderr
    assert "seeded from the bundled table" in r.stdout
    t = load_prices(new)
    assert set(t.models) == set(load_prices(bundled_prices_path()).models)
    assert t.models["claude-opus-5"].coding_score == 78.0       # kept: LiteLLM has no scores


def test_default_target_is_the_user_table_seeded_from_bundled():
    bundled_before = bundled_prices_path().read_bytes()
    user = user_prices_path()
    assert not user.exists()
    r = cli("update", "--source", "litellm", "--from", LITELLM)
    assert r.exit_code == 0, r.stderr
    assert "seeded from the bundled table" in r.stdout
    assert bundled_prices_path().read_bytes() == bundled_before  # never the installed package
    assert user.exists() and resolve_prices_path(None) == user
    t = load_prices(user)
    assert set(t.models) == set(load_prices(bundled_prices_path()).models)
    assert t.models["claude-opus-5"].source == "litellm:claude-opus-5"
    assert not user.with_name("prices.yaml.bak").exists()
    r = cli("update", "--source", "litellm", "--from", LITELLM)
    assert "existing table" in r.stdout
    assert user.with_name("prices.yaml.bak").exists()


# --- safety --------------------------------------------------------------------------------


def test_truncated_source_leaves_table_byte_identical(table, tmp_path):
    before = table.read_bytes()
    data = LITELLM.read_bytes()
    cut = tmp_path / "cut.json"
    cut.write_bytes(data[: len(data) // 2])
    r = cli("update", "--source", "litellm", "--from", cut, "--table", table, "--all")
    assert_user_error(r, str(cut), "not valid JSON")
    assert table.read_bytes() == before
    assert sorted(p.name for p in table.parent.iterdir()) == ["cut.json", "prices.yaml"]


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"", "source is empty"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"[1, 2, 3]", "LiteLLM price map must be a JSON object"),
        (b'{"a": {"mode": "embedding"}}', "no chat model priced per token"),
    ],
)
def test_bad_sources_are_one_line_errors(table, tmp_path, content, fragment):
    before = table.read_bytes()
    src = tmp_path / "src.json"
    src.write_bytes(content)
    r = cli("update", "--source", "litellm", "--from", src, "--table", table)
    assert_user_error(r, fragment)
    assert table.read_bytes() == before


def test_wrong_source_kind(table):
    r = cli("update", "--source", "litellm", "--from", OPENROUTER, "--table", table)
    # an OpenRouter response is a JSON object too, but none of its values is a model entry
    assert_user_error(r, "openrouter_excerpt.json")
    r = cli("update", "--source", "openrouter", "--from", LITELLM, "--table", table)
    assert_user_error(r, "is this a openrouter source?")


def test_invalid_existing_table_is_reported_not_overwritten(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TABLE.replace("input: 6.0", "input: -6.0"))
    before = bad.read_bytes()
    r = cli("update", "--source", "litellm", "--from", LITELLM, "--table", bad)
    assert_user_error(r, f"{bad}:11: models.claude-opus-5.input")
    assert bad.read_bytes() == before


@pytest.mark.parametrize("url", ["ftp://example.com/x.json", "file:///etc/passwd"])
def test_only_http_urls(table, url):
    r = cli("update", "--source", "litellm", "--from", url, "--table", table)
    assert_user_error(r, "unsupported URL scheme")


def test_missing_source_file(table, tmp_path):
    r = cli("update", "--source", "litellm", "--from", tmp_path / "nope.json", "--table", table)
    assert_user_error(r, "nope.json: no such file")


def test_size_cap(table):
    with pytest.raises(CostsimError, match="larger than the 100-byte limit"):
        update_table("litellm", str(LITELLM), table=table, max_bytes=100)


# --- over HTTP from a loopback server ------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    routes: dict = {}

    def do_GET(self):  # noqa: N802
        route = self.routes.get(self.path)
        if route is None:
            self.send_error(404, "Not Found")
            return
        body, mode = route
        if mode == "slow":
            time.sleep(1.5)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body[: len(body) // 2] if mode == "truncate" else body)
        except OSError:
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    routes: dict = {}
    handler = type("H", (_Handler,), {"routes": routes})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    srv.block_on_close = False
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    yield base, routes
    srv.shutdown()
    srv.server_close()


def test_update_over_http(server, table):
    base, routes = server
    routes["/prices.json"] = (LITELLM.read_bytes(), "ok")
    r = cli("update", "--source", "litellm", "--from", f"{base}/prices.json", "--table", table,
            "--all")
    assert r.exit_code == 0, r.stderr
    t = load_prices(table)
    assert t.models["claude-opus-5"].input == 5.0
    assert t.models["gpt-5.6-luna"].long_context.above == 272_000
    assert t.sources[0].url == f"{base}/prices.json"


def test_openrouter_over_http(server, tmp_path):
    base, routes = server
    routes["/api/v1/models"] = (OPENROUTER.read_bytes(), "ok")
    new = tmp_path / "or.yaml"
    r = cli("update", "--source", "openrouter", "--from", f"{base}/api/v1/models", "--table",
            new, "--all", "--empty")
    assert r.exit_code == 0, r.stderr
    assert load_prices(new).models["x-ai/grok-4.6"].long_context.input == 4.0


def test_truncated_download_leaves_table_byte_identical(server, table):
    base, routes = server
    routes["/cut.json"] = (LITELLM.read_bytes(), "truncate")
    before = table.read_bytes()
    r = cli("update", "--source", "litellm", "--from", f"{base}/cut.json", "--table", table)
    assert_user_error(r, f"{base}/cut.json", "download incomplete")
    assert table.read_bytes() == before
    assert not table.with_name("prices.yaml.bak").exists()


def test_http_error_is_one_line(server, table):
    base, _ = server
    r = cli("update", "--source", "litellm", "--from", f"{base}/missing.json", "--table", table)
    assert_user_error(r, "HTTP 404")


def test_connection_refused_is_one_line(table):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens here now
    r = cli("update", "--source", "litellm", "--from", f"http://127.0.0.1:{port}/x.json",
            "--table", table)
    assert_user_error(r, "cannot fetch")


def test_timeout(server, table):
    base, routes = server
    routes["/slow.json"] = (LITELLM.read_bytes(), "slow")
    before = table.read_bytes()
    with pytest.raises(CostsimError, match="timed out after 0.3s"):
        update_table("litellm", f"{base}/slow.json", table=table, timeout=0.3)
    assert table.read_bytes() == before


def test_written_table_loads_back_with_same_values(table):
    res = update_table("litellm", str(LITELLM), table=table, today=TODAY, import_all=True)
    expected = res.merge.table
    for m in expected["models"].values():
        if not m.get("history"):
            m.pop("history", None)
    assert yaml.safe_load(table.read_text()) == expected
    assert "xai/grok-4.6" not in expected["models"]  # already priced as the table's grok-4.6
    assert load_prices(table).models["dashscope/qwen3-max"].long_context.above == 32_000
