"""Measurements -> the fitted workload (the workload format: docs/calibrate.md, SPEC.md §2.3).

Everything a log shows is fitted from it (tokens: :mod:`.tokens`; success: :mod:`.success`);
signal shares, defects and catch rates, max attempts and the task volume are fitted here, and
the parts are assembled into a workload the strict loader accepts. Whatever the log cannot show
comes from the base workload (``--workload``, default the bundled medium-team): each such field
is listed in :attr:`Fitted.from_base` with the reason, and written in the YAML's header comment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from ..models import TIER_CLASSES, PriceTable, Workload
from .measure import Measurements, canon_signals
from .success import SuccessFit, fit_success
from .tokens import TokenFit

SHARE_TEST_P = 1e-3        # a task type gets its own signal block below this p-value


@dataclass
class Fitted:
    data: dict                       # the workload as written (rounded), YAML-ready
    workload: Workload               # ``data`` validated
    from_base: list                  # [(field, why)]
    tokens: TokenFit
    success: SuccessFit
    defects: dict = field(default_factory=dict)   # what the defect fit found
    notes: list = field(default_factory=list)
    volume: object = None            # costsim.calibrate.volume.VolumeFit (None: not fitted)
    variation: object = None         # costsim.calibrate.variation.VariationFit or None


# --- variation ---------------------------------------------------------------------------------

def _base_variation(base: Workload | None) -> dict:
    v = base.variation if base is not None else None
    if v is None:
        return {"difficulty": 0.0, "tokens": 0.0, "tokens_follow_difficulty": 0.0}
    return {"difficulty": float(v.difficulty), "tokens": float(v.tokens),
            "tokens_follow_difficulty": float(v.tokens_follow_difficulty)}


def fit_variation_from(records, base: Workload | None):
    """Maximum-likelihood ``variation`` from the log's attempt records (``Measurements.records``
    or :meth:`.measure.Measure.early_records`; :mod:`.variation`); what the log cannot show
    keeps the base workload's. None when the log has no attempt records."""
    from .variation import fit_variation, tables_from_attempts

    if records is None or not len(records):
        return None
    outcomes, sizes = tables_from_attempts(records)
    return fit_variation(outcomes, sizes, default=_base_variation(base))


MIN_SELECTED = 30     # retries and escalations an item needs before its rate over all tasks is read


def rates_over_all_tasks(attempts, vf, notes: list | None = None):
    """The attempt table with each cell's successes ``k`` replaced by ``n`` times its item's rate
    over all tasks (the variation fit's: retries and escalations run on the tasks that failed,
    the harder ones, so their raw rates understate the rule's values, which are rates over all
    tasks). Unchanged when tasks do not differ.

    A retry or escalation item (model, phase, signals) seen fewer than ``MIN_SELECTED`` times,
    or whose attempts all failed (or all succeeded), does not show its rate over all tasks: it
    only sees the hardest tasks, where any rate fails them nearly all, so the rate read back
    from it is anything from 0 to 1 (seen: 0.0098 for a premium model that made three
    escalated attempts on the hardest docs searches, which then decided the phase's form and
    cost the single premium model 9 points of completion; 0.34 from nine). Its cells are left
    out of the success fit, and the model's rate there comes from the logistic rule and the
    fitted feedback gain, as for a model the log never shows; ``notes`` gets one line per
    model and phase. Only where the log shows that tasks differ (the spread's 95% interval
    excludes 0) or the spread comes from --workload."""
    from .variation import item_key

    if vf is None or vf.success is None or vf.difficulty <= 0:
        return attempts
    rates = vf.success.rates
    a = attempts.copy()
    keys = [item_key(*r) for r in zip(a["task_type"], a["phase"], a["model"], a["attempt"],
                                       a["signals"])]
    tot: dict = {}
    for key, n, k in zip(keys, a["n"], a["k"]):
        x = tot.setdefault(key, [0.0, 0.0])
        x[0] += float(n)
        x[1] += float(k)
    # only where tasks are known to differ: a spread whose 95% interval reaches 0 (a log whose
    # tasks are alike gives estimates of a few tenths) barely moves any rate
    sure = not vf.success.identified or vf.success.ci95[0] > 0
    thin = {g for g, (n, k) in tot.items()
            if sure and g[3] == "retry" and (n < MIN_SELECTED or k <= 0 or k >= n)}
    # Above VARIATION_TASKS tasks the variation fit reads a sample: each item's rate over all
    # tasks then comes from the whole log's raw rate and the sample's selection, the
    # distribution of z over the tasks that made the item's attempts (the variation fit's
    # ``selected``): the b whose mean over that distribution is the whole log's raw rate, then
    # its mean over all tasks. So the level comes from every task and only the selection from
    # the sample, and an item whose attempts in the sample all succeeded (or all failed) still
    # gets the whole log's level (it used to get the sample's 0 or 1: seen 0.000 for a premium
    # retry that succeeded 32 times in 47 on a 30,000-task log). On the sample itself (every
    # log up to VARIATION_TASKS tasks) this is the fit's rate exactly.
    adjusted = _selected_rates(vf.success, {g: v for g, v in tot.items()
                                           if v[0] > 0 and 0.0 < v[1] < v[0]})
    new, keep = [], []
    for key, n, k in zip(keys, a["n"], a["k"]):
        r = rates.get(key)
        if r is None:
            new.append(float(k))
        else:
            new.append(float(n) * adjusted.get(key, r))
        keep.append(key not in thin)
    a["k"] = new
    if notes is not None and thin:
        by: dict = {}
        for g in thin:
            by.setdefault(g[:3], 0.0)
            by[g[:3]] += tot[g][0]
        for (tt, ph, m), n in sorted(by.items()):
            notes.append(f"{tt}/{ph}: {m}'s rate is the logistic rule's, not read from its "
                         f"{n:,.0f} retries and escalations (too few, or all one outcome, on "
                         f"the hard tasks that reach them, to show a rate over all tasks)")
    return a[keep] if not all(keep) else a


