"""OpenTelemetry GenAI spans: OTLP JSON (``{"resourceSpans": [{"resource", "scopeSpans": [{
"spans": [...]}]}]}``, one document per file or one per line, as the collector's file exporter
writes) and one-span-per-line exports (a span object per line, attributes as OTLP key/value
lists or as a plain ``{key: value}`` map).

A span that carries ``gen_ai.usage.*`` is one model call. Mapping (OTel GenAI semantic
conventions):

- ``input_tokens`` = ``gen_ai.usage.input_tokens`` (cached included, as the conventions define
  it), ``cached_input_tokens`` = ``gen_ai.usage.cache_read.input_tokens``, ``output_tokens`` =
  ``gen_ai.usage.output_tokens`` (the deprecated names older instrumentations write are read
  too, and cache tokens counted apart are added: :func:`_tokens`); ``model`` =
  ``gen_ai.request.model`` (the model asked for, as routing policies and price tables name
  it), else ``gen_ai.response.model``; ``timestamp`` = the span's start; no stated cost;
- only the lowest span with usage in a chain counts: one with usage below it is an aggregate
  (``invoke_agent``, a framework's run span) or the same call seen by two instrumentations;
- Claude Code's own telemetry, ``claude_code.api_request`` OTLP log records, are calls too
  (:func:`_claude_code_call`);
- task: ``gen_ai.conversation.id`` of the span or its nearest ancestor, else the trace id
  (``--task-by branch``: ``vcs.ref.head.name`` or ``git.branch``; ``tag:NAME``: attribute NAME
  of the span, an ancestor or the resource);
- phase (``--phase-by agent``): ``gen_ai.agent.name`` of the span or its nearest ancestor, else
  ``main``;
- success: ``gen_ai.evaluation.result`` events (on spans, or as OTLP log records) with
  ``gen_ai.evaluation.score.label`` pass/fail (or ``score.value`` 1/0) give the task's outcome;
  a task passes when every evaluation of it passes.

Spans are deduplicated on trace id + span id. Parents are looked up within one file.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..reading import (Malformed, boolean, count, first_char, json_document, json_lines,
                       money, open_binary, text, timestamp)
from .base import MAIN_PHASE, Options, Sink, Source, input_with_cache

EVALUATION = "gen_ai.evaluation.result"
# Current names first, then the deprecated ones older instrumentations still write.
USAGE_IN = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.usage.prompt_tokens")
USAGE_OUT = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
             "llm.usage.completion_tokens")
CACHE_READ = ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens")
CACHE_WRITE = ("gen_ai.usage.cache_creation.input_tokens",
               "gen_ai.usage.cache_creation_input_tokens")


def _named(attrs: dict, names: tuple[str, ...]) -> int:
    for k in names:
        if attrs.get(k) is not None:
            return count(attrs[k], k)
    return 0


def _tokens(attrs: dict) -> tuple[int, int, int]:
    """(input, cached, output) of a call span. The conventions count cache reads and writes
    inside ``input_tokens``; an input smaller than them was counted the Anthropic way (apart):
    see :func:`~costsim.logs.sources.base.input_with_cache`."""
    inp = _named(attrs, USAGE_IN)
    out = _named(attrs, USAGE_OUT)
    read_ = _named(attrs, CACHE_READ)
    written = _named(attrs, CACHE_WRITE)
    return input_with_cache(inp, read_, written), read_, out


def _any_value(v):
    if not isinstance(v, dict):
        return v
    for k in ("stringValue", "boolValue", "doubleValue"):
        if k in v:
            return v[k]
    if "intValue" in v:
        try:
            return int(v["intValue"])
        except (TypeError, ValueError):
            return v["intValue"]
    if "arrayValue" in v:
        values = _dict(v["arrayValue"]).get("values")
        return [_any_value(x) for x in values] if isinstance(values, list) else []
    if "kvlistValue" in v:
        return _attrs(_dict(v["kvlistValue"]).get("values"))
    return None


def _attrs(a) -> dict:
    """OTLP ``[{"key", "value": {"stringValue": ...}}]`` or a plain map -> ``{key: value}``."""
    if isinstance(a, dict):
        return a
    out = {}
    if isinstance(a, list):
        for kv in a:
            if isinstance(kv, dict) and isinstance(kv.get("key"), str):
                out[kv["key"]] = _any_value(kv.get("value"))
    return out


def _dict(v) -> dict:
    return v if isinstance(v, dict) else {}


def _dicts(v) -> list[dict]:
    """The objects of a list (anything else in an odd file: none)."""
    return [x for x in v if isinstance(x, dict)] if isinstance(v, list) else []


def _first(obj: dict, *keys):
    for k in keys:
        v = obj.get(k)
        if v not in (None, ""):
            return v
    return None


class _Span:
    __slots__ = ("line", "trace", "id", "parent", "attrs", "resource", "start", "events")

    def __init__(self, line, raw: dict, resource: dict):
        ctx = raw.get("context") if isinstance(raw.get("context"), dict) else {}
        self.line = line
        self.trace = text(_first(raw, "traceId", "trace_id") or _first(ctx, "trace_id", "traceId"))
        self.id = text(_first(raw, "spanId", "span_id") or _first(ctx, "span_id", "spanId"))
        self.parent = text(_first(raw, "parentSpanId", "parent_span_id", "parent_id"))
        self.attrs = _attrs(raw.get("attributes"))
        res = raw.get("resource")
        self.resource = _attrs(res.get("attributes")) if isinstance(res, dict) else resource
        self.start = timestamp(_first(raw, "startTimeUnixNano", "start_time", "startTime"))
        self.events = raw.get("events") if isinstance(raw.get("events"), list) else []


def _objects(path: Path, sink: Sink):
    """(line, object) for a JSON-lines file, or (None, document) for a single JSON document."""
    def bad(n, why):
        sink.skip(path, n, why)

    if first_char(path) == "[":
        doc = json_document(path)
        for item in doc if isinstance(doc, list) else [doc]:
            yield None, item
        return
    # A pretty-printed document does not parse line by line: its first line fails.
    with open_binary(path) as fh:
        head = b""
        for raw in fh:
            if raw.strip():
                head = raw
                break
    try:
        json.loads(head)
    except ValueError:
        try:
            doc = json_document(path)
        except Malformed:
            doc = None           # not one document either: read it line by line
        if doc is not None:
            yield None, doc
            return
    yield from json_lines(path, bad)


def _collect(path: Path, sink: Sink):
    spans: list[_Span] = []
    logs: list[tuple[int | None, dict, dict]] = []
    try:
        for n, obj in _objects(path, sink):
            if not isinstance(obj, dict):
                sink.skip(path, n, "expected a JSON object")
                continue
            if "resourceSpans" in obj or "resourceLogs" in obj:
                for rs in _dicts(obj.get("resourceSpans")):
                    res = _attrs(_dict(rs.get("resource")).get("attributes"))
                    for ss in _dicts(rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans")):
                        for sp in _dicts(ss.get("spans")):
                            spans.append(_Span(n, sp, res))
                for rl in _dicts(obj.get("resourceLogs")):
                    res = _attrs(_dict(rl.get("resource")).get("attributes"))
                    for sl in _dicts(rl.get("scopeLogs")):
                        for rec in _dicts(sl.get("logRecords")):
                            logs.append((n, rec, res))
            elif _first(obj, "eventName", "event_name") == EVALUATION or (
                    obj.get("name") == EVALUATION and not _first(obj, "spanId", "span_id")):
                logs.append((n, obj, {}))
            elif any(k in obj for k in ("spanId", "span_id", "context", "attributes")):
                spans.append(_Span(n, obj, {}))
            else:
                sink.ignore()
    except Malformed as exc:
        sink.skip(path, None, str(exc))
    return spans, logs


def read(files: list[Path], opts: Options, sink: Sink) -> None:
    verdicts: dict[str, list[bool]] = {}
    for path in files:
        spans, logs = _collect(path, sink)
        by_id = {(s.trace, s.id): s for s in spans if s.id}

        def lineage(s: _Span):
            seen = 0
            while s is not None and seen < 256:
                yield s
                seen += 1
                s = by_id.get((s.trace, s.parent)) if s.parent else None

        def find(s: _Span, *keys):
            for a in lineage(s):
                for k in keys:
                    v = text(a.attrs.get(k))
                    if v:
                        return v
            return None

        def has_usage(s: _Span):
            return any(k in s.attrs for k in USAGE_IN + USAGE_OUT)

        # A span with usage that has a span with usage below it is not counted: it is an
        # aggregate (an invoke_agent span, a framework's run span) or the same call seen by two
        # instrumentations (an SDK's span inside a gateway's); the spans below are.
        covered: set = set()
        for s in spans:
            if has_usage(s):
                for a in list(lineage(s))[1:]:
                    covered.add((a.trace, a.id))

        def task_of(s: _Span) -> tuple[str | None, str]:
            fallback = find(s, "gen_ai.conversation.id") or s.trace or f"{path.name}"
            if opts.task_by == "session":
                return find(s, "gen_ai.conversation.id"), fallback
            if opts.task_by == "branch":
                return (find(s, "vcs.ref.head.name", "git.branch")
                        or text(s.resource.get("vcs.ref.head.name"))), fallback
            return (find(s, opts.task_tag) or text(s.resource.get(opts.task_tag))), fallback

        for s in spans:
            for ev in s.events:
                if isinstance(ev, dict) and ev.get("name") == EVALUATION:
                    _verdict(path, s.line, _attrs(ev.get("attributes")), task_of(s), verdicts,
                             sink)
            if not has_usage(s):
                sink.ignore()
                continue
            if (s.trace, s.id) in covered:
                sink.ignore()
                continue
            a = s.attrs
            try:
                model = (text(a.get("gen_ai.request.model")) or text(a.get("gen_ai.response.model"))
                         or text(a.get("llm.request.model")))
                if model is None:
                    raise Malformed("gen_ai.request.model / gen_ai.response.model: missing")
                inp, cached, out = _tokens(a)
            except Malformed as exc:
                sink.skip(path, s.line, f"span {s.id}: {exc}" if s.line is None else str(exc))
                continue
            task, fallback = task_of(s)
            if opts.phase_tag:
                phase = find(s, opts.phase_tag) or text(s.resource.get(opts.phase_tag))
            else:
                phase = find(s, "gen_ai.agent.name")
            sink.call(file=path, line=s.line or 0, task=task, fallback_task=fallback,
                      phase=phase or MAIN_PHASE, model=model, input_tokens=inp,
                      cached_input_tokens=cached, output_tokens=out, timestamp=s.start,
                      dedup_key=f"{s.trace}\x1f{s.id}" if s.id else None)
        for n, rec, res in logs:
            attrs = _attrs(rec.get("attributes"))
            if _is_claude_code_call(rec, attrs):
                _claude_code_call(path, n, rec, attrs, res, opts, sink)
                continue
            conv = text(attrs.get("gen_ai.conversation.id"))
            trace = text(_first(rec, "traceId", "trace_id"))
            span = by_id.get((trace, text(_first(rec, "spanId", "span_id"))))
            if span is not None:
                key = task_of(span)
            else:
                key = (conv if opts.task_by == "session" else text(attrs.get(opts.task_tag or "")),
                       conv or trace or "")
            _verdict(path, n, attrs, key, verdicts, sink)
    for task in sorted(verdicts):
        sink.outcome(None, task, all(verdicts[task]))


CLAUDE_CODE_CALL = "claude_code.api_request"


def _is_claude_code_call(rec: dict, attrs: dict) -> bool:
    body = _any_value(rec.get("body"))
    return (body == CLAUDE_CODE_CALL or _first(rec, "eventName", "event_name") == CLAUDE_CODE_CALL
            or (attrs.get("event.name") in ("api_request", CLAUDE_CODE_CALL)
                and "input_tokens" in attrs))


def _claude_code_call(path: Path, n, rec: dict, attrs: dict, res: dict, opts: Options,
                      sink: Sink) -> None:
    """Claude Code's own telemetry: one ``claude_code.api_request`` log event per API call.
    Its token counts are Anthropic's (cache reads and writes apart from ``input_tokens``)."""
    try:
        model = text(attrs.get("model"))
        if model is None:
            raise Malformed("claude_code.api_request: model missing")
        fresh = count(attrs.get("input_tokens"), "input_tokens", default=None)
        read_ = count(attrs.get("cache_read_tokens"), "cache_read_tokens")
        written = count(attrs.get("cache_creation_tokens"), "cache_creation_tokens")
        out = count(attrs.get("output_tokens"), "output_tokens", default=None)
        cost = money(attrs.get("cost_usd"), "cost_usd")
    except Malformed as exc:
        sink.skip(path, n, str(exc))
        return
    session = text(attrs.get("session.id")) or text(res.get("session.id"))
    if opts.task_by == "session":
        task = session
    elif opts.task_by == "branch":
        task = None
    else:
        task = text(attrs.get(opts.task_tag)) or text(res.get(opts.task_tag))
    phase = (text(attrs.get(opts.phase_tag)) or text(res.get(opts.phase_tag))
             if opts.phase_tag else None)
    when = timestamp(attrs.get("event.timestamp")) or timestamp(
        _first(rec, "timeUnixNano", "observedTimeUnixNano"))
    seq = text(attrs.get("event.sequence"))
    key = "\x1f".join(str(x) for x in (
        "claude_code", session, seq or when, model, fresh, read_, written, out))
    sink.call(file=path, line=n or 0, task=task, fallback_task=session or path.name,
              phase=phase or MAIN_PHASE, model=model, input_tokens=fresh + read_ + written,
              cached_input_tokens=read_, output_tokens=out, timestamp=when, cost_usd=cost,
              dedup_key=key)


def _verdict(path, line, attrs: dict, key, verdicts: dict, sink: Sink) -> None:
    task = key[0] or key[1]
    if not task:
        return
    try:
        ok = boolean(attrs.get("gen_ai.evaluation.score.label"), "gen_ai.evaluation.score.label")
    except Malformed:
        ok = None
    if ok is None:
        v = attrs.get("gen_ai.evaluation.score.value")
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v in (0, 1):
            ok = bool(v)
    if ok is None:
        return
    verdicts.setdefault(task, []).append(ok)


SOURCE = Source(
    name="otlp", per_call=True, suffixes=(".json", ".jsonl", ".ndjson"), read=read,
    summary="OpenTelemetry GenAI spans (OTLP JSON, or one span per line)",
)
