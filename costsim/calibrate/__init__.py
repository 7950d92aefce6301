"""`costsim calibrate`: measure routing success from a runs log and recommend tier changes.

>>> import costsim.calibrate as cal
>>> result = cal.calibrate("runs.csv")                     # doctest: +SKIP
>>> result.overall["cost_per_completed_task"], result.recommendations[0]   # doctest: +SKIP

Decisions (also in the README):

- **Pricing a row** without ``cost_usd``: per-attempt token counts at the model's base rates —
  ``input_tokens`` at ``input``, ``cached_input_tokens`` at ``cache_read`` (the two are disjoint:
  ``input_tokens`` is the uncached part), ``output_tokens`` at ``output``. Long-context rates are
  not applied: a row is an attempt, possibly several calls, and the log does not say how its tokens
  split across calls. A row with ``cost_usd`` uses it as given.
- **Completed task** (SPEC §2.4): every phase the task ran ended in success, i.e. the row with the
  highest attempt index of each (task, phase) succeeded. A phase whose last row failed "ran out of
  attempts" (the agent gave up there, or the log stops there): the task is not completed.
- **Route** of a task: the sorted set of models it used, joined with ``+``.
- **Weeks**: ISO weeks (``2026-W07``) of each task's first timestamp.
- **Recommendations** look at the *route* of each (task type, phase): the model that makes the
  first attempt (from ``--policy`` if given, else the model the log shows most often there).
  *raise*: that model is below the top tier, has at least ``min_samples`` first attempts there
  and its first-attempt success is below ``raise_below``. *lower*: a cheaper-tier model started
  the same (task type, phase) at least ``min_samples`` times and its first-attempt success is
  within ``lower_max_gap`` of the route model's with overlapping Wilson 95% intervals (its
  results rarely differ); or, in the ``review`` phase, reviews by the route model led to
  reviewer changes in fewer than ``review_changes_below`` of at least ``min_samples`` tasks.
  A (task type, phase) gets at most one recommendation; when both rules fire, *raise* wins
  (quality first) and the suppressed *lower* is listed in ``notes``.
- **Projection**: the analytic engine (``compile_ladders`` + ``cell_stats``/``evaluate``) on the
  calibrated workload. A policy routes by phase, not by task type, so a change for one task type
  is evaluated as a per-task-type variant: the ladders of that (task type, phase) come from the
  changed route, every other slice from the current one (:func:`ladders_for_routes`).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import CostsimError
from ..models import Policy, Workload
from .fit import fit_workload, workload_to_dict, workload_yaml
from .measure import (Z95, _by_model, _frames, _row_costs, _summarise_tasks, _weekly,
                      wilson)
from .recommend import _fit_check, _recommend, ladders_for_routes
from .report import RESULT_VERSION, CalibrationResult

__all__ = ["calibrate", "CalibrationResult", "wilson", "ladders_for_routes", "fit_workload",
           "workload_to_dict", "workload_yaml", "RESULT_VERSION", "Z95"]

DEFAULT_MIN_SAMPLES = 30
DEFAULT_RAISE_BELOW = 0.6
DEFAULT_LOWER_MAX_GAP = 0.05
DEFAULT_REVIEW_CHANGES_BELOW = 0.1


# --- the API --------------------------------------------------------------------------------

def calibrate(log_path: str | Path, *, prices=None, policies=None, workload=None,
              min_samples: int = DEFAULT_MIN_SAMPLES, raise_below: float = DEFAULT_RAISE_BELOW,
              lower_max_gap: float = DEFAULT_LOWER_MAX_GAP,
              review_changes_below: float = DEFAULT_REVIEW_CHANGES_BELOW) -> CalibrationResult:
    """Measure a runs log (SPEC §2.4), fit a workload and recommend tier changes.

    ``prices``: path, PriceTable or None (the default table); ``policies``: None (infer the
    routes from the log) or one policy (path or Policy) the team ran; ``workload``: None or a
    workload whose system_tokens, cache_hit_rate, handoff and defects the fitted workload keeps.
    """
    from .. import paths
    from ..api import _as_prices
    from ..loader import load_policy, load_workload
    from ..logs.runslog import read_log

    if min_samples < 1:
        raise CostsimError("must be at least 1", path="--min-samples")
    for name, v in (("--raise-below", raise_below), ("--lower-max-gap", lower_max_gap),
                    ("--review-changes-below", review_changes_below)):
        if not 0.0 <= v <= 1.0:
            raise CostsimError(f"must be between 0 and 1, got {v}", path=name)
    table, prices_path = _as_prices(prices)
    policy: Policy | None = None
    if policies:
        pols = [policies] if isinstance(policies, (str, Path, Policy)) else list(policies)
        if len(pols) > 1:
            raise CostsimError("give one policy: the routing policy the log was produced with",
                               path="--policy")
        policy = pols[0] if isinstance(pols[0], Policy) else load_policy(pols[0])
    base = None
    if workload is not None:
        base = workload if isinstance(workload, Workload) else load_workload(
            paths.resolve_workload_path(workload))

    log = read_log(log_path)
    spend = _row_costs(log, table, prices_path)
    fr = _frames(log, spend)
    by_model, bm = _by_model(fr)
    by_route = _summarise_tasks(fr.tasks, ["task_type", "route"])
    by_task_type = _summarise_tasks(fr.tasks, ["task_type"])
    overall = _summarise_tasks(fr.tasks, [])[0]
    overall["rows"] = len(fr.df)
    weekly = _weekly(fr)
    wl, warnings = fit_workload(fr, bm, table, str(log_path), base=base, log=log)
    if log.has_cost and log.frame["cost_usd"].isna().any():
        warnings.append("some rows have no cost_usd: those were priced from the price table")

    settings = {"min_samples": min_samples, "raise_below": raise_below,
                "lower_max_gap": lower_max_gap, "review_changes_below": review_changes_below}
    recs, notes, tiers, baseline, engine = _recommend(fr, by_model, table, wl, policy, settings)
    fit = _fit_check(engine, overall, by_task_type)
    return CalibrationResult(
        log=str(log_path), rows=len(fr.df), tasks=len(fr.tasks), prices=prices_path,
        prices_as_of=str(table.as_of), baseline=baseline, by_model=by_model,
        by_route=by_route, by_task_type=by_task_type, overall=overall, weekly=weekly,
        recommendations=recs, workload=wl, settings=settings, tiers=tiers, fit=fit,
        notes=notes, warnings=warnings)


