"""The ``tune:`` section of a run config: which settings ``rlgru tune`` searches, over what ranges.

Each parameter is a config key path (``algorithm.learning_rate``) with one distribution::

    tune:
      space:
        algorithm.learning_rate: {log_uniform: [1e-5, 1e-2]}
        algorithm.n_steps: {choice: [32, 64, 128]}
        algorithm.n_epochs: {int: [3, 20]}
        algorithm.gae_lambda: {uniform: [0.8, 1.0]}

Only the shape of the space is checked here; ``RunConfig`` checks that every path names a setting and that every
bound is a value that setting accepts. Without ``space`` the default space (``DEFAULT_SPACE``) is searched.
"""

from __future__ import annotations

import copy
import math
from typing import Annotated, Any

from pydantic import ConfigDict, Field, model_validator

from rlgru.harness.config_base import StrictModel

KINDS = ("log_uniform", "uniform", "int", "choice")


class ParameterRange(StrictModel):
    """One searched setting: exactly one of ``log_uniform``, ``uniform``, ``int`` (each ``[low, high]``, both
    included) or ``choice`` (a list of values). ``points``: how many values the grid sampler takes from a range."""

    log_uniform: Annotated[list[float], Field(min_length=2, max_length=2)] | None = None
    uniform: Annotated[list[float], Field(min_length=2, max_length=2)] | None = None
    int_: Annotated[list[int], Field(min_length=2, max_length=2)] | None = Field(default=None, alias="int")
    choice: Annotated[list[Any], Field(min_length=1)] | None = None
    points: Annotated[int, Field(ge=2)] = 3

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_valid_distribution(self) -> ParameterRange:
        given = [kind for kind in KINDS if self.bounds_of(kind) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(KINDS)}; got {', '.join(given) or 'none'}")
        kind = given[0]
        if kind == "choice":
            return self
        low, high = self.bounds_of(kind)
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError(f"{kind} bounds must be finite numbers, got [{low}, {high}]")
        if not low < high:
            raise ValueError(f"{kind} range [{low}, {high}] is empty: low must be below high")
        if kind == "log_uniform" and low <= 0:
            raise ValueError(f"log_uniform range [{low}, {high}] must be above 0 (a log scale cannot reach 0)")
        return self

    def bounds_of(self, kind: str) -> Any:
        return self.int_ if kind == "int" else getattr(self, kind)

    @property
    def kind(self) -> str:
        return next(kind for kind in KINDS if self.bounds_of(kind) is not None)

    def endpoints(self) -> list[Any]:
        """The values a trial can reach at the edges (every choice): each must be valid for its setting."""
        values = self.bounds_of(self.kind)
        return list(values)

    def grid(self) -> list[Any]:
        """The values the grid sampler tries: every choice, every integer of a short int range, else ``points``
        values spread evenly (geometrically for ``log_uniform``)."""
        kind = self.kind
        if kind == "choice":
            return list(self.choice or [])
        low, high = self.bounds_of(kind)
        if kind == "int":
            if high - low + 1 <= self.points:
                return list(range(int(low), int(high) + 1))
            return sorted({round(low + (high - low) * i / (self.points - 1)) for i in range(self.points)})
        fractions = [i / (self.points - 1) for i in range(self.points)]
        if kind == "log_uniform":
            return [float(math.exp(math.log(low) + (math.log(high) - math.log(low)) * f)) for f in fractions]
        return [float(low + (high - low) * f) for f in fractions]


class TuneConfig(StrictModel):
    """What ``rlgru tune`` searches and how often a trial reports to the pruner."""

    space: dict[str, ParameterRange] | None = Field(
        default=None, description="config key path -> distribution; None: the default recurrent-PPO space"
    )
    evaluations: Annotated[int, Field(ge=1)] = Field(
        default=5, description="periodic evaluations per trial (per seed), reported to the pruner"
    )
    eval_episodes: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="episodes per evaluation while tuning; None: evaluation.episodes"
    )

    def search_space(self) -> dict[str, ParameterRange]:
        return dict(self.space) if self.space is not None else default_space()


def _range(**kind: Any) -> ParameterRange:
    return ParameterRange.model_validate(kind)


def default_space() -> dict[str, ParameterRange]:
    """Recurrent PPO's searched settings, after rl-zoo3's recurrent-PPO sampler (its PPO sampler); where this one
    differs, and why, is said in the docs (docs/tuning.md): shorter rollouts per env (we run 8 envs), gammas down to
    0.9 (memory tasks often pay at once), the core's width and the BPTT window searched too."""
    return {
        "algorithm.learning_rate": _range(log_uniform=[3e-5, 1e-2]),
        "algorithm.n_steps": _range(choice=[16, 32, 64, 128, 256]),
        "algorithm.batch_size": _range(choice=[64, 128, 256, 512]),
        "algorithm.n_epochs": _range(choice=[3, 5, 10, 20]),
        "algorithm.gamma": _range(choice=[0.9, 0.95, 0.98, 0.99, 0.995, 0.999]),
        "algorithm.gae_lambda": _range(choice=[0.8, 0.9, 0.95, 0.98, 1.0]),
        "algorithm.clip_range": _range(choice=[0.1, 0.2, 0.3, 0.4]),
        "algorithm.ent_coef": _range(log_uniform=[1e-8, 0.1]),
        "policy.hidden_size": _range(choice=[32, 64, 128, 256]),
        "algorithm.max_seq_len": _range(choice=[16, 32, 64, 128]),
    }


def set_path(data: dict[str, Any], key_path: str, value: Any) -> None:
    """``data[a][b][c] = value`` for ``"a.b.c"``, creating the mappings on the way."""
    keys = key_path.split(".")
    node = data
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[keys[-1]] = value


def apply_params(base: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """``base`` (its ``tune:`` section dropped) with each ``key.path: value`` set.

    As rl-zoo3's sampler does, a batch larger than a rollout is cut to the rollout (PPO's minibatches come from one
    rollout); the run's ``config.yaml`` holds the batch it really trained with.
    """
    data = copy.deepcopy(base)
    data.pop("tune", None)
    for key_path, value in params.items():
        set_path(data, key_path, value)
    algorithm = data.setdefault("algorithm", {})
    env = data.get("env", {})
    rollout = int(env.get("n_envs", 8)) * int(algorithm.get("n_steps", 128))
    if int(algorithm.get("batch_size", 128)) > rollout:
        algorithm["batch_size"] = rollout
    return data


__all__ = ["KINDS", "ParameterRange", "TuneConfig", "apply_params", "default_space", "set_path"]
