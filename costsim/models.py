"""Pydantic models of the three files (SPEC.md §2). Strict: unknown keys and wrong types fail."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from . import limits as L

TIER_CLASSES = ("budget", "midrange", "premium")

# Upper bounds (costsim.limits) keep every later computation finite and every array small.
Price = Annotated[float, Field(ge=0, le=L.MAX_PRICE, allow_inf_nan=False)]
Tokens = Annotated[int, Field(ge=0, le=L.MAX_TOKENS)]
ContextTokens = Annotated[int, Field(ge=1, le=L.MAX_CONTEXT_TOKENS)]
Attempts = Annotated[int, Field(ge=1, le=L.MAX_ATTEMPTS)]
Difficulty = Annotated[float, Field(ge=-L.MAX_DIFFICULTY, le=L.MAX_DIFFICULTY,
                                    allow_inf_nan=False)]
Minutes = Annotated[float, Field(ge=0, le=L.MAX_MINUTES, allow_inf_nan=False)]
Prob = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
NonNegInt = Annotated[int, Field(ge=0)]
# Dates may be written bare (2026-11-20, a YAML date) or quoted ("2026-11-20").
Date = Annotated[dt.date, Field(strict=False)]
PosInt = Annotated[int, Field(ge=1)]
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
PosFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=False)


class FileModel(Strict):
    """A top-level document; remembers the parsed file so later checks can cite lines."""

    _doc: object = PrivateAttr(default=None)

    @property
    def doc(self):  # -> costsim.yamlio.Document | None
        return self._doc

    def error(self, loc: tuple, message: str):
        """A CostsimError pointing at ``loc`` in this model's file (if it came from one)."""
        from .errors import CostsimError, format_path

        if self._doc is not None:
            return self._doc.error(loc, message)
        return CostsimError(message, path=format_path(loc))


# --- price table (§2.1) -------------------------------------------------------------------

class LongContext(Strict):
    above: ContextTokens
    input: Price | None = None
    output: Price | None = None
    cache_read: Price | None = None
    cache_write: Price | None = None


class PriceHistory(Strict):
    date: Date
    input: Price | None = None
    output: Price | None = None
    cache_read: Price | None = None
    cache_write: Price | None = None
    source: str | None = None


class ModelPrice(Strict):
    provider: str
    tier: Literal["budget", "midrange", "premium"]
    input: Price
    output: Price
    cache_read: Price | None = None
    cache_write: Price | None = None
    long_context: LongContext | None = None
    context_window: ContextTokens | None = None
    coding_score: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)] | None = None
    source: str | None = None
    note: str | None = None
    history: list[PriceHistory] = Field(default_factory=list)


class Source(Strict):
    name: str
    ref: str | None = None
    url: str | None = None
    fetched: Date | None = None
    note: str | None = None


class PriceTable(FileModel):
    version: Literal[1]
    as_of: Date
    currency: Literal["USD"] = "USD"
    sources: list[Source] = Field(default_factory=list)
    models: dict[str, ModelPrice] = Field(max_length=L.MAX_MODELS)


# --- routing policy (§2.2) ----------------------------------------------------------------

class Handoff(Strict):
    mode: Literal["summary", "full_history"]
    summary_tokens: Tokens = 1500
    summarizer: str | None = None


class Escalation(Strict):
    after_failures: Attempts = 2
    # full: a retry resends the failed attempts of the phase; none: it starts afresh from the
    # phase's own input (a new session, e.g. on a new model).
    retry_context: Literal["full", "none"] = "full"


class PolicySignal(Strict):
    min_tier: str | None = None
    raise_: Annotated[int, Field(ge=0, le=1000)] = Field(0, alias="raise")
    phases: list[str] | None = None

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=False)


class Policy(FileModel):
    version: Literal[1]
    name: str = Field(min_length=1)
    description: str | None = None
    tiers: dict[str, str] = Field(min_length=1)
    routes: dict[str, str] = Field(min_length=1)
    escalation: Escalation = Field(default_factory=Escalation)
    signals: dict[str, PolicySignal] = Field(default_factory=dict)
    handoff: Handoff | None = None


