"""The checker's side of `costsim log import`: agent logs written from a known truth.

Written apart from costsim's importers (nothing here imports costsim): a set of tasks with known
models, calls, tokens, spend and outcomes (`Truth`), and writers that lay them out as each agent
writes its files, with the noise real logs carry (streaming copies, resumed sessions, repeated
token counts, spans exported twice, overlapping spend exports, malformed lines, a `.gz` file,
a folder tree). `expected_*` work out, from the truth alone, what an import and a calibration
must report. tests/test_logs_e2e.py drives `costsim` over these files as a user would;
benchmarks/e2e_logs.py runs the same at a size where the fitted workload is checked closely.

Prices are per 1M tokens; a call without a stated cost is billed: uncached input at `input`,
cache reads at `cache_read`, output at `output` (cache writes are input: the runs log has no
cache-write column).
"""

from __future__ import annotations

from collections import defaultdict

import csv
import gzip
import io
import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

# table id -> (input, output, cache_read) USD per 1M tokens; how each source logs the id.
PRICES = {
    "claude-sonnet-4-5": (3.0, 15.0, 0.3),
    "claude-haiku-4-5": (1.0, 5.0, 0.1),
    "gpt-5-codex": (1.25, 10.0, 0.125),
    "gpt-4.1-mini": (0.4, 1.6, 0.1),
}
TIERS = {"claude-sonnet-4-5": ("anthropic", "midrange", 60),
         "claude-haiku-4-5": ("anthropic", "budget", 40),
         "gpt-5-codex": ("openai", "midrange", 62),
         "gpt-4.1-mini": ("openai", "budget", 35)}
LOGGED = {"claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
          "claude-haiku-4-5": "claude-haiku-4-5-20251001",
          "gpt-5-codex": "gpt-5-codex",
          "gpt-4.1-mini": "gpt-4.1-mini"}
T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=timezone.utc)


def prices_yaml() -> str:
    lines = ["version: 1", "as_of: 2026-11-20", "currency: USD", "models:"]
    for m, (i, o, c) in PRICES.items():
        prov, tier, score = TIERS[m]
        lines.append(f"  {m}: {{provider: {prov}, tier: {tier}, input: {i}, output: {o}, "
                     f"cache_read: {c}, coding_score: {score}}}")
    return "\n".join(lines) + "\n"


@dataclass
class Call:
    model: str              # the price table's id
    phase: str
    fresh: int              # input neither read from nor written to the cache
    read: int               # cache reads
    write: int              # cache writes
    out: int                # output (reasoning included)
    at: datetime
    cost: float | None = None   # what the source states, if it does

    @property
    def input(self) -> int:
        return self.fresh + self.read + self.write

    def priced(self) -> float:
        if self.cost is not None:
            return self.cost
        i, o, c = PRICES[self.model]
        return ((self.input - self.read) * i + self.read * c + self.out * o) / 1e6


@dataclass
class Task:
    id: str
    branch: str
    outcome: bool | None        # None: not in the outcomes file
    calls: list[Call] = field(default_factory=list)
    run: str = ""
    tries: list[bool] = field(default_factory=list)   # benchmark sources: per-attempt success

    def totals(self) -> tuple[int, int, int]:
        return (sum(c.input for c in self.calls), sum(c.read for c in self.calls),
                sum(c.out for c in self.calls))

    def spend(self) -> float:
        return sum(c.priced() for c in self.calls)


@dataclass
class Truth:
    source: str
    tasks: list[Task]
    paths: list[Path]               # what to pass to `log import`
    outcomes: Path | None = None    # the outcomes file (usage sources)
    duplicates: int = 0             # copies of a call the import must drop
    malformed: int = 0              # lines the import must skip and count
    unmatched_outcomes: int = 0     # outcome ids that name no task
    runs: dict[str, str] = field(default_factory=dict)   # run -> its model (table id)

    def by_run(self) -> dict[str, list[Task]]:
        out: dict[str, list[Task]] = {}
        for t in self.tasks:
            out.setdefault(t.run, []).append(t)
        return out


# --- the truth ------------------------------------------------------------------------------

def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _success(rng: random.Random, p: float) -> bool:
    return rng.random() < p


