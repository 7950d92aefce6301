"""The result of `calibrate` and its dict/YAML forms."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..models import Workload
from .fit import workload_to_dict, workload_yaml

RESULT_VERSION = 1
Z95 = 1.959963984540054

@dataclass
class CalibrationResult:
    log: str
    rows: int
    tasks: int
    prices: str
    prices_as_of: str
    baseline: str                       # the policy name, or "observed routes"
    by_model: list[dict]                # per (task_type, phase, model)
    by_route: list[dict]                # per (task_type, route)
    by_task_type: list[dict]
    overall: dict
    weekly: list[dict]
    recommendations: list[dict]
    workload: Workload                  # fitted from the log
    settings: dict
    tiers: dict[str, str]               # tier name -> model used for raise/lower
    fit: list[dict] = field(default_factory=list)   # measured vs engine on the fitted workload
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "version": RESULT_VERSION,
            "log": {"path": self.log, "rows": self.rows, "tasks": self.tasks},
            "prices": {"path": self.prices, "as_of": self.prices_as_of},
            "baseline": self.baseline,
            "tiers": dict(self.tiers),
            "settings": dict(self.settings),
            "overall": self.overall,
            "by_task_type": self.by_task_type,
            "by_model": self.by_model,
            "by_route": self.by_route,
            "weekly": self.weekly,
            "recommendations": self.recommendations,
            "fit": self.fit,
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        }

    def workload_dict(self) -> dict:
        return workload_to_dict(self.workload)

    def workload_yaml(self) -> str:
        return workload_yaml(self.workload, source=self.log)

    def write_workload(self, path: str | Path) -> None:
        from ..fsutil import atomic_write

        atomic_write(path, self.workload_yaml())

