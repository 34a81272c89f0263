"""Observation wrappers that make any Box-observation env partially observable.

``MaskObservation`` hides features for good (velocities, say), ``FlickerObservation`` hides the whole
observation at random steps, ``NoisyObservation`` blurs it. Each declares the observation space it really
returns, and draws its randomness from its own generator, seeded from ``reset(seed=...)``, so wrapping an env
does not change the wrapped env's own random stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs._common import check_float, check_probability


def _box_space(env: gym.Env, wrapper: str) -> spaces.Box:
    space = env.observation_space
    if not isinstance(space, spaces.Box):
        raise ValueError(f"env: {wrapper} needs a Box observation space, got {space}")
    return space


class _SeededObservationWrapper(gym.ObservationWrapper[np.ndarray, Any, np.ndarray]):
    """An observation wrapper with its own generator: seeded by a seeded reset, fresh entropy otherwise."""

    _salt = 0

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.rng = np.random.default_rng()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        if seed is not None:  # a stream of its own: the same seed must not replay the env's draws
            self.rng = np.random.default_rng([seed, self._salt])
        return super().reset(seed=seed, options=options)


class MaskObservation(gym.ObservationWrapper[np.ndarray, Any, np.ndarray]):
    """Keep only ``indices`` of the last axis of a Box observation (e.g. drop velocities)."""

    def __init__(self, env: gym.Env, indices: Sequence[int]) -> None:
        super().__init__(env)
        space = _box_space(env, "MaskObservation")
        width = space.shape[-1] if space.shape else 0
        try:
            keep = [int(i) for i in indices]
        except (TypeError, ValueError) as error:
            raise ValueError(f"indices must be a sequence of integers, got {indices!r}") from error
        if not keep:
            raise ValueError("indices must not be empty")
        if any(not -width <= i < width for i in keep):
            raise ValueError(f"indices must lie in [-{width}, {width}) for an observation of width {width}, got {keep}")
        keep = [i % width for i in keep]
        if len(set(keep)) != len(keep):
            raise ValueError(f"indices must not repeat, got {list(indices)}")
        self.indices = np.asarray(keep, dtype=np.intp)
        self.observation_space = spaces.Box(
            space.low[..., self.indices], space.high[..., self.indices], dtype=space.dtype
        )

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return observation[..., self.indices]  # fancy indexing: always a new array


class FlickerObservation(_SeededObservationWrapper):
    """With probability ``p`` per step (reset included) the observation is replaced by zeros.

    The bounds are widened to include 0 where they did not.
    """

    _salt = 0x666C6963

    def __init__(self, env: gym.Env, p: float) -> None:
        super().__init__(env)
        space = _box_space(env, "FlickerObservation")
        self.p = check_probability("p", p)
        self.observation_space = spaces.Box(
            np.minimum(space.low, 0), np.maximum(space.high, 0), space.shape, space.dtype
        )

    def observation(self, observation: np.ndarray) -> np.ndarray:
        if self.p > 0.0 and self.rng.random() < self.p:
            return np.zeros_like(observation)
        return observation


class NoisyObservation(_SeededObservationWrapper):
    """Add i.i.d. Gaussian noise of standard deviation ``sigma`` to every feature.

    Float observations get unbounded bounds (noise can leave any box); integer ones (images) are rounded and
    clipped to their bounds, keeping their dtype.
    """

    _salt = 0x6E6F6973

    def __init__(self, env: gym.Env, sigma: float) -> None:
        super().__init__(env)
        space = _box_space(env, "NoisyObservation")
        self.sigma = check_float("sigma", sigma, 0.0)
        self._integer = np.issubdtype(space.dtype, np.integer)
        if self._integer:
            self.observation_space = space
        else:
            inf = np.full(space.shape, np.inf, dtype=space.dtype)
            self.observation_space = spaces.Box(-inf, inf, space.shape, space.dtype)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        if self.sigma == 0.0:
            return observation
        noisy = observation + self.rng.normal(0.0, self.sigma, np.shape(observation))
        if self._integer:
            space = self.observation_space
            return np.clip(np.rint(noisy), space.low, space.high).astype(space.dtype)
        return noisy.astype(self.observation_space.dtype, copy=False)
