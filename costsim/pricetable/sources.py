"""Parse the public price sources into price-table model entries.

Two sources are understood:

* **LiteLLM's price map** (``model_prices_and_context_window.json``): a JSON object of
  ``key -> entry`` with prices in USD per token.
* **OpenRouter's models API** (``GET /api/v1/models``): ``{"data": [model, ...]}`` with prices as
  decimal strings in USD per token.

Both parsers are pure functions: they take the already-decoded JSON document and return a
:class:`ParsedSource` with price-table entries (plain dicts in the schema of docs/CONTRACT.md,
prices in USD per 1M tokens) and an :class:`ImportReport` that says what was skipped and what
could not be represented. Nothing is silently dropped: every price key we do not turn into a
table field lands in the report.

Per-token -> per-1M conversion is exact for the decimal values sources publish
(:func:`per_million`): ``3e-06`` becomes ``3.0``, never ``2.9999999999999996``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Context, Decimal, InvalidOperation
from typing import Any

from ..limits import MAX_CONTEXT_TOKENS, MAX_PRICE

__all__ = [
    "CHAT_MODES",
    "ImportReport",
    "ParsedSource",
    "SourceError",
    "TIER_RULE",
    "classify_tier",
    "parse_litellm",
    "parse_openrouter",
    "per_million",
]


class SourceError(ValueError):
    """The source document as a whole has the wrong shape (not a price map / models list)."""


# ----------------------------------------------------------------------------------------------
# Exact unit conversion
# ----------------------------------------------------------------------------------------------

# A binary float holds at most 15 significant decimal digits reliably (DBL_DIG). LiteLLM's map is
# written from floats and sometimes carries the float noise of the generator that produced it
# (``2.0000000000000002e-07``); rounding a float to 15 significant digits removes that noise and
# leaves every value with <= 15 digits (i.e. every price anyone publishes) untouched. Decimal
# strings (OpenRouter) are taken exactly as written.
_FLOAT_DIGITS = Context(prec=15)
_MILLION = Decimal(1_000_000)


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, int):
        d = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a finite number: {value!r}")
        d = _FLOAT_DIGITS.create_decimal(Decimal(str(value)))
    elif isinstance(value, str):
        try:
            d = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"not a decimal number: {value!r}") from None
        if not d.is_finite():
            raise ValueError(f"not a finite number: {value!r}")
    else:
        raise ValueError(f"not a number: {value!r}")
    if d and d.adjusted() > 30:        # a later multiplication would overflow Decimal's range
        raise ValueError(f"number too large: {str(value)[:30]!r}")
    return d


def per_million(value: Any) -> float:
    """USD per token (float, int or decimal string) -> USD per 1M tokens, exactly.

    ``per_million(3e-06) == 3.0``; ``per_million("0.0000025") == 2.5``. The multiplication by
    10^6 happens in decimal arithmetic (exact: it only moves the decimal point), and the single
    rounding is the final conversion to the nearest float.
    """
    d = _to_decimal(value) * _MILLION
    return float(d)


def _price(value: Any) -> float:
    """A per-token price -> per-1M float; rejects negatives and prices above MAX_PRICE per 1M
    (costsim.limits), which would make costs overflow."""
    if isinstance(value, str) and len(value) > 60:
        raise ValueError(f"not a price: {value[:20]!r}... ({len(value):,} characters)")
    p = per_million(value)
    if p < 0:
        raise ValueError(f"negative price: {value!r}")
    if p > MAX_PRICE:
        raise ValueError(f"price above ${MAX_PRICE:,.0f} per 1M tokens: {value!r}")
    return p + 0.0  # normalise -0.0


# ----------------------------------------------------------------------------------------------
# Tier classification
# ----------------------------------------------------------------------------------------------

TIER_RULE = (
    "tier from the blended price (3 input : 1 output tokens, USD per 1M): "
    "budget below $2.50, premium from $7.50, midrange in between"
)
_BUDGET_BELOW = Decimal("2.50")
_PREMIUM_FROM = Decimal("7.50")


def classify_tier(input_price: float, output_price: float) -> str:
    """The price class of a model, by :data:`TIER_RULE`.

    The blend (3 parts input, 1 part output) is the usual one for price comparisons and fits
    coding agents, whose calls resend much more context than they generate.
    """
    blended = (Decimal(repr(float(input_price))) * 3 + Decimal(repr(float(output_price)))) / 4
    if blended < _BUDGET_BELOW:
        return "budget"
    if blended >= _PREMIUM_FROM:
        return "premium"
    return "midrange"


# ----------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    """What a parse did with every entry of the source.

    ``skipped`` maps a reason to the source keys not imported for that reason;
    ``unrepresented`` maps a reason to the ids of imported models some of whose prices the table
    format cannot hold (the model is imported with the prices it can hold).
    """

    source: str
    total: int = 0
    imported: int = 0
    skipped: dict[str, list[str]] = field(default_factory=dict)
    unrepresented: dict[str, list[str]] = field(default_factory=dict)

    def skip(self, reason: str, key: str) -> None:
        self.skipped.setdefault(reason, []).append(key)

    def note(self, reason: str, model_id: str) -> None:
        ids = self.unrepresented.setdefault(reason, [])
        if not ids or ids[-1] != model_id:
            ids.append(model_id)

    @property
    def skipped_count(self) -> int:
        return sum(len(v) for v in self.skipped.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "entries": self.total,
            "imported": self.imported,
            "skipped": [
                {"reason": r, "count": len(ids), "keys": ids}
                for r, ids in sorted(self.skipped.items(), key=lambda kv: (-len(kv[1]), kv[0]))
            ],
            "unrepresented": [
                {"reason": r, "count": len(ids), "models": ids}
                for r, ids in sorted(
                    self.unrepresented.items(), key=lambda kv: (-len(kv[1]), kv[0])
                )
            ],
        }

    def lines(self, examples: int = 3) -> list[str]:
        """Human-readable summary, one line per reason, largest first."""

        def ex(ids: list[str]) -> str:
            shown = ", ".join(ids[:examples])
            return f" (e.g. {shown}{', ...' if len(ids) > examples else ''})" if ids else ""

        out = [
            f"{self.source}: {self.total} entries, {self.imported} imported, "
            f"{self.skipped_count} skipped"
        ]
        for item in self.to_dict()["skipped"]:
            out.append(f"  skipped {item['count']}: {item['reason']}{ex(item['keys'])}")
        for item in self.to_dict()["unrepresented"]:
            out.append(
                f"  not represented in {item['count']} models: {item['reason']}{ex(item['models'])}"
            )
        return out


@dataclass
class ParsedSource:
    """Models parsed from one source.

    ``models``: id -> entry (CONTRACT.md schema, prices per 1M tokens, ``tier`` by
    :func:`classify_tier`, ``source`` = ``"<source>:<key>"``). The id is the source's own key,
    verbatim (``claude-opus-5``, ``xai/grok-4.6``, ``anthropic/claude-opus-5``): stable between
    two dumps of the same source, so a diff between dates names the same models.
    """

    source: str
    models: dict[str, dict[str, Any]]
    report: ImportReport

    def lookup(
        self, model_id: str, source_ref: str | None = None, provider: str | None = None
    ) -> str | None:
        """The source key that prices a table model, or None.

        Tried in order: the model's ``source`` reference (``"litellm:xai/grok-4.6"``) when it
        names this source; the id itself; the only key whose last ``/`` segment is the id
        (ignoring case), or among several such keys the only one whose provider (LiteLLM's
        ``litellm_provider``, OpenRouter's vendor prefix) is ``provider``.
        """
        if source_ref and source_ref.startswith(self.source + ":"):
            key = source_ref[len(self.source) + 1 :]
            if key in self.models:
                return key
        if model_id in self.models:
            return model_id
        folded = model_id.casefold()
        hits = [k for k in self.models if k.rsplit("/", 1)[-1].casefold() == folded]
        if len(hits) > 1 and provider:
            hits = [k for k in hits if self.models[k]["provider"] == provider]
        if len(hits) == 1:
            return hits[0]
        return None


def _entry(
    *,
    provider: str,
    input_price: float,
    output_price: float,
    cache_read: float | None,
    cache_write: float | None,
    long_context: dict[str, Any] | None,
    context_window: int | None,
    coding_score: float | None,
    source: str,
) -> dict[str, Any]:
    e: dict[str, Any] = {
        "provider": provider,
        "tier": classify_tier(input_price, output_price),
        "input": input_price,
        "output": output_price,
    }
    if cache_read is not None:
        e["cache_read"] = cache_read
    if cache_write is not None:
        e["cache_write"] = cache_write
    if long_context:
        e["long_context"] = long_context
    if context_window is not None:
        e["context_window"] = context_window
    if coding_score is not None:
        e["coding_score"] = coding_score
    e["source"] = source
    return e


def _positive_int(value: Any) -> int | None:
    """A token count in 1..MAX_CONTEXT_TOKENS (costsim.limits), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit() and len(text) <= 12):
            return None
        value = int(text)
    if isinstance(value, int) and 0 < value <= MAX_CONTEXT_TOKENS:
        return value
    return None


