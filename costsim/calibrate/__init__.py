"""`costsim calibrate`: learn a workload that reproduces a runs log, check the fit, recommend.

>>> from costsim.calibrate import calibrate
>>> r = calibrate("runs.csv")                                   # doctest: +SKIP
>>> r.write_workload("fitted.yaml"); r.fit_flags; r.recommendations   # doctest: +SKIP

The steps, one module each:

1. ``costsim.logs.runslog.read_log``: read and validate the log into DuckDB;
2. :mod:`.measure`: reduce it in SQL to small aggregate tables;
3. :mod:`.tokens`, :mod:`.success`, :mod:`.fit`: fit every part of the workload the log shows,
   the rest from ``--workload`` (named in the result and the written file);
4. :mod:`.policy`: the strategy each run of the log was made with (or ``--policy``);
5. :mod:`.check`: the fit check, the fitted workload under each run's own strategy through the
   engine, side by side with what the log measured;
6. :mod:`.recommend`: raise/lower recommendations that pay, projected by the engine;
7. :mod:`.report`: the result and its dict/YAML forms.

docs/calibrate.md documents every choice.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..errors import CostsimError
from ..models import Policy, PriceTable, Workload
from .measure import Z95, wilson
from .report import RESULT_VERSION, CalibrationResult

__all__ = ["calibrate", "CalibrationResult", "wilson", "RESULT_VERSION", "Z95"]

DEFAULT_MIN_SAMPLES = 30
DEFAULT_RAISE_BELOW = 0.6
DEFAULT_LOWER_MAX_GAP = 0.05
DEFAULT_REVIEW_CHANGES_BELOW = 0.1


def _workload_handoff(modes: dict, strategies: dict, policy: Policy | None, main_run: str,
                      base: Workload):
    """(the handoff to write into the workload or None for the base's, why not)."""
    def as_dict(mode):
        if mode.handoff == "summary":
            return {"mode": "summary", "summary_tokens": int(mode.summary_tokens or 0),
                    "summarizer": mode.summarizer}
        return {"mode": "full_history"}

    singles = [run for run, s in strategies.items() if s.kind == "single"]
    if singles:   # a single-model run uses the workload's own handoff
        return as_dict(modes[singles[0]]), None
    if policy is not None:
        if policy.handoff is not None:
            return None, (f"the policy {policy.name} sets its own handoff, so the log does not "
                          f"show the workload's")
        return as_dict(modes[main_run]), None
    mode = modes[main_run]
    if mode.handoff == "full_history" or base.handoff.mode == "summary":
        return as_dict(mode), None
    # Summaries in a routed run: most policies set their own handoff (the inferred policy
    # carries it), so the workload's stays the base's. A policy without a handoff block uses
    # the workload's: pass it with --policy and the workload gets the log's handoff.
    return None, ("the log's summaries are taken as its policy's handoff (the inferred policy "
                  "carries them); with --policy naming a policy without a handoff block the "
                  "workload takes them instead")


def _matches(policy: Policy, inferred) -> bool:
    """Whether a run started every phase (on tasks without signals) on the model the given
    policy starts it on."""
    tiers = dict(policy.tiers)
    itiers = inferred.policy["tiers"]
    for ph, tier in inferred.starts.items():
        mine = policy.routes.get(ph, policy.routes.get("default"))
        if tiers.get(mine) != itiers.get(tier):
            return False
    return True


def _volume_info(vf, wl: Workload) -> dict | None:
    """What the report says of the volume fit (None: the log's timestamps showed none)."""
    if vf is None:
        return None
    import math

    def num(x):
        return None if x is None or not math.isfinite(x) else float(x)

    return {"value": (wl.tasks_per_month.model_dump() if not isinstance(wl.tasks_per_month, int)
                      else wl.tasks_per_month),
            "mean": num(vf.mean), "mean_se": num(vf.se_mean),
            "cv": num(vf.cv) if vf.varies else 0.0, "cv_se": num(vf.se_cv),
            "cv_source": vf.source["cv"], "varies": bool(vf.varies),
            "months": num(vf.months), "calendar_months": len(vf.counts),
            "counts": [int(c) for c in vf.counts],
            "likelihood_ratio": num(vf.lr)}


def calibrate(log_path: str | Path, **kwargs) -> CalibrationResult:
    """Measure a runs log, fit a workload that reproduces it, check the fit, recommend.

    ``prices``: path, PriceTable or None (the default table); ``policies``: None (infer each
    run's strategy from the log) or the one policy (path or Policy) the log was made with;
    ``workload``: the base workload for what the log cannot show (path, Workload or None for
    the bundled medium-team); ``min_samples``, ``raise_below``, ``lower_max_gap``,
    ``review_changes_below``: the recommendation rules (docs/calibrate.md); ``engine``:
    ``duckdb`` or ``ibis:URL``, where the measurement SQL runs (costsim/logs/engines.py).
    """
    # pandas', SciPy's and the engine's imports (0.7-0.9 s) run on the fits' thread while
    # DuckDB reads the log (_calibrate).
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="costsim-fits")
    try:
        return _calibrate(log_path, pool=pool, **kwargs)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _load_fitting():
    """Import what the measurement and the fits use, off the main thread: pandas (0.3-0.5 s,
    first needed when the first query's result is read) and SciPy, which must be loaded before
    BLAS threads are limited: it carries its own OpenBLAS, loaded with scipy.linalg, and
    threadpool_limits only reaches the libraries already loaded. (Imported inside the fits, it
    escaped the limit on a process's first calibrate: the CLI's only one. Its threads made the
    L-BFGS fits take 5 s instead of 0.2 s on two busy cores.)"""
    import pandas  # noqa: F401
    import scipy.optimize  # noqa: F401
    import scipy.special  # noqa: F401
    # the engine (numpy, the compile step: 0.1 s), which the fit check and the projections
    # use, so that the main thread reaches read_log without it
    from ..engine import analytic  # noqa: F401