def _usage_tasks(rng: random.Random, n: int, main: str, sub: str | None, run: str,
                 cache_writes: bool, p_success: float, no_outcome: int,
                 stated_cost: bool = False) -> list[Task]:
    """n sessions of 2-6 main calls; with `sub`, every third one runs a subagent (2-3 calls) in
    the middle. The last `no_outcome` tasks get no outcome.

    Each call resends its agent's context so far (system prompt, then every earlier call's new
    input and output) and adds new input (tool results): the resent prefix is read from the
    cache. Anthropic-shaped usage (`cache_writes`) writes the new part to the cache and leaves a
    few tokens uncached; OpenAI-shaped usage caches in blocks of 128 and has no cache writes."""
    tasks = []
    for i in range(n):
        t = Task(id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                 branch=f"feat-{i:03d}", outcome=_success(rng, p_success), run=run)
        at = T0 + timedelta(hours=3 * i, seconds=rng.randrange(0, 600))
        n_main = rng.randint(2, 6)
        # A subagent's result always goes back to the main loop: one main call at least
        # follows it.
        sub_after = rng.randrange(0, n_main - 1) if sub and i % 3 == 0 else None
        ctx = {"main": rng.randrange(9_000, 16_000)}
        plan = []
        for k in range(n_main):
            plan.append(("main", main))
            if k == sub_after:
                plan += [("explore", sub)] * rng.randint(2, 3)
        for phase, model in plan:
            if phase not in ctx:
                ctx[phase] = rng.randrange(4_000, 7_000)     # the subagent's own prompt
            at += timedelta(seconds=rng.randint(3, 90), milliseconds=rng.randrange(1000))
            prefix, new, out = ctx[phase], rng.randrange(200, 4_000), rng.randrange(40, 1_800)
            first = not any(c.phase == phase for c in t.calls)
            if cache_writes:
                fresh = rng.randint(1, 9)
                call = Call(model, phase, fresh=fresh, read=0 if first else prefix,
                            write=new + (prefix if first else 0) - fresh, out=out, at=at)
            else:
                read = 0 if first else prefix - prefix % 128
                call = Call(model, phase, fresh=prefix - read + new, read=read, write=0,
                            out=out, at=at)
            ctx[phase] = prefix + new + out
            if stated_cost:         # what the gateway billed: the tokens at the table's rates
                call.cost = round(call.priced(), 10)
            t.calls.append(call)
        tasks.append(t)
    for t in tasks[n - no_outcome:]:
        t.outcome = None
    return tasks


def _write(path: Path, text: str, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def _outcomes_csv(root: Path, tasks: list[Task], extra: int = 1) -> tuple[Path, int]:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["task_id", "success", "reviewer_changes"])
    for t in tasks:
        if t.outcome is not None:
            w.writerow([t.id, "true" if t.outcome else "false", 0 if t.outcome else ""])
    for j in range(extra):
        w.writerow([f"no-such-task-{j}", "true", 0])
    return _write(root / "outcomes.csv", buf.getvalue()), extra


def _jsonl(records) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


# --- Claude Code ----------------------------------------------------------------------------

