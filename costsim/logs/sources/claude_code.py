"""Claude Code session files: ``~/.claude/projects/<project>/<session>.jsonl`` and the
subagents' ``<session>/subagents/agent-<id>.jsonl``.

One ``assistant`` line per API call (Claude Code may write the same message on several lines,
one per content block: deduplicated on ``message.id`` + ``requestId``, keeping the most complete
copy). Mapping:

- ``input_tokens`` = ``usage.input_tokens + cache_creation_input_tokens +
  cache_read_input_tokens`` (Anthropic counts the three apart), ``cached_input_tokens`` =
  ``cache_read_input_tokens``, ``output_tokens`` = ``usage.output_tokens``;
- ``model`` = ``message.model`` (``<synthetic>`` lines are Claude Code's own notices, not API
  calls: passed over); ``cost_usd`` = ``costUSD`` where an old version wrote it;
- task: ``sessionId`` (``--task-by branch``: ``gitBranch``, falling back to the session;
  ``tag:NAME``: the line's field NAME, e.g. ``tag:cwd``);
- phase (``--phase-by agent``): ``main`` for the main thread; a subagent's lines take its type
  (``explore``, ``plan``, ``general-purpose`` ...: the ``subagent_type`` of the Task/Agent tool
  call that started it, linked through the ``agentId`` of the tool result), ``subagent`` when
  the type cannot be found, ``compact`` for the context-compaction agent;
- ``timestamp`` = the line's ``timestamp``.
"""

from __future__ import annotations

from pathlib import Path

from ..reading import Malformed, base_name, count, dig, json_lines, money, text, timestamp
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


def read(files: list[Path], opts: Options, sink: Sink) -> None:
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
                if model == "<synthetic>":
                    sink.ignore()
                    continue
                if model is None:
                    raise Malformed("message.model: missing")
                if not isinstance(usage, dict):
                    raise Malformed("message.usage: expected an object")
                fresh = count(usage.get("input_tokens"), "message.usage.input_tokens",
                              default=None)
                written = count(usage.get("cache_creation_input_tokens"),
                                "message.usage.cache_creation_input_tokens")
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
