"""Codex CLI sessions: ``~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl``.

Each line is ``{"timestamp", "type", "payload"}``. ``session_meta`` gives the session id and git
branch, ``turn_context`` the model of the turns that follow, and each ``event_msg`` whose
``payload.type`` is ``token_count`` is one model call. Mapping:

- tokens from ``payload.info.last_token_usage`` (the call's own usage): ``input_tokens`` (cached
  included, as OpenAI counts them), ``cached_input_tokens``, ``output_tokens`` (reasoning
  included); where only the cumulative ``total_token_usage`` is written, the call is the
  difference from the previous event. An event whose cumulative total repeats one already seen
  in the session is the same call logged twice: deduplicated;
- ``model`` = the latest ``turn_context.payload.model`` (a token count before any model is known
  is malformed);
- task: the session id (``--task-by branch``: ``session_meta.payload.git.branch``;
  ``tag:NAME``: field NAME of ``session_meta.payload`` or ``turn_context.payload``, e.g.
  ``tag:cwd``); phase ``main`` (a subagent session, ``session_meta.payload.source.subagent``,
  takes that name); no stated cost.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..reading import Malformed, base_name, count, dig, json_lines, text, timestamp
from .base import MAIN_PHASE, Options, Sink, Source

_UUID = re.compile(r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})",
                   re.IGNORECASE)
_FIELDS = ("input_tokens", "cached_input_tokens", "output_tokens")


def _usage(u, where: str) -> tuple[int, int, int]:
    if not isinstance(u, dict):
        raise Malformed(f"{where}: expected an object")
    inp = count(u.get("input_tokens"), f"{where}.input_tokens", default=None)
    cached = count(u.get("cached_input_tokens"), f"{where}.cached_input_tokens")
    out = count(u.get("output_tokens"), f"{where}.output_tokens", default=None)
    if cached > inp:
        raise Malformed(f"{where}.cached_input_tokens: {cached} is more than input_tokens {inp}")
    return inp, cached, out


def _subagent(meta: dict) -> str | None:
    src = meta.get("source")
    if isinstance(src, dict) and "subagent" in src:
        sub = src["subagent"]
        if isinstance(sub, dict) and sub:
            return str(next(iter(sub))).lower()
        return text(sub)
    return None


def read(files: list[Path], opts: Options, sink: Sink) -> None:
    for path in files:
        m = _UUID.search(base_name(path))
        session = m.group(1) if m else base_name(path)
        meta: dict = {}
        context: dict = {}
        model = None
        previous: tuple[int, int, int] | None = None

        def bad(n, why, path=path):
            sink.skip(path, n, why)

        for n, obj in json_lines(path, bad):
            kind, payload = obj.get("type"), obj.get("payload")
            if not isinstance(payload, dict):
                sink.ignore()
                continue
            if kind == "session_meta":
                meta = payload
                session = text(payload.get("id")) or session
                sink.ignore()
                continue
            if kind == "turn_context":
                context = payload
                model = text(payload.get("model")) or model
                sink.ignore()
                continue
            if kind != "event_msg" or payload.get("type") != "token_count":
                sink.ignore()
                continue
            info = payload.get("info")
            if info is None:             # a rate-limit update without usage
                sink.ignore()
                continue
            try:
                if not isinstance(info, dict):
                    raise Malformed("payload.info: expected an object")
                total = info.get("total_token_usage")
                total_t = _usage(total, "payload.info.total_token_usage") \
                    if total is not None else None
                last = info.get("last_token_usage")
                if last is not None:
                    inp, cached, out = _usage(last, "payload.info.last_token_usage")
                elif total_t is not None:
                    base = previous or (0, 0, 0)
                    inp, cached, out = (a - b for a, b in zip(total_t, base))
                    if min(inp, cached, out) < 0:
                        raise Malformed("payload.info.total_token_usage: went down")
                else:
                    raise Malformed("payload.info: no last_token_usage or total_token_usage")
                use_model = text(info.get("model")) or model
                if use_model is None:
                    raise Malformed("no model: no turn_context line before this token count")
            except Malformed as exc:
                bad(n, str(exc))
                continue
            if total_t is not None:
                previous = total_t
            if opts.task_by == "session":
                task = session
            elif opts.task_by == "branch":
                task = text(dig(meta, "git.branch"))
            else:
                task = text(dig(meta, opts.task_tag)) or text(dig(context, opts.task_tag))
            if opts.phase_tag:
                phase = (text(dig(meta, opts.phase_tag)) or text(dig(context, opts.phase_tag))
                         or MAIN_PHASE)
            else:
                phase = _subagent(meta) or MAIN_PHASE
            key = (f"{session}\x1f{json.dumps(total, sort_keys=True)}"
                   if total is not None else None)
            sink.call(file=path, line=n, task=task, fallback_task=session, phase=phase,
                      model=use_model, input_tokens=inp, cached_input_tokens=cached,
                      output_tokens=out, timestamp=timestamp(obj.get("timestamp")),
                      dedup_key=key)


SOURCE = Source(
    name="codex", per_call=True, suffixes=(".jsonl",), read=read,
    summary="Codex CLI sessions (~/.codex/sessions/**/rollout-*.jsonl)",
)