def _calibrate(log_path: str | Path, *, pool, prices=None, policies=None,
               workload=None, min_samples: int = DEFAULT_MIN_SAMPLES,
               raise_below: float = DEFAULT_RAISE_BELOW,
               lower_max_gap: float = DEFAULT_LOWER_MAX_GAP,
               review_changes_below: float = DEFAULT_REVIEW_CHANGES_BELOW,
               engine: str = "duckdb") -> CalibrationResult:
    """Check the options, load the inputs, read the log (while :func:`_load_fitting`, the
    imports of pandas, SciPy and the engine, runs on ``pool``), then :func:`_fit_and_report`
    with BLAS limited to one thread."""
    from threadpoolctl import threadpool_limits

    from .. import paths
    from ..loader import load_policy, load_prices, load_workload
    from ..logs.runslog import read_log

    if min_samples < 1:
        raise CostsimError("must be at least 1", path="--min-samples")
    for name, v in (("--raise-below", raise_below), ("--lower-max-gap", lower_max_gap),
                    ("--review-changes-below", review_changes_below)):
        if not 0.0 <= v <= 1.0:
            raise CostsimError(f"must be between 0 and 1, got {v}", path=name)
    # (costsim.api's _as_prices, without importing the engine on this thread: _load_fitting)
    if isinstance(prices, PriceTable):
        table, prices_path = prices, (prices.doc.file if prices.doc else "<price table>")
    else:
        prices_path = str(paths.resolve_prices_path(prices))
        table = load_prices(prices_path)
    policy: Policy | None = None
    if policies:
        pols = [policies] if isinstance(policies, (str, Path, Policy)) else list(policies)
        if len(pols) > 1:
            raise CostsimError("give one policy: the routing policy the log was produced with",
                               path="--policy")
        policy = pols[0] if isinstance(pols[0], Policy) else load_policy(pols[0])
    if isinstance(workload, Workload):
        base = workload
    else:
        base = load_workload(paths.resolve_workload_path(workload))

    settings = {"min_samples": min_samples, "raise_below": raise_below,
                "lower_max_gap": lower_max_gap, "review_changes_below": review_changes_below}
    # The imports start once the inputs are loaded (on this thread they would wait for the
    # GIL the imports hold) and run while DuckDB, which releases it, reads the log.
    fitting = pool.submit(_load_fitting)
    log = read_log(log_path, engine=engine)
    try:
        fitting.result()
    except BaseException:
        log.close()
        raise
    # The fits are small: BLAS threads only spin against each other and DuckDB's.
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit_and_report(log, log_path, pool=pool, table=table, prices_path=prices_path,
                               policy=policy, base=base, settings=settings,
                               base_given=workload is not None)


