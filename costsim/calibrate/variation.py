"""Maximum-likelihood fits of how tasks differ (a workload's ``variation``) and of how the number
of tasks varies from month to month (``tasks_per_month: {mean, cv}``), from what a runs log shows.

Standalone estimators fed with small aggregate tables, so that ``calibrate`` only has to build
the tables from its log (see :func:`tables_from_records`).

The model (the cost model's "tasks differ"): task *i* draws a difficulty ``z ~ N(0, 1)`` shared by
every attempt of every phase in every run. An attempt of *item* ``k`` (a model at one position of
one phase's ladder, e.g. ``(implement, claude-sonnet-5, first try)``) succeeds with
``sigmoid(b_k - s z)``; given ``z``, attempts are independent. The task's size multiplies every
token count (and so every bill) by ``u = exp(t (r z + sqrt(1 - r^2) e) - t^2/2)``.

What a log shows of it:

- **Success patterns.** Every attempt the log records, in any run, with its item and outcome. The
  likelihood of a task is the integral over ``z`` of the product of its attempts' probabilities;
  that the log stops recording after a success (or after the last attempt) depends only on
  outcomes it shows, so the recorded sequence's likelihood is the right one. ``s`` shows in how
  outcomes of one task hang together: the same task in several runs (paired benchmark or shadow
  runs), a third try that fails more often than a second, a task that needed retries in one phase
  needing them in the next. A log where it cannot show (every task seen once, or only in a way
  the item rates explain whatever ``s`` is) leaves ``s`` at the default.
- **Sizes.** For each (task, run), ``Y`` = the mean over its attempts of ``log size - c_item``,
  where the size is an attempt's output tokens per call (the cost model multiplies them by
  ``u`` and nothing else), or its cost when the log has no tokens, and ``c_item`` is the item's
  typical log size (fitted too). ``Y = beta z + gamma e + omega eps_run``: ``beta`` is the part of
  the size that goes with difficulty, ``gamma`` a part shared by the task's runs that does not,
  ``omega`` what differs from run to run (separate from ``gamma`` only when tasks ran more than
  once). Then ``t = sqrt(beta^2 + gamma^2 + omega^2)`` (the spread of one run's size) and
  ``r = beta / t`` (clipped to [0, 1]).

Estimation in two stages: (1) ``s`` and the items' ``b`` from the success patterns alone
(tasks with the same pattern are pooled, so this costs little however long the log is; fitted
and given a standard error on ``s^2``, since the likelihood is even in ``s``: see
:func:`fit_success`);
(2) ``beta``, ``gamma``, ``omega`` and the ``c_item`` with ``s`` and ``b`` held, integrating ``z``
on a grid against each task's success pattern. Integrals over ``z`` use the trapezoid rule on
[-8, 8] with a step of ``min(0.2, 1/s)`` (relative error below 1e-8 for the logistic factors, and
for the size factor while ``r`` stays below about 0.98).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

S_MAX = 10.0          # difficulty spreads beyond this are all "the task decides" (logits)
MIN_MULTI = 10        # tasks with two or more recorded outcomes needed to try fitting s
OMEGA_MIN = 1e-3      # sizes that match to the token still leave this much run-to-run noise
B_MAX = 30.0
S_MIN_FOR_R = 0.05    # below this spread of difficulty, sizes cannot show how they follow it


def _grid(s: float) -> tuple[np.ndarray, np.ndarray]:
    h = min(0.2, 1.0 / max(s, 1e-9))
    n = int(math.ceil(8.0 / h))
    z = np.linspace(-n * h, n * h, 2 * n + 1)
    w = np.exp(-z * z / 2)
    return z, w / w.sum()


def _log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def _logsumexp(a, axis):
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return (m + np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True))).squeeze(axis)


# --- stage 1: success patterns ---------------------------------------------------------------

@dataclass
class Patterns:
    """Distinct success patterns: counts of successes ``A[p, k]`` and failures ``B[p, k]`` of
    item k in pattern p, how many tasks show each pattern (``n``), and each task's pattern."""

    items: list
    A: np.ndarray
    B: np.ndarray
    n: np.ndarray
    of_task: dict          # task -> pattern index

    def __post_init__(self):
        # A log has an item per (task type, phase, model, try, signal set) -- hundreds -- and a
        # pattern touches a handful of them: the products with the [items, nodes] grids run on
        # sparse copies (dense ones cost ~100x more; profiled on the calibrate round trips)
        from scipy import sparse

        self.sA, self.sB = sparse.csr_array(self.A), sparse.csr_array(self.B)
        self.sAT, self.sBT = sparse.csr_array(self.A.T), sparse.csr_array(self.B.T)

    @property
    def tasks(self) -> int:
        return int(self.n.sum())

    @property
    def multi(self) -> int:
        """Tasks with two or more recorded outcomes."""
        return int(self.n[(self.A + self.B).sum(axis=1) >= 2].sum())


