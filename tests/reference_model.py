"""An independent, deliberately plain reference implementation of SPEC.md §3.

No costsim imports: it reads the three documents as plain dicts (what ``yaml.safe_load``
returns) and, for every task type and every signal combination, walks every outcome path of a
task explicitly -- which attempt each phase succeeds at, or where the task is abandoned -- adding
up the path's probability and its cost call by call.  It is slow (the number of paths is about
``max_attempts ** phases``) and only meant for tests with small inputs.

Without ``variation`` (or with spreads 0) it is pure Python on floats.  With ``variation``
(§3.5) the same walk runs on NumPy arrays indexed by quadrature nodes of the task difficulty
``z``: a path's probability and its expected cost given ``z`` are arrays, and the integral over
``z`` is taken at the end (R14; NumPy/SciPy are used for that integration only).

Readings of SPEC where the text leaves something open (written down BEFORE reading
costsim/engine/compile.py and costsim/engine/analytic.py; where a later comparison showed costsim made a
different but defensible choice, the note says so):

R1  Prices: base ``cache_read`` absent -> base ``input``.  Long context: ``input``/``output``
    absent -> the base rate; ``cache_read`` absent -> the *long-context input* rate (SPEC §2.1,
    literally, even if the base table has a cache_read price).  ``cache_write`` is never used:
    the ``in`` new tokens of a call are billed at ``input`` (SPEC §3.2 allows cache writes only
    "where the implementation models cache writes and documents it").
R2  The long-context rule is per call: a phase call uses long-context rates iff
    ``ctx_j + in > above`` (strictly greater).  The summarizer call is a model call too, so it uses
    long-context rates iff its input (``system + prior + k*n*g``) ``> above`` (SPEC §2.1: "a call
    whose input exceeds `above` tokens is billed entirely at these rates").
R3  The summarizer call has "no cache": its whole input is billed at the (possibly long-context)
    ``input`` rate, its output (``summary_tokens``) at ``output``.  It follows every *successful*
    phase except the task type's last phase; an abandoned phase gets none.
R4  Handoff: the policy's ``handoff`` if present, else the workload's.  ``single:M`` always uses the
    workload's handoff and M as summarizer.  For a routed policy the summarizer name is resolved as:
    a tier name of the policy -> that tier's model; else a model id in the price table -> that
    model; else (a tier *class* named in the workload's handoff that the policy has no tier of
    that name for) -> the first policy tier whose model has that price-table class [costsim
    instead rejects that case with a CostsimError; no numbers to compare].  With no summarizer
    named anywhere, my first reading was: the model the policy routes the phase ``summarize`` to
    (its route, else ``default``).  costsim uses the policy's first (cheapest) tier; SPEC is
    silent, so the reference follows costsim (SUMMARIZER_DEFAULT = "first-tier"; the other reading
    stays available as "summarize-route").
R5  Success map lookup: model id first, then the model's price-table ``tier`` class.  A scalar
    is the same probability for every attempt (no feedback_gain); a list is indexed by the attempt
    index k within the phase (last value repeats).  If neither key is present the coding_score
    logistic is used (with feedback_gain for k >= 2, using the coding score of the model that makes
    attempt k).  Phase ``difficulty`` absent: my first reading was 0; costsim refuses (a
    CostsimError: "not in the phase's success map and the phase has no difficulty"), which SPEC
    ("without it, probabilities come from coding_score and difficulty") supports, so the
    reference refuses too.
R6  The difficulty of every active signal (workload signal, or the task type's own ``signals``
    block) adds to every phase, whatever the policy's ``phases`` restriction says: that restriction
    is about routing ("signals count only in their `phases`" is a sentence of §3.1 Routing).
    Policy signals the workload does not define are never active.
R7  Routing: start = max(route index, min_tier index of active in-phase signals)
    + sum(raise of active in-phase signals), capped at the last tier; attempt k uses tier index
    ``min(start + (k-1)//after_failures, last)``.
R8  Defects: the task type's ``defects`` block if it has one, else the workload's, else none.
    Each phase of the task whose name is in ``defects.phases`` adds, via the model that succeeded
    in it, one defect with probability rate(model) (id first, then tier class, else 0).  The model
    that succeeded in the phase named ``review`` (if the task type has one) catches each defect
    independently with catch_rate(model) -- whatever the order of the phases.  A task ships a
    defect iff at least one defect is not caught:
    ``P = 1 - prod_i (1 - rate_i * (1 - catch))`` along the path.
R9  ``defect_rate`` and ``review_minutes`` are conditional on completion and aggregated weighted by
    ``weight * completion``; review minutes per cell use that cell's (task type's) review_minutes.
    ``expected_attempts`` counts attempts per attempted task; ``retries`` = expected attempts
    minus expected number of phases started.

Readings added with retry_context and §3.5 (decided by the lead where SPEC is open):

R10 ``escalation.retry_context: none`` (routed policies only; ``single:M`` always resends):
    ``retry = 0`` for every call of every attempt, and the summarizer's input after a success at
    attempt k is ``system + prior + n*g`` -- only the succeeding attempt's transcript.
R11 ``variation``: a task type's own block replaces the workload's (the whole block); absent
    everywhere, or difficulty = tokens = 0, is exactly R1-R10 (the float code path, unchanged to
    the last digit).  Missing keys of a block are 0.
R12 With variation EVERY token count of the task is multiplied by the task's
    ``u = exp(t*(r*z + sqrt(1-r^2)*e) - t^2/2)``: system tokens, prior (full history or the
    summary), retries, ``in``, ``out``, the summarizer's input and its output (summary_tokens).
    A call's cost is therefore ``u`` times its cost at u = 1, at base or long-context rates, and
    the long-context rule compares ``u * (ctx_j + in)`` (or ``u *`` the summarizer input) with
    ``above``.  Defect and catch rates do not depend on ``z``.
R13 ``b`` is solved per success probability p (so per model, phase, attempt and signal
    combination): the mean over ``z ~ N(0,1)`` of ``sigmoid(b - s*z)`` equals p; p = 0 and p = 1
    stay 0 and 1 for every z.  The mean is taken with the same quadrature rule as every other
    integral (R14), so "the rate over all tasks is p" holds exactly for that rule.
R14 Integration.  Given z, the size noise e enters only through ``u``, so the expected cost of
    a call given z is closed-form (lognormal partial expectations):
    ``E[u 1{u X > T} | z] = m(z) * Phi(b_e - c(z))`` with ``m(z) = exp(t r z - (t r)^2/2)``,
    ``b_e = t sqrt(1-r^2)``, ``c(z) = (ln(T/X) - t r z + t^2/2) / b_e`` (X the call's input at
    u = 1, T = ``above``); with ``b_e = 0`` the indicator is evaluated at ``u = exp(t z - t^2/2)``.
    The integral over z uses composite 16-point Gauss-Legendre panels on ``[-10, 10 + t r]``
    (outside, the normal density is below 1e-22), panels at most ``min(0.5, 1/s)`` wide, with
    a breakpoint at every long-context threshold crossing ``z*`` (a jump when ``b_e = 0``) and
    geometrically graded panels around it when the crossing is steep.  Halving every panel
    changes the results of the tests' scenarios by less than 1e-14 relative (the tests demand
    1e-11); the independent SciPy checks in tests/test_reference_variation.py agree to 1e-8 (the
    accuracy of their own adaptive quadrature).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit, ndtr

TIER_CLASSES = ("budget", "midrange", "premium")

# R4: which model summarizes when neither the policy nor the workload names a summarizer.
SUMMARIZER_DEFAULT = "first-tier"


# --- prices ------------------------------------------------------------------------------------

def rates(prices: dict, model: str, long: bool) -> tuple[float, float, float]:
    """(input, output, cache_read) per 1M tokens for one call of ``model``."""
    m = prices["models"][model]
    inp = float(m["input"])
    out = float(m["output"])
    cr = float(m["cache_read"]) if m.get("cache_read") is not None else inp
    if not long:
        return inp, out, cr
    lc = m["long_context"]
    l_inp = float(lc["input"]) if lc.get("input") is not None else inp
    l_out = float(lc["output"]) if lc.get("output") is not None else out
    l_cr = float(lc["cache_read"]) if lc.get("cache_read") is not None else l_inp
    return l_inp, l_out, l_cr


def is_long(prices: dict, model: str, input_tokens: float) -> bool:
    lc = prices["models"][model].get("long_context")
    return lc is not None and input_tokens > lc["above"]


def phase_call_cost(prices, model, ctx, new_in, out, h) -> float:
    """One call of an attempt: ctx resent tokens (cache split), new_in new tokens, out output."""
    inp_r, out_r, cr_r = rates(prices, model, is_long(prices, model, ctx + new_in))
    return (h * ctx * cr_r + (1 - h) * ctx * inp_r + new_in * inp_r + out * out_r) / 1e6


def summarizer_call_cost(prices, model, input_tokens, summary_tokens) -> float:
    inp_r, out_r, _ = rates(prices, model, is_long(prices, model, input_tokens))
    return (input_tokens * inp_r + summary_tokens * out_r) / 1e6


# --- strategy -----------------------------------------------------------------------------------

class Strategy:
    """Either ``single:M`` (policy None) or a routed policy dict."""

    def __init__(self, prices: dict, workload: dict, policy: dict | None = None,
                 model: str | None = None):
        self.prices = prices
        self.workload = workload
        self.policy = policy
        self.model = model
        if policy is None:
            assert model is not None
            self.name = f"single:{model}"
            self.handoff = workload.get("handoff") or {"mode": "full_history"}
            self.summarizer = model
            self.retry_full = True
        else:
            self.name = policy["name"]
            self.tier_names = list(policy["tiers"])
            self.tier_models = [policy["tiers"][t] for t in self.tier_names]
            self.after = (policy.get("escalation") or {}).get("after_failures", 2)
            retry_context = (policy.get("escalation") or {}).get("retry_context", "full")
            self.retry_full = retry_context != "none"
            self.handoff = policy.get("handoff") or workload.get("handoff") or {"mode": "full_history"}
            self.summarizer = self._resolve_summarizer(self.handoff.get("summarizer"))

    def _resolve_summarizer(self, name):
        pol = self.policy
        if name is None:
            if SUMMARIZER_DEFAULT == "summarize-route":
                routes = pol["routes"]
                tier = routes.get("summarize", routes.get("default"))
                if tier is not None:
                    return pol["tiers"][tier]
            return self.tier_models[0]
        if name in pol["tiers"]:
            return pol["tiers"][name]
        if name in self.prices["models"]:
            return name
        for m in self.tier_models:  # a tier class named by the workload's handoff
            if self.prices["models"][m]["tier"] == name:
                return m
        raise ValueError(f"cannot resolve summarizer {name!r}")

    def model_for(self, phase: str, k: int, active: set[str]) -> str:
        if self.policy is None:
            return self.model
        pol = self.policy
        routes = pol["routes"]
        route = routes[phase] if phase in routes else routes["default"]
        idx = self.tier_names.index(route)
        last = len(self.tier_names) - 1
        raise_total = 0
        for sig_name, sig in (pol.get("signals") or {}).items():
            if sig_name not in active:
                continue
            phases = sig.get("phases")
            if phases is not None and phase not in phases:
                continue
            if sig.get("min_tier") is not None:
                idx = max(idx, self.tier_names.index(sig["min_tier"]))
            raise_total += sig.get("raise", 0) or 0
        start = min(idx + raise_total, last)
        return self.tier_models[min(start + (k - 1) // self.after, last)]


# --- success ------------------------------------------------------------------------------------

def success_p(prices, workload, ph: dict, model: str, k: int, extra_difficulty: float) -> float:
    smap = ph.get("success")
    if smap:
        key = None
        if model in smap:
            key = model
        elif prices["models"][model]["tier"] in smap:
            key = prices["models"][model]["tier"]
        if key is not None:
            v = smap[key]
            if isinstance(v, list):
                return float(v[min(k, len(v)) - 1])
            return float(v)
    score = prices["models"][model].get("coding_score")
    if score is None:
        raise ValueError(f"model {model} has no coding_score and phase {ph['phase']} no success entry")
    if ph.get("difficulty") is None:
        raise ValueError(f"phase {ph['phase']} has no difficulty and no success entry for {model}")
    d = ph["difficulty"] + extra_difficulty
    p1 = 1.0 / (1.0 + math.exp(-(score - d) / 10.0))
    if k == 1:
        return p1
    gain = workload.get("feedback_gain", 0.0) or 0.0
    return p1 + (1 - p1) * gain


def lookup(mapping: dict, prices: dict, model: str) -> float:
    if model in mapping:
        return float(mapping[model])
    cls = prices["models"][model]["tier"]
    if cls in mapping:
        return float(mapping[cls])
    return 0.0


# --- variation (§3.5): quadrature over the task difficulty z (R13, R14) ------------------------

def variation_of(workload: dict, tt: dict) -> tuple[float, float, float]:
    """(s, t, r) of a task type (R11)."""
    var = tt["variation"] if tt.get("variation") is not None else workload.get("variation")
    var = var or {}
    return (float(var.get("difficulty", 0.0) or 0.0), float(var.get("tokens", 0.0) or 0.0),
            float(var.get("tokens_follow_difficulty", 0.0) or 0.0))


class Quad:
    """Nodes ``z`` and weights ``w`` (normal density included) for integrals over z ~ N(0,1)."""

    NODES = 16

    def __init__(self, s: float, t: float, r: float, crossings=(), refine: int = 1):
        self.s, self.t, self.r = s, t, r
        self.be = t * math.sqrt(max(0.0, 1.0 - r * r))
        tr = t * r
        lo, hi = -10.0, 10.0 + tr
        width = min(0.5, 1.0 / s if s > 0 else 0.5) / refine
        points = {lo, hi}
        if tr > 0:
            for x, above in crossings:
                if x <= 0:
                    continue
                zs = (math.log(above / x) + t * t / 2 - self.be ** 2) / tr
                if not lo < zs < hi:
                    continue
                points.add(zs)
                step = self.be / tr     # how wide the crossing is in z (0: a jump)
                while 0 < step < width:
                    for q in (zs - step, zs + step):
                        if lo < q < hi:
                            points.add(q)
                    step *= 2
        pts = sorted(points)
        x, wx = np.polynomial.legendre.leggauss(self.NODES)
        zs_, ws_ = [], []
        for a, b in zip(pts[:-1], pts[1:]):
            n = max(1, math.ceil((b - a) / width))
            edges = np.linspace(a, b, n + 1)
            half = (edges[1:] - edges[:-1]) / 2
            mid = (edges[1:] + edges[:-1]) / 2
            zs_.append((mid[:, None] + half[:, None] * x[None, :]).ravel())
            ws_.append((half[:, None] * wx[None, :]).ravel())
        self.z = np.concatenate(zs_)
        self.w = np.concatenate(ws_) * np.exp(-self.z ** 2 / 2) / math.sqrt(2 * math.pi)
        self.m = np.exp(tr * self.z - tr * tr / 2)          # E[u | z]
        self._b: dict[float, float] = {}

    def integrate(self, values) -> float:
        if np.ndim(values) == 0:
            return float(values) * float(self.w.sum())
        return float(np.dot(self.w, values))

    def success(self, p: float):
        """sigmoid(b - s z) on the nodes, with b such that its mean over z is p (R13)."""
        if p <= 0.0:
            return np.zeros_like(self.z)
        if p >= 1.0:
            return np.ones_like(self.z)
        if self.s == 0.0:
            return np.full_like(self.z, p)
        b = self._b.get(p)
        if b is None:
            span = 60.0 + 12.0 * self.s
            b = brentq(lambda b: float(np.dot(self.w, expit(b - self.s * self.z))) - p,
                       -span, span, xtol=1e-14, rtol=4 * np.finfo(float).eps, maxiter=500)
            self._b[p] = b
        return expit(b - self.s * self.z)

    def split(self, x: float, above):
        """(E[u 1{u x <= above} | z], E[u 1{u x > above} | z]) on the nodes (R12, R14)."""
        m = self.m
        if above is None or x <= 0:
            return m, np.zeros_like(m)
        t, r, be = self.t, self.r, self.be
        if t == 0.0:
            return (m, np.zeros_like(m)) if not x > above else (np.zeros_like(m), m)
        if be == 0.0:           # r = 1: u is fixed by z
            long = np.exp(t * r * self.z - t * t / 2) * x > above
            return np.where(long, 0.0, m), np.where(long, m, 0.0)
        c = (math.log(above / x) - t * r * self.z + t * t / 2) / be
        return m * ndtr(c - be), m * ndtr(be - c)


def _above(prices, model):
    lc = prices["models"][model].get("long_context")
    return None if lc is None else lc["above"]


def call_cost_given_z(prices, model, ctx, new_in, out, h, quad: Quad):
    """E[cost of one phase call | z] on the nodes: u times its cost at u = 1, per rate regime."""
    lo, hi = quad.split(ctx + new_in, _above(prices, model))
    inp_r, out_r, cr_r = rates(prices, model, False)
    cost = lo * ((h * ctx * cr_r + (1 - h) * ctx * inp_r + new_in * inp_r + out * out_r) / 1e6)
    if _above(prices, model) is not None:
        inp_r, out_r, cr_r = rates(prices, model, True)
        cost = cost + hi * ((h * ctx * cr_r + (1 - h) * ctx * inp_r + new_in * inp_r
                             + out * out_r) / 1e6)
    return cost


def summarizer_cost_given_z(prices, model, input_tokens, summary_tokens, quad: Quad):
    lo, hi = quad.split(input_tokens, _above(prices, model))
    inp_r, out_r, _ = rates(prices, model, False)
    cost = lo * ((input_tokens * inp_r + summary_tokens * out_r) / 1e6)
    if _above(prices, model) is not None:
        inp_r, out_r, _ = rates(prices, model, True)
        cost = cost + hi * ((input_tokens * inp_r + summary_tokens * out_r) / 1e6)
    return cost


def _any(x) -> bool:
    return bool(np.any(x)) if isinstance(x, np.ndarray) else bool(x)


# --- one cell: task type x signal combination ---------------------------------------------------

def cell(strategy: Strategy, tt: dict, active: set[str], *, integrate: bool = False,
         refine: int = 1) -> dict:
    """Expectations of one cell.  Floats without variation; with variation (or ``integrate``,
    which tests use to check the quadrature against the float path) every probability and cost
    is an array over the z nodes, integrated at the end."""
    prices, wl = strategy.prices, strategy.workload
    signals = tt["signals"] if tt.get("signals") is not None else (wl.get("signals") or {})
    extra_d = sum(float(signals[s].get("difficulty", 0.0) or 0.0) for s in active)
    K = tt.get("max_attempts") or wl.get("max_attempts", 3)
    sys_t = wl.get("system_tokens", 0) or 0
    h = wl.get("cache_hit_rate", 0.0) or 0.0
    mode = strategy.handoff["mode"]
    summary_tokens = strategy.handoff.get("summary_tokens", 1500)
    defects = tt["defects"] if tt.get("defects") is not None else wl.get("defects")
    phases = tt["phases"]
    n_ph = len(phases)

    # per phase, per attempt: the model, p, the calls (ctx, in, out) and the summarizer's input
    # if it succeeds there (None: no summarizer call)
    specs = []
    for i, ph in enumerate(phases):
        n, inn, out = ph["calls"], ph["input_tokens"], ph["output_tokens"]
        g = inn + out
        if mode == "full_history":
            prior = sum(q["calls"] * (q["input_tokens"] + q["output_tokens"]) for q in phases[:i])
        else:
            prior = summary_tokens if i > 0 else 0
        rows = []
        for k in range(1, K + 1):
            model = strategy.model_for(ph["phase"], k, active)
            p = success_p(prices, wl, ph, model, k, extra_d)
            retry = (k - 1) * n * g if strategy.retry_full else 0      # R10
            calls = [(sys_t + prior + retry + (j - 1) * g, inn, out) for j in range(1, n + 1)]
            summ_in = None
            if mode == "summary" and i < n_ph - 1:
                summ_in = sys_t + prior + (k if strategy.retry_full else 1) * n * g
            rows.append((model, p, calls, summ_in))
        specs.append(rows)

    s_, t_, r_ = variation_of(wl, tt)
    quad = None
    if integrate or s_ > 0 or t_ > 0:
        crossings = []
        for rows in specs:
            for model, _, calls, summ_in in rows:
                above = _above(prices, model)
                if above is not None:
                    crossings += [(ctx + inn, above) for ctx, inn, _ in calls]
                above = _above(prices, strategy.summarizer)
                if summ_in is not None and above is not None:
                    crossings.append((summ_in, above))
        quad = Quad(s_, t_, r_, crossings, refine)

    # (model, p, cost of the attempt, cost of the summarizer call if it succeeds there):
    # floats, or arrays over the z nodes (expectations given z)
    table = []
    for rows in specs:
        out_rows = []
        for model, p, calls, summ_in in rows:
            if quad is None:
                cost = 0.0
                for ctx, inn, out in calls:
                    cost += phase_call_cost(prices, model, ctx, inn, out, h)
                summ = 0.0
                if summ_in is not None:
                    summ = summarizer_call_cost(prices, strategy.summarizer, summ_in,
                                                summary_tokens)
            else:
                cost = 0.0
                for ctx, inn, out in calls:
                    cost = cost + call_cost_given_z(prices, model, ctx, inn, out, h, quad)
                summ = 0.0
                if summ_in is not None:
                    summ = summarizer_cost_given_z(prices, strategy.summarizer, summ_in,
                                                   summary_tokens, quad)
                p = quad.success(p)
            out_rows.append((model, p, cost, summ))
        table.append(out_rows)

    acc = {"E": 0.0, "C": 0.0, "CD": 0.0, "attempts": 0.0, "phases": 0.0, "by_model": {}}

    def walk(i, prob, cost, by_model, winners, attempts, started):
        if not _any(prob):
            return
        if i == n_ph:  # completed
            acc["E"] += prob * cost
            acc["C"] += prob
            acc["CD"] += prob * ship_defect(winners)
            acc["attempts"] += prob * attempts
            acc["phases"] += prob * started
            for m, c in by_model.items():
                acc["by_model"][m] = acc["by_model"].get(m, 0.0) + prob * c
            return
        rows = table[i]
        reach = 1.0  # probability the phase gets to attempt k
        spent = 0.0
        spent_by = dict(by_model)
        for k in range(1, K + 1):
            model, p, c, summ = rows[k - 1]
            spent += c
            spent_by[model] = spent_by.get(model, 0.0) + c
            # success at attempt k
            by2 = dict(spent_by)
            if _any(summ):
                by2[strategy.summarizer] = by2.get(strategy.summarizer, 0.0) + summ
            walk(i + 1, prob * reach * p, cost + spent + summ, by2,
                 winners + [(phases[i]["phase"], model)], attempts + k, started + 1)
            reach *= 1 - p
        # abandoned after K failures
        pr = prob * reach
        if _any(pr):
            acc["E"] += pr * (cost + spent)
            acc["attempts"] += pr * (attempts + K)
            acc["phases"] += pr * (started + 1)
            for m, c in spent_by.items():
                acc["by_model"][m] = acc["by_model"].get(m, 0.0) + pr * c

    def ship_defect(winners):
        if not defects:
            return 0.0
        catch = 0.0
        for name, model in winners:
            if name == "review":
                catch = lookup(defects.get("catch_rate") or {}, prices, model)
        none = 1.0
        for name, model in winners:
            if name in (defects.get("phases") or []):
                none *= 1 - lookup(defects.get("rate") or {}, prices, model) * (1 - catch)
        return 1 - none

    walk(0, 1.0, 0.0, {}, [], 0, 0)
    if quad is not None:
        for key in ("E", "C", "CD", "attempts", "phases"):
            acc[key] = quad.integrate(acc[key])
        acc["by_model"] = {m: quad.integrate(v) for m, v in acc["by_model"].items()}
    rm = (defects or {}).get("review_minutes") or {}
    acc["review_base"] = float(rm.get("base", 0.0) or 0.0)
    acc["review_per"] = float(rm.get("per_defect", 0.0) or 0.0)
    return acc


def evaluate(prices: dict, workload: dict, policy: dict | None = None,
             model: str | None = None, *, integrate: bool = False, refine: int = 1) -> dict:
    """Headline metrics of one strategy: ``single:model`` if policy is None, else the policy.

    ``integrate`` takes the quadrature path even without variation and ``refine`` divides every
    panel of the quadrature (both only for tests of the integration itself)."""
    st = Strategy(prices, workload, policy, model)
    E = C = CD = RM = att = started = 0.0
    by_model: dict[str, float] = {}
    for tt in workload["task_types"]:
        signals = tt["signals"] if tt.get("signals") is not None else (workload.get("signals") or {})
        names = list(signals)
        for combo in itertools.product((False, True), repeat=len(names)):
            w = float(tt["share"])
            active = set()
            for name, on in zip(names, combo):
                share = float(signals[name]["share"])
                w *= share if on else 1 - share
                if on:
                    active.add(name)
            if w == 0.0:
                continue
            a = cell(st, tt, active, integrate=integrate, refine=refine)
            E += w * a["E"]
            C += w * a["C"]
            CD += w * a["CD"]
            RM += w * (a["C"] * a["review_base"] + a["review_per"] * a["CD"])
            att += w * a["attempts"]
            started += w * a["phases"]
            for m, c in a["by_model"].items():
                by_model[m] = by_model.get(m, 0.0) + w * c
    return {
        "name": st.name,
        "spend_per_task": E,
        "completion_rate": C,
        "cost_per_completed_task": E / C if C > 0 else math.inf,
        "defect_rate": CD / C if C > 0 else 0.0,
        "review_minutes": RM / C if C > 0 else 0.0,
        "expected_attempts": att,
        "retries": att - started,
        "spend_by_model": by_model,
    }
