"""Observation wrappers the algorithm applies itself, so that no supported env has to be pre-wrapped."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper


class VecFlattenTuple(VecEnvWrapper):
    """Flattens ``Tuple`` observations of a vec env into one Box (SB3 has no Tuple preprocessing)."""

    def __init__(self, venv: VecEnv) -> None:
        self.tuple_space = venv.observation_space
        super().__init__(venv, observation_space=spaces.flatten_space(self.tuple_space))

    def _flatten(self, obs: tuple[np.ndarray, ...]) -> np.ndarray:
        per_env = (tuple(part[i] for part in obs) for i in range(self.num_envs))
        return np.stack([spaces.flatten(self.tuple_space, env_obs) for env_obs in per_env])

    def reset(self) -> np.ndarray:
        return self._flatten(self.venv.reset())

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        obs, rewards, dones, infos = self.venv.step_wait()
        for info in infos:
            if info.get("terminal_observation") is not None:
                info["terminal_observation"] = spaces.flatten(self.tuple_space, info["terminal_observation"])
        return self._flatten(obs), rewards, dones, infos


def wrap_tuple_observations(env: gym.Env | VecEnv) -> gym.Env | VecEnv:
    if not isinstance(env.observation_space, spaces.Tuple):
        return env
    if isinstance(env, VecEnv):
        return VecFlattenTuple(env)
    return gym.wrappers.FlattenObservation(env)