def claude_code(root: Path, n: int = 12, seed: int = 1) -> Truth:
    """~/.claude/projects: two projects, subagents in their own files, streaming copies of a
    response, a resumed session repeating the lines it resumed, a `.gz` session, notices that
    are not calls, two malformed lines."""
    rng = random.Random(seed)
    tasks = _usage_tasks(rng, n, "claude-sonnet-4-5", "claude-haiku-4-5", "claude-code",
                         cache_writes=True, p_success=0.6, no_outcome=2)
    proj = root / "projects"
    dups = malformed = 0
    files: dict[str, list] = {}

    def base(t: Task, sid: str, c: Call, side: bool) -> dict:
        return {"parentUuid": None, "isSidechain": side, "userType": "external",
                "cwd": "/home/dev/app", "sessionId": sid, "version": "2.0.61",
                "gitBranch": t.branch, "timestamp": _iso(c.at)}

    def assistant(t, sid, c, j, side, content=None, out=None, agent=None):
        rec = base(t, sid, c, side) | {
            "type": "assistant", "uuid": f"a-{sid[:8]}-{j}",
            "requestId": f"req_{sid[:8]}{j:04d}",
            "message": {"id": f"msg_{sid[:8]}{j:04d}", "type": "message", "role": "assistant",
                        "model": LOGGED[c.model],
                        "content": content or [{"type": "text", "text": "ok"}],
                        "usage": {"input_tokens": c.fresh,
                                  "cache_creation_input_tokens": c.write,
                                  "cache_read_input_tokens": c.read,
                                  "cache_creation": {"ephemeral_5m_input_tokens": c.write,
                                                     "ephemeral_1h_input_tokens": 0},
                                  "output_tokens": c.out if out is None else out,
                                  "service_tier": "standard"}}}
        if agent:
            rec["agentId"] = agent
        return rec

    for ti, t in enumerate(tasks):
        sid = t.id
        folder = proj / ("-home-dev-app" if ti % 2 else "-home-dev-web")
        main_lines: list = [{"type": "summary", "summary": f"task {ti}", "leafUuid": "x"}]
        first = t.calls[0]
        main_lines.append(base(t, sid, first, False) | {
            "type": "user", "uuid": f"u-{sid[:8]}",
            "message": {"role": "user", "content": "Fix the bug."},
            "timestamp": _iso(first.at - timedelta(seconds=2))})
        sub_lines: list = []
        agent = f"a{ti:03d}f9e"
        for j, c in enumerate(t.calls):
            if c.phase == "explore":
                sub_lines.append(assistant(t, sid, c, j, True, agent=agent))
                continue
            nxt = t.calls[j + 1] if j + 1 < len(t.calls) else None
            starts_sub = nxt is not None and nxt.phase == "explore"
            if j % 2 == 0 and c.out > 10:
                # Streaming: a thinking block with a partial output count first.
                main_lines.append(assistant(t, sid, c, j, False, out=c.out // 3, content=[
                    {"type": "thinking", "thinking": "hm", "signature": "x"}]))
                dups += 1
            content = ([{"type": "tool_use", "id": f"toolu_{sid[:8]}{j}", "name": "Task",
                         "input": {"description": "look", "prompt": "find it",
                                   "subagent_type": "Explore"}}] if starts_sub else None)
            main_lines.append(assistant(t, sid, c, j, False, content=content))
            if starts_sub:
                last_sub = max(k for k, x in enumerate(t.calls) if x.phase == "explore")
                done = t.calls[last_sub]
                main_lines.append(base(t, sid, done, False) | {
                    "type": "user", "uuid": f"u-{sid[:8]}-{j}",
                    "timestamp": _iso(done.at + timedelta(seconds=1)),
                    "message": {"role": "user", "content": [
                        {"tool_use_id": f"toolu_{sid[:8]}{j}", "type": "tool_result",
                         "content": [{"type": "text", "text": "found"}]}]},
                    "toolUseResult": {"status": "completed", "agentId": agent,
                                      "totalTokens": 99999, "usage": {
                                          "input_tokens": 5, "output_tokens": 5}}})
        # Not calls: Claude Code's own notice and an API error shown as a message.
        last = t.calls[-1]
        notice = assistant(t, sid, last, 900, False)
        notice["message"]["model"] = "<synthetic>"
        notice["message"]["usage"] = {"input_tokens": 0, "output_tokens": 0}
        err = assistant(t, sid, last, 901, False)
        err["isApiErrorMessage"] = True
        main_lines += [notice, err]
        files[str(folder / f"{sid}.jsonl")] = main_lines
        if sub_lines:
            files[str(folder / sid / "subagents" / f"agent-{agent}.jsonl")] = sub_lines

    # A resumed session: a new file (new sessionId) repeats task 1's lines, then goes on; the
    # copies belong to task 1, the new calls to a task of their own.
    orig = tasks[1]
    rsid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    resumed = Task(id=rsid, branch=orig.branch, outcome=True, run="claude-code")
    at = max(c.at for c in orig.calls) + timedelta(hours=1)
    for k in range(2):
        at += timedelta(seconds=30)
        resumed.calls.append(Call("claude-sonnet-4-5", "main", rng.randrange(1, 3000),
                                  rng.randrange(0, 40_000), rng.randrange(0, 2000),
                                  rng.randrange(1, 900), at))
    okey = next(k for k in files if k.endswith(f"{orig.id}.jsonl"))
    copied = []
    for rec in files[okey]:
        if rec.get("type") == "assistant" and "message" in rec:
            copied.append(json.loads(json.dumps(rec)) | {"sessionId": rsid})
            if rec["message"]["model"] != "<synthetic>" and not rec.get("isApiErrorMessage"):
                dups += 1
    new = [assistant(resumed, rsid, c, 100 + j, False) for j, c in enumerate(resumed.calls)]
    files[str(Path(okey).parent / f"{rsid}.jsonl")] = copied + new
    tasks.append(resumed)

    # Malformed: a truncated line and a count that is not a count (each in its own task's file).
    k0 = next(iter(files))
    files[k0].insert(2, '{"type":"assistant","message":{"id":"msg_trunc')
    bad = assistant(tasks[0], "bad-session-0000", tasks[0].calls[0], 999, False)
    bad["message"]["usage"]["output_tokens"] = "12x"
    files[k0].append(bad)
    malformed += 2

    paths = []
    for i, (name, lines) in enumerate(sorted(files.items())):
        paths.append(_write(Path(name), _jsonl(lines), gz=(i == 3)))
    oc, extra = _outcomes_csv(root, tasks)
    return Truth("claude-code", tasks, [proj], oc, dups, malformed, extra,
                 {"claude-code": "claude-sonnet-4-5"})