def _selected_rates(sf, counts: dict) -> dict:
    """Item -> its rate over all tasks when the item's attempts show ``counts[item] = (n, k)``
    (0 < k < n) on tasks selected as in the variation fit ``sf``: the b for which the mean of
    ``sigmoid(b - s z)`` over the item's selected z is ``k / n`` (bisection, monotone in b),
    then that sigmoid's mean over all tasks. Items the fit did not see are left out; an item
    whose ``k / n`` is its raw share in the fit keeps the fit's rate."""
    import numpy as np
    from scipy.special import expit

    if sf.selected is None:
        return {}
    index = {it: i for i, it in enumerate(sf.items)}
    todo = [(g, index[g], k / n) for g, (n, k) in counts.items()
            if g in index and abs(k / n - sf.raw.get(g, -1.0)) >= 1e-12]
    if not todo:
        return {}
    rows = np.array([i for _, i, _ in todo])
    target = np.array([q for _, _, q in todo])
    sel, z, w, s = sf.selected[rows], sf.z, sf.w, sf.s
    lo = np.full(len(todo), -60.0)
    hi = np.full(len(todo), 60.0)
    for _ in range(60):                       # 120 / 2^60: far below any rate's precision
        mid = (lo + hi) / 2
        up = (sel * expit(mid[:, None] - s * z[None, :])).sum(axis=1) < target
        lo = np.where(up, mid, lo)
        hi = np.where(up, hi, mid)
    b = (lo + hi) / 2
    r = expit(b[:, None] - s * z[None, :]) @ w
    return {g: float(v) for (g, _, _), v in zip(todo, r)}


# --- signals ---------------------------------------------------------------------------------

