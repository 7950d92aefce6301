"""An independent, deliberately plain reference implementation of SPEC.md §3.

Pure Python, no numpy, no costsim imports: it reads the three documents as plain dicts (what
``yaml.safe_load`` returns) and, for every task type and every signal combination, walks every
outcome path of a task explicitly -- which attempt each phase succeeds at, or where the task is
abandoned -- adding up the path's probability and its cost call by call.  It is slow (the number
of paths is about ``max_attempts ** phases``) and only meant for tests with small inputs.

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
"""

from __future__ import annotations

import itertools
import math

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
        else:
            self.name = policy["name"]
            self.tier_names = list(policy["tiers"])
            self.tier_models = [policy["tiers"][t] for t in self.tier_names]
            self.after = (policy.get("escalation") or {}).get("after_failures", 2)
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


# --- one cell: task type x signal combination ---------------------------------------------------

def cell(strategy: Strategy, tt: dict, active: set[str]) -> dict:
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

    # per phase, per attempt: (model, p, cost of the attempt, cost of the summarizer call if it
    # succeeds at that attempt) -- computed by looping over calls
    table = []
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
            retry = (k - 1) * n * g
            cost = 0.0
            for j in range(1, n + 1):
                ctx = sys_t + prior + retry + (j - 1) * g
                cost += phase_call_cost(prices, model, ctx, inn, out, h)
            summ = 0.0
            if mode == "summary" and i < n_ph - 1:
                summ = summarizer_call_cost(prices, strategy.summarizer,
                                            sys_t + prior + k * n * g, summary_tokens)
            rows.append((model, p, cost, summ))
        table.append(rows)

    acc = {"E": 0.0, "C": 0.0, "CD": 0.0, "attempts": 0.0, "phases": 0.0, "by_model": {}}

    def walk(i, prob, cost, by_model, winners, attempts, started):
        if prob == 0.0:
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
            if summ:
                by2[strategy.summarizer] = by2.get(strategy.summarizer, 0.0) + summ
            walk(i + 1, prob * reach * p, cost + spent + summ, by2,
                 winners + [(phases[i]["phase"], model)], attempts + k, started + 1)
            reach *= 1 - p
        # abandoned after K failures
        pr = prob * reach
        if pr:
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
    rm = (defects or {}).get("review_minutes") or {}
    acc["review_base"] = float(rm.get("base", 0.0) or 0.0)
    acc["review_per"] = float(rm.get("per_defect", 0.0) or 0.0)
    return acc


def evaluate(prices: dict, workload: dict, policy: dict | None = None,
             model: str | None = None) -> dict:
    """Headline metrics of one strategy: ``single:model`` if policy is None, else the policy."""
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
            a = cell(st, tt, active)
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