# --- Codex CLI ------------------------------------------------------------------------------

def codex(root: Path, n: int = 12, seed: int = 2) -> Truth:
    """~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl: session_meta, turn_context, token_count
    events with last and cumulative usage (a count logged twice, rate-limit-only events), one
    older session with cumulative totals only, a `.gz` session, a malformed line."""
    rng = random.Random(seed)
    tasks = _usage_tasks(rng, n, "gpt-5-codex", None, "codex", cache_writes=False,
                         p_success=0.55, no_outcome=2)
    dups = 0
    paths = []
    for ti, t in enumerate(tasks):
        start = t.calls[0].at - timedelta(seconds=5)
        lines: list = [
            {"timestamp": _iso(start), "type": "session_meta",
             "payload": {"id": t.id, "timestamp": _iso(start), "cwd": "/home/dev/r",
                         "originator": "codex_cli_rs", "cli_version": "0.46.0",
                         "git": {"commit_hash": "4f1c2ab", "branch": t.branch}}},
            {"timestamp": _iso(start), "type": "turn_context",
             "payload": {"cwd": "/home/dev/r", "approval_policy": "on-request",
                         "model": LOGGED["gpt-5-codex"], "effort": "medium"}},
            {"timestamp": _iso(start), "type": "response_item",
             "payload": {"type": "message", "role": "user",
                         "content": [{"type": "input_text", "text": "do it"}]}}]
        tot = {"input_tokens": 0, "cached_input_tokens": 0, "output_tokens": 0,
               "reasoning_output_tokens": 0, "total_tokens": 0}
        only_totals = ti == 4
        for j, c in enumerate(t.calls):
            reasoning = c.out // 4
            last = {"input_tokens": c.input, "cached_input_tokens": c.read,
                    "output_tokens": c.out, "reasoning_output_tokens": reasoning,
                    "total_tokens": c.input + c.out}
            for k in last:
                tot[k] += last[k]
            info = {"total_token_usage": dict(tot)}
            if not only_totals:
                info["last_token_usage"] = last
            info["model_context_window"] = 272000
            ev = {"timestamp": _iso(c.at), "type": "event_msg",
                  "payload": {"type": "token_count", "info": info,
                              "rate_limits": {"primary": {"used_percent": 3.0}}}}
            lines.append(ev)
            if j == 1:                          # Codex logs some counts twice
                lines.append(ev | {"timestamp": _iso(c.at + timedelta(milliseconds=5))})
                dups += 1
            lines.append({"timestamp": _iso(c.at), "type": "event_msg",
                          "payload": {"type": "token_count", "info": None,
                                      "rate_limits": {"primary": {"used_percent": 4.0}}}})
        if ti == 2:
            lines.insert(4, '{"timestamp":"2026-03-04T10:00:25.640Z","type":"event_msg","pay')
        day = t.calls[0].at
        name = (f"rollout-{day:%Y-%m-%dT%H-%M-%S}-{t.id}.jsonl")
        paths.append(_write(root / "sessions" / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}" / name,
                            _jsonl(lines), gz=(ti == 5)))
    oc, extra = _outcomes_csv(root, tasks)
    return Truth("codex", tasks, [root / "sessions"], oc, dups, 1, extra,
                 {"codex": "gpt-5-codex"})


# --- OpenTelemetry --------------------------------------------------------------------------

def _kv(key: str, v) -> dict:
    if isinstance(v, bool):
        val = {"boolValue": v}
    elif isinstance(v, int):
        val = {"intValue": str(v)}              # proto3 JSON: int64 as a string
    else:
        val = {"stringValue": v}
    return {"key": key, "value": val}