def signal_groups(tasks) -> tuple[dict, dict, list]:
    """(task type -> group, group -> {signal: share}, signal names). A task type whose shares
    differ from the other types' (likelihood-ratio test) gets its own group, the others share
    the workload-level group "*"."""
    from scipy.special import chdtrc      # chi-square survival function (scipy.stats is slow
                                          # to import)
    t = tasks.copy()
    t["set"] = [tuple(s.split(";")) if s else () for s in (canon_signals(x)
                                                         for x in t["signals"])]
    names = sorted({s for st in t["set"] for s in st})
    types = sorted(t["task_type"].astype(str).unique())
    counts = {tt: {s: 0.0 for s in names} for tt in types}
    totals = {tt: 0.0 for tt in types}
    for tt, st, n in zip(t["task_type"].astype(str), t["set"], t["n"]):
        totals[tt] += float(n)
        for s in st:
            counts[tt][s] += float(n)
    groups = {tt: "*" for tt in types}

    def G_of(tt, others):
        rest_n = sum(totals[o] for o in others)
        if rest_n <= 0 or totals[tt] <= 0:
            return 0.0
        G = 0.0
        for s in names:
            x, n = counts[tt][s], totals[tt]
            xr = sum(counts[o][s] for o in others)
            G += 2.0 * (_bll(x, n, x / n) - _bll(x, n, xr / rest_n))
        return G

    # Split off, one at a time, the task type whose shares differ most from the rest of the
    # workload-level group, while the difference is significant.
    while names:
        members = [tt for tt in types if groups[tt] == "*"]
        if len(members) < 2:
            break
        scores = {tt: G_of(tt, [o for o in members if o != tt]) for tt in members}
        worst = max(sorted(scores), key=lambda tt: scores[tt])
        if chdtrc(len(names), scores[worst]) >= SHARE_TEST_P:
            break
        groups[worst] = worst
    # The biggest group of task types is the workload-level block; the others override it.
    sizes: dict = {}
    for tt in types:
        sizes[groups[tt]] = sizes.get(groups[tt], 0.0) + totals[tt]
    top = max(sorted(sizes), key=lambda g: (sizes[g], g == "*"))
    if top != "*":
        groups = {tt: ("*" if g == top else (tt if g == "*" else g)) for tt, g in groups.items()}
        # the former workload-level members are now split one type each only if they were
        # alone; several of them keep sharing one block through the first of them
        former = [tt for tt in types if groups[tt] == tt and tt not in sizes]
        if len(former) > 1:
            for tt in former:
                groups[tt] = former[0]
    shares: dict = {}
    for grp in sorted(set(groups.values())):
        members = [tt for tt in types if groups[tt] == grp]
        n = sum(totals[tt] for tt in members)
        shares[grp] = {s: sum(counts[tt][s] for tt in members) / n for s in names} if n else {}
    return groups, shares, names


def _bll(x, n, p):
    out = 0.0
    if x > 0:
        out += x * math.log(max(p, 1e-300))
    if n - x > 0:
        out += (n - x) * math.log(max(1.0 - p, 1e-300))
    return out


# --- defects ---------------------------------------------------------------------------------

def _lookup(mapping: dict, model: str, table: PriceTable):
    if model in mapping:
        return mapping[model]
    mp = table.models.get(model)
    return mapping.get(mp.tier) if mp is not None else None


def _defect_ml(d, cols: list, anchor, table):
    """Maximum likelihood of the defect rates (per model, over the phases ``cols``) and the
    catch rates (per review model but the anchor). Returns (loglik, rates, catches, params)."""
    import numpy as np
    from scipy.optimize import minimize

    K = len(cols)
    n = d["n"].to_numpy(dtype=float)
    x = np.minimum(d["changes"].to_numpy(dtype=float), K).astype(int)
    models = sorted({str(m) for c in cols for m in d[c].dropna().unique()})
    reviewers = sorted({str(m) for m in d["rv"].dropna().unique()})
    free_rv = [r for r in reviewers if anchor is None or r != anchor[0]]
    mi = {m: i for i, m in enumerate(models)}
    ri = {r: i for i, r in enumerate(free_rv)}
    M = np.full((len(d), K), -1, dtype=int)
    for k, c in enumerate(cols):
        M[:, k] = [mi.get(v, -1) if isinstance(v, str) else -1 for v in d[c]]
    rv = d["rv"].tolist()
    is_anchor = np.array([anchor is not None and r == anchor[0] for r in rv])
    rvi = np.array([ri.get(r, -1) if isinstance(r, str) else -1 for r in rv])
    a_val = anchor[1] if anchor is not None else 0.0

    def nll(z):
        rates, catches = z[: len(models)], z[len(models):]
        c = np.where(is_anchor, a_val,
                     np.where(rvi >= 0, catches[np.maximum(rvi, 0)] if len(catches) else 0.0,
                              0.0))
        q = np.where(M >= 0, rates[np.maximum(M, 0)], 0.0) * (1.0 - c)[:, None]
        pmf = np.zeros((len(d), K + 1))        # Poisson-binomial pmf over the phases
        pmf[:, 0] = 1.0
        for k in range(K):
            qk = q[:, k][:, None]
            shifted = np.zeros_like(pmf)
            shifted[:, 1:] = pmf[:, :-1]
            pmf = pmf * (1.0 - qk) + shifted * qk
        p = pmf[np.arange(len(d)), x]
        return -float((n * np.log(np.clip(p, 1e-300, None))).sum())

    z0 = np.concatenate([np.full(len(models), 0.05), np.full(len(free_rv), 0.5)])
    res = minimize(nll, z0, method="L-BFGS-B", bounds=[(0.0, 1.0)] * len(z0),
                   options={"maxiter": 500})
    rates = dict(zip(models, map(float, res.x[: len(models)])))
    catches = dict(zip(free_rv, map(float, res.x[len(models):])))
    return -float(res.fun), rates, catches, len(z0)


