"""Claude Code session files: ``~/.claude/projects/<project>/<session>.jsonl`` and the
subagents' ``<session>/subagents/agent-<id>.jsonl``.

One ``assistant`` line per API call (Claude Code may write the same message on several lines,
one per content block: deduplicated on ``message.id`` + ``requestId``, keeping the most complete
copy). Mapping:

- ``input_tokens`` = ``usage.input_tokens + cache_creation_input_tokens +
  cache_read_input_tokens`` (Anthropic counts the three apart; the writes from the nested
  ``cache_creation`` breakdown where the flat total is absent), ``cached_input_tokens`` =
  ``cache_read_input_tokens``, ``output_tokens`` = ``usage.output_tokens``;
- ``model`` = ``message.model`` (``<synthetic>`` lines are Claude Code's own notices and
  ``isApiErrorMessage`` lines its rendering of a failed request, not billed calls: passed
  over); ``cost_usd`` = ``costUSD`` where an old version wrote it;
- task: ``sessionId`` (``--task-by branch``: ``gitBranch``, falling back to the session;
  ``tag:NAME``: the line's field NAME, e.g. ``tag:cwd``);
- phase (``--phase-by agent``): ``main`` for the main thread; a subagent's lines take its type
  (``explore``, ``plan``, ``general-purpose`` ...: the ``subagent_type`` of the Task/Agent tool
  call that started it, linked through the ``agentId`` of the tool result), ``subagent`` when
  the type cannot be found, ``compact`` for the context-compaction agent;
- ``timestamp`` = the line's ``timestamp``.

Files are read oldest first, so that of the copies a resumed session repeats, the original's is
kept.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..reading import (Malformed, base_name, count, dig, json_lines, money, open_binary, text,
                       timestamp)
from .base import MAIN_PHASE, Options, Sink, Source

SUBAGENT = "subagent"
COMPACT = "compact"
_AGENT_TOOLS = ("Task", "Agent")


def _session_of(path: Path) -> str:
    """The session a file belongs to when its lines do not say: ``<session>.jsonl`` or
    ``<session>/subagents/agent-*.jsonl``."""
    if path.parent.name == "subagents":
        return path.parent.parent.name
    stem = base_name(path)
    return stem[: -len(".jsonl")] if stem.endswith(".jsonl") else stem


_TS = re.compile(rb'"timestamp"\s*:\s*"([^"]{10,40})"')
_TAIL = 1 << 18


def _span(path: Path) -> tuple[str, str]:
    """(first, last) ``timestamp`` written in the file, as text ('' when none is found)."""
    first = last = ""
    try:
        with open_binary(path) as fh:
            for raw in fh:
                m = _TS.search(raw)
                if m:
                    first = m.group(1).decode("latin-1")
                    break
            if path.name.lower().endswith(".gz"):
                for raw in fh:
                    found = _TS.findall(raw)
                    if found:
                        last = found[-1].decode("latin-1")
            else:
                size = fh.seek(0, 2)
                fh.seek(max(0, size - _TAIL))
                found = _TS.findall(fh.read())
                if found:
                    last = found[-1].decode("latin-1")
    except (OSError, EOFError):
        pass
    return first, last or first


def _in_time_order(files: list[Path]) -> list[Path]:
    """Session files oldest first (first timestamp, then last, then path). A session resumed
    into a new file repeats the earlier lines: the copies tie on tokens and timestamps, and the
    deduplication then keeps the one read first, the original session's."""
    return sorted(files, key=lambda f: (*_span(f), str(f)))


