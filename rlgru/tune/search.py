"""Samplers, pruners and the translation from a ``tune:`` space to Optuna's ``suggest_*`` calls.

Nothing here samples or prunes by itself: each name maps onto Optuna's own class.
"""

from __future__ import annotations

from typing import Any, Literal

import optuna
from optuna.pruners import BasePruner
from optuna.samplers import BaseSampler

from rlgru.harness.errors import HarnessError
from rlgru.harness.tune_space import ParameterRange

SamplerName = Literal["tpe", "random", "cmaes", "grid"]
PrunerName = Literal["median", "hyperband", "none"]
SAMPLERS = ("tpe", "random", "cmaes", "grid")
PRUNERS = ("median", "hyperband", "none")
#: trials that finish unpruned before the median pruner starts to compare (rl-zoo3 uses 5 as well)
PRUNER_STARTUP_TRIALS = 5


def make_sampler(name: str, space: dict[str, ParameterRange], seed: int | None) -> BaseSampler:
    """``seed`` makes a study reproducible when its trials run one at a time."""
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        # categorical settings are outside CMA-ES: Optuna draws them independently (at random)
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if name == "grid":
        grid = {key: _categorical_values(distribution.grid()) for key, distribution in space.items()}
        return optuna.samplers.GridSampler(grid, seed=seed)
    raise HarnessError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}", where="--sampler")


def grid_size(space: dict[str, ParameterRange]) -> int:
    size = 1
    for distribution in space.values():
        size *= len(distribution.grid())
    return size


def make_pruner(name: str, first_step: int, last_step: int) -> BasePruner:
    """Steps are env steps summed over seeds (``seed index * budget + timesteps``): ``first_step`` is the first
    evaluation, ``last_step`` the whole trial."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP_TRIALS, n_warmup_steps=first_step)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(first_step, 1), max_resource=max(last_step, 1))
    if name == "none":
        return optuna.pruners.NopPruner()
    raise HarnessError(f"unknown pruner {name!r}; choose one of {', '.join(PRUNERS)}", where="--pruner")


def suggest(trial: optuna.Trial, space: dict[str, ParameterRange]) -> dict[str, Any]:
    """Draw (or, for an enqueued retry, read back) one value per searched setting, by its key path."""
    params: dict[str, Any] = {}
    for key, distribution in space.items():
        kind = distribution.kind
        if kind == "choice":
            params[key] = _suggest_choice(trial, key, distribution.choice or [])
        else:
            low, high = distribution.bounds_of(kind)
            if kind == "int":
                params[key] = trial.suggest_int(key, int(low), int(high))
            else:
                params[key] = trial.suggest_float(key, float(low), float(high), log=kind == "log_uniform")
    return params


def _categorical_values(choices: list[Any]) -> list[Any]:
    """Optuna's categorical takes None, bool, int, float and str; other choices (``net_arch: [[64], [64, 64]]``)
    are offered by their text and mapped back."""
    if all(choice is None or isinstance(choice, bool | int | float | str) for choice in choices):
        return list(choices)
    return [str(choice) for choice in choices]


def _suggest_choice(trial: optuna.Trial, key: str, choices: list[Any]) -> Any:
    values = _categorical_values(choices)
    return choices[values.index(trial.suggest_categorical(key, values))]


__all__ = [
    "PRUNERS",
    "PRUNER_STARTUP_TRIALS",
    "SAMPLERS",
    "PrunerName",
    "SamplerName",
    "grid_size",
    "make_pruner",
    "make_sampler",
    "suggest",
]