def patterns(outcomes) -> Patterns:
    """``outcomes``: a DataFrame with columns ``task``, ``item`` (hashable) and ``success``."""
    import pandas as pd

    item_codes, items = pd.factorize(outcomes["item"], sort=True)
    task_codes, tasks = pd.factorize(outcomes["task"], sort=False)
    K = len(items)
    code = item_codes.astype(np.int64) * 2 + outcomes["success"].to_numpy(bool)
    T = len(tasks)
    counts = np.zeros((T, 2 * K), dtype=np.int32)
    np.add.at(counts, (task_codes, code), 1)
    uniq, inverse, n = _unique_rows(counts)
    return Patterns(items=list(items), A=uniq[:, 1::2].astype(float),
                    B=uniq[:, 0::2].astype(float), n=n.astype(float),
                    of_task=dict(zip(tasks, inverse.tolist())))


def _unique_rows(counts: np.ndarray):
    """``np.unique(counts, axis=0, return_inverse=True, return_counts=True)``, the same rows
    in the same (lexicographic) order, by hashing each row's bytes: a log has thousands of
    tasks but a few hundred patterns, and NumPy's axis-0 unique sorts every row (10x
    slower)."""
    first: dict = {}
    of_row = np.empty(counts.shape[0], dtype=np.int64)
    for i, key in enumerate(map(bytes, counts)):
        of_row[i] = first.setdefault(key, len(first))
    rows = np.array([np.frombuffer(k, dtype=counts.dtype) for k in first]).reshape(
        len(first), counts.shape[1])
    order = sorted(range(len(rows)), key=lambda j: tuple(rows[j].tolist()))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    inverse = rank[of_row]
    return rows[order], inverse, np.bincount(inverse, minlength=len(order))


def pattern_loglik(P: Patterns, b: np.ndarray, s: float, z: np.ndarray) -> np.ndarray:
    """log P(pattern | z) on the grid: [patterns, nodes]."""
    x = b[:, None] - s * z[None, :]                     # [K, Q]
    ls = _log_sigmoid(x)
    return P.sA @ ls + P.sB @ (ls - x)


def _stage1_nll(theta, P: Patterns, z_fixed=None):
    K = len(P.items)
    b, s = theta[:K], theta[K]
    z, w = _grid(s) if z_fixed is None else z_fixed
    x = b[:, None] - s * z[None, :]
    ls = _log_sigmoid(x)                    # log sigmoid(-x) = ls - x: one transcendental pass
    sig = np.exp(ls)
    L = P.sA @ ls + P.sB @ (ls - x) + np.log(w)[None, :]
    lse = _logsumexp(L, 1)
    post = np.exp(L - lse[:, None])                          # [P, Q]
    nll = -float(P.n @ lse)
    # d/d x_kq of log P(pattern): A (1 - sig) - B sig
    wp = post * P.n[:, None]                                 # [P, Q]
    g_x = (P.sAT @ wp) * (1 - sig) - (P.sBT @ wp) * sig      # [K, Q]
    grad_b = -g_x.sum(axis=1)
    grad_s = float((g_x * z[None, :]).sum())                 # d x / d s = -z
    return nll, np.append(grad_b, grad_s)


V_FLOOR = 1e-8        # s^2 below this is evaluated at s = 1e-4 (same likelihood to ~1e-8)


def _stage1_nll_v(theta, P: Patterns, z_fixed=None):
    """:func:`_stage1_nll` with the last parameter ``v = s^2``. The likelihood is even in
    ``s`` (``z`` and ``-z`` are equally likely), so in ``s`` every log has a stationary point
    at ``s = 0``, where a fit can stall, and curvature that vanishes there; in ``v`` the
    gradient at 0 is the first-order effect of the spread and the likelihood is close to
    quadratic near 0."""
    K = len(P.items)
    s = math.sqrt(max(float(theta[K]), V_FLOOR))
    nll, g = _stage1_nll(np.append(theta[:K], s), P, z_fixed)
    g[K] = g[K] / (2 * s)
    return nll, g


