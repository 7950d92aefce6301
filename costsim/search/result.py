"""Result objects of `costsim optimize` and their YAML/text forms (no search here)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import CostsimError

RESULT_VERSION = 1


KINDS = {"searched": "a searched routing policy", "single": "a single model for everything",
         "policy": "a given policy, unchanged"}


@dataclass
class PolicyPoint:
    """One point of the space (or a named candidate: a single model, a given policy) and its
    metrics."""

    routes: dict[str, str]
    tiers: dict[str, str]
    after_failures: int
    handoff: str
    cost_per_completed_task: float
    spend_per_task: float
    completion_rate: float
    defect_rate: float
    review_minutes: float
    name: str = ""                  # a named candidate's strategy name ("" for searched points)
    kind: str = "searched"          # searched | single | routed (a given policy) | policy
    monthly_spend: float = 0.0      # spend_per_task x the workload's tasks per month

    def label(self) -> str:
        if self.kind != "searched" and not self.routes:
            return self.name
        return policy_label(self.tiers, self.routes, self.after_failures, self.handoff)


@dataclass
class Baseline:
    """A candidate evaluated by the engine as is: a given policy or a single model."""

    name: str
    kind: str                       # routed (a given policy) | single
    cost_per_completed_task: float
    spend_per_task: float
    completion_rate: float
    defect_rate: float
    review_minutes: float
    source: str | None = None       # the file of a given policy
    model: str | None = None        # the model of a single-model strategy
    meets_targets: bool | None = None
    monthly_spend: float = 0.0      # spend_per_task x the workload's tasks per month


@dataclass
class Infeasible:
    constraint: str          # "min_completion" | "max_defect_rate" | "max_review_minutes"
    target: float
    best_alone: float | None        # best value any policy of the space reaches
    best_with_others: float | None  # best value among policies meeting the other targets
    message: str


@dataclass
class OptimizeResult:
    prices: str
    prices_as_of: str
    workload: str
    workload_name: str
    base_policy: str
    base_policy_path: str | None
    space: dict
    constraints: dict
    evaluated: int
    seconds: float
    best: PolicyPoint | None
    best_policy: dict | None                 # the YAML document of the best policy
    infeasible: list[Infeasible]
    frontier_completion: list[PolicyPoint]   # cost vs completion (other targets enforced)
    frontier_defect: list[PolicyPoint]       # cost vs defect rate (other targets enforced)
    baselines: list[Baseline]
    notes: list[str] = field(default_factory=list)
    frontier_all: list[PolicyPoint] = field(default_factory=list)  # cost vs completion, no target
    best_kind: str | None = None             # searched | single | policy (see KINDS)
    best_name: str | None = None             # the winner's strategy name
    best_searched: PolicyPoint | None = None  # the best searched policy meeting the targets
    policies: list[str] = field(default_factory=list)  # the given policies (the base first)
    tasks_per_month: float = 0.0             # the workload's (mean) tasks per month

    @property
    def feasible(self) -> bool:
        return self.best is not None

    def verdict(self) -> str:
        """One sentence: what won and against what (empty when nothing meets the targets)."""
        if self.best is None:
            return ""
        b = self.best
        cost = f"${b.cost_per_completed_task:.4f} per completed task"
        named = sorted((c for c in self.baselines if c.meets_targets),
                       key=lambda c: c.cost_per_completed_task)
        targets = ", ".join(target_phrases(self.constraints).values())
        meeting = f" meeting {targets}" if targets else ""
        if self.best_kind == "searched":
            if not self.baselines:
                return f"best: {self.best_name}, a searched routing policy, {cost}"
            rival = (f"the cheapest of them, {named[0].name}, costs "
                     f"${named[0].cost_per_completed_task:.4f}" if named
                     else "none of them meets the targets")
            return (f"best: {self.best_name}, a searched routing policy, {cost}; it beats every "
                    f"single model and given policy{meeting} ({rival})")
        s = self.best_searched
        what = ("one model for every phase" if self.best_kind == "single"
                else "the given policy as it is")
        written = f", written as {self.best_policy['name']}" if self.best_policy else ""
        if s is None:
            rest = f"none of the {self.evaluated:,} searched routing policies meets the targets"
        else:
            rest = (f"none of the {self.evaluated:,} searched routing policies{meeting} is "
                    f"cheaper (the cheapest costs ${s.cost_per_completed_task:.4f})")
        return f"best: {self.best_name} ({cost}){written}: {what}; {rest}"

    def message(self) -> str:
        """One line per constraint that cannot be met (empty when feasible)."""
        return "\n".join(i.message for i in self.infeasible)

    def policy_yaml(self) -> str:
        if self.best_policy is None:
            raise CostsimError("no policy meets the targets; nothing to write\n" + self.message())
        return policy_yaml(self.best_policy, self)

    def write_policy(self, path: str | Path) -> None:
        from ..fsutil import atomic_write

        atomic_write(path, self.policy_yaml())

    def to_dict(self) -> dict:
        return {
            "version": RESULT_VERSION,
            "prices": {"path": self.prices, "as_of": self.prices_as_of},
            "workload": {"path": self.workload, "name": self.workload_name},
            "base_policy": {"name": self.base_policy, "path": self.base_policy_path},
            "space": self.space,
            "constraints": self.constraints,
            "evaluated": self.evaluated,
            "seconds": self.seconds,
            "feasible": self.feasible,
            "best": asdict(self.best) if self.best else None,
            "best_kind": self.best_kind,
            "best_name": self.best_name,
            "verdict": self.verdict(),
            "best_searched": asdict(self.best_searched) if self.best_searched else None,
            "best_policy": self.best_policy,
            "policies": list(self.policies),
            "tasks_per_month": self.tasks_per_month,
            "infeasible": [asdict(i) for i in self.infeasible],
            "frontier_completion": [asdict(p) for p in self.frontier_completion],
            "frontier_defect": [asdict(p) for p in self.frontier_defect],
            "frontier_all": [asdict(p) for p in self.frontier_all],
            "baselines": [asdict(b) for b in self.baselines],
            "notes": list(self.notes),
        }


def policy_label(tiers: dict, routes: dict, after_failures: int, handoff: str) -> str:
    """A compact one-line description: ``budget=m1 ... | search:budget ... | af=2 summary``."""
    short = {t: t[:3] for t in tiers}
    r = " ".join(f"{ph}:{short.get(t, t)}" for ph, t in routes.items() if ph != "default")
    m = " ".join(f"{short[t]}={mid}" for t, mid in tiers.items())
    return f"{m} | {r} | after {after_failures} | {handoff}"



def target_phrases(constraints: dict) -> dict[str, str]:
    """The targets that are set, keyed by constraint name, in words."""
    words = {"min_completion": "completion >= {:g}", "max_defect_rate": "defect rate <= {:g}",
             "max_review_minutes": "review minutes <= {:g}"}
    return {k: w.format(constraints[k]) for k, w in words.items()
            if constraints.get(k) is not None}


def _describe(pt: PolicyPoint, constraints: dict, base: str, evaluated: int,
              kind: str = "searched", name: str | None = None,
              searched: PolicyPoint | None = None) -> str:
    targets = list(target_phrases(constraints).values())
    meeting = f" meeting {', '.join(targets)}" if targets else ""
    tail = f"; completion {pt.completion_rate:.4%}, defect rate {pt.defect_rate:.4%}."
    if kind == "searched":
        return (f"Found by `costsim optimize` around {base}: the lowest cost per completed task "
                f"(${pt.cost_per_completed_task:.4f}) of {evaluated:,} policies{meeting}" + tail)
    what = ("the single-model strategy " + name + ", as a one-tier policy" if kind == "single"
            else "policy " + name + ", unchanged")
    rest = (f"none of the {evaluated:,} routing policies searched around {base}{meeting} is "
            f"cheaper (the best of them costs ${searched.cost_per_completed_task:.4f})"
            if searched is not None else
            f"none of the {evaluated:,} routing policies searched around {base} meets "
            + (", ".join(targets) if targets else "the targets"))
    return (f"Chosen by `costsim optimize`: {what}, at ${pt.cost_per_completed_task:.4f} per "
            f"completed task; {rest}" + tail)


def distinct_at(points: list, key: str, digits: int) -> list:
    """The points of a frontier (sorted by cost) that improve ``key`` at ``digits`` decimals of a
    percentage: a row that reads the same as a cheaper one says nothing new (the frontier lists
    every point; a table shows these)."""
    out, seen = [], None
    sign = -1.0 if key == "defect_rate" else 1.0
    for p in points:
        v = round(sign * 100 * getattr(p, key), digits)
        if seen is None or v > seen:
            out.append(p)
            seen = v
    return out


_LABELS = {"min_completion": ("completion", ">=", "comp"),
           "max_defect_rate": ("defect rate", "<=", "defect"),
           "max_review_minutes": ("review minutes", "<=", "review")}


def _explain(constraints: dict, agg: dict) -> list[Infeasible]:
    out = []
    given = [k for k, v in constraints.items() if v is not None]
    for key in given:
        what, op, a = _LABELS[key]
        target = constraints[key]
        alone, others = agg[a], agg[a + "_o"]
        alone = None if math.isinf(alone) else alone
        others = None if math.isinf(others) else others

        def met(v):
            return v is not None and (v >= target if op == ">=" else v <= target)

        fmt = (lambda v: f"{v:.6g}") if key != "max_review_minutes" else (lambda v: f"{v:.4g}")
        if not met(alone):
            msg = (f"{what} {op} {target:g} cannot be met: the best any policy of the space "
                   f"reaches is {fmt(alone)}" if alone is not None
                   else f"{what} {op} {target:g} cannot be met: no policy of the space completes")
        elif not met(others):
            rest = [f"{_LABELS[k][0]} {_LABELS[k][1]} {constraints[k]:g}" for k in given
                    if k != key]
            msg = (f"{what} {op} {target:g} cannot be met together with {' and '.join(rest)}: "
                   + (f"the best {what} among policies meeting those is {fmt(others)}"
                      if others is not None else "no policy meets those")
                   + f" (alone, {fmt(alone)} is reachable)")
        else:
            continue
        out.append(Infeasible(constraint=key, target=target, best_alone=alone,
                              best_with_others=others, message=msg))
    if not out:
        out.append(Infeasible(constraint="completion", target=0.0, best_alone=None,
                              best_with_others=None,
                              message="no policy of the space ever completes a task"))
    return out


def policy_yaml(doc: dict, result: OptimizeResult | None = None) -> str:
    """The policy as YAML that ``costsim.loader.load_policy`` reads back unchanged."""
    import yaml

    head = ["# Written by `costsim optimize`."]
    if result is not None:
        head.append(f"# prices: {result.prices} (as of {result.prices_as_of}); "
                    f"workload: {result.workload}")
    body = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=100,
                          allow_unicode=True)
    return "\n".join(head) + "\n" + body
