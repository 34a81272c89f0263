"""Sample and time efficiency: environment steps and training seconds until a run first reaches 90% of the optimum.

"90% of the optimum" is read as 90% of the way from the best memoryless return to the optimum (the normalised
score 0.9), so it means the same on tasks whose returns start at 0.25 or at -1. A run that never gets there is
*censored*: it counts as "later than its budget", not as missing, so the median over seeds is only given when more
than half of the runs reached the threshold (otherwise it is "> budget"), the same rule as a survival-curve median.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from rlgru.bench.variants import order_variants, task_order

#: share of the memoryless-to-optimum gap a run must reach
TARGET_SHARE = 0.9


@dataclass(frozen=True)
class TimeToTarget:
    """When one run first reached the target (None: never within its budget, or seconds not logged)."""

    steps: int | None
    seconds: float | None
    budget: int


def target_return(result: dict[str, Any]) -> float | None:
    info = result.get("task_info") or {}
    optimal, memoryless = info.get("optimal_return"), info.get("memoryless_return")
    if optimal is None or memoryless is None:
        return None
    return memoryless + TARGET_SHARE * (optimal - memoryless)


def time_to_target(result: dict[str, Any]) -> TimeToTarget | None:
    """The first evaluation point at or above the target; None when the task has no known optimum."""
    target = target_return(result)
    if target is None:
        return None
    budget = int(result.get("timesteps") or result.get("budget") or 0)
    for point in result.get("curve") or []:
        steps, mean_return = point[0], point[1]
        seconds = point[2] if len(point) > 2 else None
        if mean_return is not None and math.isfinite(mean_return) and mean_return >= target - 1e-9:
            return TimeToTarget(int(steps), None if seconds is None else float(seconds), budget)
    return TimeToTarget(None, None, budget)


def censored_median(values: list[float | None]) -> float | None:
    """Median where None means "not reached" (larger than anything): defined only if most runs reached it."""
    if not values:
        return None
    ordered = sorted(values, key=lambda v: math.inf if v is None else v)
    middle = (len(ordered) - 1) / 2
    low, high = ordered[math.floor(middle)], ordered[math.ceil(middle)]
    if low is None or high is None:
        return None
    return (low + high) / 2


def efficiency_tables(results: list[dict[str, Any]]) -> list[str]:
    """Markdown: per task, each core's median steps and seconds to the target, and how many seeds got there."""
    cells: dict[str, dict[str, list[TimeToTarget]]] = defaultdict(lambda: defaultdict(list))
    for result in results:
        reached = time_to_target(result)
        if reached is not None:
            cells[result["task"]][result["variant"]].append(reached)
    if not cells:
        return []
    variants = order_variants(v for per_task in cells.values() for v in per_task)
    lines = [
        "Median over seeds of the environment steps (and training seconds, evaluation left out) at the first "
        f"evaluation that reached {TARGET_SHARE:.0%} of the memoryless-to-optimum gap; (k/n): seeds that reached it. "
        "Runs that never did count as later than their budget (censored), so the median is shown only when most "
        "seeds reached the target.",
        "",
        "| task | " + " | ".join(variants) + " |",
        "|---|" + "---:|" * len(variants),
    ]
    for task in sorted(cells, key=task_order):
        row = []
        for variant in variants:
            runs = cells[task].get(variant)
            if not runs:
                row.append("-")
                continue
            reached = sum(run.steps is not None for run in runs)
            steps = censored_median([run.steps for run in runs])
            # a run that got there but logged no seconds (an older rlgru) leaves the time unknown, not "never"
            timed = all(run.seconds is not None for run in runs if run.steps is not None)
            seconds = censored_median([run.seconds for run in runs]) if timed else None
            if steps is None:
                row.append(f"> {_k(max(run.budget for run in runs))} ({reached}/{len(runs)})")
            else:
                time_part = "" if seconds is None else f", {seconds:.0f} s"
                row.append(f"{_k(steps)}{time_part} ({reached}/{len(runs)})")
        lines.append(f"| {task} | " + " | ".join(row) + " |")
    return lines


def _k(steps: float) -> str:
    return f"{steps / 1000:.0f}k" if steps >= 1000 else f"{steps:.0f}"


__all__ = ["TARGET_SHARE", "TimeToTarget", "censored_median", "efficiency_tables", "target_return", "time_to_target"]