@dataclass
class SuccessFit:
    items: list
    b: np.ndarray
    s: float
    se_s: float
    nll: float
    identified: bool
    rates: dict = field(default_factory=dict)   # item -> rate over all tasks (mean over z)
    raw: dict = field(default_factory=dict)     # item -> its raw success share in the fit's tasks
    se_v: float = math.inf                      # standard error of s^2
    ci95: tuple = (0.0, math.inf)               # 95% interval of s (from s^2 +- 1.96 se_v)
    # where each item's attempts fall in z: [items, nodes] on the grid ``z`` (weights ``w``),
    # the posteriors of the tasks that made them, weighted by their attempts of the item; at the
    # fit, ``selected[k] @ sigmoid(b[k] - s z)`` is the item's raw share (the likelihood's
    # score equation for ``b[k]``)
    selected: np.ndarray | None = None
    z: np.ndarray | None = None
    w: np.ndarray | None = None


def spread_interval(v: float, se_v: float, z: float = 1.0) -> tuple[float, float]:
    """The interval of ``s`` from ``s^2 = v +- z se_v`` (clipped at 0): the estimate of ``s^2``
    is close to normal even where ``s`` is near 0 (where the estimate of ``s`` is not)."""
    if not math.isfinite(se_v):
        return 0.0, math.inf
    return math.sqrt(max(v - z * se_v, 0.0)), math.sqrt(max(v + z * se_v, 0.0))


def fit_success(P: Patterns, s_fixed: float | None = None) -> SuccessFit:
    """MLE of ``s`` and the items' ``b`` (``s_fixed``: hold ``s``, fit only ``b``).

    Fitted in ``v = s^2`` (:func:`_stage1_nll_v`), and the standard error is read there too:
    ``se_v`` from the observed information about ``v`` with the ``b`` profiled out; the
    reported ``se_s`` is half the width of the interval ``s^2 = v +- se_v`` (the usual
    ``se_v / (2 s)`` when ``s`` is well away from 0). A log with no variation gives estimates of
    ``s`` of a few tenths (the square root of a noise of a few hundredths); that interval
    then reaches 0."""
    from scipy import optimize

    K = len(P.items)
    A, B = (P.A * P.n[:, None]).sum(0), (P.B * P.n[:, None]).sum(0)
    rate = (A + 0.5) / (A + B + 1.0)
    b0 = np.log(rate / (1 - rate))
    bounds = [(-B_MAX, B_MAX)] * K + [(0.0, S_MAX ** 2)]
    # one start: the likelihood is unimodal in s^2 on every log we tried (logsim and
    # OpenHands)
    s0 = s_fixed if s_fixed is not None else 1.5
    grid = _grid(s0)
    scale = math.sqrt(1 + math.pi * s0 ** 2 / 8)      # E sigmoid(b - s z) ~ sigmoid(b / scale)
    th0 = np.append(b0 * scale, s0 ** 2)
    # An item whose attempts all succeeded (or all failed) has a likelihood that rises with its
    # b to the bound (each of its terms does, for every z): it starts there.
    th0[:K][B == 0] = B_MAX
    th0[:K][A == 0] = -B_MAX
    bnds = bounds if s_fixed is None else bounds[:K] + [(s_fixed ** 2, s_fixed ** 2)]
    # The grid follows s between rounds (a fixed grid keeps each round smooth). A round can
    # end on a failed line search far from the optimum (seen: stopped at s = 1.03 with a
    # gradient of 38 when the optimum was s = 0, 27 log-likelihood units better), so rounds
    # go on until one neither moves the grid nor improves the fit.
    prev = math.inf
    for _ in range(8):
        res = optimize.minimize(_stage1_nll_v, th0, args=(P, grid), jac=True,
                                method="L-BFGS-B", bounds=bnds,
                                options={"maxiter": 2000, "ftol": 1e-12, "gtol": 1e-7})
        th0 = res.x
        new = _grid(math.sqrt(res.x[K]))
        if new[0].size == grid[0].size and res.fun > prev - 1e-6:
            break
        grid, prev = new, res.fun
    b, v = res.x[:K], float(res.x[K])
    s = math.sqrt(v) if v > V_FLOOR else 0.0
    se_v = se = math.inf
    ci = (0.0, math.inf)
    if s_fixed is None:
        # the information about v, read a little inside v >= 0 (the likelihood is smooth in v)
        xc = res.x.copy()
        xc[K] = max(v, 1e-4)
        zg = _grid(s)
        se_v = _se_last(lambda th: _stage1_nll_v(th, P, zg)[1], xc)
        lo, hi = spread_interval(v, se_v)
        se = (hi - lo) / 2
        ci = spread_interval(v, se_v, 1.959964)
    else:
        s = float(s_fixed)
    z, w = _grid(s)
    rates = {it: float(w @ (1 / (1 + np.exp(-(bk - s * z))))) for it, bk in zip(P.items, b)}
    # identified: enough tasks seen twice or more, and outcomes that pin s^2 down (a finite
    # standard error; a log whose rates explain any s has none)
    ok = s_fixed is None and P.multi >= MIN_MULTI and math.isfinite(se_v)
    tot = A + B
    raw = {it: float(a / t) for it, a, t in zip(P.items, A, tot) if t > 0}
    L = pattern_loglik(P, b, s, z) + np.log(w)[None, :]
    post = np.exp(L - _logsumexp(L, 1)[:, None]) * P.n[:, None]            # [P, Q]
    sel = P.sAT @ post + P.sBT @ post                                      # [K, Q]
    sel /= np.maximum(sel.sum(axis=1, keepdims=True), 1e-300)
    return SuccessFit(items=P.items, b=b, s=s, se_s=se, nll=float(res.fun), identified=ok,
                      rates=rates, se_v=se_v, ci95=ci, raw=raw, selected=sel, z=z, w=w)


