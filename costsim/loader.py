"""Load and validate the three files; every user mistake becomes one CostsimError line."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError

from . import limits
from .errors import CostsimError, format_path
from .models import TIER_CLASSES, FileModel, Policy, PriceTable, Workload
from .paths import resolve_named
from .yamlio import Document, load_yaml, parse_yaml

M = TypeVar("M", bound=FileModel)

_KIND = {PriceTable: "price table", Policy: "policy", Workload: "workload"}


def _message(err: dict, model_cls) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field missing"
    if kind == "literal_error" and err["loc"] == ("version",):
        return f"unsupported version {err.get('input')!r} (this costsim reads version 1)"
    msg = err["msg"]
    if kind.endswith("_type") and "input" in err:
        msg += f", got {type(err['input']).__name__} {_short(err['input'])}"
    if kind in ("less_than_equal", "less_than", "greater_than_equal", "greater_than") \
            and "input" in err:
        msg += f", got {_short(err['input'])}"
    if kind in ("less_than_equal", "too_long") and _is_limit((err.get("ctx") or {}).get(
            "le", (err.get("ctx") or {}).get("max_length"))):
        msg += " (costsim's limit, far above any real workload)"
    return msg[0].lower() + msg[1:] if msg else msg


_LIMITS = {v for k, v in vars(limits).items() if k.startswith("MAX_")}


def _is_limit(value) -> bool:
    try:
        return value in _LIMITS or -value in _LIMITS
    except TypeError:
        return False


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _validate(doc: Document, model_cls: type[M]) -> M:
    # "version" first so a wrong version gives the one message that matters.
    if "version" not in doc.data:
        raise doc.error((), f"missing 'version: 1' (is this a costsim {_KIND[model_cls]} file?)")
    try:
        model = model_cls.model_validate(doc.data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        # Report the earliest error in the file; among errors on one line (e.g. the branches
        # of a union) the deepest path into the user's data is the most specific.
        located = [(_data_loc(doc.data, e["loc"]), e) for e in errors]
        loc, err = min(located, key=lambda le: (doc.line_of(le[0]) or 0, -len(le[0])))
        raise doc.error(loc, _message(err, model_cls)) from None
    model._doc = doc
    return model


def _data_loc(data, loc: tuple) -> tuple:
    """The part of a pydantic error location that indexes into the user's data.

    Drops pydantic's own labels (union branch names such as ``constrained-float``); keeps
    a final missing/unknown key, which has no value to index into.
    """
    out = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(part)
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and not _is_label(part):
            out.append(part)       # a missing field
            node = None
    return tuple(out)


def _is_label(part: str) -> bool:
    return "[" in part or part.startswith(("function-", "constrained-")) or part in (
        "int", "float", "str", "bool", "list", "dict", "date")


def _load(path: str | Path, model_cls: type[M]) -> M:
    return _validate(load_yaml(path), model_cls)


def prices_from_dict(data: dict, file: str = "<price table>") -> PriceTable:
    """Validate an in-memory price table (e.g. one just built by `price-table update`)."""
    return _validate(Document(data=data, file=file), PriceTable)


def prices_from_text(text: str, file: str) -> PriceTable:
    return _validate(parse_yaml(text, file), PriceTable)


def load_prices(path: str | Path) -> PriceTable:
    """A price table from a file, or the bundled/user table by name (``bundled``, ``user``)."""
    return _load(resolve_named("pricing", path), PriceTable)


def load_workload(path: str | Path) -> Workload:
    """A workload from a file, or a bundled one by name (``large-team``)."""
    wl = _load(resolve_named("workloads", path), Workload)
    total = math.fsum(t.share for t in wl.task_types)
    if abs(total - 1.0) > 1e-6:
        raise wl.error(("task_types",), f"task type shares sum to {total:g}, not 1")
    seen: set[str] = set()
    for i, t in enumerate(wl.task_types):
        if t.name in seen:
            raise wl.error(("task_types", i, "name"), f"duplicate task type '{t.name}'")
        seen.add(t.name)
    check_workload_size(wl)
    return wl


def check_workload_size(wl: Workload) -> None:
    """Bounds that involve several fields (costsim.limits), checked before anything is compiled:
    the number of cells (task types x signal combinations), the compiled ladder size and the
    difficulty of a phase with every signal active."""
    cells = cell_phases = 0
    phases = attempts = 1
    for i, t in enumerate(wl.task_types):
        sigs = t.signals if t.signals is not None else wl.signals
        where = ("task_types", i, "signals") if t.signals is not None else ("signals",)
        cells += 2 ** len(sigs)
        cell_phases += 2 ** len(sigs) * len(t.phases)
        phases = max(phases, len(t.phases))
        attempts = max(attempts, t.max_attempts or wl.max_attempts)
        if cells > limits.MAX_CELLS:
            raise wl.error(where, f"task types x signal combinations come to {cells:,} cells "
                           f"(each task type counts 2^signals); at most {limits.MAX_CELLS:,}")
        if cell_phases > limits.MAX_CELL_PHASES:
            raise wl.error(("task_types", i, "phases"), f"cells x phases come to "
                           f"{cell_phases:,} (2^signals x phases per task type); at most "
                           f"{limits.MAX_CELL_PHASES:,}")
        extra = sum(s.difficulty for s in sigs.values() if s.difficulty > 0)
        for j, ph in enumerate(t.phases):
            if ph.difficulty is not None and ph.difficulty + extra > limits.MAX_DIFFICULTY:
                raise wl.error(("task_types", i, "phases", j, "difficulty"),
                               f"difficulty {ph.difficulty:g} with every signal active "
                               f"({extra:+g}) is {ph.difficulty + extra:g}; at most "
                               f"{limits.MAX_DIFFICULTY:g}")
    varied, worst = 0, None
    for i, t in enumerate(wl.task_types):
        v = wl.variation_of(t)
        if v is None or v.is_zero:
            continue
        k = t.max_attempts or wl.max_attempts
        nodes = _quadrature_nodes(v)
        where = ("task_types", i, "variation") if t.variation is not None else ("variation",)
        for j, ph in enumerate(t.phases):
            if nodes * k * ph.calls > limits.MAX_VARIED_CALLS:
                raise wl.error(where, f"with this variation every call is evaluated at {nodes} "
                               f"quadrature nodes: nodes x attempts x calls of phase "
                               f"'{ph.phase}' come to {nodes * k * ph.calls:,}; at most "
                               f"{limits.MAX_VARIED_CALLS:,} (fewer calls or attempts, or a "
                               "smaller variation.difficulty)")
        sigs = t.signals if t.signals is not None else wl.signals
        varied += 2 ** len(sigs) * nodes * len(t.phases) * k
        if worst is None or nodes > worst[0]:
            worst = (nodes, where)
    if varied > limits.MAX_VARIED_WORK:
        nodes, where = worst
        raise wl.error(where, f"with this variation every cell is evaluated at {nodes} "
                       f"quadrature nodes: cells x nodes x phases x attempts come to "
                       f"{varied:,} (summed over task types); at most "
                       f"{limits.MAX_VARIED_WORK:,} (fewer task types, signals, phases or "
                       "attempts, or a smaller variation.difficulty)")
    size = cells * phases * attempts
    if size > limits.MAX_LADDER:
        raise wl.error(("max_attempts",), f"cells x phases x attempts come to {size:,} "
                       f"({cells:,} x {phases} x {attempts}); at most {limits.MAX_LADDER:,}")


def _quadrature_nodes(v) -> int:
    """How many nodes the engine integrates a task type's spread over (without long-context
    thresholds, which add about a dozen)."""
    from .engine.variation import Spread, node_rule

    return len(node_rule(Spread(s=v.difficulty, t=v.tokens, r=v.tokens_follow_difficulty)).z)


def load_policy(path: str | Path) -> Policy:
    """A policy from a file, or a bundled one by name (``cheapest-routing``)."""
    pol = _load(resolve_named("policies", path), Policy)
    check_policy(pol)
    return pol


def check_policy(pol: Policy) -> None:
    """Checks that need only the policy itself."""
    tiers = list(pol.tiers)
    listing = ", ".join(tiers)
    for phase, tier in pol.routes.items():
        if tier not in pol.tiers:
            raise pol.error(("routes", phase), f"unknown tier '{tier}' (tiers: {listing})")
    for name, sig in pol.signals.items():
        if sig.min_tier is not None and sig.min_tier not in pol.tiers:
            raise pol.error(("signals", name, "min_tier"),
                            f"unknown tier '{sig.min_tier}' (tiers: {listing})")


def check_policy_against(pol: Policy, prices: PriceTable, workload: Workload) -> None:
    """Dangling references between a policy and the price table / workload it is run with."""
    for tier, model in pol.tiers.items():
        if model not in prices.models:
            raise pol.error(("tiers", tier), f"unknown model '{model}' (not in the price table "
                            f"{_where(prices)})")
    handoff = pol.handoff
    if handoff is not None and handoff.summarizer is not None:
        s = handoff.summarizer
        if s not in pol.tiers and s not in prices.models:
            raise pol.error(("handoff", "summarizer"),
                            f"'{s}' is neither a tier of this policy ({', '.join(pol.tiers)}) "
                            f"nor a model in the price table")
    if handoff is None and workload.handoff.mode == "summary":
        s = workload.handoff.summarizer
        if s is not None and s not in pol.tiers and s not in prices.models:
            raise workload.error(("handoff", "summarizer"),
                                 f"'{s}' is neither a tier of policy '{pol.name}' "
                                 f"({', '.join(pol.tiers)}) nor a model in the price table")
    if "default" not in pol.routes:
        for t in workload.task_types:
            for ph in t.phases:
                if ph.phase not in pol.routes:
                    raise pol.error(("routes",), f"no route for phase '{ph.phase}' of workload "
                                    f"'{workload.name}' (add it, or a 'default' route)")


#: Phase and signal names every workload may use (a policy may name them for a workload that
#: lacks them: a policy serves several workloads, so those are never reported).
CANONICAL_PHASES = ("search", "summarize", "plan", "implement", "test_repair", "review", "docs",
                    "explain")
CANONICAL_SIGNALS = ("security_sensitive", "cross_file", "ambiguous", "architecture")


def policy_warnings(pol: Policy, workload: Workload) -> list[str]:
    """Names in ``pol`` the workload does not know and costsim does not define: a route, a
    signal or a signal's phase spelt ``implemnt`` or ``security_sensitve`` would otherwise be
    ignored without a word. Warnings, not errors: a policy may serve several workloads.
    Each is ``file:line: field.path: ...`` naming the known names and the closest one."""
    import difflib

    phases = list(dict.fromkeys(ph.phase for t in workload.task_types for ph in t.phases))
    signals = list(dict.fromkeys(list(workload.signals) + [
        s for t in workload.task_types for s in (t.signals or {})]))
    out: list[str] = []

    def unknown(loc: tuple, what: str, name: str, known: list[str], canonical: tuple) -> None:
        if name in known or name in canonical:
            return
        close = difflib.get_close_matches(name, list(dict.fromkeys(known + list(canonical))),
                                          n=1, cutoff=0.75)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        listing = f"its {what}s: {', '.join(known)}" if known else f"it has no {what}s"
        out.append(str(pol.error(loc, f"workload '{workload.name}' has no {what} '{name}' "
                                      f"({listing}), so this is ignored{hint}")))

    for phase in pol.routes:
        if phase != "default":
            unknown(("routes", phase), "phase", phase, phases, CANONICAL_PHASES)
    for name, sig in pol.signals.items():
        unknown(("signals", name), "signal", name, signals, CANONICAL_SIGNALS)
        for i, phase in enumerate(sig.phases or ()):
            unknown(("signals", name, "phases", i), "phase", phase, phases, CANONICAL_PHASES)
    return out


def check_workload_against(workload: Workload, prices: PriceTable) -> None:
    """Keys of success/defect maps must name a model in the table or a tier class; the
    workload's size must be within costsim.limits (also for a workload built in memory)."""
    check_workload_size(workload)
    def check_keys(mapping: dict, loc: tuple) -> None:
        for key in mapping:
            if key not in prices.models and key not in TIER_CLASSES:
                raise workload.error(loc + (key,), f"unknown model or tier '{key}' (tiers: "
                                     f"{', '.join(TIER_CLASSES)}; models: see the price table)")

    def check_defects(d, loc):
        if d is None:
            return
        check_keys(d.rate, loc + ("rate",))
        check_keys(d.catch_rate, loc + ("catch_rate",))

    check_defects(workload.defects, ("defects",))
    for i, t in enumerate(workload.task_types):
        check_defects(t.defects, ("task_types", i, "defects"))
        for j, ph in enumerate(t.phases):
            if ph.success:
                check_keys(ph.success, ("task_types", i, "phases", j, "success"))
    s = workload.handoff.summarizer
    if s is not None and s not in prices.models and s not in TIER_CLASSES:
        raise workload.error(("handoff", "summarizer"),
                             f"unknown model or tier '{s}'")


def _where(table: PriceTable) -> str:
    return table.doc.file if table.doc is not None else "in use"


__all__ = ["load_prices", "load_policy", "load_workload", "prices_from_dict", "prices_from_text",
           "policy_warnings", "check_policy", "check_policy_against",
           "check_workload_against", "check_workload_size", "CostsimError", "format_path"]
