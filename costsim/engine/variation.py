"""Tasks differ (SPEC.md §3.5): the numerical machinery behind per-node ladders.

A task draws a difficulty ``z ~ N(0,1)`` and a size noise ``e ~ N(0,1)``. Attempt *k* by model *m*
succeeds with ``σ(b − s·z)``, where *b* is solved so that the average over ``z`` is the §3.3 rate;
every token count is multiplied by ``u = exp(t·(r·z + ρ·e) − t²/2)`` with ``ρ = sqrt(1 − r²)``.

The analytic engine integrates over ``(z, e)`` with a :class:`NodeRule`: a list of nodes, each a
value of ``z``, a weight, and the distribution of ``ln u`` at that node, ``N(mu, sigma²)``
(``sigma = 0``: ``u = exp(mu)`` exactly). Given a node, the §3.4 recursion holds with success
``σ(b − s·z)`` and with every cost replaced by its expectation over ``u``; an attempt's cost is
``u`` times a rate that switches (long context) where ``u`` crosses a threshold ``θ``, so its
expectation needs only ``E[u]`` and ``E[u·1{u > θ}]``, both closed forms for a lognormal
(:func:`size_mean`, :func:`size_above`).

How the rule is built (:func:`node_rule`) and why it meets the documented 1e-6:

* ``s = 0``: success does not depend on ``z``, so one node carries the whole size distribution
  (``mu = −t²/2``, ``sigma = t``): exact.
* otherwise, while the integrand is smooth, ``z`` is integrated by the trapezoidal rule over
  ``[−8.5, 8.5 + t·r]`` (the Gaussian mass outside is below 1e-17, the size tilt ``e^{t·r·z}``
  is covered by the ``+ t·r``): equally spaced nodes, normal-density weights. For an integrand
  analytic and bounded by ``M`` in the strip ``|Im z| < a``, the trapezoidal rule with spacing
  ``h`` errs by about ``M·exp(a²/2 − 2π·a/h)`` against the normal weight (Trefethen & Weideman,
  "The exponentially convergent trapezoidal rule", SIAM Review 2014; the ``a²/2`` is the
  weight's growth off the real line). One logistic ``σ(b − s·z)`` has its poles at ``π/s``,
  but a task's integrand is a product over its phases and attempts, and a product of many
  logistic factors stays bounded (each ``|σ| <= 1``, as ``|1 + e^{x + iy}| >= 1`` for
  ``|y| <= π/2``) only for ``a = π/(2s)``: on the 20-phase workload of issue 13 spacing
  ``0.7/s`` (the rule before) erred by 2.7e-6 in completion at ``s`` 1.3. So the spacing is
  chosen for ``exp(a²/2 − 2π·a/h) = TRAP_ERROR`` with ``a = π/(2s)``, whatever the number of
  phases (about ``0.55/s``), and at most ``0.9`` (the normal weight alone).
* long-context thresholds make ``E[u·1{u>θ} | z] = E[u|z]·Φ((mu + sigma² − ln θ)/sigma)``: a
  smoothed step in ``z`` of width ``w = ρ/r``. While ``w·max(1, s) >= STEEP_WIDTH`` it is
  smooth too: a normal CDF of width ``w`` times the normal weight has a Gaussian spectrum of
  width ``sqrt(1 + w²)/w``, so the spacing is at most ``0.9·w/sqrt(1 + w²)``. Narrower (``r``
  near 1), ``e`` is integrated by 3-point Gauss–Hermite instead (``sigma = 0`` at every node:
  the step becomes exact in ``z``), ``z`` by composite Gauss–Legendre (8 nodes a panel, panels
  at most ``3/s`` and 2.5 wide), and every step position ``z_c − w·ξ`` becomes a panel
  edge; the 3-point rule is exact
  for polynomials of degree 5 in ``w·ξ``, so its error is about ``(w·s)⁶/120`` of the step's share
  (the integrand varies on the scale ``1/s``), below 1e-8 for ``w·max(1, s) < STEEP_WIDTH``.
  ``r = 1`` is the limit ``w = 0`` (one ``e`` point, exact steps).

``benchmarks/bench_variation_accuracy.py`` measures the rule against brute-force integration;
docs/cost-model.md states the bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

Z_LOW = -8.5              # Φ(-8.5) ≈ 9.5e-18: the Gaussian mass the rule leaves out
Z_HIGH = 8.5
PANEL_MAX = 2.5           # widest Gauss–Legendre panel
PANEL_SCALE = 3.0         # panel width <= PANEL_SCALE / s (steep long-context steps)
GL_NODES = 8              # nodes per full-width panel
GL_MIN_NODES = 4          # nodes on a narrow panel (between two step positions)
STEEP_WIDTH = 0.1         # below this long-context step width (times max(1, s)), integrate e
                          # by 3-point Hermite
TRAP_ERROR = 2e-8         # trapezoidal spacing for this error estimate (smooth integrands)
TRAP_SCALE = 1.0          # ... times this (benchmarks refine the rule with it)
TRAP_GAUSS = 0.9          # ... and <= TRAP_GAUSS (times w / sqrt(1 + w²) with long context)


@dataclass(frozen=True)
class Spread:
    """A task type's ``variation`` as numbers: ``s`` (difficulty, logits), ``t`` (tokens, log
    scale) and ``r`` (tokens_follow_difficulty)."""

    s: float = 0.0
    t: float = 0.0
    r: float = 0.0

    @classmethod
    def of(cls, variation) -> "Spread":
        if variation is None:
            return cls()
        return cls(float(variation.difficulty), float(variation.tokens),
                   float(variation.tokens_follow_difficulty))

    @property
    def is_zero(self) -> bool:
        return self.s == 0.0 and self.t == 0.0

    @property
    def rho(self) -> float:
        return math.sqrt(max(0.0, 1.0 - self.r * self.r))

    @property
    def steep(self) -> bool:
        """Long-context steps narrow enough that the rule makes them panel edges (and then
        depends on the thresholds): ``step_width · max(1, s) < STEEP_WIDTH``."""
        return self.step_width * max(1.0, self.s) < STEEP_WIDTH

    @property
    def step_width(self) -> float:
        """Width in ``z`` of a long-context step (``inf`` when size does not follow difficulty)."""
        if self.t == 0.0 or self.r == 0.0:
            return math.inf
        return self.rho / self.r


@dataclass
class NodeRule:
    """Quadrature nodes over a task's difficulty and size (weights sum to 1).

    At node q: ``z[q]`` is the difficulty, ``weight[q]`` the probability mass, and given the node
    ``ln u ~ N(mu[q], sigma[q]²)``."""

    z: np.ndarray
    weight: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray

    def __len__(self) -> int:
        return len(self.z)

    @property
    def size(self) -> np.ndarray:
        """``E[u | node]``: the factor every expected token count is multiplied by."""
        return size_mean(self.mu, self.sigma)


def single_node() -> NodeRule:
    """The rule of a task type without variation: one node, u = 1 exactly."""
    return NodeRule(z=np.zeros(1), weight=np.ones(1), mu=np.zeros(1), sigma=np.zeros(1))


@lru_cache(maxsize=None)
def _legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(n)


def _composite(edges: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes and Gaussian-weighted weights on the panels between ``edges``."""
    zs, ws = [], []
    width = np.diff(edges)
    # narrower panels need fewer nodes, but only slowly fewer: the error of n nodes on a panel
    # of width a falls like a^(2n), so the count follows sqrt(width) (measured)
    counts = np.clip(np.ceil(GL_NODES * np.sqrt(width / h) - 1e-9).astype(int), GL_MIN_NODES,
                     GL_NODES)
    for n in np.unique(counts):
        sel = counts == n
        a, b = edges[:-1][sel, None], edges[1:][sel, None]
        x, w = _legendre(int(n))
        z = (a + b) / 2 + (b - a) / 2 * x
        zs.append(z.ravel())
        ws.append(((b - a) / 2 * w * np.exp(-0.5 * z * z)).ravel())
    z = np.concatenate(zs)
    w = np.concatenate(ws)
    order = np.argsort(z, kind="stable")
    z, w = z[order], w[order]
    return z, w / w.sum()