def _fit_and_report(log, log_path, *, pool, table, prices_path, policy, base,
                    settings, base_given=True) -> CalibrationResult:
    """Measure the log read, fit, check and recommend (BLAS limited to one thread)."""
    from ..loader import check_policy_against
    from .check import engine_strategy, fit_check
    from .fit import fit_variation_from, fit_workload
    from .measure import measure
    from .policy import infer_strategy, validate_policy
    from .recommend import recommend
    from .tokens import fit_tokens

    # The variation fit (~0.5 s on a sampled log) needs only the attempt records: it runs on
    # the pool's thread from when they are read (before the log is priced, where the log
    # allows: measure.Measure.early_records) while DuckDB, which releases the GIL, answers the
    # remaining queries.
    try:
        state: dict = {}

        def growth(ms):
            state["tokens"] = fit_tokens(ms.tokens, ms.phase_order, base)
            return state["tokens"].growth()

        def records(frame):
            state["variation"] = pool.submit(fit_variation_from, frame, base)

        ms = measure(log, table, prices_path, growth_fn=growth, records_fn=records)
        rows = log.rows
    finally:
        log.close()
    tf = state["tokens"]
    warnings: list[str] = []
    notes: list[str] = []
    if ms.no_outcome_tasks:
        warnings.append(f"{ms.no_outcome_tasks:,} tasks have no outcome (success empty): their "
                        f"spend (${ms.no_outcome_spend:,.2f}) is counted apart, not in success "
                        f"rates, completion or cost per completed task")
    if ms.unpriced_rows:
        warnings.append(f"{ms.unpriced_rows:,} rows have no cost_usd: those were priced from "
                        f"the price table")

    # Models the price table lacks, whose rows state their costs: effective rates fitted to
    # those costs join the table (docs/calibrate.md), so the fitted workload can name them.
    prices_data = None
    if ms.unpriced_models is not None and len(ms.unpriced_models):
        from .unpriced import fit_rates, table_with

        rates = fit_rates(ms.unpriced_models)
        prices_data = table_with(table, rates, source=str(log_path))
        table = PriceTable.model_validate(prices_data)
        notes += rates.notes

    # The strategy of every run, inferred from the log.
    run_tasks = {r["run"]: r["tasks"] for r in ms.by_run} or {ms.runs[0]: ms.overall["tasks"]}
    main_run = max(sorted(run_tasks), key=lambda r: run_tasks[r])
    inferred = {}
    for run in ms.runs:
        name = "inferred" if len(ms.runs) == 1 else f"inferred-{run}"
        inferred[run] = infer_strategy(ms, table, run, tf.modes[run], name)
        notes += inferred[run].notes

    # A log that shows some phases by cost only (benchmark results, billing exports): those
    # phases get nominal sizes and their models effective prices (docs/calibrate.md).
    cost_only = None
    if ms.records is not None and len(ms.records):
        from .cost_only import cost_only_phases, fit_cost_only, price_table

        rec = ms.records.assign(summary=False)
        if cost_only_phases(rec):
            cost_only = fit_cost_only(rec)
        if cost_only is not None:
            prices_data = price_table(cost_only, table, source=str(log_path))
            table = PriceTable.model_validate(prices_data)
            notes += cost_only.notes

    handoff, why = _workload_handoff(tf.modes, inferred, policy, main_run, base)
    fitted = fit_workload(ms, tf, table, str(log_path), base=base, workload_handoff=handoff,
                          handoff_why=why, cost_only=cost_only,
                          variation=state.get("variation"), base_given=base_given)
    wl = fitted.workload
    notes += fitted.notes
    if not log.has_signals:
        warnings.append("the log has no signals column: the fitted workload has no signals, so "
                        "a policy's signal rules never fire in projections")

    # Each run's strategy for the engine: --policy for the routed runs it matches (the run's
    # phases start on the tiers the policy routes them to; the biggest run when none does),
    # the inferred policy for the others.
    given_runs = set()
    if policy is not None:
        given_runs = {run for run in ms.runs if inferred[run].kind == "routed"
                      and _matches(policy, inferred[run])}
        if not given_runs:
            given_runs = {main_run}
    engine_strats = []
    policy_objs = {}
    for run in ms.runs:
        inf = inferred[run]
        if inf.kind == "single" and run not in given_runs:
            engine_strats.append((run, engine_strategy(inf), None))
            continue
        pol = policy if run in given_runs else None
        if pol is None:
            try:
                pol = validate_policy(inf.policy)
            except CostsimError as exc:
                engine_strats.append((run, None, f"inferred policy invalid: {exc.message}"))
                continue
        try:
            check_policy_against(pol, table, wl)
        except CostsimError as exc:
            engine_strats.append((run, None, str(exc)))
            continue
        policy_objs[run] = pol
        engine_strats.append((run, engine_strategy(None, pol), None))

    measured = {}
    groups = ms.groups
    from .measure import summarise

    for run in ms.runs:
        g = groups[groups["run"] == run]
        measured[(run, "all tasks")] = summarise(g)
        for tt, gt in g.groupby("task_type"):
            measured[(run, str(tt))] = summarise(gt)
    names = {run: (f"run {run}" if run else "the log") for run in ms.runs}
    # runs that made one attempt per phase are checked with one attempt, as they ran
    last = ms.starts.groupby("run")["last_attempt"].max() if len(ms.starts) else {}
    one_shot = frozenset(str(r) for r, k in dict(last).items() if int(k) == 1)
    fit_rows, fit_flags = fit_check(table, wl, engine_strats, measured, names, one_shot)

    base_run = main_run
    if policy is not None and main_run not in given_runs:
        base_run = max(sorted(given_runs), key=lambda r: run_tasks.get(r, 0))
    base_policy = policy if policy is not None else policy_objs.get(base_run)
    recs, rnotes = recommend(table, wl, base_policy, ms, settings)
    notes += rnotes
    if policy is not None:
        baseline = f"policy {policy.name} (--policy)"
        policy_data = policy.model_dump(exclude_none=True, by_alias=True)
    elif base_policy is not None:
        baseline = f"policy {base_policy.name} (inferred from the log)"
        policy_data = inferred[main_run].policy
    else:
        baseline = inferred[main_run].name + " (inferred from the log)"
        policy_data = None
    strategies = []
    for run in ms.runs:
        inf = inferred[run]
        strategies.append({"run": run, "kind": inf.kind, "name": inf.name,
                           "policy": inf.policy, "model": inf.model,
                           "agreement": inf.agreement})
    sf = fitted.success
    fitted_info = {
        "system_tokens": tf.system_tokens, "cache_hit_rate": tf.cache_hit_rate,
        "token_fit_residual": tf.residual,
        "feedback_gain": sf.gain, "feedback_gain_se": sf.gain_se,
        "success_form": {f"{k[0]}/{k[1]}": v for k, v in sf.form.items()},
        "success_form_counts": {f: list(sf.form.values()).count(f) for f in ("logistic", "map")},
        "runs": {run: {"handoff": m.handoff, "summary_tokens": m.summary_tokens,
                       "summarizer": m.summarizer, "retry_context": m.retry_context}
                 for run, m in tf.modes.items()},
        "defects": {k: v for k, v in fitted.defects.items() if k != "from_base"},
        "workload_notes": fitted.notes,
        "tasks_per_month": _volume_info(fitted.volume, wl),
    }
    vf = fitted.variation
    if vf is not None:
        fitted_info["variation"] = {
            **vf.as_dict(), "source": dict(vf.source),
            "se_difficulty": vf.se_difficulty if math.isfinite(vf.se_difficulty) else None,
            "difficulty_ci95": ([float(vf.ci95_difficulty[0]), float(vf.ci95_difficulty[1])]
                                if math.isfinite(vf.ci95_difficulty[1]) else None),
            "tasks": vf.tasks, "tasks_seen_twice": vf.multi, "notes": list(vf.notes)}
    return CalibrationResult(
        log=str(log_path), rows=rows, tasks=ms.overall["tasks"], prices=prices_path,
        prices_as_of=str(table.as_of), baseline=baseline, by_model=ms.by_model,
        by_route=ms.by_route, by_task_type=ms.by_task_type, overall=ms.overall,
        weekly=ms.weekly, recommendations=recs, workload=wl, workload_data=fitted.data,
        settings=settings, tiers=dict(base_policy.tiers) if base_policy is not None else {},
        fit=fit_rows, fit_flags=fit_flags, from_base=fitted.from_base, strategies=strategies,
        by_run=ms.by_run, summaries=ms.summaries, fitted=fitted_info, policy_data=policy_data,
        notes=notes, warnings=warnings, prices_data=prices_data)
