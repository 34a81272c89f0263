"""Observation wrappers the algorithm applies itself, so that no supported env has to be pre-wrapped.

SB3 has no preprocessing for ``Tuple`` observations and refuses nested spaces (a ``Tuple`` or ``Dict`` inside a
``Tuple`` or ``Dict``) outright, already when it builds a vec env. So such spaces are flattened into one ``Box``
(``gymnasium.spaces.flatten``: one-hot for discrete parts) *per env, before vectorising*; a vec env that already
holds flat ``Tuple`` observations is flattened by ``VecFlattenTuple``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper


def needs_flattening(space: spaces.Space) -> bool:
    """True for a ``Tuple`` (any nesting) or a ``Dict`` holding a ``Tuple`` or ``Dict``: spaces SB3 cannot take."""
    if isinstance(space, spaces.Tuple):
        return True
    if isinstance(space, spaces.Dict):
        return any(isinstance(child, (spaces.Tuple, spaces.Dict)) for child in space.spaces.values())
    return False


class VecFlattenTuple(VecEnvWrapper):
    """Flattens the ``Tuple`` observations of a vec env (nested ones included) into one Box."""

    def __init__(self, venv: VecEnv) -> None:
        self.tuple_space = venv.observation_space
        super().__init__(venv, observation_space=spaces.flatten_space(self.tuple_space))

    def _flatten(self, obs: Any) -> np.ndarray:
        return np.stack([spaces.flatten(self.tuple_space, _env_part(obs, i)) for i in range(self.num_envs)])

    def reset(self) -> np.ndarray:
        return self._flatten(self.venv.reset())

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        obs, rewards, dones, infos = self.venv.step_wait()
        for info in infos:
            if info.get("terminal_observation") is not None:
                info["terminal_observation"] = spaces.flatten(self.tuple_space, info["terminal_observation"])
        return self._flatten(obs), rewards, dones, infos


def _env_part(obs: Any, index: int) -> Any:
    """Env ``index``'s observation from a batched (possibly nested) tuple or dict of arrays."""
    if isinstance(obs, tuple):
        return tuple(_env_part(part, index) for part in obs)
    if isinstance(obs, dict):
        return {key: _env_part(part, index) for key, part in obs.items()}
    return obs[index]


def wrap_tuple_observations(env: gym.Env | VecEnv) -> gym.Env | VecEnv:
    """``env`` with observations SB3 can take: nested or ``Tuple`` spaces flattened, anything else untouched."""
    if not needs_flattening(env.observation_space):
        return env
    if isinstance(env, VecEnv):
        return VecFlattenTuple(env)
    return gym.wrappers.FlattenObservation(env)


__all__ = ["VecFlattenTuple", "needs_flattening", "wrap_tuple_observations"]
