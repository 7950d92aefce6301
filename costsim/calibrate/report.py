"""The result of `calibrate` and its dict/YAML forms (renderers live in costsim/cli/calibrate.py
and do no arithmetic)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..models import Workload
from .fit import workload_yaml
from .policy import policy_yaml

RESULT_VERSION = 1


@dataclass
class CalibrationResult:
    log: str
    rows: int
    tasks: int
    prices: str
    prices_as_of: str
    baseline: str                       # the policy the recommendations start from
    by_model: list[dict]                # per (task_type, phase, model)
    by_route: list[dict]                # per (task_type, route)
    by_task_type: list[dict]
    overall: dict
    weekly: list[dict]
    recommendations: list[dict]
    workload: Workload                  # fitted from the log
    workload_data: dict                 # the same, as written
    settings: dict
    tiers: dict[str, str]               # tier name -> model (the baseline policy's)
    fit: list[dict] = field(default_factory=list)      # engine vs log, per run and task type
    fit_flags: list[str] = field(default_factory=list)  # gaps over 5%, in words
    from_base: list = field(default_factory=list)       # [(field, why)] from --workload
    strategies: list[dict] = field(default_factory=list)  # per run: the inferred strategy
    by_run: list[dict] = field(default_factory=list)
    summaries: list[dict] = field(default_factory=list)
    fitted: dict = field(default_factory=dict)          # what the fit found (gain, forms ...)
    policy_data: dict | None = None     # the baseline policy as a dict (inferred or given)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    prices_data: dict | None = None     # the price table with effective prices (cost-only log)

    def to_dict(self) -> dict:
        return {
            "version": RESULT_VERSION,
            "log": {"path": self.log, "rows": self.rows, "tasks": self.tasks},
            "prices": {"path": self.prices, "as_of": self.prices_as_of},
            "baseline": self.baseline,
            "tiers": dict(self.tiers),
            "settings": dict(self.settings),
            "overall": self.overall,
            "by_run": self.by_run,
            "by_task_type": self.by_task_type,
            "by_model": self.by_model,
            "summaries": self.summaries,
            "by_route": self.by_route,
            "weekly": self.weekly,
            "strategies": self.strategies,
            "fit": self.fit,
            "fit_flags": list(self.fit_flags),
            "fitted": self.fitted,
            "from_workload": [{"field": f, "why": w} for f, w in self.from_base],
            "recommendations": self.recommendations,
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        }

    def workload_dict(self) -> dict:
        return dict(self.workload_data)

    def workload_yaml(self) -> str:
        return workload_yaml(self.workload_data, self.log, self.from_base,
                             self.fitted.get("workload_notes", []))

    def write_workload(self, path: str | Path) -> None:
        from ..fsutil import atomic_write

        atomic_write(path, self.workload_yaml())

    def prices_yaml(self) -> str | None:
        if self.prices_data is None:
            return None
        import yaml

        head = (f"# Price table written by `costsim calibrate --write-prices` from {self.log}:\n"
                f"# the --prices table plus effective prices for the models the log shows by\n"
                f"# cost only (USD per 1M input tokens, output and cached input free) or that\n"
                f"# the table lacks (rates fitted to their rows' costs). Use it with the fitted\n"
                f"# workload: together they bill each attempt its recorded cost.\n")
        return head + yaml.safe_dump(self.prices_data, sort_keys=False, width=100)

    def prices_text(self) -> str:
        """:meth:`prices_yaml`, or the error --write-prices gives when there is none."""
        from ..errors import CostsimError

        text = self.prices_yaml()
        if text is None:
            raise CostsimError("the log shows tokens for every phase: its models are priced "
                               "by --prices, there are no effective prices to write",
                               path="--write-prices")
        return text

    def write_prices(self, path: str | Path) -> None:
        from ..fsutil import atomic_write

        atomic_write(path, self.prices_text())

    def policy_yaml(self) -> str | None:
        if self.policy_data is None:
            return None
        return policy_yaml(self.policy_data, self.log)

    def policy_text(self) -> str:
        """:meth:`policy_yaml`, or the error --write-policy gives when there is none."""
        from ..errors import CostsimError

        text = self.policy_yaml()
        if text is None:
            raise CostsimError("the log's strategy is a single model: there is no policy to "
                               "write", path="--write-policy")
        return text

    def write_policy(self, path: str | Path) -> None:
        from ..fsutil import atomic_write

        atomic_write(path, self.policy_text())