# --- workload (§2.3) ----------------------------------------------------------------------

class WorkloadSignal(Strict):
    share: Prob
    difficulty: Difficulty = 0.0


class ReviewMinutes(Strict):
    base: Minutes = 0.0
    per_defect: Minutes = 0.0


class Defects(Strict):
    phases: list[str] = Field(default_factory=list)
    rate: dict[str, Prob] = Field(default_factory=dict)
    catch_rate: dict[str, Prob] = Field(default_factory=dict)
    review_minutes: ReviewMinutes = Field(default_factory=ReviewMinutes)


class Variation(Strict):
    """How tasks of one type differ (tasks share one difficulty and one size draw)."""

    # spread of task difficulty, in logits
    difficulty: Annotated[float, Field(ge=0, le=L.MAX_VARIATION_DIFFICULTY,
                                       allow_inf_nan=False)] = 0.0
    # spread of a task's token use, log scale
    tokens: Annotated[float, Field(ge=0, le=L.MAX_VARIATION_TOKENS, allow_inf_nan=False)] = 0.0
    tokens_follow_difficulty: Prob = 0.0          # correlation of size with difficulty

    @property
    def is_zero(self) -> bool:
        return self.difficulty == 0.0 and self.tokens == 0.0


class Volume(Strict):
    """Tasks per month that vary from month to month: mean and coefficient of variation."""

    mean: Annotated[float, Field(gt=0, le=L.MAX_TASKS_PER_MONTH, allow_inf_nan=False)]
    cv: Annotated[float, Field(ge=0, le=L.MAX_VOLUME_CV, allow_inf_nan=False)] = 0.0


SuccessValue = Prob | Annotated[list[Prob], Field(min_length=1, max_length=L.MAX_ATTEMPTS)]


class Phase(Strict):
    phase: str = Field(min_length=1)
    calls: Annotated[int, Field(ge=1, le=L.MAX_CALLS)]
    input_tokens: Tokens
    output_tokens: Tokens
    difficulty: Difficulty | None = None
    success: dict[str, SuccessValue] | None = None


class TaskType(Strict):
    name: str = Field(min_length=1)
    share: Prob
    phases: list[Phase] = Field(min_length=1, max_length=L.MAX_PHASES)
    signals: Annotated[dict[str, WorkloadSignal], Field(max_length=L.MAX_SIGNALS)] | None = None
    defects: Defects | None = None
    max_attempts: Attempts | None = None
    variation: Variation | None = None

    @model_validator(mode="after")
    def _unique_phases(self) -> "TaskType":
        seen: set[str] = set()
        for ph in self.phases:
            if ph.phase in seen:
                raise ValueError(f"phase '{ph.phase}' appears twice")
            seen.add(ph.phase)
        return self


class Workload(FileModel):
    version: Literal[1]
    name: str = Field(min_length=1)
    description: str | None = None
    tasks_per_month: Annotated[int, Field(ge=1, le=int(L.MAX_TASKS_PER_MONTH))] | Volume = 1000
    max_attempts: Attempts = 3
    system_tokens: Tokens = 0
    cache_hit_rate: Prob = 0.0
    handoff: Handoff = Field(default_factory=lambda: Handoff(mode="full_history"))
    feedback_gain: Prob = 0.0
    signals: dict[str, WorkloadSignal] = Field(default_factory=dict, max_length=L.MAX_SIGNALS)
    defects: Defects | None = None
    variation: Variation | None = None
    task_types: list[TaskType] = Field(min_length=1, max_length=L.MAX_TASK_TYPES)

    @property
    def monthly_tasks(self) -> float:
        """Mean tasks per month (``tasks_per_month`` or its ``mean``)."""
        v = self.tasks_per_month
        return float(v.mean) if isinstance(v, Volume) else float(v)

    def variation_of(self, task_type: "TaskType") -> "Variation | None":
        """The task type's own ``variation`` block, else the workload's."""
        return task_type.variation if task_type.variation is not None else self.variation
