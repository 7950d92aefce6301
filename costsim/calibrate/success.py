"""Attempt outcomes -> success per phase: the logistic rule or a success map, by likelihood.

The data are counts of attempts and successes per (task type, phase, attempt index, model, set of
signals the task carries). Given the model, the phase, the attempt index and the signals, an
attempt succeeds independently with probability p (the cost model's §3.3), so the likelihood is a
product of binomials and every rate is estimated from the attempts where that model really was
at that position of the ladder:

- logistic phases: ``p1 = 1 / (1 + exp(-(coding_score - d - sum of the signals' difficulty)/10))``
  at the first attempt, ``p1 + (1 - p1) * feedback_gain`` after; ``d`` per phase, the signals'
  difficulties per signal group and one ``feedback_gain`` fitted jointly across phases by maximum
  likelihood (a model seen only after escalation contributes through the gain, never as a first
  try);
- map phases: a rate per model (and attempt index, when the rates differ by index), which
  ignores signals.

Each phase takes the form with the better Bayesian information criterion; a model without a
coding_score gets a map entry in any phase. A map phase keeps a difficulty too (the logistic fit
of its own data), for models the log never shows.

A later issue adds a task-level difficulty (variation): the likelihood below is per attempt given
(phase, model, index, signals); a task-level term integrates over it per task pattern.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .measure import canon_signals

D_BOUNDS = (-300.0, 400.0)
DELTA_BOUNDS = (-200.0, 200.0)
BIC_MARGIN = 2.0          # a map must beat the logistic rule by this much BIC to be chosen


@dataclass
class SuccessFit:
    gain: float | None                     # None: no logistic phase with retries
    difficulty: dict                       # (tt, phase) -> d (every phase)
    form: dict                             # (tt, phase) -> "logistic" | "map"
    maps: dict                             # (tt, phase) -> {model: p | [p1, p2, ...]}
    signal_difficulty: dict                # group -> {signal: delta}
    groups: dict                           # tt -> group name ("*" workload-level)
    unidentified: list = field(default_factory=list)   # (what, why)
    loglik: float = 0.0
    gain_se: float | None = None


def _sig(x) -> tuple:
    s = canon_signals(x)
    return tuple(s.split(";")) if s else ()


def _cells(attempts, table):
    """Pooled over runs: one row per (tt, phase, attempt, model, signals) with n, k, score."""
    import numpy as np

    a = attempts.copy()
    a["sigs"] = [_sig(x) for x in a["signals"]]
    a["sigkey"] = [";".join(s) for s in a["sigs"]]
    g = a.groupby(["task_type", "phase", "attempt", "model", "sigkey"], sort=True)[
        ["n", "k"]].sum().reset_index()
    g["sigs"] = [tuple(s.split(";")) if s else () for s in g["sigkey"]]
    score = []
    for m in g["model"]:
        mp = table.models.get(str(m))
        score.append(mp.coding_score if mp is not None and mp.coding_score is not None
                     else np.nan)
    g["score"] = np.array(score, dtype=float)
    g["task_type"] = g["task_type"].astype(str)
    g["phase"] = g["phase"].astype(str)
    g["model"] = g["model"].astype(str)
    return g


def _binom_ll(n, k, p):
    import numpy as np

    p = np.clip(p, 1e-12, 1 - 1e-12)
    return k * np.log(p) + (n - k) * np.log1p(-p)


class _Logistic:
    """Negative log-likelihood and gradient of the logistic rule over a set of cells."""

    def __init__(self, cells, phases: list, signals: list, groups: dict):
        import numpy as np

        self.phases = phases
        self.pidx = {p: i for i, p in enumerate(phases)}
        self.sig_params = []                 # (group, signal)
        sp_index = {}
        rows_sig = []
        for tt, sigs in zip(cells["task_type"], cells["sigs"]):
            g = groups.get(tt, "*")
            idx = []
            for s in sigs:
                key = (g, s)
                if key not in sp_index:
                    sp_index[key] = len(self.sig_params)
                    self.sig_params.append(key)
                idx.append(sp_index[key])
            rows_sig.append(idx)
        self.n = cells["n"].to_numpy(dtype=float)
        self.k = cells["k"].to_numpy(dtype=float)
        self.score = cells["score"].to_numpy(dtype=float)
        self.retry = (cells["attempt"].to_numpy() > 1).astype(float)
        self.ph = np.array([self.pidx[(t, p)] for t, p in zip(cells["task_type"],
                                                               cells["phase"])], dtype=int)
        S = len(self.sig_params)
        # The signals of each cell as a padded index matrix (-1: none); sums and gradients by
        # gather and bincount, no BLAS (OpenBLAS threads spin against DuckDB's).
        width = max((len(i) for i in rows_sig), default=0)
        self.sidx = np.full((len(cells), max(width, 1)), S, dtype=int)
        for r, idx in enumerate(rows_sig):
            self.sidx[r, : len(idx)] = idx
        self.nP, self.nS = len(phases), S

    def unpack(self, x):
        return x[: self.nP], x[self.nP: self.nP + self.nS], x[-1]

    def p(self, x):
        import numpy as np

        d, delta, gain = self.unpack(x)
        ext = np.append(delta, 0.0)
        z = (self.score - d[self.ph] - ext[self.sidx].sum(axis=1)) / 10.0
        p1 = 1.0 / (1.0 + np.exp(-z))
        return p1, np.where(self.retry > 0, 1.0 - (1.0 - p1) * (1.0 - gain), p1)

    def nll(self, x):
        import numpy as np

        d, delta, gain = self.unpack(x)
        p1, p = self.p(x)
        p = np.clip(p, 1e-12, 1 - 1e-12)
        ll = self.k * np.log(p) + (self.n - self.k) * np.log1p(-p)
        dldp = self.k / p - (self.n - self.k) / (1.0 - p)
        dpdp1 = np.where(self.retry > 0, 1.0 - gain, 1.0)
        dp1dz = p1 * (1.0 - p1)
        dldz = dldp * dpdp1 * dp1dz / 10.0            # dz/d(d) = -1/10
        gd = np.bincount(self.ph, weights=dldz, minlength=self.nP)
        w = np.repeat(dldz[:, None], self.sidx.shape[1], axis=1)
        gdelta = np.bincount(self.sidx.ravel(), weights=w.ravel(), minlength=self.nS + 1)[
            : self.nS]
        ggain = float((dldp * self.retry * (1.0 - p1)).sum())
        grad = np.concatenate([gd, gdelta, [-ggain]])   # of -ll: d terms enter with a minus
        return -float(ll.sum()), grad

    def phase_ll(self, x):
        import numpy as np

        _, p = self.p(x)
        ll = _binom_ll(self.n, self.k, p)
        return np.bincount(self.ph, weights=ll, minlength=self.nP)


def _fit_logistic(cells, phases, signals, groups, start_d, gain0=0.5):
    import numpy as np
    from scipy.optimize import minimize

    L = _Logistic(cells, phases, signals, groups)
    x0 = np.concatenate([[start_d.get(p, 50.0) for p in phases], np.zeros(L.nS), [gain0]])
    has_retry = bool((L.retry * L.n).sum() > 0)
    bounds = [D_BOUNDS] * L.nP + [DELTA_BOUNDS] * L.nS + [(0.0, 1.0) if has_retry
                                                           else (gain0, gain0)]
    res = minimize(L.nll, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9})
    x = res.x
    se = None
    if has_retry:
        se = _gain_se(L, x)
    return L, x, has_retry, se


def _gain_se(L, x) -> float | None:
    """Standard error of the gain from a numerical Hessian of the profile (others fixed)."""
    h = 1e-4
    import numpy as np

    g = x[-1]
    if not 0 < g < 1:
        return None
    xs = [x.copy() for _ in range(3)]
    xs[0][-1] = g - h
    xs[2][-1] = g + h
    f = [L.nll(v)[0] for v in xs]
    second = (f[0] - 2 * f[1] + f[2]) / (h * h)
    return float(1.0 / math.sqrt(second)) if second > 0 and np.isfinite(second) else None


def _start_d(cells) -> dict:
    """First-try rates inverted (§3.3) as starting points."""
    out = {}
    first = cells[(cells["attempt"] == 1) & cells["score"].notna()]
    for (tt, ph), g in first.groupby(["task_type", "phase"]):
        n, k = float(g["n"].sum()), float(g["k"].sum())
        p = min(max((k + 0.5) / (n + 1.0), 1e-4), 1 - 1e-4)
        s = float((g["score"] * g["n"]).sum() / n)
        out[(tt, ph)] = s - 10.0 * math.log(p / (1 - p))
    return out


def _map_fit(cells, gain: float | None = None) -> tuple[dict, float, int]:
    """Per model: its success rate at each attempt index it was seen at (a list when they
    differ; indices before its first observation take the first observed rate, the last one
    repeats). A model seen at its first attempt only gets retries at ``p1 + (1 - p1) * gain``
    (the workload's retry rule) when ``gain`` is given. Returns ({model: value}, loglik,
    parameters). Plain Python over the few cells of one phase (pandas costs more here)."""
    acc: dict = {}
    for m, a, n, k in zip(cells["model"], cells["attempt"], cells["n"], cells["k"]):
        d = acc.setdefault(str(m), {})
        x = d.setdefault(int(a), [0.0, 0.0])
        x[0] += float(n)
        x[1] += float(k)
    out, ll_total, k_total = {}, 0.0, 0
    for m in sorted(acc):
        by_k = {a: v for a, v in sorted(acc[m].items()) if v[0] > 0}
        if not by_k:
            continue
        for n, k in by_k.values():
            p = min(max(k / n, 1e-12), 1 - 1e-12)
            ll_total += k * math.log(p) + (n - k) * math.log1p(-p)
        k_total += len(by_k)
        seq = [None] * max(by_k)
        for a, (n, k) in by_k.items():
            seq[a - 1] = round(k / n, 6)
        first = next(v for v in seq if v is not None)
        filled = []
        for v in seq:
            filled.append(first if v is None and not filled else
                          (filled[-1] if v is None else v))
        if len(filled) == 1 and gain:
            filled.append(round(filled[0] + (1.0 - filled[0]) * gain, 6))
        while len(filled) > 1 and filled[-1] == filled[-2]:
            filled.pop()
        out[m] = filled if len(filled) > 1 else filled[0]
    return out, ll_total, k_total


def fit_success(attempts, table, phase_order: dict, groups: dict) -> SuccessFit:
    """Fit every phase of ``phase_order``; ``groups`` maps a task type to its signal group."""
    import numpy as np

    cells = _cells(attempts, table)
    phases = [(tt, ph) for tt in phase_order for ph in phase_order[tt]]
    start = _start_d(cells)
    scored = cells[cells["score"].notna()]
    unscored = cells[cells["score"].isna()]
    form = {p: "logistic" for p in phases}
    for p in phases:
        sub = scored[(scored["task_type"] == p[0]) & (scored["phase"] == p[1])]
        if sub.empty:
            form[p] = "map"
    signals = sorted({s for sig in cells["sigs"] for s in sig})
    x = L = None
    gain = None
    gain_se = None
    by_phase = {(str(k[0]), str(k[1])): g for k, g in scored.groupby(["task_type", "phase"])}
    map_fits = {}
    for _ in range(3):
        logi = [p for p in phases if form[p] == "logistic"]
        keep = set(logi)
        sel = scored[[(t, ph) in keep for t, ph in zip(scored["task_type"], scored["phase"])]]
        if not logi or sel.empty:
            L = x = None
            break
        L, x, has_retry, gain_se = _fit_logistic(sel, logi, signals, groups, start)
        gain = float(x[-1]) if has_retry else None
        # Compare each phase (logistic at the joint optimum) with its best map.
        pll = L.phase_ll(x)
        changed = False
        for i, p in enumerate(logi):
            sub = by_phase[p]
            if p not in map_fits:
                map_fits[p] = _map_fit(sub)
            _, mll, mk = map_fits[p]
            N = max(float(sub["n"].sum()), 2.0)
            bic_map = mll - 0.5 * mk * math.log(N)
            bic_log = float(pll[i]) - 0.5 * 1 * math.log(N)
            if bic_map > bic_log + BIC_MARGIN:
                form[p] = "map"
                changed = True
        if not changed:
            break

    difficulty, maps = {}, {}
    if L is not None:
        d, delta, _ = L.unpack(x)
        for p, v in zip(L.phases, d):
            difficulty[p] = float(v)
        sig_diff: dict = {}
        for (grp, s), v in zip(L.sig_params, delta):
            sig_diff.setdefault(grp, {})[s] = float(v)
    else:
        sig_diff = {}
    unidentified = []
    for p in phases:
        sub_all = cells[(cells["task_type"] == p[0]) & (cells["phase"] == p[1])]
        if form[p] == "map":
            m, _, _ = _map_fit(sub_all, gain)
            maps[p] = m
            sub = sub_all[sub_all["score"].notna()]
            if not sub.empty:
                difficulty[p] = _phase_d(sub, gain if gain is not None else 0.0)
        else:
            # models without a coding_score still need a rate here
            sub = unscored[(unscored["task_type"] == p[0]) & (unscored["phase"] == p[1])]
            if not sub.empty:
                maps[p] = _map_fit(sub)[0]
    # Signals never seen in a logistic phase's attempts: their difficulty is unknown.
    for grp in sorted(set(groups.values()) | {"*"}):
        for s in signals:
            if s not in sig_diff.get(grp, {}):
                unidentified.append((f"signal {s} difficulty ({grp})", "no attempt of a task "
                                     "with it in a phase that follows the logistic rule"))
    ll = float(L.nll(x)[0]) * -1.0 if L is not None else 0.0
    del np
    return SuccessFit(gain=gain, difficulty=difficulty, form=form, maps=maps,
                      signal_difficulty=sig_diff, groups=dict(groups),
                      unidentified=unidentified, loglik=ll, gain_se=gain_se)


def _phase_d(sub, gain: float) -> float:
    """The logistic rule's best d for one phase's own cells (signals ignored): a fallback
    difficulty for models the log never shows in a map phase."""
    from scipy.optimize import minimize_scalar

    import numpy as np

    n = sub["n"].to_numpy(dtype=float)
    k = sub["k"].to_numpy(dtype=float)
    s = sub["score"].to_numpy(dtype=float)
    r = sub["attempt"].to_numpy() > 1

    def f(d):
        p1 = 1.0 / (1.0 + np.exp(-(s - d) / 10.0))
        p = np.where(r, 1.0 - (1.0 - p1) * (1.0 - gain), p1)
        return -float(_binom_ll(n, k, p).sum())

    res = minimize_scalar(f, bounds=D_BOUNDS, method="bounded", options={"xatol": 1e-6})
    return float(res.x)
