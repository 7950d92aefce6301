"""Warnings for well-formed nonsense: files that are valid but cannot mean what they say.

A schema accepts a price table where every price is 0, or a workload whose phases use no
tokens; the numbers costsim then prints are correct and useless. These checks name such cases
in one line each; they never stop a run. ``price-table validate`` and ``compare`` share them.
"""

from __future__ import annotations

import math
from typing import Iterable

from .models import PriceTable, Workload

__all__ = ["PRICE_WARN_ABOVE", "model_warnings", "price_table_warnings", "result_warnings",
           "workload_warnings"]

#: A price above this (USD per 1M tokens) is probably in the wrong unit. The dearest models
#: charge a few hundred dollars per 1M output tokens.
PRICE_WARN_ABOVE = 1_000.0

_PRICE_FIELDS = ("input", "output", "cache_read", "cache_write")


def model_warnings(mid: str, m) -> list[str]:
    """Warnings about one model of a price table."""
    out = []
    if m.cache_read is not None and m.cache_read > m.input:
        out.append(f"{mid}: cache_read {m.cache_read:g} is above input {m.input:g}")
    lc = m.long_context
    if lc is not None:
        if lc.input is not None and lc.input < m.input:
            out.append(f"{mid}: long_context.input {lc.input:g} is below input {m.input:g}")
        if m.context_window is not None and lc.above >= m.context_window:
            out.append(f"{mid}: long_context.above {lc.above:,} is not below context_window "
                       f"{m.context_window:,} (never applies)")
    if m.tier == "premium" and m.input == 0 and m.output == 0:
        out.append(f"{mid}: a premium model with input and output prices of 0 (free?)")
    dear = [(f, v) for f, v in ((f, getattr(m, f)) for f in _PRICE_FIELDS)
            if v is not None and v > PRICE_WARN_ABOVE]
    if dear:
        f, v = max(dear, key=lambda fv: fv[1])
        out.append(f"{mid}: {f} ${v:,.2f} per 1M tokens is above ${PRICE_WARN_ABOVE:,.0f} "
                   f"(a price per token or per 1K written as per 1M?)")
    return out


def price_table_warnings(table: PriceTable, models: Iterable[str] | None = None) -> list[str]:
    """Warnings about ``table`` (only about ``models`` if given, e.g. the ones a run uses)."""
    ids = sorted(table.models) if models is None else sorted(set(models) & set(table.models))
    out = []
    if table.models and all(getattr(m, f) in (None, 0)
                            for m in table.models.values() for f in _PRICE_FIELDS):
        out.append("every price in the table is 0: every cost will be $0")
    for mid in ids:
        out += model_warnings(mid, table.models[mid])
    return out


def workload_warnings(wl: Workload) -> list[str]:
    """Warnings about a workload: nothing costs tokens, success lists longer than the attempts
    they can apply to, signal shares that only hold as overlapping signals."""
    out = []
    if wl.system_tokens == 0 and all(ph.input_tokens == 0 and ph.output_tokens == 0
                                     for t in wl.task_types for ph in t.phases):
        out.append(f"workload '{wl.name}': every phase uses 0 tokens and system_tokens is 0: "
                   "attempts cost $0 (only summaries, if any, cost money)")
    for i, t in enumerate(wl.task_types):
        k = t.max_attempts or wl.max_attempts
        for j, ph in enumerate(t.phases):
            for key, value in (ph.success or {}).items():
                if isinstance(value, list) and len(value) > k:
                    extra = len(value) - k
                    unused = "the last value is" if extra == 1 else f"the last {extra} are"
                    out.append(f"task_types[{i}].phases[{j}].success.{key}: {len(value)} values "
                               f"for at most {k} attempt{'s' if k != 1 else ''}; {unused} "
                               "never used")
    blocks = [("signals", wl.signals)] + [(f"task_types[{i}].signals", t.signals)
                                          for i, t in enumerate(wl.task_types) if t.signals]
    for where, sigs in blocks:
        total = math.fsum(s.share for s in sigs.values())
        if total > 1 + 1e-9:
            out.append(f"{where}: shares sum to {total:g}; signals are independent, so tasks "
                       "carry several at once (as shares of separate tasks they cannot all hold)")
    return out


def result_warnings(strategies) -> list[str]:
    """Warnings about compare results (a list of StrategyResult)."""
    if not strategies:
        return []
    out = []
    if all(s.completion_rate == 0 for s in strategies):
        out.append("no strategy ever completes a task: every success probability is 0?")
    elif all(s.spend_per_task == 0 for s in strategies):
        out.append("every strategy costs $0 per task")
    return out
