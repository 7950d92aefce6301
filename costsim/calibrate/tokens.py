"""Token structure of a log -> calls, input and output tokens per phase, system tokens, cache hit
rate, handoff and retry context (the cost model's §3.2, read backwards).

Every call row of attempt k of phase i says, on average over the tasks of a typical size:

    input(k, j) = system + prior_i + retry * (k - 1) * n_i * g_i + (j - 1) * g_i + in_i

with ``g_i = in_i + out_i`` the growth per call, ``prior_i`` the context handed over (full
history: the sum of ``n_q * g_q`` over earlier phases; summary: ``summary_tokens`` after the
first phase) and ``retry`` 1 or 0 (``retry_context: none``). An attempt row is the sum of its
calls; a summary row's input is ``system + prior_i + k * n_i * g_i`` (``n_i * g_i`` without
retry context). All of this is linear in ``system`` and the ``g_i``: one weighted least-squares
fit over the aggregates, with ``out_i`` and ``n_i`` measured directly. What the log cannot
separate (a null direction of the fit) keeps the base workload's value and is reported.

Tasks differ in size (SPEC §3.5: every token count of a task is multiplied by the same factor
``u``, mean 1), and with sizes that follow difficulty the tasks that reach a retry, an
escalation or a later phase are not a typical sample: retries run on the hard tasks, the large
ones, and a later phase on the tasks that passed the earlier ones. A cell's raw mean is its
size times the mean ``u`` of the tasks that reached it, and the fit would read that selection as
growth. So each cell's means are first divided by that mean ``u``, read without a model from
every task's first attempt of its first phase (made by every task: ``xs / nxs`` of
``Measure.token_table``, see :func:`unselected`). Each task type's cells are then put on one
common size, since the types share the system prompt (:func:`_type_sizes`). A log whose tasks
all have the same size has factor 1 everywhere and its fit is unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class RunMode:
    handoff: str                   # summary | full_history
    summary_tokens: int | None = None
    summarizer: str | None = None
    retry_context: str = "full"    # full | none | unknown (no retries seen)
    summary_mean: float = 0.0      # summary_tokens before rounding


@dataclass
class TokenFit:
    system_tokens: int
    cache_hit_rate: float
    phases: dict                   # (tt, phase) -> {"calls", "input_tokens", "output_tokens", "g"}
    modes: dict                    # run -> RunMode
    from_base: list = field(default_factory=list)   # (field, why)
    residual: float = 0.0          # weighted RMS residual of the input fit, tokens

    def growth(self) -> dict:
        return {k: v["g"] for k, v in self.phases.items()}


def unselected(tok):
    """``tok`` with each cell's input, cached and output tokens divided by the mean relative
    size of the tasks in it (``xs / nxs``; 1 where the table has no such column or no task of
    the cell has a size): what the cell would show on tasks of the typical size."""
    import numpy as np

    if "xs" not in tok.columns:
        return tok
    nxs = tok["nxs"].to_numpy(dtype=float, na_value=0.0)
    xs = tok["xs"].to_numpy(dtype=float, na_value=0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where((nxs > 0) & (xs > 0), xs / nxs, 1.0)
    if np.all(f == 1.0):
        return tok
    return tok.assign(**{c: tok[c].to_numpy(dtype=float) / f
                         for c in ("input", "cached", "output")})


def _calls_and_output(tok) -> dict:
    """(tt, phase) -> (calls per attempt, output tokens per call, attempts)."""
    import numpy as np

    a = tok[tok["is_summary"] == 0]
    is_call = a["call"].notna().to_numpy()
    n = a["n"].to_numpy(dtype=float)
    calls = np.where(is_call, 1.0, a["calls"].to_numpy(dtype=float, na_value=1.0))
    first = np.where(is_call, (a["call"].to_numpy(dtype=float, na_value=0.0) == 1) * n, n)
    d = a[["task_type", "phase"]].assign(calls=calls * n, att=first,
                                         output=a["output"].to_numpy(dtype=float))
    g = d.groupby(["task_type", "phase"], sort=True)[["calls", "att", "output"]].sum()
    out = {}
    for (tt, ph), r in g.iterrows():
        att = r["att"] if r["att"] > 0 else 1.0
        out[(str(tt), str(ph))] = (r["calls"] / att, r["output"] / r["calls"] if r["calls"]
                                   else 0.0, att)
    return out


def _run_modes(tok) -> dict:
    modes = {}
    for run, grp in tok.groupby("run"):
        s = grp[grp["is_summary"] == 1]
        if len(s) and float(s["n"].sum()) > 0:
            n = float(s["n"].sum())
            by_model = s.groupby("model")["n"].sum().sort_values(ascending=False)
            mean = float(s["output"].sum()) / n
            modes[str(run)] = RunMode("summary", int(round(mean)), str(by_model.index[0]),
                                      summary_mean=mean)
        else:
            modes[str(run)] = RunMode("full_history")
    return modes


def _design(tok, order, co, modes, retry, N, per_type=None, exact_summary=False):
    """Rows of the weighted least-squares problem: (x, y, w) with x over [system, g...], and
    each row's task type. With ``per_type`` (the types, in order) each type has its own system
    column (x over [system of each type, g...]) and each (run, type) its own summary size, not
    rounded: the fit of :func:`_type_sizes`; ``exact_summary``: the runs' summary sizes not
    rounded either."""
    import numpy as np

    types = list(per_type or [])
    sys_col = {tt: i for i, tt in enumerate(types)}
    summ = {}
    if per_type:
        s = tok[tok["is_summary"] == 1]
        for (run, tt), grp in s.groupby(["run", "task_type"]):
            n = float(grp["n"].sum())
            if n > 0:
                summ[(str(run), str(tt))] = float(grp["output"].sum()) / n
    T = max(1, len(types))
    index = {}
    for tt, phases in order.items():
        for ph in phases:
            index[(tt, ph)] = T + len(index)
    P = T + len(index)
    rows, ys, ws, tts = [], [], [], []
    pos = {(tt, ph): i for tt, phases in order.items() for i, ph in enumerate(phases)}
    for r in tok.itertuples(index=False):
        key = (r.task_type, r.phase)
        if key not in index or r.n <= 0:
            continue
        run = str(r.run)
        mode = modes[run]
        rflag = 0.0 if retry.get(run) == "none" else 1.0
        i = pos[key]
        tt = r.task_type
        x = np.zeros(P)
        x[sys_col.get(tt, 0)] = 1.0                       # system
        # prior
        prior_const = 0.0
        if mode.handoff == "summary":
            if per_type:
                prior_const = summ.get((run, tt), 0.0) if i > 0 else 0.0
            else:
                size = mode.summary_mean if exact_summary else mode.summary_tokens
                prior_const = float(size or 0) if i > 0 else 0.0
        else:
            for q in order[tt][:i]:
                x[index[(tt, q)]] += N[(tt, q)]
        gi = index[key]
        n_i = N[key]
        out_i = co[key][1]
        k = float(r.attempt)
        mean_in = float(r.input) / float(r.n)
        if r.is_summary == 1:
            mult = (k if rflag else 1.0) * n_i
            x[gi] += mult
            y = mean_in - prior_const
        elif not (isinstance(r.call, float) and math.isnan(r.call)) and r.call is not None \
                and not _isna(r.call):
            j = float(r.call)
            x[gi] += rflag * (k - 1) * n_i + j
            y = mean_in + out_i - prior_const
        else:
            c = float(r.calls)
            x = x * c
            x[gi] += c * rflag * (k - 1) * n_i + c + c * (c - 1) / 2
            y = mean_in + c * out_i - c * prior_const
        rows.append(x)
        ys.append(y)
        ws.append(float(r.n))
        tts.append(tt)
    return np.array(rows).reshape(-1, P), np.array(ys), np.array(ws), index, np.array(tts)


def _isna(v) -> bool:
    try:
        import pandas as pd

        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _solve(X, y, w, lower=None):
    """Weighted least squares with lower bounds (``system >= 0``, ``g_i >= out_i``: a call
    never adds fewer tokens than it writes). Returns (theta, weighted RSS)."""
    import numpy as np
    from scipy.optimize import lsq_linear

    sw = np.sqrt(w / w.max())
    A = X * sw[:, None]
    b = y * sw
    scale = np.maximum(np.abs(A).max(axis=0), 1e-12)
    lb = np.full(X.shape[1], -np.inf) if lower is None else np.asarray(lower) * scale
    res = lsq_linear(A / scale, b, bounds=(lb, np.full(X.shape[1], np.inf)), method="bvls",
                     tol=1e-12)
    theta = res.x / scale
    r = b - A @ theta
    return theta, float(r @ r)


def _null_basis(X, w, tol: float = 1e-7):
    """Orthonormal basis (rows) of the null space of the weighted design, in parameter units."""
    import numpy as np

    sw = np.sqrt(w / w.max())
    A = X * sw[:, None]
    if A.shape[0] == 0:
        return np.eye(X.shape[1])
    # V is whole (P x P) without U's m x m square when there are at least as many rows as
    # parameters: the same null space at a fraction of the cost (U is 465 x 465 on a log of
    # four task types)
    _, s, vt = np.linalg.svd(A, full_matrices=A.shape[0] < A.shape[1])
    smax = s.max() if s.size else 0.0
    rank = int((s > tol * max(smax, 1e-300)).sum())
    return vt[rank:]


def _null_params(X, w, tol: float = 1e-7) -> set:
    """Indices of parameters with a component in the null space of the weighted design."""
    import numpy as np

    sw = np.sqrt(w / w.max())
    A = X * sw[:, None]
    scale = np.maximum(np.abs(A).max(axis=0), 1e-12)
    A = A / scale
    if A.shape[0] == 0:
        return set(range(X.shape[1]))
    _, s, vt = np.linalg.svd(A, full_matrices=True)
    smax = s.max() if s.size else 0.0
    rank = int((s > tol * max(smax, 1e-300)).sum())
    null = vt[rank:]
    if null.size == 0:
        return set()
    return {j for j in range(X.shape[1]) if np.abs(null[:, j]).max() > 1e-6}


def _fit_linear(tok, order: dict, retry: dict | None = None, per_type=None,
                exact_summary: bool = False) -> dict:
    """The weighted least-squares fit of the token aggregates ``tok``; each run's retry context
    read from the tokens unless ``retry`` gives it (``per_type``: see :func:`_design`)."""
    import numpy as np

    co = _calls_and_output(tok)
    N = {k: max(1, int(round(v[0]))) for k, v in co.items()}
    modes = _run_modes(tok)
    runs = sorted(modes)
    att = tok[tok["is_summary"] == 0]

    def solve(rmap):
        X, y, w, index, tts = _design(tok, order, co, modes, rmap, N, per_type,
                                      exact_summary)
        lower = np.zeros(X.shape[1])
        for key, j in index.items():
            lower[j] = co[key][1]
        theta, rss = _solve(X, y, w, lower)
        return X, y, w, index, lower, theta, rss, tts

    # Retry context per run: try both readings, keep the one that fits (a run without retries
    # cannot tell, and it does not matter for its rows).
    retried = {str(r) for r in att.loc[att["attempt"] > 1, "run"].unique()}
    fixed = retry is not None
    retry = dict(retry) if fixed else {run: "full" for run in runs}
    X, y, w, index, lower, theta, rss, tts = solve(retry)
    for _ in range(0 if fixed else 2):
        changed = False
        for run in runs:
            if run not in retried:
                continue
            alt = dict(retry)
            alt[run] = "none" if retry[run] == "full" else "full"
            cand = solve(alt)
            if cand[-2] < rss * (1 - 1e-6) - 1e-9 * max(float(cand[2].sum()), 1.0):
                retry = alt
                X, y, w, index, lower, theta, rss, tts = cand
                changed = True
        if not changed:
            break
    for run in runs:
        modes[run].retry_context = retry[run] if run in retried else "unknown"
    return {"tok": tok, "co": co, "N": N, "modes": modes, "retry": retry, "X": X, "y": y,
            "w": w, "index": index, "lower": lower, "theta": theta, "tts": tts}


def _run_sizes(tok):
    """``tok`` with each run's cells of a task type brought to the type's size over all runs.

    Runs that split the tasks between them (an A/B test of two strategies) ran different tasks,
    so each run's cells of a type come out as the type's sizes times the mean size factor of
    that run's tasks, and the runs disagree by a few percent. The output tokens per call of a
    phase are the same for every model and multiplied by the task's size alone, so the ratio
    of a run's outputs to the type's outputs over all runs, phase by phase (summaries left out),
    is that run's factor relative to the type's. Each (run, type)'s cells are divided by it;
    runs that ran the same tasks get 1. (The type's own factor relative to the other types is
    :func:`_type_sizes`'s: only the system prompt, shared by the types, shows it.)"""
    import numpy as np

    if tok["run"].nunique() < 2:
        return tok
    att = tok[(tok["is_summary"] == 0) & (tok["n"] > 0)]
    # calls in a cell: its rows for call rows, rows x calls for attempt rows (whose outputs
    # cover all the attempt's calls; how many calls an attempt made differs by model and run)
    n = att["n"].to_numpy(dtype=float)
    c = att["calls"].to_numpy(dtype=float, na_value=np.nan)
    att = att.assign(ncalls=np.where(np.isnan(c), n, n * c))
    keys = ["task_type", "phase", "attempt"]
    pooled = att.groupby(keys)[["output", "ncalls"]].sum()
    per_call = (pooled["output"] / pooled["ncalls"]).rename("pc")
    a = att.join(per_call, on=keys)
    a = a.assign(expected=a["pc"].to_numpy(float) * a["ncalls"].to_numpy(float))
    g = a.groupby(["run", "task_type"])[["output", "expected"]].sum()
    ratio = {(str(r), str(t)): (float(o) / float(e) if e > 0 and o > 0 else 1.0)
             for (r, t), o, e in zip(g.index, g["output"], g["expected"])}
    f = np.array([ratio.get((str(r), str(t)), 1.0)
                  for r, t in zip(tok["run"], tok["task_type"])])
    if np.allclose(f, 1.0):
        return tok
    return tok.assign(**{c: tok[c].to_numpy(dtype=float) / f
                         for c in ("input", "cached", "output")})


def _type_sizes(tok, order: dict):
    """``(tok, retry)``: ``tok`` (divided by :func:`unselected`) with each task type's cells on
    one common size, and each run's retry context as that fit read it (None when it is left).

    The tasks of a log are a sample: each type's cells come out as its sizes times its tasks'
    mean size factor, a few percent above or below 1 at 10,000 tasks with the bundled spreads,
    while the system prompt (and a run's summary) is shared by every type. A fit with one
    system prompt column per type (and each type's own summary size) reads each type's factor
    as its system prompt over their task-weighted mean; each type's cells are divided by it.
    Then the types agree on one system prompt and the fit leaves no residual that call rows
    and attempt rows would weigh differently. Left as it is when there is one type, or the log
    cannot separate a type's system prompt from its phases, or a factor is implausible (outside
    1/2..2: the types differ in more than size)."""
    import numpy as np

    a = tok[(tok["is_summary"] == 0) & (tok["attempt"] == 1)]
    first = {tt: phases[0] for tt, phases in order.items() if phases}
    keep = np.array([first.get(tt) == ph for tt, ph in zip(a["task_type"], a["phase"])],
                    dtype=bool) & (a["call"].to_numpy(dtype=float, na_value=1.0) == 1)
    tasks = a[keep].groupby("task_type")["n"].sum()
    types = [str(t) for t in tasks.index if str(t) in order]
    if len(types) < 2 or set(order) - set(types):
        return tok, None
    fit = _fit_linear(tok, order, per_type=types)
    T = len(types)
    null = _null_basis(fit["X"], fit["w"])
    if null.size and np.abs(null[:, :T]).max() > 1e-6:
        return tok, None
    systems = fit["theta"][:T]
    nt = np.array([float(tasks[t]) for t in types])
    common = float((nt * systems).sum() / nt.sum())
    if common <= 0 or np.any(systems <= 0):
        return tok, None
    factor = systems / common
    if np.any(factor < 0.5) or np.any(factor > 2.0):
        return tok, None
    by_type = dict(zip(types, factor))
    f = np.array([by_type.get(str(t), 1.0) for t in tok["task_type"]])
    return tok.assign(**{c: tok[c].to_numpy(dtype=float) / f
                         for c in ("input", "cached", "output")}), fit["retry"]


def fit_tokens(tok, order: dict, base=None) -> TokenFit:
    """Fit §3.2's token structure to the token aggregates ``tok`` (Measure.token_table)."""
    import numpy as np

    sized = unselected(tok)
    varied = sized is not tok
    retry = None
    if varied:
        sized, retry = _type_sizes(_run_sizes(sized), order)
    fit = _fit_linear(sized, order, retry, exact_summary=varied)
    tok, co, N, modes, X, y, w, index, lower, theta = (
        fit["tok"], fit["co"], fit["N"], fit["modes"], fit["X"], fit["y"], fit["w"],
        fit["index"], fit["lower"], fit["theta"])
    att = tok[tok["is_summary"] == 0]

    from_base = []
    null = _null_basis(X, w)
    unknown = sorted(j for j in range(X.shape[1])
                     if null.size and np.abs(null[:, j]).max() > 1e-6)
    if unknown:
        # What the log cannot separate moves, along the fit's null directions only, to the
        # base workload's values (the data's fit is unchanged).
        base_g = _base_growth(base)
        inv = {v: k for k, v in index.items()}
        anchor = theta.copy()
        for j in unknown:
            if j == 0:
                anchor[j] = float(base.system_tokens) if base is not None else 0.0
                from_base.append(("system_tokens", "the log cannot separate the system prompt "
                                  "from the phases' own input"))
            else:
                key = inv[j]
                anchor[j] = base_g.get(key, 2.0 * co[key][1])
                from_base.append((f"{key[0]}/{key[1]} input_tokens",
                                  "the log cannot separate this phase's new input from the "
                                  "context it resends"))
        c, *_ = np.linalg.lstsq(null.T[unknown], (anchor - theta)[unknown], rcond=None)
        theta = np.maximum(theta + null.T @ c, lower)
    res = (y - X @ theta) * np.sqrt(w)
    residual = float(np.sqrt((res @ res) / max(w.sum(), 1.0)))

    system = max(0, int(round(float(theta[0]))))
    phases = {}
    for key, j in index.items():
        g = float(theta[j])
        out = int(round(co[key][1]))
        inp = max(0, int(round(g - co[key][1])))
        phases[key] = {"calls": N[key], "input_tokens": inp, "output_tokens": out,
                       "g": float(inp + out)}

    # Cache hit rate: cached / resent context, over attempt rows (summaries are not cached).
    ctx = cached = 0.0
    for r in att.itertuples(index=False):
        key = (r.task_type, r.phase)
        if key not in phases:
            continue
        calls = float(r.n) if not _isna(r.call) else float(r.calls) * float(r.n)
        ctx += float(r.input) - calls * phases[key]["input_tokens"]
        cached += float(r.cached)
    if ctx > 0 and cached >= 0:
        hit = min(max(cached / ctx, 0.0), 1.0)
    else:
        hit = float(base.cache_hit_rate) if base is not None else 0.0
        from_base.append(("cache_hit_rate", "the log resends no context"))
    return TokenFit(system_tokens=system, cache_hit_rate=hit, phases=phases, modes=modes,
                    from_base=from_base, residual=residual)


def _base_growth(base) -> dict:
    if base is None:
        return {}
    return {(t.name, ph.phase): float(ph.input_tokens + ph.output_tokens)
            for t in base.task_types for ph in t.phases}
