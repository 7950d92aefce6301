"""Tasks per month from a runs log's timestamps: a plain number, or ``{mean, cv}`` when the log
spans months enough to show that the count varies from month to month more than chance.

The model (the one ``budget`` simulates): a calendar month brings ``N`` tasks, Poisson around a
rate that is itself drawn each month from a gamma distribution of mean ``mean`` and coefficient of
variation ``cv`` (gamma-Poisson, i.e. negative binomial): ``E N = mean``,
``Var N = mean + (cv mean)^2``. ``cv = 0`` is plain Poisson.

What the log shows: each task's first timestamp (UTC; a task that ran in several runs counts
once). Tasks are counted per calendar month. The first and last months are usually covered only
in part (the log starts and stops mid-month), so every month counts for its *exposure*: the share
of the calendar month between the first and the last task's start (1 for a month in between).
A month covered to a share ``f`` has ``E N = mean f`` and ``Var N = mean f + (cv mean f)^2``
(the month's rate is drawn once, the log saw ``f`` of it). Edge months covered less than
:data:`MIN_EDGE` are left out: their count is mostly the one task that opened or closed the log.

Estimation: maximum likelihood of ``(mean, cv)`` over the months' counts (negative binomial with
exposures). The log gives ``{mean, cv}`` only when

- its exposure is at least :data:`MIN_MONTHS` months over at least :data:`MIN_BINS` calendar
  months (fewer counts cannot show a month-to-month spread), and
- the counts vary more than Poisson: the likelihood-ratio test of ``cv = 0`` rejects at 5%
  (``cv = 0`` is on the boundary, so the statistic is a 50:50 mix of chi-square 0 and 1; the
  threshold is 2.706).

Otherwise the log's tasks per month is one number (the Poisson estimate: tasks / exposure).

The estimator follows ``fit_volume`` of the replay work (h-replay, ``costsim/variation_fit.py``):
same name, signature and :class:`VolumeFit`; here it also tests the spread, gives standard
errors, leaves out slivers of edge months and takes per-day counts from SQL
(:func:`fit_volume_days`), so a long log never leaves DuckDB task by task.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

MIN_MONTHS = 2.0          # months of exposure needed before month-to-month variation is fitted
MIN_BINS = 3              # calendar months with a count needed for the same
MIN_EDGE = 0.1            # an edge month covered less than this share of itself is left out
LR_5PCT = 2.705543454095404   # chi-bar-square(0.5 chi2_0 + 0.5 chi2_1) 95% point = chi2_1 90% point
CV_MAX = 5.0
DAY = 86400.0


@dataclass
class VolumeFit:
    mean: float                    # tasks per (full calendar) month
    cv: float                      # month-to-month coefficient of variation of the rate
    months: float                  # months of exposure
    counts: list                   # tasks per counted month
    source: dict[str, str]         # per field: "log" or "default"
    notes: list[str] = field(default_factory=list)
    exposure: list = field(default_factory=list)   # each counted month's covered share
    se_mean: float = math.nan
    se_cv: float = math.nan
    lr: float = 0.0                # likelihood-ratio statistic of cv > 0 against cv = 0
    varies: bool = False           # the log shows extra-Poisson spread: write {mean, cv}

    def as_workload_value(self):
        """What goes into a workload's ``tasks_per_month``: ``{mean, cv}`` when the log shows
        month-to-month variation, else a whole number."""
        if self.varies:
            return {"mean": round(self.mean, 2), "cv": round(self.cv, 4)}
        return max(1, int(round(self.mean)))


def month_table(first_seen) -> tuple[np.ndarray, np.ndarray]:
    """(tasks per calendar month, each month's covered share) from first timestamps: numbers
    are epoch seconds, anything else what ``pandas.to_datetime`` reads (naive values UTC)."""
    import pandas as pd

    raw = pd.Series(first_seen)
    if pd.api.types.is_numeric_dtype(raw):
        ts = pd.to_datetime(raw, unit="s", utc=True).dropna()
    else:
        ts = pd.to_datetime(raw, utc=True).dropna()
    if len(ts) == 0:
        return np.zeros(0), np.zeros(0)
    secs = (ts - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(float)
    days = np.floor(secs / DAY)
    d, n = np.unique(days, return_counts=True)
    return _months_from_days(d, n.astype(float), float(secs.min()), float(secs.max()))


def _months_from_days(day, n, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-day counts (day = floor(epoch seconds / 86400)) to calendar months with exposures;
    ``lo``/``hi``: the first and last timestamps (epoch seconds)."""
    day = np.asarray(day, dtype="int64")
    n = np.asarray(n, dtype=float)
    if day.size == 0:
        return np.zeros(0), np.zeros(0)
    month = day.astype("datetime64[D]").astype("datetime64[M]")
    first, last = month.min(), month.max()
    edges = np.arange(first, last + 2, dtype="datetime64[M]")      # month starts, one past
    starts = edges.astype("datetime64[s]").astype(np.int64).astype(float)
    counts = np.bincount((month - first).astype(np.int64), weights=n,
                         minlength=edges.size - 1)
    a, b = starts[:-1], starts[1:]
    # the log's window [lo, hi]; one second on top so a log of one instant is not empty
    cover = np.clip(np.minimum(b, hi + 1.0) - np.maximum(a, lo), 0.0, None) / (b - a)
    keep = cover > 0
    edge = np.zeros(cover.size, bool)
    edge[[0, -1]] = True
    keep &= ~(edge & (cover < MIN_EDGE)) | (cover.size == 1)
    return counts[keep], cover[keep]


def _nll(mu: float, cv: float, n: np.ndarray, f: np.ndarray) -> float:
    return _nll_grad(math.log(mu), cv, n, f)[0]


def _nll_grad(logmu: float, cv: float, n: np.ndarray, f: np.ndarray
              ) -> tuple[float, np.ndarray]:
    """Negative log-likelihood of the month counts and its gradient in (log mean, cv)."""
    from scipy import special

    lam = math.exp(logmu) * f
    if cv < 1e-4:     # the gamma's shape 1/cv^2 is so large the counts are Poisson
        nll = -float((special.xlogy(n, lam) - lam - special.gammaln(n + 1)).sum())
        return nll, np.array([-float((n - lam).sum()), 0.0])
    k = 1.0 / (cv * cv)
    kl = k + lam
    nll = -float((special.gammaln(n + k) - special.gammaln(k) - special.gammaln(n + 1)
                  + k * np.log(k / kl) + special.xlogy(n, lam / kl)).sum())
    d_lam = n / np.where(lam > 0, lam, 1.0) - (n + k) / kl            # d l / d lam
    d_k = special.digamma(n + k) - special.digamma(k) + np.log(k / kl) + 1 - (n + k) / kl
    return nll, -np.array([float((d_lam * lam).sum()), float(d_k.sum()) * (-2.0 / cv ** 3)])


def fit_counts(n, f, *, default_cv: float | None = 0.0) -> VolumeFit | None:
    """Fit ``{mean, cv}`` to month counts ``n`` with covered shares ``f`` (see the module
    docstring). ``default_cv``: the cv kept when the log is too short to show one (None: none,
    the volume is a plain number)."""
    from scipy import optimize

    n = np.asarray(n, dtype=float)
    f = np.asarray(f, dtype=float)
    if n.size == 0 or f.sum() <= 0:
        return None
    exposure = float(f.sum())
    mean0 = float(n.sum() / exposure)
    base = dict(months=exposure, counts=n.tolist(), exposure=f.tolist())
    if exposure < MIN_MONTHS or n.size < MIN_BINS:
        cv = float(default_cv or 0.0)
        note = (f"tasks per month: the log spans {exposure:.1f} months of timestamps "
                f"({n.size} calendar months); month-to-month variation needs "
                f"{MIN_MONTHS:g} months over {MIN_BINS} calendar months")
        return VolumeFit(mean=mean0, cv=cv, source={"mean": "log", "cv": "default"},
                         notes=[note], se_mean=math.sqrt(mean0 / exposure),
                         varies=default_cv is not None and cv > 0, **base)
    nll0 = _nll(mean0, 0.0, n, f)
    # start from the moments: the rates n/f vary by about mean/f (Poisson) + (cv mean)^2
    rate = n / f
    extra = float(np.average((rate - mean0) ** 2, weights=f) - mean0 * (n.size / exposure))
    cv_start = math.sqrt(max(extra, 0.0)) / max(mean0, 1e-9)
    lm = math.log(max(mean0, 1e-9))
    best = None
    for cv0 in {min(max(cv_start, 0.02), CV_MAX), 0.3}:
        res = optimize.minimize(lambda th: _nll_grad(th[0], th[1], n, f), [lm, cv0], jac=True,
                                method="L-BFGS-B", bounds=[(lm - 5.0, lm + 5.0), (0.0, CV_MAX)])
        if best is None or res.fun < best.fun:
            best = res
    mu, cv = math.exp(best.x[0]), float(best.x[1])
    lr = max(0.0, 2.0 * (nll0 - best.fun))
    varies = lr > LR_5PCT and cv > 0
    if not varies:
        return VolumeFit(mean=mean0, cv=0.0, source={"mean": "log", "cv": "log"},
                         se_mean=math.sqrt(mean0 / exposure), lr=lr, varies=False,
                         notes=[f"tasks per month: the {n.size} months' counts vary no more "
                                f"than chance (likelihood ratio {lr:.2f} < {LR_5PCT:.2f}), so "
                                f"the volume is one number"], **base)
    se_mu, se_cv = _standard_errors(mu, cv, n, f)
    return VolumeFit(mean=mu, cv=cv, source={"mean": "log", "cv": "log"}, se_mean=se_mu,
                     se_cv=se_cv, lr=lr, varies=True, **base)


def _standard_errors(mu, cv, n, f) -> tuple[float, float]:
    """From the observed information: the Hessian of the negative log-likelihood in
    (log mean, cv) by central differences of its analytic gradient, mapped to (mean, cv)."""
    x = np.array([math.log(mu), cv])
    h = np.array([1e-5, 1e-5 * max(cv, 1e-2)])
    H = np.zeros((2, 2))
    for j in range(2):
        e = np.eye(2)[j] * h[j]
        H[:, j] = (_nll_grad(*(x + e), n, f)[1] - _nll_grad(*(x - e), n, f)[1]) / (2 * h[j])
    H = (H + H.T) / 2
    try:
        cov = np.linalg.inv(H)
    except np.linalg.LinAlgError:
        return math.nan, math.nan
    v_logmu, v_cv = cov[0, 0], cov[1, 1]
    se_mu = mu * math.sqrt(v_logmu) if v_logmu > 0 else math.nan
    return se_mu, (math.sqrt(v_cv) if v_cv > 0 else math.nan)


def fit_volume(first_seen, *, default_cv: float = 0.0) -> VolumeFit | None:
    """``tasks_per_month`` from each task's first timestamp (see the module docstring);
    None when there is no timestamp."""
    n, f = month_table(first_seen)
    return fit_counts(n, f, default_cv=default_cv)


def fit_volume_days(days, lo: float, hi: float, *, default_cv: float | None = 0.0
                    ) -> VolumeFit | None:
    """The same from per-day counts: ``days`` with columns ``day`` (floor(epoch seconds /
    86400), UTC) and ``n`` (tasks first seen that day); ``lo``/``hi``: the first and the last
    task's first timestamp (epoch seconds)."""
    if days is None or len(days) == 0:
        return None
    n, f = _months_from_days(days["day"].to_numpy(), days["n"].to_numpy(float), lo, hi)
    return fit_counts(n, f, default_cv=default_cv)


__all__ = ["VolumeFit", "fit_volume", "fit_volume_days", "fit_counts", "month_table"]
