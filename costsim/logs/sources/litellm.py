"""LiteLLM proxy spend logs: an export of the ``LiteLLM_SpendLogs`` table (CSV with a header row,
JSON Lines, or the JSON array ``/spend/logs`` returns), one row per request.

Mapping:

- ``cost_usd`` = ``spend`` (what the proxy charged, carried as written);
- tokens: ``prompt_tokens`` (LiteLLM's usage is OpenAI-shaped: it already counts cache reads
  and writes, Anthropic models included) and ``completion_tokens``; ``cached_input_tokens`` =
  ``cache_read_input_tokens`` of the usage in ``metadata`` (``usage_object``, or ``usage``),
  else OpenAI's ``prompt_tokens_details.cached_tokens``. Only where ``prompt_tokens`` is smaller
  than the cache reads + writes (a proxy that stored Anthropic's raw ``input_tokens``) are they
  added to it;
- ``model`` = ``model`` (else ``model_group``); ``timestamp`` = ``startTime``;
- task: ``session_id`` (else ``metadata.session_id``, else the trace id, else the request);
  ``--task-by branch`` / ``tag:NAME``: the request tag ``branch:...`` / ``NAME:...`` (tags
  are ``request_tags``, ``"name:value"`` strings), else ``metadata.NAME``, else the column NAME;
- phase (``--phase-by agent``): the request tag ``agent:...`` (or ``metadata.agent_name``),
  else ``main``;
- requests are deduplicated on ``request_id`` (overlapping exports).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

from ..reading import (Malformed, base_name, count, dig, first_char, json_document, json_lines,
                       money, open_binary, text, timestamp)
from .base import MAIN_PHASE, Options, Sink, Source, input_with_cache, tags_from_list


def _json_field(value, what: str):
    if value is None or value == "":
        return None
    if isinstance(value, (dict, list)):
        return value
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise Malformed(f"{what}: not JSON") from None
    raise Malformed(f"{what}: expected JSON, got {value!r}")


def _rows(path: Path, sink: Sink):
    name = base_name(path).lower()
    if name.endswith(".csv"):
        csv.field_size_limit(sys.maxsize)
        try:
            with open_binary(path) as raw:
                fh = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
                reader = csv.DictReader(fh)
                line = 1
                try:
                    for rec in reader:
                        yield line + 1, rec
                        line = reader.line_num
                except csv.Error as exc:
                    sink.skip(path, reader.line_num, f"not valid CSV ({exc})")
        except UnicodeDecodeError:
            sink.skip(path, None, "not UTF-8 text")
        except (OSError, EOFError) as exc:
            sink.skip(path, None, f"cannot read further ({exc})")
        return
    if first_char(path) == "[" or name.endswith(".json") and first_char(path) == "{" \
            and not _one_per_line(path):
        try:
            doc = json_document(path)
        except Malformed as exc:
            sink.skip(path, None, str(exc))
            return
        items = doc.get("data", doc.get("logs")) if isinstance(doc, dict) else doc
        if not isinstance(items, list):
            items = [doc]
        for i, rec in enumerate(items, start=1):
            if isinstance(rec, dict):
                yield -i, rec          # negative: an item number, not a line
            else:
                sink.skip(path, None, f"item {i}: expected a JSON object")
        return
    yield from json_lines(path, lambda n, why: sink.skip(path, n, why))


def _tag_list(value):
    """``request_tags``: a JSON list (or a string holding one); a Postgres array literal
    (``{a,b}``) or a comma-separated string is read too: tags never make a row unreadable."""
    if isinstance(value, str) and value.strip():
        try:
            return json.loads(value)
        except ValueError:
            inner = value.strip()
            if inner.startswith("{") and inner.endswith("}"):
                inner = inner[1:-1]
            return [t.strip().strip('"') for t in inner.split(",") if t.strip().strip('"')]
    return value if isinstance(value, list) else None


def _truthy(v) -> bool:
    return v is True or (isinstance(v, str) and v.strip().lower() in ("true", "t", "1", "yes"))


def _one_per_line(path: Path) -> bool:
    with open_binary(path) as fh:
        for raw in fh:
            if raw.strip():
                try:
                    json.loads(raw)
                    return True
                except ValueError:
                    return False
    return False


def read(files: list[Path], opts: Options, sink: Sink) -> None:
    for path in files:
        for n, rec in _rows(path, sink):
            line = n if n > 0 else None
            where = f"item {-n}: " if n < 0 else ""
            try:
                rid = text(rec.get("request_id"))
                model = text(rec.get("model")) or text(rec.get("model_group"))
                if model is None:
                    raise Malformed("model: missing")
                meta = _json_field(rec.get("metadata"), "metadata") or {}
                if not isinstance(meta, dict):
                    meta = {}
                failed = (text(rec.get("status")) or "").lower() in ("failure", "failed", "error")
                # A failed request often has no token counts at all: none billed.
                prompt = count(rec.get("prompt_tokens"), "prompt_tokens",
                               default=0 if failed else None)
                out = count(rec.get("completion_tokens"), "completion_tokens",
                            default=0 if failed else None)
                usage = meta.get("usage_object") or meta.get("usage") or {}
                if not isinstance(usage, dict):
                    usage = {}
                where_u = "metadata.usage_object"
                r = max(count(usage.get("cache_read_input_tokens"),
                              f"{where_u}.cache_read_input_tokens"),
                        count(dig(usage, "prompt_tokens_details.cached_tokens"),
                              f"{where_u}.prompt_tokens_details.cached_tokens"))
                w = count(usage.get("cache_creation_input_tokens"),
                          f"{where_u}.cache_creation_input_tokens")
                # LiteLLM's usage is OpenAI-shaped: prompt_tokens already counts the cache reads
                # and writes (Anthropic models included); a smaller one did not.
                inp = input_with_cache(prompt, r, w)
                cached = r
                cost = money(rec.get("spend"), "spend")
                if _truthy(rec.get("cache_hit")):
                    sink.ignore()        # served from LiteLLM's response cache: no model call
                    continue
                if failed and inp == 0 and out == 0 and not cost:
                    sink.ignore()        # a request that failed before any tokens were billed
                    continue
                tags = tags_from_list(_tag_list(rec.get("request_tags")) or meta.get("tags"))
            except Malformed as exc:
                sink.skip(path, line, where + str(exc))
                continue

            def lookup(name: str):
                return (text(tags.get(name)) or text(dig(meta, name))
                        or text(dig(meta, f"spend_logs_metadata.{name}"))
                        or text(rec.get(name)))

            session = text(rec.get("session_id")) or text(meta.get("session_id"))
            fallback = (session or text(meta.get("trace_id")) or text(rec.get("trace_id"))
                        or rid or f"{path.name}:{abs(n)}")
            if opts.task_by == "session":
                task = session
            elif opts.task_by == "branch":
                task = lookup("branch") or lookup("git_branch")
            else:
                task = lookup(opts.task_tag)
            if opts.phase_tag:
                phase = lookup(opts.phase_tag)
            else:
                phase = text(tags.get("agent")) or text(meta.get("agent_name"))
            sink.call(file=path, line=abs(n), task=task, fallback_task=fallback,
                      phase=phase or MAIN_PHASE, model=model, input_tokens=inp,
                      cached_input_tokens=cached, output_tokens=out,
                      timestamp=timestamp(rec.get("startTime")), cost_usd=cost,
                      dedup_key=rid)


SOURCE = Source(
    name="litellm", per_call=True, suffixes=(".csv", ".jsonl", ".ndjson", ".json"), read=read,
    summary="LiteLLM proxy spend logs (LiteLLM_SpendLogs export: CSV, JSON Lines or JSON)",
)