def otlp(root: Path, n: int = 12, seed: int = 3) -> Truth:
    """OTLP JSON as the collector's file exporter writes it (one document per line), with an
    invoke_agent span totalling its calls (not a call), a document exported twice and int64
    values as strings; plus one span per line (plain attribute maps) for the other half of the
    tasks, a `.gz` copy, and a malformed line."""
    rng = random.Random(seed)
    tasks = _usage_tasks(rng, n, "gpt-4.1-mini", "gpt-4.1-mini", "otlp", cache_writes=False,
                         p_success=0.5, no_outcome=2)
    for t in tasks:
        for c in t.calls:
            if c.phase == "explore":
                c.phase = "researcher"
            else:
                c.phase = "coder"
    docs: list = []
    span_lines: list = []
    dups = 0
    for ti, t in enumerate(tasks):
        trace = f"{rng.getrandbits(128):032x}"
        root_id = f"{rng.getrandbits(64):016x}"
        tin, tread, tout = t.totals()
        ns = lambda at: str(int(at.timestamp() * 1e9))    # noqa: E731
        if ti % 2 == 0:
            spans = [{"traceId": trace, "spanId": root_id, "parentSpanId": "",
                      "name": "invoke_agent coder", "kind": 1,
                      "startTimeUnixNano": ns(t.calls[0].at - timedelta(seconds=1)),
                      "endTimeUnixNano": ns(t.calls[-1].at + timedelta(seconds=5)),
                      "attributes": [_kv("gen_ai.operation.name", "invoke_agent"),
                                     _kv("gen_ai.agent.name", "coder"),
                                     _kv("gen_ai.conversation.id", t.id),
                                     _kv("gen_ai.usage.input_tokens", tin),
                                     _kv("gen_ai.usage.output_tokens", tout)]}]
            for j, c in enumerate(t.calls):
                attrs = [_kv("gen_ai.operation.name", "chat"),
                         _kv("gen_ai.request.model", LOGGED[c.model]),
                         _kv("gen_ai.response.model", LOGGED[c.model] + "-2025-04-14"),
                         _kv("gen_ai.usage.input_tokens", c.input),
                         _kv("gen_ai.usage.cache_read.input_tokens", c.read),
                         _kv("gen_ai.usage.output_tokens", c.out)]
                if c.phase != "coder":
                    attrs.append(_kv("gen_ai.agent.name", c.phase))
                spans.append({"traceId": trace, "spanId": f"{rng.getrandbits(64):016x}",
                              "parentSpanId": root_id, "name": f"chat {c.model}", "kind": 3,
                              "startTimeUnixNano": ns(c.at),
                              "endTimeUnixNano": ns(c.at + timedelta(seconds=2)),
                              "attributes": attrs})
            doc = {"resourceSpans": [{"resource": {"attributes": [
                _kv("service.name", "agent")]}, "scopeSpans": [{
                    "scope": {"name": "opentelemetry.instrumentation.openai_v2"},
                    "spans": spans}]}]}
            docs.append(doc)
            if ti == 2:                          # exported twice
                docs.append(doc)
                dups += len(t.calls)
        else:
            for j, c in enumerate(t.calls):
                attrs = {"gen_ai.operation.name": "chat", "gen_ai.agent.name": c.phase,
                         "gen_ai.conversation.id": t.id,
                         "gen_ai.request.model": LOGGED[c.model],
                         "gen_ai.usage.input_tokens": c.input,
                         "gen_ai.usage.output_tokens": c.out}
                if c.read:
                    attrs["gen_ai.usage.cache_read.input_tokens"] = c.read
                span_lines.append({
                    "name": f"chat {c.model}",
                    "context": {"trace_id": "0x" + trace,
                                "span_id": f"0x{rng.getrandbits(64):016x}"},
                    "kind": "SpanKind.CLIENT", "parent_id": None,
                    "start_time": c.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    "end_time": (c.at + timedelta(seconds=2)).strftime(
                        "%Y-%m-%dT%H:%M:%S.%fZ"),
                    "status": {"status_code": "UNSET"}, "attributes": attrs, "events": [],
                    "resource": {"attributes": {"service.name": "agent"}, "schema_url": ""}})
    span_lines.insert(3, "{not json")
    half = len(docs) // 2
    paths = [_write(root / "otel" / "collector" / "traces-1.json", _jsonl(docs[:half])),
             _write(root / "otel" / "collector" / "traces-2.json", _jsonl(docs[half:]),
                    gz=True),
             _write(root / "otel" / "app" / "spans.jsonl", _jsonl(span_lines))]
    assert paths
    oc, extra = _outcomes_csv(root, tasks)
    return Truth("otlp", tasks, [root / "otel"], oc, dups, 1, extra,
                 {"otlp": "gpt-4.1-mini"})


# --- LiteLLM --------------------------------------------------------------------------------

LITELLM_COLUMNS = ["request_id", "call_type", "api_key", "spend", "total_tokens",
                   "prompt_tokens", "completion_tokens", "startTime", "endTime", "model",
                   "model_group", "custom_llm_provider", "metadata", "cache_hit",
                   "request_tags", "session_id", "status"]


