"""Aider benchmark results: one ``.aider.results.json`` per exercise, under
``tmp.benchmarks/<run>/<language>/exercises/practice/<exercise>/``.

Each file is one task: ``tests_outcomes`` holds one boolean per try (the second try sees the
failing tests), ``cost``, ``prompt_tokens`` and ``completion_tokens`` are the exercise's totals.
Mapping, one row per try (``attempt`` 1, 2, ...):

- ``task_id`` = ``<language>/<exercise>`` from ``testdir`` (or the file's folder), else
  ``testcase``; ``run`` = the benchmark run's folder (the one above the language), else
  ``model``; ``model`` = ``model``; phase ``main``;
- ``success`` = ``tests_outcomes[i]``; an exercise with no try recorded is one failed attempt;
- the totals are split evenly over the tries (the file does not say how they divide; the
  remainder of the integer division goes to the last try, so the tries add up exactly to the
  file's totals): ``input_tokens`` = ``prompt_tokens``, ``output_tokens`` =
  ``completion_tokens``, ``cost_usd`` = ``cost``; no cached tokens recorded.
"""

from __future__ import annotations

from pathlib import PurePosixPath, Path

from ..reading import Malformed, boolean, count, dig, json_document, money, text
from .base import MAIN_PHASE, Options, Sink, Source

RESULTS = ".aider.results.json"


def _where(rec: dict, path: Path) -> tuple[str | None, str | None]:
    """(``language/exercise``, run folder) from ``testdir`` or the file's own path."""
    for parts in (PurePosixPath(str(rec.get("testdir") or "").replace("\\", "/")).parts,
                  path.parent.parts):
        if "exercises" in parts:
            i = parts.index("exercises")
            if i >= 1 and len(parts) > i + 1:
                lang, name = parts[i - 1], parts[-1]
                run = parts[i - 2] if i >= 2 else None
                return f"{lang}/{name}", run
    return None, None


def _split(total: int | None, n: int) -> list[int | None]:
    if total is None:
        return [None] * n
    q, r = divmod(total, n)
    return [q] * (n - 1) + [q + r]


def _split_cost(total: float | None, n: int) -> list[float | None]:
    if total is None:
        return [None] * n
    part = total / n
    return [part] * (n - 1) + [total - part * (n - 1)]


def read(files: list[Path], opts: Options, sink: Sink) -> None:
    for path in files:
        try:
            rec = json_document(path)
            if not isinstance(rec, dict):
                raise Malformed("expected a JSON object")
            task, run = _where(rec, path)
            task = task or text(rec.get("testcase"))
            if task is None:
                raise Malformed("testcase: missing")
            model = text(rec.get("model"))
            if model is None:
                raise Malformed("model: missing")
            tries = rec.get("tests_outcomes")
            if tries is None:
                tries = []
            if not isinstance(tries, list):
                raise Malformed("tests_outcomes: expected a list")
            outcomes = [boolean(t, f"tests_outcomes[{i}]") for i, t in enumerate(tries)]
            if any(o is None for o in outcomes):
                raise Malformed("tests_outcomes: an entry is empty")
            if not outcomes:
                outcomes = [False]
            inp = count(rec.get("prompt_tokens"), "prompt_tokens", default=0) \
                if rec.get("prompt_tokens") is not None else None
            out = count(rec.get("completion_tokens"), "completion_tokens", default=0) \
                if rec.get("completion_tokens") is not None else None
            cost = money(rec.get("cost"), "cost")
        except Malformed as exc:
            sink.skip(path, None, str(exc))
            continue
        n = len(outcomes)
        phase = (text(dig(rec, opts.phase_tag)) if opts.phase_tag else None) or MAIN_PHASE
        for k, (ok, i, o, c) in enumerate(zip(outcomes, _split(inp, n), _split(out, n),
                                              _split_cost(cost, n)), start=1):
            sink.attempt(file=path, line=0, task=task, phase=phase, attempt=k, model=model,
                         input_tokens=i, cached_input_tokens=0 if i is not None else None,
                         output_tokens=o, success=ok, run=run or model, cost_usd=c)


SOURCE = Source(
    name="aider-bench", per_call=False, suffixes=(RESULTS,), read=read,
    summary="Aider benchmark results (tmp.benchmarks/**/.aider.results.json)",
)
