"""Codex CLI sessions: ``~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl``.

Each line is ``{"timestamp", "type", "payload"}``. ``session_meta`` gives the session id and git
branch, ``turn_context`` the model of the turns that follow, and each ``event_msg`` whose
``payload.type`` is ``token_count`` is one model call. Mapping:

- tokens from ``payload.info.last_token_usage`` (the call's own usage): ``input_tokens`` (cached
  included, as OpenAI counts them), ``cached_input_tokens``, ``output_tokens`` (reasoning
  included); where only the cumulative ``total_token_usage`` is written, the call is the
  difference from the previous event (a total that drops: the count started again, the call is
  that total). An event whose cumulative total repeats one already seen in the session is the
  same call logged twice: deduplicated. ``cache_read_input_tokens`` stands for
  ``cached_input_tokens`` where a version wrote that; the first versions' flat payload (usage
  fields beside ``type``, no ``info``) is one call;
- ``model`` = the one the token count names (``info.model`` ...), else the latest
  ``turn_context.payload.model``; token counts before any model is named take the first one
  the session names later, else :data:`LEGACY_MODEL` (as ccusage assumes);
- task: the session id (``--task-by branch``: ``session_meta.payload.git.branch``;
  ``tag:NAME``: field NAME of ``session_meta.payload`` or ``turn_context.payload``, e.g.
  ``tag:cwd``); phase ``main`` (a subagent session, ``session_meta.payload.source.subagent``,
  takes that name); no stated cost.
"""

from __future__ import annotations

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
    if u.get("cached_input_tokens") is None and u.get("cache_read_input_tokens") is not None:
        cached = count(u.get("cache_read_input_tokens"), f"{where}.cache_read_input_tokens")
    else:
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


LEGACY_MODEL = "gpt-5"   # Codex's default model in the versions that did not log it


def _model_in(payload: dict) -> str | None:
    """The model a ``token_count`` payload names itself (some versions put it in ``info``)."""
    info = payload.get("info") if isinstance(payload.get("info"), dict) else {}
    for v in (info.get("model"), info.get("model_name"), dig(info, "metadata.model"),
              payload.get("model"), dig(payload, "metadata.model")):
        if text(v):
            return text(v)
    return None


def _call_usage(payload: dict, previous):
    """``(input, cached, output), total`` of one ``token_count`` payload; ``total`` is the
    cumulative ``(input, cached, output)`` where the event gives it."""
    info = payload.get("info")
    if info is None:
        # The first versions that logged token counts wrote the call's own usage flat in the
        # payload (no ``info``).
        return _usage(payload, "payload"), None
    if not isinstance(info, dict):
        raise Malformed("payload.info: expected an object")
    total = info.get("total_token_usage")
    total_t = _usage(total, "payload.info.total_token_usage") if total is not None else None
    last = info.get("last_token_usage")
    if last is not None:
        return _usage(last, "payload.info.last_token_usage"), total_t
    if total_t is None:
        raise Malformed("payload.info: no last_token_usage or total_token_usage")
    base = previous or (0, 0, 0)
    delta = tuple(a - b for a, b in zip(total_t, base))
    if min(delta) < 0:
        delta = total_t          # the cumulative count started again: all of it is new
    if delta[1] > delta[0]:
        raise Malformed(f"payload.info.total_token_usage: cached_input_tokens grew by "
                        f"{delta[1]}, more than input_tokens ({delta[0]})")
    return delta, total_t


def read(files: list[Path], opts: Options, sink: Sink) -> None:
    for path in files:
        m = _UUID.search(base_name(path))
        session = m.group(1) if m else base_name(path)
        meta: dict = {}
        context: dict = {}
        model = None
        previous: tuple[int, int, int] | None = None
        pending: list[dict] = []          # token counts read before any model was named

        def bad(n, why, path=path):
            sink.skip(path, n, why)

        def emit(call: dict, model: str, path=path) -> None:
            sink.call(file=path, model=model, **call)

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
            if payload.get("info") is None and "input_tokens" not in payload:
                sink.ignore()            # a rate-limit update without usage
                continue
            try:
                (inp, cached, out), total_t = _call_usage(payload, previous)
            except Malformed as exc:
                bad(n, str(exc))
                continue
            if total_t is not None:
                previous = total_t
            model = _model_in(payload) or model
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
            key = f"{session}\x1f{total_t}" if total_t is not None else None
            call = dict(line=n, task=task, fallback_task=session, phase=phase,
                        input_tokens=inp, cached_input_tokens=cached, output_tokens=out,
                        timestamp=timestamp(obj.get("timestamp")), dedup_key=key)
            if model is None:
                pending.append(call)
                continue
            for early in pending:
                emit(early, model)
            pending.clear()
            emit(call, model)
        for early in pending:             # no model named anywhere in the file
            emit(early, model or LEGACY_MODEL)


SOURCE = Source(
    name="codex", per_call=True, suffixes=(".jsonl",), read=read,
    summary="Codex CLI sessions (~/.codex/sessions/**/rollout-*.jsonl)",
)