def fit_defects(ms: Measurements, table: PriceTable, base_defects) -> dict:
    """Defect rates per model (defect phases) and catch rates per review model, by maximum
    likelihood from the shipped-defect counts of completed tasks (reviewer_changes). The count
    is a sum of one Bernoulli per defect phase with probability rate(model that succeeded there)
    x (1 - catch(model that succeeded in review)): only those products are identified, so the
    catch rate of the most frequent review model is held at the base workload's value (said
    aloud) and everything else is fitted relative to it.

    The defect phases are the base workload's where the log has them; otherwise the set of
    phases that explains the counts best (forward selection by BIC)."""
    import math as _m

    d = ms.defects
    out: dict = {"rate": {}, "catch_rate": {}, "anchor": None, "tasks": 0, "from_base": [],
                 "phases": [], "phases_how": None}
    if d is None or d.empty:
        return out
    col = {ph: f"d{k}" for k, ph in enumerate(ms.pivot_phases)}
    out["tasks"] = int(d["n"].sum())
    catch_base = (base_defects.catch_rate if base_defects is not None else {})
    reviewers = d.groupby("rv")["n"].sum().sort_values(ascending=False)
    anchor = None
    if len(reviewers):
        a = str(reviewers.index[0])
        v = _lookup(catch_base, a, table)
        anchor = (a, 0.0 if v is None else min(float(v), 0.95))
    base_phases = [p for p in (base_defects.phases if base_defects is not None else [])
                   if p in col]
    N = max(float(d["n"].sum()), 2.0)
    if base_phases:
        phases = base_phases
        out["phases_how"] = "the base workload's defect phases"
    else:
        # Every subset of the phases (forward selection past six phases); the smallest set
        # within 2 of the best BIC wins (only strong evidence adds a phase).
        import itertools

        def bic(S):
            ll, _, _, k = _defect_ml(d, [col[q] for q in S], anchor, table)
            return ll - 0.5 * k * _m.log(N)

        scored = {}
        cands = list(ms.pivot_phases)
        if len(cands) <= 6:
            for r in range(1, len(cands) + 1):
                for S in itertools.combinations(cands, r):
                    scored[S] = bic(S)
        else:
            cur: tuple = ()
            while True:
                trial = {tuple(sorted(cur + (p,))): None for p in cands if p not in cur}
                if not trial:
                    break
                for S in trial:
                    scored[S] = bic(S)
                nxt = max(trial, key=lambda S: scored[S])
                if cur and scored[nxt] <= scored[cur] + 2.0:
                    break
                cur = nxt
        best = max(scored.values())
        near = [S for S, v in scored.items() if v >= best - 2.0]
        phases = list(min(near, key=lambda S: (len(S), -scored[S])))
        phases = [p for p in ms.pivot_phases if p in phases]
        out["phases_how"] = "chosen by likelihood (the base workload's defect phases are not " \
                            "in the log)"
    out["phases"] = phases
    if not phases:
        return out
    _, rates, catches, _ = _defect_ml(d, [col[p] for p in phases], anchor, table)
    out["rate"] = rates
    if anchor is not None:
        out["anchor"] = anchor
        out["catch_rate"][anchor[0]] = anchor[1]
        out["from_base"].append((f"defects.catch_rate.{anchor[0]}",
                                 "reviewer changes show only defect rate x (1 - catch rate): "
                                 "the catch rate of the most frequent review model is kept"))
    out["catch_rate"].update(catches)
    over = d["changes"].to_numpy() > len(phases)
    if over.any():
        out["clipped"] = int(d["n"].to_numpy()[over].sum())
    return out


def _class_values(values: dict, table: PriceTable) -> dict:
    """Per tier class, the mean over the observed models of that class."""
    acc: dict = {}
    for m, v in values.items():
        mp = table.models.get(m)
        if mp is not None:
            acc.setdefault(mp.tier, []).append(v)
    return {c: sum(v) / len(v) for c, v in acc.items()}


# --- max attempts, volume ----------------------------------------------------------------------

