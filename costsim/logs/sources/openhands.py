"""OpenHands benchmark results, one row per attempt (they carry success; calls are not itemised).

Two layouts:

- **The OpenHands index** (``<benchmark>/instance_results/<config>.json``): one JSON object per
  agent config, ``{instance_id: {"cost": USD, "resolved": bool}}``. ``run`` = the config (the
  path below ``instance_results`` without ``.json``, e.g. ``acp-claude/claude-opus-4-6``),
  ``model`` = the entry's ``model``, else the config's last part; ``task_id`` = the instance;
  ``success`` = ``resolved`` (null: unknown); ``cost_usd`` = ``cost``; tokens are not recorded
  (left empty: the stated cost prices the row).
- **Evaluation output** (``output.jsonl``, one instance per line): ``task_id`` =
  ``instance_id``, ``attempt`` = ``attempt`` (default 1), ``success`` = ``test_result.resolved``
  (or ``resolved`` / ``test_result.success`` / ``report.resolved``), ``cost_usd`` =
  ``metrics.accumulated_cost``; tokens from ``metrics.accumulated_token_usage``:
  ``prompt_tokens`` (which, as LiteLLM reports it, already holds the cache reads),
  ``cache_read_tokens`` as ``cached_input_tokens`` (added to the input only where it exceeds
  ``prompt_tokens``, i.e. was counted apart), ``completion_tokens``; ``calls`` = the number of
  per-call entries in ``metrics.token_usages`` (or ``metrics.costs``); ``model`` =
  ``accumulated_token_usage.model`` or ``metadata.llm_config.model``; ``run`` = the folder of
  the file.

Phase is ``main`` (``--phase-by tag:NAME``: the record's field NAME).
"""

from __future__ import annotations

from pathlib import Path

from ..reading import (Malformed, base_name, boolean, count, dig, json_document, json_lines, money,
                       text)
from .base import MAIN_PHASE, Options, Sink, Source, input_with_cache

_SUCCESS_KEYS = ("test_result.resolved", "resolved", "test_result.success", "success",
                 "report.resolved", "test_result.report.resolved")


def _config(path: Path) -> str:
    parts = path.parts
    stem = base_name(path)
    stem = stem[:-5] if stem.endswith(".json") else stem
    if "instance_results" in parts:
        i = len(parts) - 1 - parts[::-1].index("instance_results")
        return "/".join([*parts[i + 1:-1], stem])
    return stem


def _index(path: Path, opts: Options, sink: Sink) -> None:
    try:
        doc = json_document(path)
    except Malformed as exc:
        sink.skip(path, None, str(exc))
        return
    if not isinstance(doc, dict):
        sink.skip(path, None, "expected a JSON object of instance results")
        return
    run = _config(path)
    default_model = run.rsplit("/", 1)[-1]
    for instance in sorted(doc):
        entry = doc[instance]
        if not isinstance(entry, dict):
            sink.skip(path, None, f"{instance}: expected an object with cost and resolved")
            continue
        try:
            success = boolean(entry.get("resolved"), f"{instance}.resolved")
            cost = money(entry.get("cost", entry.get("cost_usd")), f"{instance}.cost")
            inp = entry.get("input_tokens", entry.get("prompt_tokens"))
            out = entry.get("output_tokens", entry.get("completion_tokens"))
            inp = count(inp, f"{instance}.input_tokens") if inp is not None else None
            out = count(out, f"{instance}.output_tokens") if out is not None else None
        except Malformed as exc:
            sink.skip(path, None, str(exc))
            continue
        phase = text(dig(entry, opts.phase_tag)) if opts.phase_tag else None
        sink.attempt(file=path, line=0, task=str(instance), phase=phase or MAIN_PHASE,
                     attempt=1, model=text(entry.get("model")) or default_model,
                     input_tokens=inp, cached_input_tokens=None, output_tokens=out,
                     success=success, run=run, cost_usd=cost)


def _eval_output(path: Path, opts: Options, sink: Sink) -> None:
    run = path.parent.name or base_name(path)
    for n, rec in json_lines(path, lambda n, why: sink.skip(path, n, why)):
        try:
            instance = text(rec.get("instance_id"))
            if instance is None:
                raise Malformed("instance_id: missing")
            attempt = count(rec.get("attempt"), "attempt", default=1) or 1
            success = None
            for key in _SUCCESS_KEYS:
                v = dig(rec, key)
                if v is not None and not isinstance(v, (dict, list)):
                    success = boolean(v, key)
                    break
            metrics = rec.get("metrics") if isinstance(rec.get("metrics"), dict) else {}
            cost = money(metrics.get("accumulated_cost"), "metrics.accumulated_cost")
            usage = metrics.get("accumulated_token_usage")
            usage = usage if isinstance(usage, dict) else {}
            where = "metrics.accumulated_token_usage"
            if usage:
                prompt = count(usage.get("prompt_tokens"), f"{where}.prompt_tokens")
                cached = count(usage.get("cache_read_tokens"), f"{where}.cache_read_tokens")
                out = count(usage.get("completion_tokens"), f"{where}.completion_tokens")
                written = count(usage.get("cache_write_tokens"), f"{where}.cache_write_tokens")
                inp = input_with_cache(prompt, cached, written)
            else:
                inp = cached = out = None
            model = (text(usage.get("model")) or text(dig(rec, "metadata.llm_config.model"))
                     or text(dig(rec, "metadata.model")))
            if model is None:
                raise Malformed("no model (metrics.accumulated_token_usage.model or "
                                "metadata.llm_config.model)")
            calls = None
            for key in ("token_usages", "costs"):
                if isinstance(metrics.get(key), list) and metrics[key]:
                    calls = len(metrics[key])
                    break
        except Malformed as exc:
            sink.skip(path, n, str(exc))
            continue
        phase = text(dig(rec, opts.phase_tag)) if opts.phase_tag else None
        sink.attempt(file=path, line=n, task=instance, phase=phase or MAIN_PHASE,
                     attempt=attempt, model=model, input_tokens=inp, cached_input_tokens=cached,
                     output_tokens=out, success=success, run=run, cost_usd=cost, calls=calls,
                     dedup_key=f"{run}\x1f{instance}\x1f{attempt}")


def read(files: list[Path], opts: Options, sink: Sink) -> None:
    for path in files:
        if base_name(path).lower().endswith(".json"):
            _index(path, opts, sink)
        else:
            _eval_output(path, opts, sink)


def _wanted(path: Path) -> bool:
    """In a walked folder: index files under ``instance_results/`` and ``output.jsonl``."""
    name = base_name(path).lower()
    return "instance_results" in path.parts if name.endswith(".json") else name == "output.jsonl"


SOURCE = Source(
    name="openhands", per_call=False, suffixes=(".json", ".jsonl"), read=read, wanted=_wanted,
    summary="OpenHands results: index instance_results/*.json, or eval output.jsonl",
)
