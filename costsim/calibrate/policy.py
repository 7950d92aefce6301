"""The routing policy a run of the log was made with, read back from the log.

Tiers are the price-table classes of the models the run used (the most used model of each class
fills it), the route of a phase is the tier of the model that started it on tasks without
signals, ``after_failures`` is the value that best explains where the model changes within a
phase, a signal's ``min_tier`` or ``raise`` (and its phases) the rule that best explains how tasks
with that signal alone start, the handoff comes from the summary rows (their mean output, their
model) and ``retry_context`` from the token structure. A run that used one model everywhere is
``single:MODEL``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..models import TIER_CLASSES, PriceTable
from .measure import canon_signals


@dataclass
class InferredStrategy:
    run: str
    kind: str                          # routed | single
    model: str | None = None           # single
    policy: dict | None = None         # routed: the policy as a dict (validated later)
    notes: list = field(default_factory=list)
    agreement: float = 1.0             # share of attempts whose model the policy predicts
    starts: dict = field(default_factory=dict)   # phase -> tier name that started it

    @property
    def name(self) -> str:
        return f"single:{self.model}" if self.kind == "single" else self.policy["name"]


def _majority(d: dict):
    return max(sorted(d), key=lambda k: d[k]) if d else None


def infer_strategy(ms, table: PriceTable, run: str, mode, name: str) -> InferredStrategy:
    """``mode``: the run's RunMode (handoff, retry context) from the token fit."""
    att = ms.attempts[ms.attempts["run"] == run].copy()
    att["sig"] = [canon_signals(x) for x in att["signals"]]
    models = att.groupby("model")["n"].sum().sort_values(ascending=False)
    summarizer = mode.summarizer if mode.handoff == "summary" else None
    used = set(str(m) for m in models.index)
    # One model everywhere is single:MODEL, which resends failed attempts on a retry; a run
    # whose retries start afresh (retry_context none) is a one-tier policy that says so, or the
    # fit check and `compare` bill its retries for context they never resent.
    if len(used) == 1 and (summarizer is None or summarizer in used) and not (
            mode.retry_context == "none" and next(iter(used)) in table.models):
        return InferredStrategy(run=run, kind="single", model=next(iter(used)))

    notes = []
    # Tiers: every model the run's attempts used, cheapest class first; models of one class in
    # the order escalation meets them (their mean attempt number), then by price.
    att_models = att.groupby("model").apply(
        lambda g: (g["attempt"] * g["n"]).sum() / g["n"].sum(), include_groups=False)
    ranked = []
    for m in att_models.index:
        mp = table.models.get(str(m))
        if mp is None:
            notes.append(f"run {run or '(all)'}: {m} is not in the price table; the inferred "
                         f"policy cannot route to it")
            continue
        ranked.append((TIER_CLASSES.index(mp.tier), float(att_models[m]),
                       mp.input + mp.output, str(m)))
    ranked.sort()
    tiers: dict[str, str] = {}
    for cls_i, _, _, m in ranked:
        cls = TIER_CLASSES[cls_i]
        tier = cls
        k = 2
        while tier in tiers:
            tier = f"{cls}-{k}"
            k += 1
        tiers[tier] = m
    names = list(tiers)
    tier_of = {m: i for i, m in enumerate(tiers.values())}
    last = len(names) - 1
    att["tier"] = [tier_of.get(str(m)) for m in att["model"]]
    att = att[att["tier"].notna()]
    att["tier"] = att["tier"].astype(int)

    # Routes: the starting tier of tasks without signals, per phase name.
    plain = att[att["sig"] == ""]
    if plain.empty:
        plain = att
    first = plain[plain["attempt"] == 1]
    route: dict[str, int] = {}
    for ph, g in first.groupby("phase"):
        route[str(ph)] = int(_majority(g.groupby("tier")["n"].sum().to_dict()))
    for ph, g in att[att["attempt"] == 1].groupby("phase"):      # phases seen only with signals
        if str(ph) not in route:
            route[str(ph)] = int(g["tier"].min())
    counts: dict[int, int] = {}
    for t in route.values():
        counts[t] = counts.get(t, 0) + 1
    default = _majority(counts) if counts else 0

    # after_failures: the value whose escalation schedule matches the most attempts.
    kmax = int(att["attempt"].max()) if len(att) else 1
    best_a, best_score = kmax, -1.0
    for a in range(1, max(kmax, 1) + 1):
        score = 0.0
        for ph, g in plain.groupby("phase"):
            s = route[str(ph)]
            pred = [min(s + (k - 1) // a, last) for k in g["attempt"]]
            score += float((g["n"].to_numpy() * (g["tier"].to_numpy() == pred)).sum())
        if score > best_score + 1e-9:
            best_a, best_score = a, score

    # Signals: for tasks with one signal only, the rule that explains their starting tiers.
    sig_rules: dict = {}
    single = att[(att["attempt"] == 1) & (att["sig"] != "") & (~att["sig"].str.contains(";"))]
    for s, g in single.groupby("sig"):
        obs = {str(ph): int(_majority(x.groupby("tier")["n"].sum().to_dict()))
               for ph, x in g.groupby("phase")}
        weight = {str(ph): float(x["n"].sum()) for ph, x in g.groupby("phase")}
        raised = [ph for ph, t in obs.items() if t != route.get(ph, default)]
        if not raised:
            continue
        cands = []
        T = max(obs[ph] for ph in raised)
        diffs = sorted(obs[ph] - route.get(ph, default) for ph in raised)
        r = max(1, diffs[len(diffs) // 2])
        for rule in ({"min_tier": names[T]}, {"raise": r}):
            for phases in (None, sorted(raised)):
                def pred(ph, rule=rule, phases=phases):
                    base_t = route.get(ph, default)
                    if phases is not None and ph not in phases:
                        return base_t
                    if "min_tier" in rule:
                        return max(base_t, names.index(rule["min_tier"]))
                    return min(base_t + rule["raise"], last)
                score = sum(weight[ph] * (pred(ph) == obs[ph]) for ph in obs)
                cands.append((score, phases is None, "min_tier" in rule, rule, phases))
        cands.sort(key=lambda c: (c[0], c[1], c[2]), reverse=True)
        _, _, _, rule, phases = cands[0]
        entry = dict(rule)
        if phases is not None:
            entry["phases"] = phases
        sig_rules[str(s)] = entry

    routes = {"default": names[default]}
    for ph in sorted(route):
        if route[ph] != default:
            routes[ph] = names[route[ph]]
    policy: dict = {
        "version": 1, "name": name,
        "starts": {ph: names[t] for ph, t in sorted(route.items())},
        "description": f"Inferred by `costsim calibrate` from run '{run}' of the log."
        if run else "Inferred by `costsim calibrate` from the log.",
        "tiers": tiers, "routes": routes,
        "escalation": {"after_failures": int(best_a)},
    }
    if mode.retry_context == "none":
        policy["escalation"]["retry_context"] = "none"
    if sig_rules:
        policy["signals"] = sig_rules
    if mode.handoff == "summary":
        policy["handoff"] = {"mode": "summary", "summary_tokens": int(mode.summary_tokens or 0),
                             "summarizer": summarizer}
    else:
        policy["handoff"] = {"mode": "full_history"}
    total = float(plain["n"].sum()) or 1.0
    starts = policy.pop("starts")
    return InferredStrategy(starts=starts, run=run, kind="routed", policy=policy, notes=notes,
                            agreement=best_score / total)


def validate_policy(data: dict):
    from ..loader import _validate
    from ..models import Policy
    from ..yamlio import Document

    return _validate(Document(data=data, file="<inferred policy>"), Policy)


def policy_yaml(data: dict, source: str | None = None) -> str:
    import yaml

    head = ("# Routing policy inferred by `costsim calibrate`" +
            (f" from {source}" if source else "") + ".\n"
            "# Tiers: the price-table class of each model the log used; routes: the tier that "
            "started\n# each phase on tasks without signals; escalation, signals and handoff: "
            "what the log shows.\n")
    return head + yaml.safe_dump(data, sort_keys=False, width=100)