def read(files: list[Path], opts: Options, sink: Sink) -> None:
    files = _in_time_order(files)
    tool_types: dict[str, str] = {}      # tool_use id -> subagent_type
    agent_tool: dict[str, str] = {}      # agentId -> tool_use id that started it
    refs: set[str] = set()
    for path in files:
        is_agent_file = path.parent.name == "subagents" or base_name(path).startswith("agent-")
        compact = base_name(path).startswith("agent-acompact")
        fallback_session = _session_of(path)

        def bad(n, why, path=path):
            sink.skip(path, n, why)

        for n, obj in json_lines(path, bad):
            kind = obj.get("type")
            msg = obj.get("message")
            if kind == "user":
                _links(obj, msg, agent_tool)
                sink.ignore()
                continue
            if kind != "assistant" or not isinstance(msg, dict):
                sink.ignore()
                continue
            _tool_types(msg, tool_types)
            usage = msg.get("usage")
            if usage is None:
                sink.ignore()
                continue
            try:
                model = text(msg.get("model"))
                if model == "<synthetic>" or obj.get("isApiErrorMessage") is True:
                    # Claude Code's own notices and its rendering of a failed request (an API
                    # error, a rate limit): no call was billed.
                    sink.ignore()
                    continue
                if model is None:
                    raise Malformed("message.model: missing")
                if not isinstance(usage, dict):
                    raise Malformed("message.usage: expected an object")
                fresh = count(usage.get("input_tokens"), "message.usage.input_tokens",
                              default=None)
                written = _cache_writes(usage)
                read_ = count(usage.get("cache_read_input_tokens"),
                              "message.usage.cache_read_input_tokens")
                out = count(usage.get("output_tokens"), "message.usage.output_tokens",
                            default=None)
                cost = money(obj.get("costUSD"), "costUSD")
            except Malformed as exc:
                bad(n, str(exc))
                continue
            session = text(obj.get("sessionId")) or fallback_session
            if opts.task_by == "session":
                task = session
            elif opts.task_by == "branch":
                task = text(obj.get("gitBranch"))
            else:
                task = text(dig(obj, opts.task_tag))
            phase, ref = MAIN_PHASE, None
            if opts.phase_tag:
                phase = text(dig(obj, opts.phase_tag)) or MAIN_PHASE
            elif compact:
                phase = COMPACT
            elif obj.get("isSidechain") or is_agent_file:
                agent = text(obj.get("agentId"))
                if agent:
                    phase, ref = None, agent
                    refs.add(agent)
                else:
                    phase = SUBAGENT
            mid, rid = text(msg.get("id")), text(obj.get("requestId"))
            sink.call(file=path, line=n, task=task, fallback_task=session, phase=phase,
                      phase_ref=ref, model=model, input_tokens=fresh + written + read_,
                      cached_input_tokens=read_, output_tokens=out,
                      timestamp=timestamp(obj.get("timestamp")), cost_usd=cost,
                      dedup_key=f"{mid}\x1f{rid or ''}" if mid else None)
    for agent in sorted(refs):
        tool = agent_tool.get(agent)
        sub = tool_types.get(tool) if tool else None
        sink.name_phase(agent, sub.strip().lower() if sub else SUBAGENT)


def _cache_writes(usage: dict) -> int:
    """Tokens written to the cache: ``cache_creation_input_tokens`` (the total), else the sum of
    the nested ``cache_creation`` breakdown (``ephemeral_5m_input_tokens``,
    ``ephemeral_1h_input_tokens``) that newer API versions write beside or instead of it."""
    flat = usage.get("cache_creation_input_tokens")
    if flat is not None:
        return count(flat, "message.usage.cache_creation_input_tokens")
    nested = usage.get("cache_creation")
    if nested is None:
        return 0
    if not isinstance(nested, dict):
        raise Malformed("message.usage.cache_creation: expected an object")
    return sum(count(v, f"message.usage.cache_creation.{k}") for k, v in sorted(nested.items())
               if k.endswith("_input_tokens"))


def _tool_types(msg: dict, tool_types: dict[str, str]) -> None:
    content = msg.get("content")
    if not isinstance(content, list):
        return
    for block in content:
        if (isinstance(block, dict) and block.get("type") == "tool_use"
                and block.get("name") in _AGENT_TOOLS and isinstance(block.get("input"), dict)):
            sub = text(block["input"].get("subagent_type"))
            if sub and text(block.get("id")):
                tool_types[block["id"]] = sub


def _links(obj: dict, msg, agent_tool: dict[str, str]) -> None:
    result = obj.get("toolUseResult")
    agent = text(result.get("agentId")) if isinstance(result, dict) else None
    if not agent or not isinstance(msg, dict) or not isinstance(msg.get("content"), list):
        return
    for block in msg["content"]:
        if isinstance(block, dict) and block.get("type") == "tool_result":
            tool = text(block.get("tool_use_id"))
            if tool:
                agent_tool.setdefault(agent, tool)
                return


SOURCE = Source(
    name="claude-code", per_call=True, suffixes=(".jsonl",), read=read,
    summary="Claude Code session files (~/.claude/projects/**/*.jsonl, subagents included)",
)
