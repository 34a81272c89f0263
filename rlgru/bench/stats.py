"""Aggregate statistics for few-seed RL comparisons, after Agarwal et al. (2021), "Deep RL at the edge of the
statistical precipice": interquartile mean, stratified bootstrap confidence intervals, probability of improvement.

Scores are given per task as 1-D arrays over runs (seeds). Bootstrap resampling is stratified: runs are
resampled with replacement *within* each task, so every replicate keeps every task.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from scipy import stats

TaskScores = Mapping[str, np.ndarray]


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50% of runs (robust to outliers, less noisy than a median)."""
    values = np.asarray(scores, dtype=float).ravel()
    if values.size == 0:
        raise ValueError("iqm of no scores")
    return float(stats.trim_mean(values, proportiontocut=0.25))


def aggregate_iqm(task_scores: TaskScores) -> float:
    """IQM over all runs of all tasks pooled together (the scores should be normalised across tasks)."""
    return iqm(np.concatenate([np.asarray(v, dtype=float).ravel() for v in task_scores.values()]))


def probability_of_improvement(x: TaskScores, y: TaskScores) -> float:
    """P(X > Y): the chance that a run of X beats a run of Y on a task drawn uniformly (ties count half)."""
    tasks = _common_tasks(x, y)
    per_task = []
    for task in tasks:
        xs = np.asarray(x[task], dtype=float)[:, None]
        ys = np.asarray(y[task], dtype=float)[None, :]
        per_task.append(float(np.mean((xs > ys) + 0.5 * (xs == ys))))
    return float(np.mean(per_task))


def stratified_bootstrap_ci(
    statistic: Callable[..., float],
    *samples: TaskScores,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``(point, low, high)``: the statistic and its percentile bootstrap interval.

    Each of ``samples`` (e.g. one per algorithm) is resampled independently, runs with replacement within each
    task, and ``statistic(*resampled)`` is recomputed for every replicate.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    point = statistic(*samples)
    replicates = np.empty(n_resamples)
    arrays = [{task: np.asarray(v, dtype=float).ravel() for task, v in sample.items()} for sample in samples]
    for i in range(n_resamples):
        resampled = [
            {task: values[rng.integers(0, values.size, values.size)] for task, values in sample.items()}
            for sample in arrays
        ]
        replicates[i] = statistic(*resampled)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return float(point), float(low), float(high)


def normalised(returns: np.ndarray, memoryless: float, optimal: float) -> np.ndarray:
    """Map returns so that the best memoryless policy scores 0 and the optimum scores 1."""
    if optimal == memoryless:
        raise ValueError("optimal and memoryless returns are equal: the task cannot show memory")
    return (np.asarray(returns, dtype=float) - memoryless) / (optimal - memoryless)


def _common_tasks(x: TaskScores, y: TaskScores) -> list[str]:
    tasks = sorted(set(x) & set(y))
    if not tasks:
        raise ValueError("the two score sets share no task")
    return tasks