def fit_max_attempts(ms: Measurements, base: Workload | None, base_given: bool = True,
                     notes: list | None = None) -> tuple[int, dict, list]:
    """(workload max_attempts, task type -> its own max_attempts, from_base). A phase that ran
    out of attempts shows the ceiling; task types without one take the workload's.

    One-shot runs (one attempt per phase in every run: benchmark results, usage logs with one
    session per task) stopped every failed phase after its first attempt. Without a base the
    user gave (``base_given``), that is the ceiling the log shows, and 1 reproduces it; a base
    the user gave says how many attempts the strategies to project may make (a two-step
    cascade needs 2), and its max_attempts is kept."""
    s = ms.starts
    seen = s.groupby("task_type")["last_attempt"].max().to_dict()
    out = s[s["success_at"].isna()]
    shown = out.groupby("task_type")["last_attempt"].max().to_dict()
    from_base = []
    if seen and max(int(v) for v in seen.values()) == 1:
        if base is not None and base_given:
            return int(base.max_attempts), {}, [("max_attempts", "every run made one attempt "
                                                 "per phase (one-shot runs): no ceiling shows")]
        if notes is not None:
            notes.append("max_attempts 1: every run made one attempt per phase, and a failed "
                         "phase was not retried; to project strategies that retry or escalate, "
                         "give --workload with the attempts they may make")
        return 1, {}, []
    if shown:
        vals = sorted(shown.values())
        wl_k = max(set(vals), key=lambda v: (vals.count(v), v))
    else:
        wl_k = base.max_attempts if base is not None else max(seen.values())
        wl_k = max(wl_k, max(int(v) for v in seen.values()))
        from_base.append(("max_attempts", "no phase ran out of attempts in the log"))
    per = {}
    for tt, k in seen.items():
        own = shown.get(tt)
        v = int(own) if own is not None else max(int(wl_k), int(k))
        if v != wl_k:
            per[str(tt)] = v
    return int(wl_k), per, from_base


# --- assembly --------------------------------------------------------------------------------

def _round(x: float, nd: int = 6) -> float:
    return float(round(float(x), nd))


