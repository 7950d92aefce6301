"""The runs-log columns: the names a log may use, the ceilings on what one row may say, and
the columns of the normalised relation ``runs`` every measurement reads.
"""

from __future__ import annotations

REQUIRED = ("task_id", "task_type", "phase", "attempt", "model", "input_tokens", "output_tokens",
            "success")
OPTIONAL = ("call", "calls", "cached_input_tokens", "cost_usd", "kind", "signals",
            "reviewer_changes", "timestamp", "run")
KNOWN = REQUIRED + OPTIONAL

# Ceilings on what one row may say (checked before use; see costsim/limits.py for the idea).
MAX_LOG_TEXT = 1024               # characters in an id, phase, model, run or signals value
MAX_LOG_TOKENS = 10**12           # tokens in one row
MAX_LOG_CALLS = 100_000           # calls in one attempt (`call` index or `calls`)

#: The normalised relation every measurement reads (one row per call or per attempt).
RUNS_COLUMNS = {
    "src": "file index (0-based, in the order the files were read)",
    "row": "data row within its file (0-based)",
    "pos": "the row's place in the log: files in the order read, rows in file order",
    "run": "the run ('' when the log has no run column)",
    "task_id": "text", "task_type": "text", "phase": "text", "model": "text",
    "attempt": "integer >= 1",
    "call": "1-based call number on a call row, NULL on an attempt row",
    "calls": "calls the row stands for: 1 on a call row, `calls` (default 1) on an attempt row",
    "is_summary": "1 for a summarizer call (kind: summary), else 0",
    "input_tokens": "all input, cached included", "cached_input_tokens": "0 when absent",
    "output_tokens": "integer",
    "success": "1, 0 or NULL (NULL: not on this row; summary rows)",
    "cost_usd": "NULL when absent",
    "signals": "the row's signals as written, trimmed (NULL when empty; a task's signals "
               "are the non-empty value on any of its rows, none when every row is empty)",
    "reviewer_changes": "NULL when absent",
    "ts": "seconds since 1970-01-01 UTC, NULL when absent",
}