def litellm(root: Path, n: int = 12, seed: int = 4) -> Truth:
    """Two overlapping exports of LiteLLM_SpendLogs (CSV, and JSON Lines gzipped) with stated
    spend, cache tokens in metadata, agent tags; a failed request that billed nothing, a
    response-cache hit, a row whose metadata is not JSON."""
    rng = random.Random(seed)
    tasks = _usage_tasks(rng, n, "claude-sonnet-4-5", "claude-haiku-4-5", "litellm",
                         cache_writes=True, p_success=0.6, no_outcome=2, stated_cost=True)
    rows = []
    for i, t in enumerate(tasks):
        for j, c in enumerate(t.calls):
            # The ticket tag only where the agent set it (every other session): --task-by
            # tag:task falls back to the session elsewhere.
            tags = ([f"task:{t.branch}"] if i % 2 == 0 else []) + (
                [f"agent:{c.phase}"] if c.phase != "main" else [])
            rows.append({
                "request_id": f"chatcmpl-{t.id[:8]}-{j}", "call_type": "acompletion",
                "api_key": "88dc", "spend": c.cost,
                "total_tokens": c.input + c.out, "prompt_tokens": c.input,
                "completion_tokens": c.out,
                "startTime": c.at.strftime("%Y-%m-%d %H:%M:%S.") + f"{c.at.microsecond // 1000:03d}",
                "endTime": (c.at + timedelta(seconds=3)).strftime("%Y-%m-%d %H:%M:%S"),
                "model": LOGGED[c.model], "model_group": c.model,
                "custom_llm_provider": "anthropic",
                "metadata": {"user_api_key_alias": "ci", "usage_object": {
                    "prompt_tokens": c.input, "completion_tokens": c.out,
                    "cache_read_input_tokens": c.read,
                    "cache_creation_input_tokens": c.write}},
                "cache_hit": False, "request_tags": tags, "session_id": t.id,
                "status": "success"})
    at = tasks[0].calls[0].at
    extra = [dict(rows[0]) | {"request_id": "chatcmpl-failed", "spend": 0.0,
                              "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0,
                              "status": "failure", "metadata": {}},
             dict(rows[1]) | {"request_id": "chatcmpl-cachehit", "cache_hit": True,
                              "spend": 0.0}]
    bad = dict(rows[2]) | {"request_id": "chatcmpl-badmeta", "metadata": "{not json"}
    del at
    half = len(rows) // 2
    overlap = 4
    first, second = rows[:half + overlap], rows[half:]

    def as_csv(rs) -> str:
        buf = io.StringIO()
        w = csv.DictWriter(buf, LITELLM_COLUMNS, lineterminator="\n")
        w.writeheader()
        for r in rs:
            w.writerow({k: (json.dumps(v) if isinstance(v, (dict, list)) else
                            ("" if v is None else v)) for k, v in r.items()})
        return buf.getvalue()

    def as_jsonl(rs) -> str:
        return _jsonl(r if isinstance(r, str) else r for r in rs)

    _write(root / "spend" / "2026-03" / "export-1.csv", as_csv(first + extra + [bad]))
    _write(root / "spend" / "2026-03" / "export-2.jsonl", as_jsonl(second), gz=True)
    oc, n_extra = _outcomes_csv(root, tasks)
    return Truth("litellm", tasks, [root / "spend"], oc, overlap, 1, n_extra,
                 {"litellm": "claude-sonnet-4-5"})


# --- benchmark sources ----------------------------------------------------------------------

def _tries(rng: random.Random, p1: float, p2: float, max_tries: int) -> list[bool]:
    out = []
    for k in range(max_tries):
        ok = _success(rng, p1 if k == 0 else p2)
        out.append(ok)
        if ok:
            break
    return out


def openhands_index(root: Path, n: int = 14, seed: int = 5) -> Truth:
    """instance_results/<config>.json for two configs over the same instances (cost, resolved;
    no tokens), one instance not evaluated (resolved: null), one that never ran (cost and
    resolved null: skipped, nothing to bill)."""
    rng = random.Random(seed)
    configs = {"acp-claude/claude-sonnet-4-5": (0.55, "claude-sonnet-4-5"),
               "gpt-4.1-mini": (0.35, "gpt-4.1-mini")}
    tasks = []
    names = [f"proj__proj-{1000 + 7 * i}" for i in range(n)]
    for cfg, (p, model) in configs.items():
        doc = {}
        for i, name in enumerate(names):
            ok = _success(rng, p)
            cost = round(rng.uniform(0.05, 1.9), 12)
            unknown = i == n - 1
            doc[name] = {"cost": cost, "resolved": None if unknown else ok}
            t = Task(id=name, branch="", outcome=None if unknown else ok, run=cfg,
                     tries=[ok])
            t.calls.append(Call(model, "main", 0, 0, 0, 0, T0, cost=cost))
            tasks.append(t)
        doc["proj__proj-0999"] = {"cost": None, "resolved": None}   # never ran: nothing to bill
        _write(root / "swt-bench" / "instance_results" / f"{cfg}.json",
               json.dumps(doc, indent=1))
    (root / "swt-bench" / "README.md").write_text("results\n")
    return Truth("openhands", tasks, [root / "swt-bench"], None, 0, len(configs), 0,
                 {cfg: m for cfg, (_, m) in configs.items()})


