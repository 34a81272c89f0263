"""Where each core gets above the memoryless baseline: a core's return means "uses memory" only past that level.

Suites on other people's tasks (MiniGrid, Memory Gym) have no exact memoryless return to normalise by, and chance
can score well on short episodes. A suite that also runs the ``memoryless`` core (the same PPO with its recurrence
cut) measures that level at the same budget and seeds; this section compares every other core with it, task by
task, on raw final returns (both quantities below are unchanged by any rescaling of a task's returns).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from rlgru.bench.stats import iqm, probability_of_improvement, stratified_bootstrap_ci
from rlgru.bench.variants import is_equal_params, task_order
from rlgru.cores import resolve_core


def memoryless_section(
    results: list[dict[str, Any]], order: list[str], n_resamples: int = 2000
) -> tuple[list[str], list[str]]:
    """Markdown lines and verdicts (empty when the sweep ran no memoryless core). ``order``: the report's columns."""
    baseline = next((v for v in order if not is_equal_params(v) and is_memoryless_variant(results, v)), None)
    if baseline is None:
        return [], []
    returns = _final_returns(results)
    tasks = sorted((task for task in returns if baseline in returns[task]), key=task_order)
    lines = [
        "",
        f"## Against the memoryless baseline (`{baseline}`)",
        "",
        f"The same PPO with the `{baseline}` core (its recurrence cut: every action depends on the current observation "
        "alone), trained at the same budget and seeds, measures what a policy without memory reaches here. A core is "
        "*above* it where the 95% CI of the difference of IQM final returns excludes 0.",
        "",
        f"| task | core | IQM | IQM − {baseline} (95% CI) | P(core > {baseline}) (95% CI) | verdict |",
        "|---|---|---:|---:|---:|---|",
    ]
    verdicts = []
    for task in tasks:
        floor = returns[task][baseline]
        lines.append(f"| {task} | {baseline} | {iqm(floor):.2f} | - | - | the baseline (n={floor.size}) |")
        outcome: dict[str, list[str]] = defaultdict(list)
        for variant in (v for v in order if v != baseline and v in returns[task]):
            values = returns[task][variant]
            gap = stratified_bootstrap_ci(_iqm_gap(task), {task: values}, {task: floor}, n_resamples=n_resamples)
            p_better = stratified_bootstrap_ci(
                probability_of_improvement, {task: values}, {task: floor}, n_resamples=n_resamples
            )
            verdict = "above" if gap[1] > 0 else "below" if gap[2] < 0 else "not distinguishable"
            outcome[verdict].append(variant)
            lines.append(
                f"| {task} | {variant} | {iqm(values):.2f} | {_fmt(gap, signed=True)} | {_fmt(p_better)} | "
                f"{verdict} (n={values.size}) |"
            )
        verdicts.append(_task_verdict(task, baseline, outcome))
    return lines, verdicts


def _task_verdict(task: str, baseline: str, outcome: dict[str, list[str]]) -> str:
    above = outcome.get("above", [])
    head = (
        f"**{task}: {', '.join(above)} above the memoryless baseline.**"
        if above
        else f"**{task}: no core above the memoryless baseline at this budget.**"
    )
    rest = [f"{label}: {', '.join(outcome[label])}" for label in ("not distinguishable", "below") if outcome.get(label)]
    return head + (f" {'; '.join(rest)} (against `{baseline}`, difference of IQMs)." if rest else "")


def is_memoryless_variant(results: list[dict[str, Any]], variant: str) -> bool:
    """Whether ``variant``'s runs used a core that carries nothing from step to step."""
    spec = next((r.get("core") for r in results if r.get("variant") == variant), None)
    if not isinstance(spec, str):
        return False
    try:
        return not resolve_core(spec).remembers
    except (ValueError, TypeError, ImportError):  # a reference row or a user's core no longer importable
        return False


def _final_returns(results: list[dict[str, Any]]) -> dict[str, dict[str, np.ndarray]]:
    """task -> variant -> final returns of its runs that have one."""
    grouped: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        value = r.get("final_return")
        if isinstance(value, int | float) and np.isfinite(value):
            grouped[r["task"]][r["variant"]].append(float(value))
    return {task: {v: np.array(values) for v, values in by.items()} for task, by in grouped.items()}


def _iqm_gap(task: str):  # noqa: ANN202 - a small closure factory
    return lambda core, floor: iqm(core[task]) - iqm(floor[task])


def _fmt(interval: tuple[float, float, float], signed: bool = False) -> str:
    sign = "+" if signed else ""
    point, low, high = interval
    return f"{point:{sign}.2f} [{low:{sign}.2f}, {high:{sign}.2f}]"


__all__ = ["is_memoryless_variant", "memoryless_section"]