def _context(value: Any, mid: str, report: "ImportReport") -> int | None:
    """A context window from a source; a number out of range (0, negative, above
    MAX_CONTEXT_TOKENS, not an integer) is left out and reported."""
    ctx = _positive_int(value)
    if ctx is None and isinstance(value, (int, float)) and not isinstance(value, bool) \
            and value != 0:
        report.note(f"context window out of range (left out; at most {MAX_CONTEXT_TOKENS:,})",
                    mid)
    return ctx


def valid_text(text: str) -> bool:
    """False for a string a file cannot hold: lone surrogates (from JSON escapes such as
    ``\\ud800``) are not Unicode characters."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _long_context(
    above: int,
    rates: dict[str, float],
    cache_read: float | None,
    cache_write: float | None,
) -> dict[str, Any]:
    """Build a ``long_context`` block. Sources bill cached tokens above the threshold at the base
    cache price when they give no long-context cache price; the table format would default them
    to the long-context *input* rate, so the base cache prices are written out explicitly."""
    lc: dict[str, Any] = {"above": above}
    for k in ("input", "output", "cache_read", "cache_write"):
        if k in rates:
            lc[k] = rates[k]
    if "cache_read" not in lc and cache_read is not None:
        lc["cache_read"] = cache_read
    if "cache_write" not in lc and cache_write is not None:
        lc["cache_write"] = cache_write
    return lc


# ----------------------------------------------------------------------------------------------
# LiteLLM
# ----------------------------------------------------------------------------------------------

#: LiteLLM modes imported as chat models. ``responses`` is LiteLLM's mode for chat models served
#: only through OpenAI's Responses API (the codex and -pro models); they are priced per token like
#: any chat model and matter most for coding agents.
CHAT_MODES = ("chat", "responses")

_LL_BASE = {
    "input_cost_per_token": "input",
    "output_cost_per_token": "output",
    "cache_read_input_token_cost": "cache_read",
    "cache_creation_input_token_cost": "cache_write",
}
_LL_ABOVE = re.compile(
    r"^(input_cost_per_token|output_cost_per_token|cache_read_input_token_cost|"
    r"cache_creation_input_token_cost)_above_(\d+)k_tokens$"
)
_SERVICE_TIER = re.compile(r"_(batches|flex|priority|ultrafast|decisions|balanced)$")
_CACHE_DURATION = re.compile(r"_above_(\d+hr)")
_NON_TEXT = re.compile(
    r"(audio|image|video|pixel|character|second|query|page|session|request|message|"
    r"per_gb|calls|credit|unit)"
)


def _classify_leftover(key: str) -> str:
    """A reason for a LiteLLM price key the table format cannot hold."""
    m = _SERVICE_TIER.search(key)
    if m:
        return f"service-tier prices (_{m.group(1)})"
    m = _CACHE_DURATION.search(key)
    if m:
        return f"extended cache-write duration prices (above_{m.group(1)})"
    if "multiplier" in key:
        return "price multipliers (regional / fedramp uplift)"
    if _NON_TEXT.search(key):
        return "non-token or non-text prices (audio, image, video, per-query, per-second, ...)"
    return f"price key '{key}'"


def parse_litellm(data: Any, *, source_name: str = "litellm") -> ParsedSource:
    """Parse LiteLLM's price map (the decoded JSON object).

    Imported: entries whose ``mode`` is in :data:`CHAT_MODES` with a per-token input and output
    price. Skipped (counted by reason): ``sample_spec``, aliases, other modes, entries without
    ``litellm_provider`` or per-token prices, entries with invalid numbers.
    Mapped: ``input_cost_per_token`` -> input, ``output_cost_per_token`` -> output,
    ``cache_read_input_token_cost`` -> cache_read, ``cache_creation_input_token_cost`` ->
    cache_write (0 with a non-zero input price means "no separate charge" and is left out, so the
    write is billed as input), ``*_above_<N>k_tokens`` or a two-step ``tiered_pricing`` ->
    ``long_context`` with ``above = N*1000``, ``max_input_tokens`` -> context_window.
    Everything else that carries a price is reported in ``unrepresented``.
    """
    if not isinstance(data, dict):
        raise SourceError("a LiteLLM price map must be a JSON object of model entries")
    if data and not any(isinstance(v, dict) for v in data.values()):
        raise SourceError("a LiteLLM price map must map model names to objects")
    report = ImportReport(source=source_name, total=len(data))
    chat: dict[str, tuple[str, dict]] = {}
    for key, raw in data.items():
        key = str(key)
        if key == "sample_spec":
            report.skip("documentation entry (sample_spec)", key)
            continue
        if not valid_text(key):
            report.skip("id is not valid Unicode text", key)
            continue
        if not isinstance(raw, dict):
            report.skip("not an object", key)
            continue
        if "alias_of" in raw and "mode" not in raw:
            report.skip("alias of another entry (alias_of)", key)
            continue
        mode = raw.get("mode")
        if mode not in CHAT_MODES:
            report.skip(
                f"mode '{mode}' is not a chat mode" if mode is not None else "no mode given", key
            )
            continue
        provider = raw.get("litellm_provider")
        if not isinstance(provider, str) or not provider or not valid_text(provider):
            report.skip("no litellm_provider", key)
            continue
        chat[key] = (provider, raw)

    models: dict[str, dict[str, Any]] = {}
    for key, (provider, raw) in chat.items():
        mid = key
        try:
            entry = _litellm_entry(mid, key, provider, raw, report, source_name)
        except ValueError as exc:
            report.skip(f"invalid price value ({exc})", key)
            continue
        if entry is None:
            continue
        models[mid] = entry
    report.imported = len(models)
    return ParsedSource(source=source_name, models=models, report=report)


def _litellm_entry(
    mid: str, key: str, provider: str, raw: dict, report: ImportReport, source_name: str
) -> dict[str, Any] | None:
    used: set[str] = {"tiered_pricing"}
    base: dict[str, float] = {}
    for k, field_name in _LL_BASE.items():
        if k in raw and raw[k] is not None:
            base[field_name] = _price(raw[k])
            used.add(k)

    # tiered_pricing: [{range: [lo, hi], input_cost_per_token, output_cost_per_token, ...}, ...]
    tiers = raw.get("tiered_pricing")
    tier_lc: tuple[int, dict[str, float]] | None = None
    if tiers is not None:
        tier_lc = _litellm_tiers(mid, tiers, base, report)

    if "input" not in base or "output" not in base:
        report.skip("no per-token input and output price", key)
        return None

    # DeepSeek-style duplicate of the cache read price.
    if "input_cost_per_token_cache_hit" in raw:
        hit = _price(raw["input_cost_per_token_cache_hit"])
        used.add("input_cost_per_token_cache_hit")
        if "cache_read" not in base:
            base["cache_read"] = hit
        elif hit != base["cache_read"]:
            report.note("input_cost_per_token_cache_hit differs from cache_read price", mid)

    if base.get("cache_write") == 0.0 and base["input"] > 0:
        del base["cache_write"]
        report.note("cache write price 0 (no separate charge): billed as input", mid)

    # *_above_<N>k_tokens
    thresholds: dict[int, dict[str, float]] = {}
    for k, v in raw.items():
        m = _LL_ABOVE.match(k)
        if m and v is not None:
            used.add(k)
            above_k = _positive_int(m.group(2) + "000")
            if above_k is None:
                report.note(f"price key '{k}' (threshold 0 or out of range)", mid)
                continue
            thresholds.setdefault(above_k, {})[_LL_BASE[m.group(1)]] = _price(v)
    long_context = None
    if thresholds:
        above = min(thresholds)
        if len(thresholds) > 1:
            shown = ", ".join(f"{t // 1000}k" for t in sorted(thresholds))
            report.note(
                f"several long-context thresholds ({shown}); only the lowest is kept", mid
            )
        rates = thresholds[above]
        long_context = _long_context(above, rates, base.get("cache_read"), base.get("cache_write"))
        if tier_lc is not None:
            report.note("tiered_pricing and *_above_<N>k_tokens both given; tiers ignored", mid)
    elif tier_lc is not None:
        long_context = _long_context(
            tier_lc[0], tier_lc[1], base.get("cache_read"), base.get("cache_write")
        )

    reasoning = raw.get("output_cost_per_reasoning_token")
    if reasoning is not None:
        used.add("output_cost_per_reasoning_token")
        if _price(reasoning) != base["output"]:
            report.note("separate reasoning-token price (reasoning billed as output)", mid)

    if raw.get("off_peak_pricing"):
        report.note("time-window (off-peak) prices", mid)
    used.add("off_peak_pricing")

    for k, v in raw.items():
        if k in used or v is None or v == 0 or v == {} or v is False:
            continue
        if "cost" in k or "multiplier" in k:
            report.note(_classify_leftover(k), mid)

    return _entry(
        provider=provider,
        input_price=base["input"],
        output_price=base["output"],
        cache_read=base.get("cache_read"),
        cache_write=base.get("cache_write"),
        long_context=long_context,
        context_window=_context(raw.get("max_input_tokens"), mid, report),
        coding_score=None,
        source=f"{source_name}:{key}",
    )


def _litellm_tiers(
    mid: str, tiers: Any, base: dict[str, float], report: ImportReport
) -> tuple[int, dict[str, float]] | None:
    """Read ``tiered_pricing``; fill ``base`` from the first tier where the entry has no
    top-level price; return (above, rates) of the second tier if there is one."""
    if not isinstance(tiers, list) or not tiers or not all(isinstance(t, dict) for t in tiers):
        report.note("unreadable tiered_pricing", mid)
        return None
    parsed = []
    for t in tiers:
        rng = t.get("range")
        if (
            not isinstance(rng, (list, tuple))
            or len(rng) != 2
            or "input_cost_per_token" not in t
            or "output_cost_per_token" not in t
        ):
            report.note("tiered_pricing not by token ranges", mid)
            return None
        lo = _positive_int(rng[0]) if rng[0] not in (0, 0.0) else 0
        if lo is None:
            report.note("tiered_pricing not by token ranges", mid)
            return None
        rates = {_LL_BASE[k]: _price(v) for k, v in t.items() if k in _LL_BASE and v is not None}
        r = t.get("output_cost_per_reasoning_token")
        if r is not None and _price(r) != rates.get("output"):
            report.note("separate reasoning-token price (reasoning billed as output)", mid)
        parsed.append((lo, rates))
    parsed.sort(key=lambda p: p[0])
    if parsed[0][0] != 0:
        report.note("tiered_pricing does not start at 0 tokens", mid)
        return None
    first = parsed[0][1]
    for k, v in first.items():
        if k not in base:
            base[k] = v
        elif base[k] != v:
            report.note("tiered_pricing first tier differs from the base price", mid)
    if any(a[0] >= b[0] for a, b in zip(parsed, parsed[1:])):
        report.note("tiered_pricing with overlapping ranges", mid)
        return None
    if len(parsed) == 1:
        return None
    if len(parsed) > 2:
        report.note(
            f"tiered_pricing with {len(parsed)} tiers; only the first step "
            f"(above {parsed[1][0]} tokens) is kept",
            mid,
        )
    return parsed[1][0], parsed[1][1]


# ----------------------------------------------------------------------------------------------
# OpenRouter
# ----------------------------------------------------------------------------------------------

_OR_FIELDS = {
    "prompt": "input",
    "completion": "output",
    "input_cache_read": "cache_read",
    "input_cache_write": "cache_write",
}
_OR_SKIP_SUFFIXES = {
    ":free": "free variant (:free)",
    ":batch": "batch-API variant (:batch, half price, not interactive)",
}


def parse_openrouter(data: Any, *, source_name: str = "openrouter") -> ParsedSource:
    """Parse an OpenRouter ``/api/v1/models`` response (``{"data": [...]}`` or the bare list).

    Imported: models with text output and non-negative ``prompt``/``completion`` prices.
    Skipped (counted): router entries priced ``-1``, ``:free`` and ``:batch`` ids, models without
    text output, malformed entries. Mapped: ``prompt`` -> input, ``completion`` -> output,
    ``input_cache_read`` -> cache_read, ``input_cache_write`` -> cache_write, an ``overrides`` item
    with ``min_prompt_tokens`` -> ``long_context`` (``above = min_prompt_tokens``),
    ``context_length`` -> context_window, ``benchmarks.artificial_analysis.coding_index`` ->
    coding_score. Time-window overrides (``utc_start``/``utc_end``) and other non-zero prices
    (``request``, ``image``, ``web_search``, 1-hour cache writes, ...) are reported.
    """
    items = data.get("data") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise SourceError('an OpenRouter models response must be {"data": [...]} or a list')
    report = ImportReport(source=source_name, total=len(items))
    candidates: list[tuple[str, dict]] = []
    for raw in items:
        oid = raw.get("id") if isinstance(raw, dict) else None
        if not isinstance(oid, str) or not oid or not isinstance(raw.get("pricing"), dict):
            report.skip("malformed entry (no id or pricing)", str(oid))
            continue
        if not valid_text(oid):
            report.skip("id is not valid Unicode text", oid)
            continue
        suffix = next((s for s in _OR_SKIP_SUFFIXES if oid.endswith(s)), None)
        if suffix:
            report.skip(_OR_SKIP_SUFFIXES[suffix], oid)
            continue
        p = raw["pricing"]
        if str(p.get("prompt", "")).strip() == "-1" or str(p.get("completion", "")).strip() == "-1":
            report.skip("router entry (priced -1)", oid)
            continue
        arch = raw.get("architecture")
        outs = arch.get("output_modalities") if isinstance(arch, dict) else None
        if isinstance(outs, list) and "text" not in outs:
            report.skip("no text output", oid)
            continue
        candidates.append((oid, raw))

    models: dict[str, dict[str, Any]] = {}
    for oid, raw in candidates:
        mid = oid
        try:
            entry = _openrouter_entry(mid, oid, raw, report, source_name)
        except ValueError as exc:
            report.skip(f"invalid price value ({exc})", oid)
            continue
        if entry is None:
            continue
        models[mid] = entry
    report.imported = len(models)
    return ParsedSource(source=source_name, models=models, report=report)


def _openrouter_entry(
    mid: str, oid: str, raw: dict, report: ImportReport, source_name: str
) -> dict[str, Any] | None:
    p = raw["pricing"]
    base: dict[str, float] = {}
    for k, name in _OR_FIELDS.items():
        if p.get(k) is not None and str(p.get(k)).strip() != "":
            base[name] = _price(p[k])
    if "input" not in base or "output" not in base:
        report.skip("no prompt and completion price", oid)
        return None
    for k, v in p.items():
        if k in _OR_FIELDS or k == "overrides":
            continue
        try:
            value = _price(v)
        except ValueError:
            report.note(f"unreadable price '{k}'", mid)
            continue
        if value == 0:
            continue
        if k == "internal_reasoning":
            if value != base["output"]:
                report.note("separate reasoning-token price (reasoning billed as output)", mid)
        elif k == "input_cache_write_1h":
            report.note("extended cache-write duration prices (1h)", mid)
        else:
            report.note(f"non-token or non-text prices ({k})", mid)

    long_context = None
    overrides = p.get("overrides") or []
    if not isinstance(overrides, list):
        overrides = [overrides]
    by_size: dict[int, dict[str, float]] = {}
    for ov in overrides:
        if not isinstance(ov, dict):
            report.note("unreadable price override", mid)
            continue
        if "utc_start" in ov or "utc_end" in ov:
            report.note("time-window price overrides (utc_start/utc_end)", mid)
            continue
        above = _positive_int(ov.get("min_prompt_tokens"))
        if above is None:
            report.note("price override without min_prompt_tokens", mid)
            continue
        rates = {}
        for k, v in ov.items():
            if k in _OR_FIELDS:
                rates[_OR_FIELDS[k]] = _price(v)
            elif k != "min_prompt_tokens":
                try:
                    if _price(v) != 0 and k != "internal_reasoning":
                        report.note(f"long-context non-token or non-text prices ({k})", mid)
                except ValueError:
                    report.note(f"unreadable price '{k}'", mid)
        by_size[above] = rates
    if by_size:
        above = min(by_size)
        if len(by_size) > 1:
            report.note("several long-context thresholds; only the lowest is kept", mid)
        long_context = _long_context(
            above, by_size[above], base.get("cache_read"), base.get("cache_write")
        )

    score = None
    bench = raw.get("benchmarks")
    aa = bench.get("artificial_analysis") if isinstance(bench, dict) else None
    ci = aa.get("coding_index") if isinstance(aa, dict) else None
    if isinstance(ci, (int, float)) and not isinstance(ci, bool) and 0 <= ci <= 100:
        score = float(ci)

    ctx = _context(raw.get("context_length"), mid, report)
    if ctx is None and isinstance(raw.get("top_provider"), dict):
        ctx = _context(raw["top_provider"].get("context_length"), mid, report)
    provider = oid.split("/", 1)[0] if "/" in oid else "openrouter"
    return _entry(
        provider=provider,
        input_price=base["input"],
        output_price=base["output"],
        cache_read=base.get("cache_read"),
        cache_write=base.get("cache_write"),
        long_context=long_context,
        context_window=ctx,
        coding_score=score,
        source=f"{source_name}:{oid}",
    )