def _se_last(grad, x, eps=1e-5) -> float:
    """Standard error of the last parameter from the observed information (a finite-difference
    Hessian of the analytic gradient, the other parameters profiled out); inf when the
    information about it is nil."""
    n = x.size
    H = np.zeros((n, n))
    # forward differences from the gradient at x (n + 1 gradients, half of central
    # differences: 0.06 s of a 1M-row calibrate); the O(eps) error moves the standard error by
    # about 1e-5 of itself
    g0 = grad(x)
    for j in range(n):
        h = eps * max(1.0, abs(x[j]))
        up = x.copy()
        up[j] += h
        H[:, j] = (grad(up) - g0) / h
    H = (H + H.T) / 2
    # items that (almost) always or never succeed carry no information: leave them out
    d = np.diag(H)[:-1]
    keep = np.append(d > 1e-6 * max(float(d.max(initial=0.0)), 1e-12), True)
    Hk = H[np.ix_(keep, keep)]
    Hbb, Hbs, Hss = Hk[:-1, :-1], Hk[:-1, -1], Hk[-1, -1]
    try:
        info = Hss - (Hbs @ np.linalg.solve(Hbb, Hbs) if Hbs.size else 0.0)
    except np.linalg.LinAlgError:
        return math.inf
    if not np.isfinite(info) or info <= 1e-9 * max(abs(Hss), 1e-300):
        return math.inf
    return 1.0 / math.sqrt(info)


# --- stage 2: sizes --------------------------------------------------------------------------

@dataclass
class SizeFit:
    beta: float
    gamma: float
    omega: float
    c: dict                # item -> typical log size (at z = e = 0)
    runs_per_task: float
    tasks: int
    # log-likelihood of the sizes and success patterns at the fit (b and s held): lets a
    # caller profile it over s, e.g. to see whether a log shows the difficulty spread at all
    loglik: float = math.nan

    @property
    def tokens(self) -> float:
        return math.sqrt(self.beta ** 2 + self.gamma ** 2 + self.omega ** 2)

    @property
    def follow(self) -> float:
        t = self.tokens
        return min(1.0, max(0.0, self.beta / t)) if t > 0 else 0.0


_FINE = 0.01          # step of the grid a pattern's log-likelihood is interpolated from


