"""Ceilings on the sizes an input file can ask for.

Each is checked before anything is allocated, and exceeding one is a located input error
(``file:line: field: ... (at most N)``), never a long run or an out-of-memory crash. The numbers
are far above anything a real agent workload needs; docs/limits.md says why each is what it is.
"""

from __future__ import annotations

# --- YAML files -----------------------------------------------------------------------------

# Bytes in one YAML file: 10x a table holding every chat model LiteLLM lists (~0.8 MB).
MAX_YAML_BYTES = 8 * 1024 * 1024
# Nesting depth of a YAML document: the deepest costsim format nests 8 levels.
MAX_YAML_DEPTH = 64
# Values (scalars, lists, mappings) in one YAML file: 8x a table holding every chat model
# LiteLLM lists (~60,000); about 2 s and 300 MB to read at the limit.
MAX_YAML_VALUES = 500_000
# Values reached through YAML aliases (*name): stops "billion laughs" expansion bombs.
MAX_YAML_ALIAS_VALUES = 100_000
# Characters in one integer literal: more digits than any count or price can use.
MAX_INT_DIGITS = 30

# --- workloads ------------------------------------------------------------------------------

# Attempts per phase: a workload's ``max_attempts`` and a runs log's ``attempt`` column.
MAX_ATTEMPTS = 100
# Model calls per attempt: agent loops run tens to a few hundred calls.
MAX_CALLS = 1_000
# Phases per task type: the canonical list has 8.
MAX_PHASES = 50
# Task types per workload.
MAX_TASK_TYPES = 500
# Signals per workload or task type: each doubles the combinations evaluated.
MAX_SIGNALS = 16
# Cells = sum over task types of 2^signals (every combination of signals is a cell).
MAX_CELLS = 20_000
# Cells x phases: the compile step visits each once per strategy (~2 s at the limit).
MAX_CELL_PHASES = 50_000
# Cells x phases x attempts: the size of every compiled ladder array (~200 MB at the limit).
MAX_LADDER = 1_000_000
# Tokens one call adds or generates, the system prompt and a summary: 100x today's largest
# context window.
MAX_TOKENS = 100_000_000
# |difficulty| of a phase, and of a phase with every signal active: the logistic success rule
# is 0 or 1 to nine decimals 200 points away from a model's coding score.
MAX_DIFFICULTY = 1_000.0
# Tasks per month (mean): a million times a large team.
MAX_TASKS_PER_MONTH = 1e12
# Coefficient of variation of tasks per month.
MAX_VOLUME_CV = 100.0
# variation.difficulty, in logits: calibrated spreads are 1-2; at 10 a task one sigma harder
# than average succeeds e^10 times less often. The quadrature grows with it.
MAX_VARIATION_DIFFICULTY = 10.0
# variation.tokens, log scale: 5 spreads task sizes over a factor of e^5 (150) per sigma.
MAX_VARIATION_TOKENS = 5.0
# With variation, every phase's calls are integrated at each quadrature node (42 nodes at a
# spread of 1.3, 100 at the measured 3.24, about 310 at the ceiling of 10): nodes x attempts x
# calls of one phase bound the arrays of that phase (1,000 calls x 5 attempts at a spread of 10
# took 1.7 GB), and cells x nodes x phases x attempts, summed over task types, bound the work of
# one strategy (issue 13's 50 task types x 16 cells x 20 phases x 4 attempts at 100 nodes is
# 6.4 million: about 0.1 s of CPU a strategy; docs/performance.md).
MAX_VARIED_CALLS = 400_000
MAX_VARIED_WORK = 7_000_000
# Review minutes (base, per defect): about two years.
MAX_MINUTES = 1_000_000.0

# --- price tables ---------------------------------------------------------------------------

# USD per 1M tokens: $1 a token, over 1,000x the dearest model; keeps every cost finite.
MAX_PRICE = 1_000_000.0
# Models in one price table: 3x every chat model LiteLLM lists (~3,600).
MAX_MODELS = 10_000
# context_window and long_context.above, in tokens: 1,000x today's largest window.
MAX_CONTEXT_TOKENS = 1_000_000_000
# Values (counted by their separators) in a LiteLLM or OpenRouter source: 13x LiteLLM's full
# map (~150,000); a JSON document of tiny values takes up to ~150 bytes of memory per value.
MAX_SOURCE_VALUES = 2_000_000