def fit_workload(ms: Measurements, tf: TokenFit, table: PriceTable, log_name: str, *,
                 base: Workload | None, workload_handoff: dict | None,
                 handoff_why: str | None = None, cost_only=None, variation=None,
                 base_given: bool = True) -> Fitted:
    """Fit success, signals, defects, max attempts and volume; assemble the workload dict and
    validate it. ``workload_handoff``: the handoff to write (decided by the caller from the
    runs; None: the base workload's). ``variation``: :func:`fit_variation_from`'s result when
    the caller has it already (a future, or the value), else it is fitted here.
    ``base_given``: whether the user gave ``base`` (``--workload``) rather than the bundled
    default (see :func:`fit_max_attempts`)."""
    from_base = list(tf.from_base)
    notes: list[str] = []
    groups, shares, sig_names = signal_groups(ms.tasks)
    if variation is None:
        vf = fit_variation_from(ms.records, base)
    else:
        vf = variation.result() if hasattr(variation, "result") else variation
    sf = fit_success(rates_over_all_tasks(ms.attempts, vf, notes), table, ms.phase_order,
                     groups)
    from_base += sf.unidentified

    # task types and phases
    tcount = ms.tasks.groupby("task_type")["n"].sum()
    total = float(tcount.sum())
    K, K_per, fb = fit_max_attempts(ms, base, base_given, notes)
    from_base += fb
    task_types = []
    shares_raw = {str(tt): float(c) / total for tt, c in tcount.items()}
    shares_rounded = _shares(shares_raw)
    for tt in ms.task_types:
        phases = []
        for ph in ms.phase_order[tt]:
            key = (tt, ph)
            tok = tf.phases[key]
            entry: dict = {"phase": ph, "calls": int(tok["calls"]),
                           "input_tokens": int(tok["input_tokens"]),
                           "output_tokens": int(tok["output_tokens"])}
            dval = sf.difficulty.get(key)
            if dval is None:
                bd = _base_difficulty(base, tt, ph)
                if bd is not None:
                    dval = bd
                    from_base.append((f"{tt}/{ph} difficulty", "no model with a coding_score "
                                      "ran this phase"))
            if dval is not None:
                entry["difficulty"] = _round(dval, 4)
            smap = _success_map(sf, key, table, base, tt, ph, from_base)
            if smap:
                entry["success"] = smap
            phases.append(entry)
        tdict: dict = {"name": tt, "share": shares_rounded[tt], "phases": phases}
        grp = groups.get(tt, "*")
        if grp != "*":
            tdict["signals"] = _signal_block(shares[grp], sf.signal_difficulty.get(grp, {}),
                                             sf.signal_difficulty.get("*", {}), base, tt)
        if tt in K_per:
            tdict["max_attempts"] = K_per[tt]
        task_types.append(tdict)

    data: dict = {
        "version": 1,
        "name": f"calibrated-{Path(log_name).name.split('.')[0] or 'log'}",
        "description": (f"Fitted by `costsim calibrate` from {Path(log_name).name}: "
                        f"{ms.overall.get('tasks', 0):,} tasks, {ms.overall.get('rows', 0):,} "
                        f"rows."),
    }
    tpm, volume = _tasks_per_month(ms, base, from_base, notes)
    data["tasks_per_month"] = tpm
    data["max_attempts"] = K
    data["system_tokens"] = int(tf.system_tokens)
    data["cache_hit_rate"] = _round(tf.cache_hit_rate)
    if workload_handoff is not None:
        data["handoff"] = dict(workload_handoff)
    else:
        data["handoff"] = (base.handoff.model_dump(exclude_none=True) if base is not None
                           else {"mode": "full_history"})
        from_base.append(("handoff", handoff_why or "the log's handoff is the policy's own"))
    if sf.gain is not None:
        data["feedback_gain"] = _round(sf.gain)
    else:
        data["feedback_gain"] = float(base.feedback_gain) if base is not None else 0.0
        from_base.append(("feedback_gain", "no retry in a phase that follows the logistic "
                          "rule"))
    if "*" in shares and any(v > 0 for v in shares["*"].values()):
        data["signals"] = _signal_block(shares["*"], sf.signal_difficulty.get("*", {}), {},
                                        base, None)
    defects, defect_fit = _defects_block(ms, table, base, from_base, notes)
    if defects is not None:
        data["defects"] = defects
    data["task_types"] = task_types
    if vf is not None:
        vd = vf.as_dict()
        if any(v > 0 for v in vd.values()):
            data["variation"] = vd
        for k in ("difficulty", "tokens", "tokens_follow_difficulty"):
            if vf.source[k] != "log":
                from_base.append((f"variation.{k}", _variation_why(vf, k)))
        if ms.records_sampled:
            notes.append(f"variation fitted on a sample of {vf.tasks:,} tasks (by task id)")
    elif base is not None and base.variation is not None:
        data["variation"] = base.variation.model_dump()
        from_base.append(("variation", "the log has no attempt records"))
    if base is not None and any(t.variation is not None for t in base.task_types):
        notes.append("the base workload's per-task-type variation is not carried over: the "
                     "fitted variation is one for the workload")
    if cost_only is not None:
        from .cost_only import apply_to_workload

        # what a cost-only log cannot show of tokens is set by the cost-only sizing itself
        sized = {f"{tt}/{ph}" for tt, ph in cost_only.sizes}
        if {tt for tt, _ in cost_only.sizes} >= set(ms.task_types):
            from_base = [(f, w) for f, w in from_base
                         if f not in ("system_tokens", "cache_hit_rate")]
        from_base = [(f, w) for f, w in from_base
                     if not (f.endswith(" input_tokens") and f.rsplit(" ", 1)[0] in sized)]

        data = apply_to_workload(data, cost_only)
        names = ", ".join(f"{tt}/{ph}" for tt, ph in sorted(cost_only.sizes))
        notes.append(f"{names}: the log shows costs and no tokens; sized at a nominal "
                     f"{cost_only.sizes and min(cost_only.sizes.values()):,}+ input tokens a "
                     f"call, billed at the effective prices of --write-prices")
    wl = validate_workload(data, table)
    return Fitted(data=data, workload=wl, from_base=from_base, tokens=tf, success=sf,
                  defects=defect_fit, notes=notes, volume=volume, variation=vf)


def _variation_why(vf, k: str) -> str:
    for n in vf.notes:
        head = {"difficulty": "difficulty spread", "tokens": "size spread",
                "tokens_follow_difficulty": "size and difficulty"}[k]
        if n.startswith(head):
            return n.split(": ", 1)[1].split("; kept")[0]
    if k == "tokens_follow_difficulty":
        return "the log shows no sizes (tokens or costs) to relate to difficulty"
    return "the log does not show it"


