"""Measurements -> the fitted workload (SPEC §2.3) and its YAML form."""

from __future__ import annotations

import math
from pathlib import Path

from ..models import PriceTable, Workload
from .measure import _attempt_table, _Frames


def fit_workload(fr: _Frames, by_model_frame, table: PriceTable, log_path: str, *,
                 base: Workload | None = None, log=None) -> tuple[Workload, list[str]]:
    """A workload that replays the log (SPEC §2.3); see the README for every choice."""
    warnings: list[str] = []
    att = _attempt_table(fr)
    tasks = fr.tasks
    n_tasks = len(tasks)
    share = tasks["task_type"].value_counts(sort=False)
    system = base.system_tokens if base is not None else 0
    handoff = base.handoff if base is not None else None
    summary = handoff is not None and handoff.mode == "summary"

    # success lists: per (task_type, phase, model), p at attempt 1..K (missing leading indices
    # take the first observed value; the engine repeats the last one).
    succ: dict[tuple[str, str], dict[str, list[float]]] = {}
    unknown: set[str] = set()
    for (tt, ph, m), grp in att.groupby(["task_type", "phase", "model"], observed=True,
                                        sort=True):
        m = str(m)
        if m not in table.models:
            unknown.add(m)
            continue
        a = grp["attempt"].to_numpy()
        p = grp["k"].to_numpy() / grp["n"].to_numpy()
        K = int(a.max())
        seq = [None] * K
        for ai, pi in zip(a, p):
            seq[int(ai) - 1] = round(float(pi), 6)
        first = next(v for v in seq if v is not None)
        out = []
        for v in seq:
            out.append(first if v is None and not out else (out[-1] if v is None else v))
        succ.setdefault((str(tt), str(ph)), {})[m] = out
    if unknown:
        warnings.append("the fitted workload has no success entries for models missing from the "
                        "price table: " + ", ".join(sorted(unknown)))

    # difficulty fallback from first attempts of models with a coding_score (§3.3 inverted).
    bm = by_model_frame
    diff: dict[tuple[str, str], float] = {}
    for (tt, ph), grp in bm.groupby(["task_type", "phase"], observed=True, sort=True):
        num = den = 0.0
        for m, fa, fs in zip(grp["model"], grp["first_attempts"], grp["first_successes"]):
            mp = table.models.get(str(m))
            if mp is None or mp.coding_score is None or fa == 0:
                continue
            p1 = min(max(fs / fa, 0.01), 0.99)
            num += fa * (mp.coding_score - 10.0 * math.log(p1 / (1 - p1)))
            den += fa
        if den:
            diff[(str(tt), str(ph))] = round(num / den, 3)
    # feedback gain: pooled retry success vs pooled first-attempt success.
    fa = float(bm["first_attempts"].sum())
    fs = float(bm["first_successes"].sum())
    ra = float(bm["retry_attempts"].sum())
    rs = float(bm["retry_successes"].sum())
    gain = 0.0
    if fa and ra and fs < fa:
        p1, pr = fs / fa, rs / ra
        gain = min(max((pr - p1) / (1 - p1), 0.0), 1.0)

    # tokens: attempt-1 rows. calls: 1 (the log counts attempts, not calls). The engine adds the
    # earlier phases' transcript (full history) or the summary and system_tokens to every call,
    # so input_tokens is what is left of the observed attempt input after that context.
    first_rows = fr.df[fr.df["attempt"] == 1]
    tok = first_rows.groupby(["task_type", "phase"], observed=True, sort=True).agg(
        inp=("input_tokens", "mean"), cached=("cached_input_tokens", "mean"),
        out=("output_tokens", "mean"), n=("attempt", "size"))
    all_tok = fr.df.groupby(["task_type", "phase"], observed=True, sort=True).agg(
        inp=("input_tokens", "mean"), cached=("cached_input_tokens", "mean"),
        out=("output_tokens", "mean"), n=("attempt", "size"))
    task_types = []
    cached_sum = ctx_sum = 0.0
    for tt in share.index:
        tt = str(tt)
        phases = []
        prior = 0.0
        for i, ph in enumerate(fr.phase_order[tt]):
            src = tok if (tt, ph) in tok.index else all_tok
            row = src.loc[(tt, ph)]
            x = float(row["inp"] + row["cached"])
            ctx = system + ((base.handoff.summary_tokens if i > 0 else 0) if summary else prior)
            new_in = int(round(max(0.0, x - ctx)))
            out = int(round(float(row["out"])))
            cached_sum += float(row["cached"]) * float(row["n"])
            ctx_sum += ctx * float(row["n"])
            entry: dict = {"phase": ph, "calls": 1, "input_tokens": new_in, "output_tokens": out}
            d = diff.get((tt, ph))
            if d is None and base is not None:
                d = _base_difficulty(base, tt, ph)
            if d is not None:
                entry["difficulty"] = d
            s = succ.get((tt, ph))
            if s:
                entry["success"] = s
            phases.append(entry)
            prior += new_in + out
        tdict = {"name": tt, "share": float(share[tt]) / n_tasks, "phases": phases,
                 "max_attempts": int(fr.max_attempt[tt])}
        task_types.append(tdict)

    if base is not None:
        hit = base.cache_hit_rate
    else:
        hit = min(max(cached_sum / ctx_sum, 0.0), 1.0) if ctx_sum > 0 else 0.0
    tpm = n_tasks
    if log is not None and log.has_timestamps and "first_ts" in tasks.columns:
        ts = tasks["first_ts"].dropna()
        span_days = (ts.max() - ts.min()).total_seconds() / 86400.0 if len(ts) > 1 else 0.0
        if span_days >= 7:
            tpm = int(round(len(ts) / span_days * 30.4375))
    data: dict = {
        "version": 1,
        "name": f"calibrated-{Path(log_path).name.split('.')[0]}",
        "description": f"Fitted by `costsim calibrate` from {Path(log_path).name}: "
                       f"{n_tasks} tasks, {len(fr.df)} attempts.",
        "tasks_per_month": max(1, tpm),
        "max_attempts": int(max(fr.max_attempt.values())),
        "system_tokens": int(system),
        "cache_hit_rate": round(float(hit), 6),
        "feedback_gain": round(float(gain), 6),
        "task_types": task_types,
    }
    if base is not None:
        data["handoff"] = base.handoff.model_dump(exclude_none=True)
        if base.defects is not None:
            data["defects"] = base.defects.model_dump()
    else:
        data["handoff"] = {"mode": "full_history"}
    from ..loader import check_workload_against

    wl = _validate_workload(data)
    check_workload_against(wl, table)
    return wl, warnings


