"""Observation wrappers the algorithm applies itself, so that no supported env has to be pre-wrapped.

SB3 has no preprocessing for ``Tuple`` observations and refuses nested spaces (a ``Tuple`` or ``Dict`` inside a
``Tuple`` or ``Dict``) outright, already when it builds a vec env. So such spaces are flattened into one ``Box``
(``gymnasium.spaces.flatten``: one-hot for discrete parts) *per env, before vectorising*; a vec env that already
holds flat ``Tuple`` observations is flattened by ``VecFlattenTuple``. Both remember the env's own space, so
``predict`` can take the env's own observations too (``flatten_observation``).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

#: the attribute, on a flattening wrapper, that holds the env's own (nested) observation space
NESTED_SPACE = "nested_observation_space"


def needs_flattening(space: spaces.Space) -> bool:
    """True for a ``Tuple`` (any nesting) or a ``Dict`` holding a ``Tuple`` or ``Dict``: spaces SB3 cannot take."""
    if isinstance(space, spaces.Tuple):
        return True
    if isinstance(space, spaces.Dict):
        return any(isinstance(child, (spaces.Tuple, spaces.Dict)) for child in space.spaces.values())
    return False


class FlattenNested(gym.wrappers.FlattenObservation):
    """Gymnasium's ``FlattenObservation`` that keeps the space it flattens as ``nested_observation_space``."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.nested_observation_space = env.observation_space


class VecFlattenTuple(VecEnvWrapper):
    """Flattens the ``Tuple`` observations of a vec env (nested ones included) into one Box."""

    def __init__(self, venv: VecEnv) -> None:
        self.tuple_space = venv.observation_space
        self.nested_observation_space = self.tuple_space
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
    return FlattenNested(env)


def nested_observation_space(venv: VecEnv) -> spaces.Space | None:
    """The env's own space, where ``venv``'s observations were flattened from a nested one; else ``None``."""
    wrapper: VecEnv | None = venv
    while isinstance(wrapper, VecEnvWrapper):
        if isinstance(wrapper, VecFlattenTuple):
            return wrapper.nested_observation_space
        wrapper = wrapper.venv
    # asked only of envs that have the attribute: an async worker asked for a missing one would stop
    if not venv.env_is_wrapped(FlattenNested, indices=[0])[0]:
        return None
    return venv.get_attr(NESTED_SPACE, indices=[0])[0]


def flatten_observation(space: spaces.Space, observation: Any) -> np.ndarray:
    """An observation of the nested ``space``, as the env returns it (one) or a vec env does (a batch: every array
    with a leading env axis), flattened as the training envs flatten it: ``[size]`` or ``[n_envs, size]``."""
    n_envs = _batch_length(space, observation)
    if n_envs is None:
        return spaces.flatten(space, observation)
    return np.stack([spaces.flatten(space, _env_part(observation, i)) for i in range(n_envs)])


def _batch_length(space: spaces.Space, observation: Any) -> int | None:
    """``None`` for one observation of ``space``, the batch size for a batch, judged by the first leaf."""
    while isinstance(space, spaces.Tuple | spaces.Dict):
        key = 0 if isinstance(space, spaces.Tuple) else next(iter(space.spaces))
        if isinstance(space, spaces.Tuple) and not isinstance(observation, tuple | list):
            raise ValueError(f"expected a tuple of {len(space.spaces)} parts for {space}, got {type(observation)}")
        if isinstance(space, spaces.Dict) and not isinstance(observation, dict):
            raise ValueError(f"expected a dict with keys {list(space.spaces)} for {space}, got {type(observation)}")
        space, observation = space[key], observation[key]
    shape = np.shape(observation)
    expected = tuple(space.shape or ())
    if shape == expected:
        return None
    if shape[1:] == expected and len(shape) == len(expected) + 1:
        return int(shape[0])
    raise ValueError(f"an observation part of shape {shape} is neither one of {space} nor a batch of them")


__all__ = [
    "NESTED_SPACE",
    "FlattenNested",
    "VecFlattenTuple",
    "flatten_observation",
    "needs_flattening",
    "nested_observation_space",
    "wrap_tuple_observations",
]
