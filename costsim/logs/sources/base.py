"""What every log source hands the importer, and the options that choose task, phase and run.

A source module reads its files and calls :meth:`Sink.call` (usage logs: one LLM call) or
:meth:`Sink.attempt` (benchmark results: one attempt of a task) for each record, and
:meth:`Sink.skip` for a line it cannot read. Everything after that (deduplication, call
numbering, outcomes, sorting, writing) is the importer's, the same for every source.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from ...errors import CostsimError

MAIN_PHASE = "main"          # the agent's own loop (no subagent, no phase tag)
DEFAULT_TASK_TYPE = "default"


@dataclass(frozen=True)
class Options:
    """``task_by``: ``session`` | ``branch`` | ``tag:NAME``; ``phase_by``: ``agent`` |
    ``tag:NAME``."""

    task_by: str = "session"
    phase_by: str = "agent"

    @property
    def task_tag(self) -> str | None:
        return self.task_by[4:] if self.task_by.startswith("tag:") else None

    @property
    def phase_tag(self) -> str | None:
        return self.phase_by[4:] if self.phase_by.startswith("tag:") else None

    def check(self) -> None:
        if self.task_by not in ("session", "branch") and not (self.task_tag or "").strip():
            raise CostsimError(f"--task-by: expected session, branch or tag:NAME, got "
                               f"'{self.task_by}'")
        if self.phase_by != "agent" and not (self.phase_tag or "").strip():
            raise CostsimError(f"--phase-by: expected agent or tag:NAME, got '{self.phase_by}'")


class Sink(Protocol):
    def call(self, *, file: Path, line: int, task: str | None, fallback_task: str,
             phase: str | None, model: str, input_tokens: int, cached_input_tokens: int,
             output_tokens: int, timestamp: str | None, run: str | None = None,
             cost_usd: float | None = None, dedup_key: str | None = None,
             phase_ref: str | None = None) -> None: ...

    def attempt(self, *, file: Path, line: int, task: str, phase: str | None, attempt: int,
                model: str, input_tokens: int | None, cached_input_tokens: int | None,
                output_tokens: int | None, success: bool | None, run: str | None,
                cost_usd: float | None = None, calls: int | None = None,
                timestamp: str | None = None, dedup_key: str | None = None) -> None: ...

    def skip(self, file: Path, line: int | None, reason: str) -> None: ...

    def ignore(self, n: int = 1) -> None: ...

    def outcome(self, run: str | None, task: str, success: bool) -> None: ...

    def name_phase(self, ref: str, phase: str) -> None: ...


@dataclass(frozen=True)
class Source:
    """One log source: its CLI name, whether its records are calls (else attempts), the file
    name endings a folder is walked for, and ``read(files, options, sink)``."""

    name: str
    per_call: bool
    suffixes: tuple[str, ...]
    read: Callable[[list[Path], Options, Sink], None]
    summary: str
    fallback_phase: str = MAIN_PHASE
    wanted: Callable[[Path], bool] | None = None   # which files of a walked folder to read


def tags_from_list(items) -> dict[str, str]:
    """``["task:12", "agent=plan", "nightly"]`` -> ``{"task": "12", "agent": "plan",
    "nightly": "nightly"}`` (LiteLLM request tags, OTel string arrays)."""
    out: dict[str, str] = {}
    if not isinstance(items, list):
        return out
    for it in items:
        if not isinstance(it, str):
            continue
        for sep in (":", "="):
            if sep in it:
                k, v = it.split(sep, 1)
                out.setdefault(k.strip(), v.strip())
                break
        else:
            out.setdefault(it.strip(), it.strip())
    return out


def input_with_cache(prompt: int, reads: int, writes: int) -> int:
    """All input tokens of a call whose usage names the cache reads and writes apart.

    OpenAI-shaped usage (LiteLLM, OpenTelemetry's ``gen_ai.usage.input_tokens``) counts them
    inside the prompt; Anthropic's raw ``input_tokens`` counts neither, and some LiteLLM
    versions counted the reads but not the writes. Told apart by size: a prompt of at least
    reads + writes holds both; one of at least the reads holds the reads (the writes are
    added); a smaller one holds neither (both are added)."""
    if prompt >= reads + writes:
        return prompt
    if prompt >= reads:
        return prompt + writes
    return prompt + reads + writes
