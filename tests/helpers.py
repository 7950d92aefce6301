"""Build small price tables, policies and workloads in memory for hand-computed tests."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from costsim.loader import load_policy, load_prices, load_workload


def write(tmp: Path, name: str, data: dict) -> Path:
    p = tmp / name
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def prices(models: dict, as_of="2026-11-20") -> dict:
    return {"version": 1, "as_of": as_of, "currency": "USD", "models": copy.deepcopy(models)}


def model(provider="acme", tier="midrange", input=2.0, output=10.0, **kw) -> dict:
    return {"provider": provider, "tier": tier, "input": input, "output": output, **kw}


def workload(task_types, **kw) -> dict:
    d = {"version": 1, "name": "w", "max_attempts": kw.pop("max_attempts", 2),
         "system_tokens": kw.pop("system_tokens", 0), "cache_hit_rate": kw.pop("cache_hit_rate", 0.0),
         "feedback_gain": kw.pop("feedback_gain", 0.0), "task_types": task_types}
    d.update(kw)
    return d


def policy(tiers: dict, routes: dict, **kw) -> dict:
    return {"version": 1, "name": kw.pop("name", "pol"), "tiers": tiers, "routes": routes, **kw}


def load_all(tmp: Path, p: dict, w: dict, pols: list[dict] = ()):
    pp = write(tmp, "prices.yaml", p)
    wp = write(tmp, "workload.yaml", w)
    pps = [write(tmp, f"policy{i}.yaml", d) for i, d in enumerate(pols)]
    return load_prices(pp), load_workload(wp), [load_policy(x) for x in pps]
