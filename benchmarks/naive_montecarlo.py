"""The straightforward Monte Carlo: one Python loop iteration per task, one random draw per
attempt. The baseline `bench_montecarlo.py` measures the vectorised engine against, on the same
compiled ladders. Also an independent route to the same expectations (it samples attempt by
attempt, not by inverting a CDF).
"""

from __future__ import annotations

import bisect
import random
from itertools import accumulate

from costsim.engine.compile import Ladders


def simulate_naive(L: Ladders, samples: int, seed: int = 0) -> dict:
    rnd = random.Random(seed)
    # Plain Python lists: the loop should not pay for NumPy scalar indexing.
    cum_w = list(accumulate(float(w) for w in L.weight))
    total_w = cum_w[-1]
    n_ph = [int(x) for x in L.n_phases]
    valid = L.valid.tolist()
    cost = L.cost.tolist()
    p = L.p.tolist()
    summ = L.summ_cost.tolist()
    defect = L.defect.tolist()
    is_def = L.is_defect_phase.tolist()
    catch = L.catch.tolist()
    review = L.review_index.tolist()
    has_review = L.has_review.tolist()
    base = L.review_base.tolist()
    per_def = L.review_per_defect.tolist()

    spend = done = shipped = attempts = retries = 0.0
    review_min = 0.0
    for _ in range(samples):
        c = min(bisect.bisect_right(cum_w, rnd.random() * total_w), len(cum_w) - 1)
        task_cost = 0.0
        ok = True
        defects = 0
        catch_rate = 0.0
        for i in range(n_ph[c]):
            won = -1
            for k in range(len(valid[c][i])):
                if not valid[c][i][k]:
                    break
                task_cost += cost[c][i][k]
                attempts += 1
                if k:
                    retries += 1
                if rnd.random() < p[c][i][k]:
                    won = k
                    break
            if won < 0:
                ok = False
                break
            task_cost += summ[c][i][won]
            if is_def[c][i] and rnd.random() < defect[c][i][won]:
                defects += 1
            if has_review[c] and i == review[c]:
                catch_rate = catch[c][won]
        spend += task_cost
        if ok:
            done += 1
            missed = sum(1 for _ in range(defects) if rnd.random() >= catch_rate)
            if missed:
                shipped += 1
            review_min += base[c] + per_def[c] * (1 if missed else 0)
    return {"spend_per_task": spend / samples, "completion_rate": done / samples,
            "cost_per_completed_task": spend / done if done else float("inf"),
            "defect_rate": shipped / done if done else 0.0,
            "review_minutes": review_min / done if done else 0.0,
            "expected_attempts": attempts / samples, "expected_retries": retries / samples}
