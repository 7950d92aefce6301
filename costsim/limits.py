"""Ceilings on the sizes an input file can ask for.

Each is checked before anything is allocated, and exceeding one is a located input error
(``file:line: field: ... (at most N)``), never a long run or an out-of-memory crash. The numbers
are far above anything a real agent workload needs; docs/limits.md says why each is what it is.
"""

from __future__ import annotations

# Attempts per phase: a workload's ``max_attempts`` and a runs log's ``attempt`` column.
MAX_ATTEMPTS = 100
