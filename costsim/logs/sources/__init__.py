"""The log sources `costsim log import --source` understands, one module each, registered here
(the way costsim/pricetable/merge.py registers price sources)."""

from __future__ import annotations

from ...errors import CostsimError
from .base import Options, Sink, Source
from . import aider_bench, claude_code, codex, litellm, openhands, otlp

SOURCES: dict[str, Source] = {s.name: s for s in (
    claude_code.SOURCE, codex.SOURCE, otlp.SOURCE, litellm.SOURCE, openhands.SOURCE,
    aider_bench.SOURCE,
)}


def get_source(name: str) -> Source:
    if name not in SOURCES:
        raise CostsimError(f"--source: unknown log source '{name}' (sources: "
                           f"{', '.join(SOURCES)})")
    return SOURCES[name]


__all__ = ["Options", "SOURCES", "Sink", "Source", "get_source"]