def _tasks_per_month(ms, base: Workload | None, from_base: list, notes: list):
    """The workload's ``tasks_per_month`` and the volume fit behind it (None when the log's
    timestamps span less than a week or it has none).

    A log spanning months enough gives ``{mean, cv}`` when its monthly counts vary more than
    chance (:mod:`.volume`), else a number; a shorter one gives distinct tasks per 30.4 days of
    its span, keeping the base workload's cv when the base gives ``{mean, cv}`` (the log cannot
    show month-to-month variation)."""
    from ..models import Volume
    from .volume import fit_volume_days

    base_tpm = base.tasks_per_month if base is not None else None
    base_cv = float(base_tpm.cv) if isinstance(base_tpm, Volume) else None
    if ms.span_days is None or ms.span_days < 7:
        tpm = base_tpm if base_tpm is not None else max(1, ms.distinct_tasks)
        if isinstance(tpm, Volume):
            tpm = tpm.model_dump()
        from_base.append(("tasks_per_month", "the log's timestamps span less than a week"
                          if ms.span_days is not None else "the log has no timestamps"))
        return tpm, None
    plain = max(1, int(round(ms.distinct_tasks / ms.span_days * 30.4375)))
    vf = None
    if ms.first_days is not None:
        lo, hi = ms.first_range
        vf = fit_volume_days(ms.first_days, lo, hi, default_cv=base_cv)
    if vf is None:
        return plain, None
    if vf.source["cv"] == "log":
        notes += vf.notes
        return vf.as_workload_value(), vf
    if base_cv is not None:
        from_base.append(("tasks_per_month.cv", f"the log spans {vf.months:.1f} months: too few "
                          f"to show month-to-month variation"))
        return {"mean": float(plain), "cv": base_cv}, vf
    return plain, vf


def _shares(raw: dict) -> dict:
    """Rounded shares that still sum to 1 (the largest absorbs the rounding)."""
    out = {k: _round(v, 6) for k, v in raw.items()}
    if out:
        big = max(out, key=lambda k: out[k])
        out[big] = _round(1.0 - sum(v for k, v in out.items() if k != big), 6)
    return out


def _signal_block(shares: dict, diff: dict, fallback: dict, base: Workload | None,
                  tt: str | None) -> dict:
    block = {}
    for s, share in sorted(shares.items()):
        if share <= 0:
            continue
        d = diff.get(s, fallback.get(s))
        if d is None:
            d = _base_signal_difficulty(base, tt, s)
        block[s] = {"share": _round(share), "difficulty": _round(d or 0.0, 4)}
    return block


def _base_signal_difficulty(base, tt, s):
    if base is None:
        return None
    if tt is not None:
        for t in base.task_types:
            if t.name == tt and t.signals and s in t.signals:
                return t.signals[s].difficulty
    sig = base.signals.get(s)
    return sig.difficulty if sig is not None else None


def _success_map(sf: SuccessFit, key, table, base, tt, ph, from_base) -> dict | None:
    """The phase's success map: fitted model entries, their tier classes, and in a map phase
    the base workload's entries for tier classes the log does not show."""
    fitted = sf.maps.get(key)
    if not fitted:
        return None
    out = {m: v for m, v in fitted.items()}
    if sf.form.get(key) != "map":
        return out   # a logistic phase: entries only for models without a coding_score
    by_class: dict = {}
    for m, v in fitted.items():
        mp = table.models.get(m)
        if mp is not None:
            by_class.setdefault(mp.tier, []).append(v)
    for cls, vals in by_class.items():
        if cls not in out:
            out[cls] = _mean_values(vals)
    bph = _base_phase(base, tt, ph)
    if bph is not None and bph.success:
        added = []
        for k, v in bph.success.items():
            if k in out:
                continue
            if k in TIER_CLASSES or k not in table.models or table.models[k].tier not in by_class:
                out[k] = v
                added.append(k)
        if added:
            from_base.append((f"{tt}/{ph} success[{', '.join(added)}]",
                              "the log shows no model of this tier class in this phase"))
    return out


def _mean_values(vals: list):
    """Elementwise mean of success values (numbers, or lists whose last value repeats)."""
    if all(not isinstance(v, list) for v in vals):
        return _round(sum(vals) / len(vals))
    L = max(len(v) if isinstance(v, list) else 1 for v in vals)
    seqs = [(v if isinstance(v, list) else [v]) for v in vals]
    return [_round(sum(s[min(k, len(s) - 1)] for s in seqs) / len(seqs)) for k in range(L)]