def fit_sizes(sizes, P: Patterns | None, sf: SuccessFit | None, *, em_rounds: int = 4
              ) -> SizeFit | None:
    """``sizes``: a DataFrame with columns ``task``, ``run``, ``item`` and ``y`` (log size).
    ``P``, ``sf``: the success patterns and their fit (None: sizes alone, z unseen).

    Per task, the size factor ``N(Ybar | beta z, v)`` times ``phi(z)`` is a Gaussian in ``z``
    (mean ``m``, spread ``tau``) times ``N(Ybar | 0, beta^2 + v)``, so the integral over ``z`` is
    taken on nodes ``m + tau x`` (trapezoid in ``x``): exact however sharply the size pins ``z``
    down. The success pattern's log-likelihood at those nodes is interpolated from a fine grid."""
    import pandas as pd
    from scipy import optimize

    d = sizes[np.isfinite(sizes["y"].to_numpy(float))]
    if len(d) < 2:
        return None
    item_codes, items = pd.factorize(d["item"], sort=True)
    y = d["y"].to_numpy(float)
    c = np.bincount(item_codes, weights=y) / np.bincount(item_codes)
    # (task, run) pairs numbered in order of appearance, as factorizing the pairs would (a
    # MultiIndex of them costs ~20x these integer keys)
    task_c, task_v = pd.factorize(d["task"], sort=False)
    run_c, run_v = pd.factorize(d["run"], sort=False)
    tr_codes, tr = pd.factorize(task_c.astype(np.int64) * max(len(run_v), 1) + run_c,
                                sort=False)
    task_of_tr = np.asarray(task_v, dtype=object)[tr // max(len(run_v), 1)]
    t_codes, tasks = pd.factorize(pd.Series(task_of_tr), sort=False)
    T = len(tasks)
    n_tr = np.bincount(tr_codes)
    runs = np.bincount(t_codes, minlength=T).astype(float)        # runs with sizes per task
    s = sf.s if sf is not None else 0.0
    # the success pattern of each task, as a log-likelihood on a fine z grid
    zf = np.arange(-12.0, 12.0 + _FINE / 2, _FINE)
    if P is not None and sf is not None:
        Lp = pattern_loglik(P, sf.b, s, zf)                               # [patterns, F]
        pat = np.array([P.of_task.get(t, -1) for t in tasks])
        if (pat < 0).any():
            Lp = np.vstack([Lp, np.zeros(zf.size)])
            pat = np.where(pat < 0, Lp.shape[0] - 1, pat)
    else:
        Lp, pat = np.zeros((1, zf.size)), np.zeros(T, dtype=np.int64)
    hx = min(0.25, 1.0 / max(s, 1e-9))
    nx = int(math.ceil(8.0 / hx))
    x = np.linspace(-nx * hx, nx * hx, 2 * nx + 1)
    logwx = -x * x / 2 - np.log(np.exp(-x * x / 2).sum())
    multi = bool((runs > 1).any())

    # flat gathers: a [T, X] fancy index into a 2-D array costs ~3x a 1-D take
    F = zf.size
    Lflat = np.ascontiguousarray(Lp).ravel()
    Dflat = np.ascontiguousarray(Lp[:, 1:] - Lp[:, :-1]).ravel()     # hi - lo, as before
    row_L, row_D = (pat * F)[:, None], (pat * (F - 1))[:, None]

    def pattern_at(znodes):
        """Lp[pat[t]] at znodes[t, j] by linear interpolation on the fine grid, and its slope."""
        pos = np.clip((znodes - zf[0]) / _FINE, 0, F - 1.000001)
        i0 = pos.astype(np.int64)
        frac = pos - i0
        lo = np.take(Lflat, row_L + i0)
        d = np.take(Dflat, row_D + i0)
        return lo + d * frac, d / _FINE

    def parts(th, Ybar):
        beta, lg, lw = th
        g2 = math.exp(2 * lg) if multi else 0.0
        w2 = math.exp(2 * lw)
        v = g2 + w2 / runs                                                  # [T]
        tot = beta * beta + v
        m = beta * Ybar / tot
        tau = np.sqrt(v / tot)
        zn = m[:, None] + tau[:, None] * x[None, :]                         # [T, X]
        val, slope = pattern_at(zn)
        return g2, w2, v, tot, m, tau, zn, val + logwx[None, :], slope

    theta = np.array([0.1, math.log(0.3), math.log(0.5)])
    for _ in range(em_rounds):
        Ytr = np.bincount(tr_codes, weights=y - c[item_codes]) / n_tr       # per (task, run)
        S1 = np.bincount(t_codes, weights=Ytr, minlength=T)
        S2 = np.bincount(t_codes, weights=Ytr ** 2, minlength=T)
        Ybar = S1 / runs
        within = S2 - runs * Ybar ** 2                                      # sum of squares

        def nll(th):
            beta = th[0]
            g2, w2, v, tot, m, tau, zn, ll, slope = parts(th, Ybar)
            # Ybar ~ N(0, beta^2 + v) marginally; the runs' deviations from it ~ w2
            const = -0.5 * np.log(2 * math.pi * tot) - 0.5 * Ybar ** 2 / tot \
                - 0.5 * within / w2 - 0.5 * (runs - 1) * np.log(2 * math.pi * w2) \
                - 0.5 * np.log(runs)
            lse = _logsumexp(ll, 1)
            post = np.exp(ll - lse[:, None])
            ps = post * slope
            G1 = ps.sum(axis=1)                                 # d LSE / d m
            G2 = (ps * x[None, :]).sum(axis=1)                  # d LSE / d tau
            tot2 = tot * tot
            d_beta = (G1 * Ybar * (v - beta * beta) / tot2 - G2 * tau * beta / tot
                      - beta / tot + beta * Ybar ** 2 / tot2)
            d_v = (-G1 * beta * Ybar / tot2 + G2 * beta * beta / (2 * tau * tot2)
                   - 0.5 / tot + 0.5 * Ybar ** 2 / tot2)
            grad = np.array([d_beta.sum(), (d_v * 2 * g2).sum() if multi else 0.0,
                             (d_v * 2 * w2 / runs).sum() + (within / w2 - (runs - 1)).sum()])
            return -float((lse + const).sum()), -grad

        res = optimize.minimize(nll, theta, method="L-BFGS-B", jac=True,
                                bounds=[(-5.0, 5.0), (-12.0, 3.0), (math.log(OMEGA_MIN), 3.0)])
        theta = res.x
        g2, w2, v, tot, m, tau, zn, ll, slope = parts(theta, Ybar)
        post = np.exp(ll - _logsumexp(ll, 1)[:, None])
        Ez = (post * zn).sum(axis=1)                                        # [T]
        # each item's typical log size, its tasks' expected difficulty taken out
        resid = y - theta[0] * Ez[t_codes[tr_codes]]
        c_new = np.bincount(item_codes, weights=resid) / np.bincount(item_codes)
        done = np.max(np.abs(c_new - c)) < 1e-6
        c = c_new
        if done:
            break
    beta, lg, lw = theta
    gamma = math.exp(lg) if multi else 0.0
    omega = max(math.exp(lw), OMEGA_MIN)
    return SizeFit(beta=float(beta), gamma=gamma, omega=omega,
                   c=dict(zip(items, c.tolist())), runs_per_task=float(runs.mean()), tasks=T,
                   loglik=-float(res.fun))


# --- both ----------------------------------------------------------------------------------

@dataclass
class VariationFit:
    """What :func:`fit_variation` found. ``source`` says, per field, ``log`` or ``default``."""

    difficulty: float
    tokens: float
    tokens_follow_difficulty: float
    source: dict[str, str]
    se_difficulty: float
    tasks: int
    multi: int
    success: SuccessFit | None = None
    sizes: SizeFit | None = None
    notes: list[str] = field(default_factory=list)
    ci95_difficulty: tuple = (0.0, math.inf)    # from the log's fit (see fit_success)

    def as_dict(self) -> dict:
        return {"difficulty": round(self.difficulty, 4), "tokens": round(self.tokens, 4),
                "tokens_follow_difficulty": round(self.tokens_follow_difficulty, 4)}


def fit_variation(outcomes, sizes=None, *, default=None) -> VariationFit:
    """Fit ``variation`` from ``outcomes`` (task, item, success) and ``sizes`` (task, run, item,
    y); what they cannot show keeps ``default`` (a mapping or object with ``difficulty``,
    ``tokens``, ``tokens_follow_difficulty``; None: zeros)."""
    def dget(name):
        if default is None:
            return 0.0
        v = default.get(name) if isinstance(default, dict) else getattr(default, name, None)
        return float(v or 0.0)

    notes = []
    P = patterns(outcomes) if outcomes is not None and len(outcomes) else None
    sf = None
    s, s_src, se = dget("difficulty"), "default", math.inf
    ci = (0.0, math.inf)
    if P is not None:
        free = fit_success(P)
        se, ci = free.se_s, free.ci95
        if free.identified:
            sf, s, s_src = free, free.s, "log"
        else:
            why = (f"only {P.multi} tasks show two outcomes or more" if P.multi < MIN_MULTI
                   else f"the outcomes do not pin it down (standard error "
                        f"{'unbounded' if not math.isfinite(se) else f'{se:.2f}'})")
            notes.append(f"difficulty spread: {why}; kept {s:g}")
            sf = fit_success(P, s_fixed=s)
    t, r = dget("tokens"), dget("tokens_follow_difficulty")
    t_src = r_src = "default"
    size = None
    if sizes is not None and len(sizes):
        size = fit_sizes(sizes, P, sf)
        if size is not None and size.tasks >= 2:
            t, t_src = size.tokens, "log"
            if P is not None and s >= S_MIN_FOR_R:
                r, r_src = size.follow, "log"
            else:
                why = ("no outcomes to relate sizes to" if P is None else
                       "difficulty does not change outcomes (spread 0), so nothing shows how "
                       "size goes with it")
                notes.append(f"size and difficulty: {why}; kept {r:g}")
    if size is None:
        notes.append("size spread: the log shows no sizes (tokens or costs); kept the default")
    return VariationFit(difficulty=s, tokens=t, tokens_follow_difficulty=r,
                        source={"difficulty": s_src, "tokens": t_src,
                                "tokens_follow_difficulty": r_src},
                        se_difficulty=se, ci95_difficulty=ci,
                        tasks=P.tasks if P is not None else 0,
                        multi=P.multi if P is not None else 0, success=sf, sizes=size,
                        notes=notes)


# --- tables from a runs log's attempt records ----------------------------------------------

def tables_from_records(frame, *, signals=None):
    """``outcomes`` and ``sizes`` from per-attempt records (the columns of
    :class:`costsim.engine.replay.AttemptRecords`; summaries are skipped).

    Items: (task type, phase, model, first try or retry) -- plus the task's signal set when
    ``signals`` (task_id -> tuple of names) is given, since signals add difficulty. Sizes: an
    attempt's output tokens per call where the log has tokens, else its cost; the item of a
    size is (task type, phase) for tokens (the cost model sizes output per call by phase alone)
    and (task type, phase, model, attempt) for costs."""
    import pandas as pd

    f = frame[~frame["summary"].to_numpy(bool)]
    k = np.where(f["attempt"].to_numpy() > 1, "retry", "first")
    sig = (f["task_id"].map(lambda t: ";".join(signals.get(t, ()))) if signals
           else pd.Series("", index=f.index))
    # plain object arrays: iterating Arrow-backed strings costs ~5 us a value
    item = list(zip(*(f[c].to_numpy(object) for c in ("task_type", "phase", "model")), k,
                    sig.to_numpy(object)))
    outcomes = pd.DataFrame({"task": f["task_id"].to_numpy(), "item": item,
                             "success": f["success"].to_numpy(bool)})
    out_tok = f["output_tokens"].to_numpy(float)
    calls = f["calls"].to_numpy(float) if "calls" in f.columns else np.ones(len(f))
    if (out_tok > 0).any():
        with np.errstate(divide="ignore"):
            y = np.where(out_tok > 0, np.log(out_tok / calls), np.nan)
        size_item = list(zip(f["task_type"], f["phase"]))
    else:
        cost = f["cost"].to_numpy(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            y = np.where(cost > 0, np.log(cost), np.nan)
        size_item = list(zip(f["task_type"], f["phase"], f["model"], f["attempt"]))
    sizes = pd.DataFrame({"task": f["task_id"].to_numpy(), "run": f["run"].to_numpy(),
                          "item": size_item, "y": y})
    return outcomes, sizes


def tables_from_attempts(frame):
    """``outcomes`` and ``sizes`` from calibrate's per-attempt records (columns ``run``,
    ``task_id``, ``task_type``, ``phase``, ``attempt``, ``model``, ``success``, ``calls``,
    ``output_tokens``, ``cost``, ``signals``; no summaries): the items and sizes of
    :func:`tables_from_records`, keyed by the task's canonical signal set."""
    from .measure import canon_signals

    f = frame.rename(columns={})
    f = f.assign(summary=False)
    canon = {}          # one canonical form per distinct value, not per attempt
    for x in f["signals"].unique():
        c = canon_signals(x)
        canon[x] = tuple(c.split(";")) if c else ()
    sig = {t: canon[x] for t, x in zip(f["task_id"].to_numpy(object),
                                       f["signals"].to_numpy(object))}
    return tables_from_records(f, signals=sig)


def item_key(task_type, phase, model, attempt, signals) -> tuple:
    """The item of :func:`tables_from_records` for a cell of calibrate's attempt table."""
    from .measure import canon_signals

    return (str(task_type), str(phase), str(model), "retry" if int(attempt) > 1 else "first",
            canon_signals(signals))


# --- monthly volume --------------------------------------------------------------------------

@dataclass
class VolumeFit:
    mean: float
    cv: float
    months: float          # months of exposure
    counts: list
    source: dict[str, str]
    notes: list[str] = field(default_factory=list)


MIN_MONTHS = 3             # months of a log needed before month-to-month variation is fitted


def fit_volume(first_seen, *, default_cv: float = 0.0) -> VolumeFit | None:
    """``tasks_per_month: {mean, cv}`` from each task's first timestamp (UTC).

    Calendar months; the first and last months count for the part of them the log spans. A
    month's count is gamma-Poisson: Poisson with a rate drawn each month from a gamma of mean
    ``mean`` and coefficient of variation ``cv`` (count variance ``mean f + (cv mean f)^2`` for a
    month covered to a fraction f). Maximum likelihood for both; with fewer than
    :data:`MIN_MONTHS` months of exposure ``cv`` keeps ``default_cv``."""
    import pandas as pd
    from scipy import optimize, special

    ts = pd.to_datetime(pd.Series(first_seen), utc=True).dropna()
    if len(ts) == 0:
        return None
    t0, t1 = ts.min(), ts.max()
    start = t0.tz_convert(None).to_period("M").to_timestamp().tz_localize("UTC")
    months = []
    cur = start
    while cur <= t1:
        nxt = cur + pd.DateOffset(months=1)
        lo, hi = max(cur, t0), min(nxt, t1 + pd.Timedelta(seconds=1))
        frac = max(0.0, (hi - lo).total_seconds() / (nxt - cur).total_seconds())
        n = int(((ts >= cur) & (ts < nxt)).sum())
        months.append((frac, n))
        cur = nxt
    f = np.array([m[0] for m in months])
    n = np.array([m[1] for m in months], dtype=float)
    keep = f > 0
    f, n = f[keep], n[keep]
    exposure = float(f.sum())
    mean = float(n.sum() / exposure) if exposure > 0 else float(n.sum())
    notes = []
    if exposure < MIN_MONTHS:
        notes.append(f"the log spans {exposure:.1f} months: month-to-month variation needs "
                     f"{MIN_MONTHS}; kept cv {default_cv:g}")
        return VolumeFit(mean=mean, cv=float(default_cv), months=exposure, counts=n.tolist(),
                         source={"mean": "log", "cv": "default"}, notes=notes)

    def nll(th):
        mu, cv = math.exp(th[0]), th[1]
        lam = mu * f
        if cv < 1e-6:
            return -float((n * np.log(lam) - lam - special.gammaln(n + 1)).sum())
        k = 1.0 / cv ** 2
        return -float((special.gammaln(n + k) - special.gammaln(k) - special.gammaln(n + 1)
                       + k * np.log(k / (k + lam)) + n * np.log(lam / (k + lam))).sum())

    best = None
    for cv0 in (0.05, 0.2, 0.5):
        res = optimize.minimize(nll, [math.log(max(mean, 1e-9)), cv0], method="L-BFGS-B",
                                bounds=[(None, None), (0.0, 5.0)])
        if best is None or res.fun < best.fun:
            best = res
    return VolumeFit(mean=math.exp(best.x[0]), cv=float(best.x[1]), months=exposure,
                     counts=n.tolist(), source={"mean": "log", "cv": "log"}, notes=notes)