def _base_difficulty(base: Workload, tt: str, ph: str) -> float | None:
    for t in base.task_types:
        if t.name == tt:
            for p in t.phases:
                if p.phase == ph:
                    return p.difficulty
    return None


def _validate_workload(data: dict) -> Workload:
    from ..loader import _validate  # the same strict validation the loader applies
    from ..yamlio import Document

    return _validate(Document(data=data, file="<calibrated workload>"), Workload)


def workload_to_dict(wl: Workload) -> dict:
    d = wl.model_dump(exclude_none=True, exclude_defaults=False, by_alias=True)
    if not d.get("signals"):
        d.pop("signals", None)
    for t in d["task_types"]:
        for k in ("signals", "defects"):
            if t.get(k) in (None, {}):
                t.pop(k, None)
    return d


def workload_yaml(wl: Workload, source: str | None = None) -> str:
    import yaml

    head = ("# Workload fitted by `costsim calibrate`"
            + (f" from {source}" if source else "") + ".\n"
            "# calls: 1 per attempt (the log records attempts, not calls); input_tokens = mean\n"
            "# attempt-1 input (cached included) minus the context the engine adds itself;\n"
            "# success: observed success rate by model id and attempt index.\n")
    return head + yaml.safe_dump(workload_to_dict(wl), sort_keys=False, width=100)