def trapezoid_step(spread: Spread, has_lc: bool) -> float:
    """Node spacing of the trapezoidal rule (smooth integrands; see the module docstring):
    ``h = 2π·a / (a²/2 − ln TRAP_ERROR)`` with ``a = π/(2s)``, the strip in which a product of
    logistic factors stays bounded, so that ``exp(a²/2 − 2π·a/h) = TRAP_ERROR``; at most
    ``TRAP_GAUSS · w / sqrt(1 + w²)`` for the normal weight times a long-context step of width
    ``w`` (``w = inf``: the normal weight alone, ``TRAP_GAUSS``)."""
    a = math.pi / (2.0 * spread.s)
    h = TRAP_SCALE * 2.0 * math.pi * a / (0.5 * a * a - math.log(TRAP_ERROR))
    w = spread.step_width if has_lc else math.inf
    g = TRAP_GAUSS if math.isinf(w) else TRAP_GAUSS * w / math.sqrt(1.0 + w * w)
    return min(h, g)


def _trapezoid(lo: float, hi: float, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Equally spaced nodes ``j·h`` in ``[lo, hi]`` weighted by the normal density (normalised)."""
    j = np.arange(math.ceil(lo / h - 1e-9), math.floor(hi / h + 1e-9) + 1)
    z = j * h
    w = np.exp(-0.5 * z * z)
    return z, w / w.sum()


def node_rule(spread: Spread, thresholds: np.ndarray | None = None) -> NodeRule:
    """The quadrature rule of one task type (see the module docstring).

    ``thresholds``: the long-context thresholds ``θ = above / tokens`` (in units of ``u``) of the
    calls the strategy can make; only their presence matters unless ``r`` is near 1, when each
    becomes a panel edge.
    """
    s, t, r = spread.s, spread.t, spread.r
    if s == 0.0 and t == 0.0:
        return single_node()
    if s == 0.0:
        # success ignores z: the size is lognormal(-t²/2, t) whatever r is, and integrates exactly
        return NodeRule(z=np.zeros(1), weight=np.ones(1), mu=np.array([-0.5 * t * t]),
                        sigma=np.array([t]))
    thr = np.asarray(thresholds if thresholds is not None else [], float).ravel()
    thr = thr[np.isfinite(thr) & (thr > 0)]
    has_lc = t > 0 and thr.size > 0
    w = spread.step_width
    lo, hi = Z_LOW, Z_HIGH + t * r
    if not (has_lc and spread.steep):
        z, wt = _trapezoid(lo, hi, trapezoid_step(spread, has_lc))
        return NodeRule(z=z, weight=wt, mu=t * r * z - 0.5 * t * t,
                        sigma=np.full(len(z), t * spread.rho))
    h = min(PANEL_MAX, PANEL_SCALE / s)
    n_panels = max(1, int(math.ceil((hi - lo) / h)))
    edges = np.linspace(lo, hi, n_panels + 1)
    # steep: e by Gauss–Hermite (1 point when r = 1), every step position a panel edge
    if w == 0.0:
        xi, xw = np.zeros(1), np.ones(1)
    else:
        xi, xw = np.polynomial.hermite_e.hermegauss(3)
        xw = xw / xw.sum()
    zc = (np.log(np.unique(thr)) + 0.5 * t * t) / (t * r)
    kinks = (zc[:, None] - w * xi[None, :]).ravel()
    kinks = kinks[(kinks > lo) & (kinks < hi)]
    edges = np.unique(np.concatenate([edges, kinks]))
    edges = edges[np.concatenate([[True], np.diff(edges) > 1e-12])]
    z, wt = _composite(edges, h)
    Z = np.repeat(z, len(xi))
    W = (wt[:, None] * xw[None, :]).ravel()
    MU = (t * r * z[:, None] + t * spread.rho * xi[None, :] - 0.5 * t * t).ravel()
    return NodeRule(z=Z, weight=W / W.sum(), mu=MU, sigma=np.zeros(len(Z)))


# --- success ---------------------------------------------------------------------------------

def logistic(x: np.ndarray) -> np.ndarray:
    """σ(x) = 1 / (1 + e^-x), accurate in both tails (e^-x overflowing to inf gives exactly 0,
    the right limit; ±inf give 0 and 1)."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-np.asarray(x, float)))


def _log_logistic(x):
    return -np.logaddexp(0.0, -x)


def solve_intercepts(p: np.ndarray, s: float, rule: NodeRule) -> np.ndarray:
    """``b`` with ``Σ_q weight_q · σ(b − s·z_q) = p`` for every element of ``p`` (any shape).

    ``p = 0`` gives ``-inf`` and ``p = 1`` gives ``+inf`` (success stays impossible/certain at
    every node). Solved by safeguarded Newton steps on ``log f`` (or ``log(1 − f)`` above 1/2),
    which the log-concavity of ``f`` keeps well behaved, to ~1e-14 relative."""
    p = np.asarray(p, float)
    out = np.empty(p.shape)
    flat = p.ravel()
    res = np.full(flat.shape, np.nan)
    res[flat <= 0.0] = -np.inf
    res[flat >= 1.0] = np.inf
    mid = (flat > 0.0) & (flat < 1.0)
    if mid.any():
        uniq, inv = np.unique(flat[mid], return_inverse=True)
        res[mid] = _solve_unique(uniq, float(s), rule)[inv]
    out[...] = res.reshape(p.shape)
    return out


def _solve_unique(p: np.ndarray, s: float, rule: NodeRule) -> np.ndarray:
    if s == 0.0:
        return np.log(p) - np.log1p(-p)
    z = rule.z[None, :]
    logw = np.log(rule.weight)[None, :]
    upper = p >= 0.5
    # tail of interest: f (p < 1/2) or 1 - f (p >= 1/2); by symmetry 1 - f(b) = g(-b) with z -> -z
    sign = np.where(upper, -1.0, 1.0)[:, None]
    target = np.log(np.where(upper, 1.0 - p, p))
    b = (np.log(p) - np.log1p(-p)) * math.sqrt(1.0 + math.pi * s * s / 8.0)
    x = sign[:, 0] * b                      # solve h(x) = log E σ(x - s·sign·z) = target
    span = 40.0 + 10.0 * s
    lo = np.minimum(x, target) - span - 10.0 * s
    hi = np.maximum(x, 0.0) + span + 10.0 * s
    for _ in range(200):
        a = x[:, None] - s * sign * z
        ls = _log_logistic(a)
        terms = logw + ls
        m = terms.max(axis=1, keepdims=True)
        e = np.exp(terms - m)
        tot = e.sum(axis=1)
        h = m[:, 0] + np.log(tot)
        # d/dx log f = E[σ(1-σ)] / E[σ] = weighted mean of (1 - σ)
        dh = (e * logistic(-a)).sum(axis=1) / tot
        err = h - target
        lo = np.where(err < 0, np.maximum(lo, x), lo)
        hi = np.where(err > 0, np.minimum(hi, x), hi)
        step = np.where(dh > 0, err / np.maximum(dh, 1e-300), np.inf)
        nx = x - step
        bad = ~np.isfinite(nx) | (nx <= lo) | (nx >= hi)
        nx = np.where(bad, 0.5 * (lo + hi), nx)
        done = (np.abs(err) <= 1e-14 * np.maximum(1.0, np.abs(target))) | (nx == x)
        x = np.where(done, x, nx)
        if done.all():
            break
    return sign[:, 0] * x


def node_success(p: np.ndarray, b: np.ndarray, s: float, z: np.ndarray,
                 out: np.ndarray | None = None) -> np.ndarray:
    """Success probability at every node, ``σ(b − s·z)``, with ``p = 0`` and ``p = 1`` exact.

    ``p``/``b``: any shape ``X``; ``z``: ``[Q]``; the result has shape ``X + [Q]`` (written into
    ``out`` if given). Computed as ``1 / (1 + e^{−b}·e^{s·z})``: one exponential per element of
    ``b`` and one per node instead of one per pair (three passes over the result, not five).
    ``b = ±inf`` (``p`` 1 or 0) gives exactly 1 or 0; an overflowing product gives 0, the
    right limit (``σ`` is then below 1e-300)."""
    p = np.asarray(p, float)
    b = np.asarray(b, float)
    with np.errstate(over="ignore"):
        eb = np.exp(-b)[..., None]
        ez = np.exp(s * np.asarray(z, float))
    if out is None:
        out = np.empty(b.shape + ez.shape)
    with np.errstate(over="ignore", invalid="ignore"):
        if out.flags.c_contiguous and ez.ndim == 1:
            # the outer product as one loop over the result (a broadcast multiply pays a
            # call per row of Q nodes: twice the time); the same products
            np.einsum("i,j->ij", eb.reshape(-1), ez, out=out.reshape(-1, ez.size))
        else:
            np.multiply(eb, ez, out=out)
        out += 1.0
        np.divide(1.0, out, out=out)        # = np.reciprocal, in half the time
    lo, hi = p <= 0.0, p >= 1.0
    if lo.any() or hi.any():
        out[...] = np.where(lo[..., None], 0.0, np.where(hi[..., None], 1.0, out))
    return out


# --- size ------------------------------------------------------------------------------------

def size_mean(mu, sigma):
    """``E[u]`` for ``ln u ~ N(mu, sigma²)``."""
    return np.exp(np.asarray(mu) + 0.5 * np.asarray(sigma) ** 2)


def size_above(theta, mu, sigma):
    """``E[u · 1{u > θ}]`` for ``ln u ~ N(mu, sigma²)`` (``sigma = 0``: ``u = e^mu``, strict).

    Broadcasts over all arguments; ``θ = inf`` gives 0."""
    theta = np.asarray(theta, float)
    mu = np.asarray(mu, float)
    sigma = np.asarray(sigma, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        lt = np.log(theta)
        if np.all(sigma == 0.0):
            return np.where(mu > lt, np.exp(mu), 0.0)
        from scipy.special import ndtr

        smooth = size_mean(mu, sigma) * ndtr((mu + sigma * sigma - lt) / sigma)
        return np.where(sigma > 0.0, smooth, np.where(mu > lt, np.exp(mu), 0.0))


def expected_cost(base, delta, theta, mu, sigma):
    """``E[cost(u)]`` of ``cost(u) = u · (base + Σ_j delta_j · 1{u > θ_j})`` (the §3.2 bill of an
    attempt whose calls switch to long-context rates where ``u`` passes each call's threshold).

    ``base``: ``X``; ``delta``/``theta``: ``X + [J]``; ``mu``/``sigma``: ``[Q]``; result
    ``X + [Q]``."""
    m = size_mean(mu, sigma)
    base = np.asarray(base, float)
    out = np.ascontiguousarray(base[..., None] * m)
    delta = np.asarray(delta, float)
    theta = np.asarray(theta, float)
    live = np.isfinite(theta) & (delta != 0.0)
    if delta.shape[-1] == 0 or not live.any():
        return out
    # only the calls that have a threshold; E[u 1{u > θ}] once per distinct θ (calls of many
    # models share their thresholds), added call by call in order (as np.add.at would)
    uq, inv = np.unique(theta[live], return_inverse=True)
    above = size_above(uq[:, None], mu, sigma)                                  # [U, Q]
    pos = np.zeros(theta.shape, int)
    pos[live] = inv.ravel()
    for j in range(delta.shape[-1]):
        lj = live[..., j]
        if lj.any():
            out[lj] += delta[..., j][lj][:, None] * above[pos[..., j][lj]]
    return out