def _base_phase(base, tt, ph):
    if base is None:
        return None
    for t in base.task_types:
        if t.name == tt:
            for p in t.phases:
                if p.phase == ph:
                    return p
    for t in base.task_types:          # same phase name in another task type
        for p in t.phases:
            if p.phase == ph:
                return p
    return None


def _base_difficulty(base, tt, ph):
    p = _base_phase(base, tt, ph)
    return p.difficulty if p is not None else None


def _defects_block(ms: Measurements, table, base, from_base, notes) -> tuple:
    """(the defects block to write or None, what the defect fit found)."""
    bd = base.defects if base is not None else None
    if ms.defects is None or ms.defects.empty:
        if bd is not None:
            from_base.append(("defects", "the log has no reviewer_changes on completed tasks"))
            return bd.model_dump(), {}
        return None, {}
    fd = fit_defects(ms, table, bd)
    if not fd["phases"]:
        if bd is not None:
            from_base.append(("defects", "no set of phases explains the reviewer changes"))
            return bd.model_dump(), fd
        return None, fd
    from_base += fd["from_base"]
    rate = dict(bd.rate) if bd is not None else {}
    catch = dict(bd.catch_rate) if bd is not None else {}
    # Fitted model entries win; their tier classes follow; other classes stay from the base.
    rate_cls = _class_values(fd["rate"], table)
    catch_cls = _class_values(fd["catch_rate"], table)
    kept_rate = [k for k in rate if k not in fd["rate"] and k not in rate_cls]
    kept_catch = [k for k in catch if k not in fd["catch_rate"] and k not in catch_cls]
    rate.update({k: _round(v) for k, v in rate_cls.items()})
    rate.update({k: _round(v) for k, v in fd["rate"].items()})
    catch.update({k: _round(v) for k, v in catch_cls.items()})
    catch.update({k: _round(v) for k, v in fd["catch_rate"].items()})
    if kept_rate:
        from_base.append((f"defects.rate[{', '.join(kept_rate)}]", "the log shows no such "
                          "model succeeding in a defect phase"))
    if kept_catch:
        from_base.append((f"defects.catch_rate[{', '.join(kept_catch)}]", "the log shows no "
                          "such model reviewing"))
    phases = list(fd["phases"])
    if bd is not None and fd["phases_how"].startswith("the base"):
        phases = list(bd.phases)
        from_base.append(("defects.phases", "a log does not say which phase introduced a "
                          "defect"))
    else:
        notes.append(f"defect phases {', '.join(phases)}: {fd['phases_how']}")
    rm = bd.review_minutes.model_dump() if bd is not None else {"base": 0.0, "per_defect": 0.0}
    from_base.append(("defects.review_minutes", "a log does not say how long a review took"))
    if fd.get("clipped"):
        notes.append(f"{fd['clipped']} tasks report more reviewer changes than defect phases; "
                     f"counted as one change per defect phase")
    return {"phases": phases, "rate": rate, "catch_rate": catch, "review_minutes": rm}, fd


def validate_workload(data: dict, table: PriceTable) -> Workload:
    from ..loader import _validate, check_workload_against  # the loader's strict validation
    from ..yamlio import Document

    wl = _validate(Document(data=data, file="<calibrated workload>"), Workload)
    check_workload_against(wl, table)
    return wl


def workload_yaml(data: dict, source: str | None, from_base: list, notes: list = ()) -> str:
    import yaml

    lines = ["# Workload fitted by `costsim calibrate`" + (f" from {source}" if source else "")
             + ".",
             "# Fitted from the log: task-type shares, per phase calls, input/output tokens "
             "per call,",
             "# difficulty (logistic rule) or success (map), system_tokens, cache_hit_rate,",
             "# feedback_gain, variation, signal shares and difficulties, defect and catch "
             "rates, max_attempts,",
             "# tasks_per_month (timestamps; {mean, cv} when the monthly counts vary more "
             "than chance)."]
    if from_base:
        lines.append("# Not shown by the log, taken from the base workload (--workload):")
        for f, why in from_base:
            lines.append(f"#   {f}: {why}")
    for n in notes:
        lines.append(f"# note: {n}")
    return "\n".join(lines) + "\n" + yaml.safe_dump(data, sort_keys=False, width=100)