def openhands_eval(root: Path, n: int = 14, seed: int = 6) -> Truth:
    """Evaluation output.jsonl of one config, attempts 1-2 per instance (a retry after a
    failed first attempt), accumulated tokens with cache reads and writes, a line without
    instance_id (malformed)."""
    rng = random.Random(seed)
    run = "claude-sonnet-4-5_maxiter_100_N_v0.59"
    lines: list = []
    tasks = []
    for i in range(n):
        name = f"django__django-{11000 + 13 * i}"
        tries = _tries(rng, 0.5, 0.4, 2)
        t = Task(id=name, branch="", outcome=tries[-1], run=run, tries=tries)
        for k, ok in enumerate(tries):
            # The attempt's calls, summed as OpenHands accumulates them: each resends the
            # context so far (read from the cache), writes its new input to the cache, and a
            # few tokens go uncached. A second attempt starts afresh.
            ncalls = rng.randint(3, 9)
            prefix = rng.randrange(6_000, 12_000)
            fresh = read = out = 0
            write = prefix
            for j in range(ncalls):
                new, o = rng.randrange(300, 3_000), rng.randrange(100, 900)
                fresh += rng.randint(1, 9)
                read += prefix if j else 0
                write += new
                out += o
                prefix += new + o
            c = Call("claude-sonnet-4-5", "main", fresh, read, write, out, T0)
            cost = c.cost = round(c.priced(), 12)      # what LiteLLM billed OpenHands
            t.calls.append(c)
            lines.append({"instance_id": name, "attempt": k + 1,
                          "instruction": "fix",
                          "metadata": {"agent_class": "CodeActAgent", "llm_config": {
                              "model": "litellm_proxy/claude-sonnet-4-5-20250929"}},
                          "history": [], "test_result": {"git_patch": "diff", "resolved": ok},
                          "metrics": {"accumulated_cost": cost, "accumulated_token_usage": {
                              "model": "litellm_proxy/claude-sonnet-4-5-20250929",
                              "prompt_tokens": c.input, "completion_tokens": out,
                              "cache_read_tokens": read, "cache_write_tokens": write,
                              "context_window": 200000, "per_turn_token": 100},
                              "token_usages": [{"prompt_tokens": 1, "completion_tokens": 1}]
                              * ncalls}})
        tasks.append(t)
    lines.insert(5, {"attempt": 1, "metrics": {"accumulated_cost": 1.0}})
    _write(root / "evaluation" / "CodeActAgent" / run / "output.jsonl", _jsonl(lines))
    _write(root / "evaluation" / "CodeActAgent" / run / "metadata.json",
           json.dumps({"llm_config": {"model": "x"}}))
    return Truth("openhands", tasks, [root / "evaluation"], None, 0, 1, 0,
                 {run: "claude-sonnet-4-5"})


def aider_bench(root: Path, n: int = 14, seed: int = 7) -> Truth:
    """tmp.benchmarks/<run>/<language>/exercises/practice/<exercise>/.aider.results.json for
    one run: up to two tries, totals for the exercise; one results file that is not JSON."""
    rng = random.Random(seed)
    run = "2026-01-10-12-00-00--sonnet-diff"
    tasks = []
    langs = ["python", "rust", "go"]
    for i in range(n):
        lang, ex = langs[i % 3], f"exercise-{i:02d}"
        tries = _tries(rng, 0.55, 0.5, 2)
        # The second try resends the first exchange with the failing tests' output; the file
        # records the exercise's totals only.
        p1, c1 = rng.randrange(3_000, 30_000), rng.randrange(300, 4_000)
        prompt, completion = p1, c1
        if len(tries) == 2:
            prompt += p1 + c1 + rng.randrange(300, 3_000)
            completion += rng.randrange(300, 4_000)
        cost = round((prompt * 3.0 + completion * 15.0) / 1e6, 10)   # sonnet's rates
        t = Task(id=f"{lang}/{ex}", branch="", outcome=tries[-1], run=run, tries=tries)
        t.calls.append(Call("claude-sonnet-4-5", "main", prompt, 0, 0, completion, T0,
                            cost=cost))
        tasks.append(t)
        d = root / "tmp.benchmarks" / run / lang / "exercises" / "practice" / ex
        _write(d / ".aider.results.json", json.dumps({
            "testdir": str(d.relative_to(root)), "testcase": ex,
            "model": "anthropic/" + LOGGED["claude-sonnet-4-5"], "edit_format": "diff",
            "tests_outcomes": tries, "cost": cost, "duration": 31.2,
            "prompt_tokens": prompt, "completion_tokens": completion,
            "num_error_outputs": 0}))
    broken = root / "tmp.benchmarks" / run / "python" / "exercises" / "practice" / "broken"
    _write(broken / ".aider.results.json", '{"testcase": "broken", "tests_outc')
    return Truth("aider-bench", tasks, [root / "tmp.benchmarks"], None, 0, 1, 0,
                 {run: "claude-sonnet-4-5"})


