"""Per-task cost percentiles from a fitted workload against the recorded ones (issue 10, point 5),
for docs/fidelity.md ("Per-task cost percentiles: OpenHands").

    python benchmarks/percentiles_openhands.py [--data PATH] [--samples 200000] [--csv OUT]
                                               [--quick]

Data: ../shared/data/openhands_instances_dev.csv (per instance: benchmark, config, cost_usd,
resolved). For each config on each benchmark (instances with a recorded cost):

1. A cost-only runs log: one row per instance, one phase (``solve``), one attempt, the config
   as the one model, ``cost_usd`` and ``success`` = resolved; instances that cost $0 form a task
   type of their own (``<benchmark>-free``: runs that recorded no spend), so the share of them
   is fitted like any task-type share.
2. Prices for a cost-only log (costsim/cost_prices.py of the replay work is not on main yet, so
   built here): the config is a model priced $P per NOMINAL output tokens, P = its median
   cost; each row's ``output_tokens`` = its cost / P x NOMINAL (a median task is 10,000 nominal
   tokens).
3. ``costsim calibrate`` fits the workload from that log (task-type shares, the phase's mean
   output tokens, success map, max_attempts 1).
4. The size spread: ``variation.tokens`` = the maximum-likelihood spread of log cost over the
   priced instances (the standard deviation of log cost: what the size estimator gives with one
   run per task), ``difficulty`` 0 and ``tokens_follow_difficulty`` 0 (one attempt per task: how
   size follows difficulty cannot change one task's cost).
5. ``compare --engine montecarlo`` for the single config: its per-task cost P50/P90/P99 against
   the recorded percentiles of the same instances.

Two fits of the size are reported: ``mean`` (calibrate's mean tokens, so the spend per task is
the log's, with the spread t around it: the pipeline as it stands) and ``lognormal`` (the same t,
the size's level from the mean of log cost: the lognormal fit by maximum likelihood, whose
mean is then exp(mean log + t^2/2) instead of the log's mean).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# the shared data folder next to the checkout (a worktree sits one level deeper)
DATA = next((p / "shared" / "data" / "openhands_instances_dev.csv"
             for p in (ROOT.parent, ROOT.parent.parent)
             if (p / "shared" / "data" / "openhands_instances_dev.csv").exists()),
            ROOT.parent / "shared" / "data" / "openhands_instances_dev.csv")
QS = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
TARGET = 0.25
BOOT = 400
NOMINAL = 10_000   # tokens of a median task (small: a mixture's dear component stays within
                   # costsim's 100M-token limit per call)


def lognormal_mixture(logc: np.ndarray, iters: int = 500):
    """Two-component normal mixture of log cost by maximum likelihood (EM; the larger
    component's spread kept above a tenth of the data's): [(weight, mean, sd)] x 2."""
    x = np.sort(logc)
    half = len(x) // 2
    comp = [(0.5, x[:half].mean(), max(x[:half].std(), 0.1)),
            (0.5, x[half:].mean(), max(x[half:].std(), 0.1))]
    floor = max(0.1 * x.std(), 1e-3)
    for _ in range(iters):
        dens = np.array([w * np.exp(-0.5 * ((x - m) / s) ** 2) / s for w, m, s in comp])
        resp = dens / np.maximum(dens.sum(axis=0), 1e-300)
        new = []
        for k in range(2):
            r = resp[k]
            wk = r.sum()
            if wk < 1e-9:
                return [(1.0, x.mean(), x.std())]
            m = (r * x).sum() / wk
            new.append((wk / len(x), m, max(math.sqrt((r * (x - m) ** 2).sum() / wk), floor)))
        if max(abs(a[1] - b[1]) + abs(a[2] - b[2]) for a, b in zip(comp, new)) < 1e-9:
            comp = new
            break
        comp = new
    return comp


def _mixture_workload(wl: dict, bench: str, comp, price: float) -> dict:
    """The fitted workload with the priced task type split into one per mixture component,
    each with its own size level and spread (a task type may carry its own variation)."""
    w = yaml.safe_load(yaml.safe_dump(wl))
    types = []
    for tt in w["task_types"]:
        if tt["name"] != bench:
            types.append(tt)
            continue
        for k, (wk, m, sd) in enumerate(comp):
            c = yaml.safe_load(yaml.safe_dump(tt))
            c["name"] = f"{bench}-{k + 1}"
            c["share"] = float(tt["share"] * wk)
            c["phases"][0]["output_tokens"] = max(1, int(round(
                math.exp(m + sd * sd / 2) / price * NOMINAL)))
            c["variation"] = {"difficulty": 0.0, "tokens": round(float(sd), 6),
                              "tokens_follow_difficulty": 0.0}
            types.append(c)
    total = sum(t["share"] for t in types)
    for t in types:
        t["share"] = round(float(t["share"]) / total, 9)
    types[-1]["share"] = round(1.0 - sum(t["share"] for t in types[:-1]), 9)
    w["task_types"] = types
    return w


def fit_config(g: pd.DataFrame, bench: str, tmp: Path, samples: int, seed: int,
               held_out: pd.DataFrame | None = None) -> dict | None:
    """Fit on ``g``'s instances; compare with the recorded percentiles of ``held_out`` (default:
    the same instances)."""
    from costsim.api import compare
    from costsim.calibrate import calibrate

    cost = g["cost_usd"].to_numpy(float)
    pos = cost[cost > 0]
    if len(pos) < 2:
        return None                              # no recorded spend (e.g. cost not tracked)
    price = float(np.median(pos))
    logc = np.log(pos)
    t = float(logc.std())                        # ML spread of log cost (ddof 0)
    free = cost <= 0
    log = pd.DataFrame({
        "task_id": g["instance"].astype(str).to_numpy(),
        "task_type": np.where(free, f"{bench}-free", bench),
        "phase": "solve", "attempt": 1, "model": "cfg", "input_tokens": 0,
        "output_tokens": np.rint(cost / price * NOMINAL).astype(np.int64),
        "cost_usd": cost, "success": g["resolved"].astype(bool).to_numpy()})
    lp, pp = tmp / "log.csv", tmp / "prices.yaml"
    log.to_csv(lp, index=False)
    pp.write_text(yaml.safe_dump({"version": 1, "as_of": "2026-06-30", "currency": "USD",
                                  "models": {"cfg": {"provider": "p", "tier": "midrange",
                                                     "input": 0.0,
                                                     "output": price * 1e6 / NOMINAL,
                                                     "cache_read": 0.0}}}))
    cal = calibrate(str(lp), prices=str(pp))
    wl = dict(cal.workload_data)
    wl["variation"] = {"difficulty": 0.0, "tokens": round(t, 6),
                       "tokens_follow_difficulty": 0.0}
    out = {"benchmark": bench, "config": g["config"].iloc[0], "n": len(cost),
           "free_share": float(free.mean()), "t": t}
    ref = cost if held_out is None else held_out["cost_usd"].to_numpy(float)
    recorded = np.quantile(ref, [q for _, q in QS])
    # the recorded percentiles' own sampling error (bootstrap over instances)
    rng = np.random.default_rng(seed)
    boot = np.quantile(rng.choice(ref, size=(BOOT, len(ref))), [q for _, q in QS], axis=1)
    for k, (name, _) in enumerate(QS):
        out[f"rec_{name}"] = float(recorded[k])
        out[f"rec_se_{name}"] = float(boot[k].std() / recorded[k]) if recorded[k] > 0 \
            else math.nan
    comp = lognormal_mixture(logc)
    out["mixture"] = comp
    variants = {"mean": None,
                "lognormal": int(round(math.exp(logc.mean() + t * t / 2) / price * NOMINAL)),
                "mixture": "mixture"}
    for vname, tokens in variants.items():
        w = yaml.safe_load(yaml.safe_dump(wl))
        if tokens == "mixture":
            w = _mixture_workload(wl, bench, comp, price)
        elif tokens is not None:
            for tt in w["task_types"]:
                if tt["name"] == bench:
                    tt["phases"][0]["output_tokens"] = tokens
        wp = tmp / f"w-{vname}.yaml"
        wp.write_text(yaml.safe_dump(w, sort_keys=False))
        res = compare(prices=str(pp), policies=[], workload=str(wp), models=["cfg"],
                      engine="montecarlo", samples=samples, seed=seed)
        (r,) = [s for s in res.strategies if s.name == "single:cfg"]
        pct = r.extra["montecarlo"]["cost_percentiles"]
        for name, _ in QS:
            out[f"{vname}_{name}"] = pct[name]
            rec = out[f"rec_{name}"]
            out[f"{vname}_err_{name}"] = pct[name] / rec - 1 if rec > 0 else math.nan
    return out


def summary(df: pd.DataFrame, variant: str) -> list[str]:
    rows = []
    for label, part in [("all", df)] + [(b, g) for b, g in df.groupby("benchmark")] + \
            [("n >= 100", df[df["n"] >= 100])]:
        cells = [label, str(len(part))]
        for name, _ in QS:
            e = part[f"{variant}_err_{name}"]
            ok = e.notna()
            e, se = e[ok].abs(), part.loc[ok, f"rec_se_{name}"]
            cells.append(f"{e.median():.0%} / {(e <= TARGET).mean():.0%} / "
                         f"{(e <= np.maximum(TARGET, 2 * se)).mean():.0%}" if len(e) else "-")
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--samples", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--csv", default=None, help="write the per-config rows here")
    ap.add_argument("--quick", action="store_true", help="three configs per benchmark")
    ap.add_argument("--held-out", action="store_true",
                    help="fit on a random half of each config's instances, compare with the "
                         "other half's recorded percentiles")
    a = ap.parse_args()
    d = pd.read_csv(a.data)
    d = d[d["cost_usd"].notna()]
    rows = []
    t0 = time.time()
    skipped = []
    with tempfile.TemporaryDirectory() as td:
        for (bench, cfg), g in d.groupby(["benchmark", "config"], sort=True):
            if a.quick and sum(r["benchmark"] == bench for r in rows) >= 3:
                continue
            held = None
            if a.held_out:
                pick = np.random.default_rng(a.seed).permutation(len(g)) < len(g) // 2
                g, held = g[pick], g[~pick]
            r = fit_config(g, bench, Path(td), a.samples, a.seed, held)
            if r is None:
                skipped.append(f"{bench}/{cfg}")
                continue
            rows.append(r)
            print(f"{bench:22s} {cfg[-40:]:40s} n={r['n']:4d} t={r['t']:.2f} "
                  + " ".join(f"{n}={r['mean_err_' + n]:+.0%}" for n, _ in QS), file=sys.stderr)
    df = pd.DataFrame(rows)
    if a.csv:
        df.to_csv(a.csv, index=False)
    print(f"{len(df)} configs in {time.time() - t0:.0f} s; skipped (no recorded spend): "
          f"{', '.join(skipped) or 'none'}\n")
    print("| benchmark | configs | median relative SE of the recorded P50 / P90 / P99 |\n"
          "|---|---:|---:|")
    for label, part in [("all", df)] + [(b, g) for b, g in df.groupby("benchmark")]:
        print(f"| {label} | {len(part)} | " + " / ".join(
            f"{part[f'rec_se_{n}'].median():.0%}" for n, _ in QS) + " |")
    print()
    for variant in ("mean", "lognormal", "mixture"):
        print(f"Size: {variant}. Cells: median |error| / share within 25% / share within "
              f"25% or 2 standard errors of the recorded percentile.\n")
        print("| benchmark | configs | P50 | P90 | P99 |\n|---|---:|---:|---:|---:|")
        print("\n".join(summary(df, variant)) + "\n")
    worst = df.assign(worst=df[[f"mean_err_{n}" for n, _ in QS]].abs().max(axis=1)) \
        .sort_values("worst", ascending=False).head(12)
    print("| benchmark | config | n | $0 share | t | P50 rec / err | P90 rec / err | "
          "P99 rec / err |\n|---|---|---:|---:|---:|---:|---:|---:|")
    for r in worst.itertuples():
        cells = [r.benchmark, r.config.split("/", 1)[-1], str(r.n), f"{r.free_share:.0%}",
                 f"{r.t:.2f}"]
        for n, _ in QS:
            cells.append(f"${getattr(r, 'rec_' + n):.3g} / {getattr(r, 'mean_err_' + n):+.0%}")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
