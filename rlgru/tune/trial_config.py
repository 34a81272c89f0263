"""From a study's base config and one trial's parameters to the run configs its seeds train, and back to a score.

A trial's run directory holds an ordinary ``config.yaml``: ``rlgru train`` on it alone reproduces that seed of the
trial. ``best.yaml`` is the same construction with the study's own evaluation settings kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlgru.harness.config import RunConfig, validate_config
from rlgru.harness.references import task_reference
from rlgru.harness.run_dir import RunDir
from rlgru.harness.tune_space import apply_params

TRIALS_DIR = "trials"


def trial_run_config(
    base: dict[str, Any],
    params: dict[str, Any],
    seed_index: int,
    evaluations: int,
    eval_episodes: int | None,
    where: str,
) -> RunConfig:
    """The config of seed ``seed_index`` of a trial: seed ``base seed + index``, ``evaluations`` periodic
    evaluations spread over the budget (the pruner's reports)."""
    data = apply_params(base, params)
    data["seed"] = int(data.get("seed", 0)) + seed_index
    budget = int(data["training"]["total_timesteps"])
    evaluation = data.setdefault("evaluation", {})
    evaluation["freq"] = max(budget // evaluations, 1)
    if eval_episodes is not None:
        evaluation["episodes"] = eval_episodes
    return validate_config(data, where=where)


def trial_run_dir(out_dir: Path, run_of: int, seed_index: int) -> RunDir:
    """``<out>/trials/trial-0007-s0``: named by the trial whose runs these are (a retry trains in its original's)."""
    return RunDir(Path(out_dir) / TRIALS_DIR / f"trial-{run_of:04d}-s{seed_index}")


def objective_kind(config: RunConfig) -> str:
    """``normalized`` where the task knows its optimum and memoryless level, else ``return``."""
    return "normalized" if _reference(config) is not None else "return"


def score(config: RunConfig, mean_return: float) -> float:
    """The objective for one evaluation: ``(return - memoryless) / (optimal - memoryless)`` where the task knows
    both (0: no better than without memory, 1: optimal), else the raw mean return."""
    reference = _reference(config)
    if reference is None:
        return float(mean_return)
    span = reference["optimal_return"] - reference["memoryless_return"]
    return float((mean_return - reference["memoryless_return"]) / span)


def _reference(config: RunConfig) -> dict[str, Any] | None:
    if config.env.wrappers:
        return None  # a wrapper may change the rewards: the task's reference no longer applies
    reference = task_reference(config.env.id, config.env.env_kwargs)
    if reference is None or reference["optimal_return"] == reference["memoryless_return"]:
        return None
    return reference


__all__ = ["TRIALS_DIR", "objective_kind", "score", "trial_run_config", "trial_run_dir"]
