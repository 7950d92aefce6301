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


def assert_fits(text: str, width: int) -> None:
    """The 80-column policy: no line wider than ``width``, no ellipsis (a cut cell)."""
    from costsim.render import fit_problems

    problems = fit_problems(text, width)
    assert not problems, "\n".join(problems[:5]) + "\n\n" + text


def invoke_at_widths(runner, app, args, widths=(80, 120, 200)) -> dict[int, str]:
    """Run a command at each terminal width (COLUMNS) and return {width: stdout}, asserting
    each output fits its width. The widths a real user has: 80, 120 and a wide screen."""
    import os

    out = {}
    for w in widths:
        old = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = str(w)
        try:
            res = runner.invoke(app, list(args))
        finally:
            if old is None:
                os.environ.pop("COLUMNS", None)
            else:
                os.environ["COLUMNS"] = old
        assert res.exit_code == 0, res.output
        assert_fits(res.stdout, w)
        out[w] = res.stdout
    return out