SOURCES = {"claude-code": claude_code, "codex": codex, "otlp": otlp, "litellm": litellm,
           "openhands-index": openhands_index, "openhands-eval": openhands_eval,
           "aider-bench": aider_bench}


# --- what the checker expects ---------------------------------------------------------------

def truth_totals(truth: Truth, key=lambda t, c: (t.run, t.id, c.model)) -> dict:
    """Per ``key(task, call)`` (by default run, task and model): [input, cache-read, output
    tokens, stated cost, calls] of the truth, what an imported log must carry (compare with
    :func:`row_totals`)."""
    want: dict = defaultdict(lambda: [0, 0, 0, 0.0, 0])
    for t in truth.tasks:
        for c in t.calls:
            w = want[key(t, c)]
            w[0] += c.input
            w[1] += c.read
            w[2] += c.out
            w[3] += c.cost or 0.0
            w[4] += 1
    return dict(want)


def row_totals(rows, key=lambda r: (r["run"], r["task_id"], r["model"])) -> dict:
    """The same sums per ``key(row)`` over an imported log's rows (dicts of its columns); the
    last is rows."""
    got: dict = defaultdict(lambda: [0, 0, 0, 0.0, 0])
    for r in rows:
        g = got[key(r)]
        g[0] += r["input_tokens"] or 0
        g[1] += r["cached_input_tokens"] or 0
        g[2] += r["output_tokens"] or 0
        g[3] += r["cost_usd"] or 0.0
        g[4] += 1
    return dict(got)


def expected_calibrate(truth: Truth) -> dict:
    """The figures a calibration of the imported log must report, from the truth alone: tasks
    with an outcome are measured (spend, completion, cost per completed task); the others'
    spend is counted apart."""
    def fig(tasks: list[Task]) -> dict:
        known = [t for t in tasks if t.outcome is not None]
        spend = sum(t.spend() for t in known)
        done = sum(1 for t in known if t.outcome)
        return {"tasks": len(known), "completed": done, "spend": spend,
                "completion_rate": done / len(known),
                "spend_per_task": spend / len(known),
                "cost_per_completed_task": spend / done if done else None,
                "tasks_without_outcome": len(tasks) - len(known),
                "spend_without_outcome": sum(t.spend() for t in tasks if t.outcome is None)}
    return {"overall": fig(truth.tasks),
            "by_run": {run: fig(ts) for run, ts in truth.by_run().items()}}


def compare_policies(report: dict, root: Path) -> tuple[list[Path], dict[str, str]]:
    """The policy files that give `costsim compare` each run's own strategy, as calibrate read
    it back (`strategies` of its JSON report), and {strategy name in compare: run}. A routed
    strategy (two models, or one model whose retries start afresh) is its policy; a single
    model is single:MODEL, which compare adds for every model a policy names, so it gets a
    one-model policy (compare runs every bundled policy unless given one, and these name models
    the test's price table lacks)."""
    import yaml

    files, names = [], {}
    for i, s in enumerate(report["strategies"]):
        path = root / f"strategy{i}.yaml"
        if s["kind"] == "routed":
            pol = dict(s["policy"], name=f"{s['policy']['name']}-{i}")
            names[pol["name"]] = s["run"]
        else:
            pol = {"version": 1, "name": f"own{i}", "tiers": {"t": s["model"]},
                   "routes": {"default": "t"}, "escalation": {"after_failures": 1}}
            names[s["name"]] = s["run"]
        path.write_text(yaml.safe_dump(pol, sort_keys=False))
        files.append(path)
    return files, names
