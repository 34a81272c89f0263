"""Wrappers that fit third-party suites to a config and a CPU budget: ``ResetOptions``, ``DownsampleImage``,
``CloseWithLastEnv``.

Memory Gym's envs take their difficulty (command count, path length, rewards) as ``reset(options=...)``, not as
constructor arguments, and SB3's vec envs reset with no options; a wrapper listed in ``env.wrappers`` supplies them.
Their 84x84 frames draw a 7x7 or 5x5 grid with 12-pixel tiles, far more pixels than the task needs on a CPU:
``DownsampleImage`` averages them down without a image library (gymnasium's ``ResizeObservation`` needs OpenCV).
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np


class ResetOptions(gym.Wrapper):
    """Every ``reset`` gets ``options`` (merged under any the caller passes), e.g. Memory Gym's reset parameters:
    ``{rlgru.env_plumbing.suite_wrappers:ResetOptions: {options: {command_count: [3]}}}`` in ``env.wrappers``.

    The options are checked by one reset when the wrapper is made, so a misspelt knob fails when the config is
    loaded, not in a subprocess worker.
    """

    def __init__(self, env: gym.Env, options: dict[str, Any]) -> None:
        if not isinstance(options, dict):
            raise TypeError(f"options must be a mapping of reset options, got {type(options).__name__}")
        super().__init__(env)
        self.options = dict(options)
        try:
            env.reset(options=dict(self.options))
        except AssertionError as error:  # Memory Gym asserts on unknown or out-of-range parameters
            raise ValueError(f"the env refuses reset options {self.options}: {error}") from None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        return self.env.reset(seed=seed, options={**self.options, **(options or {})})


class DownsampleImage(gym.ObservationWrapper):
    """An ``[H, W, C]`` uint8 image averaged over ``factor`` x ``factor`` blocks: 84x84 -> 42x42 at factor 2.

    A block mean keeps thin strokes (Mortar Mayhem's arrows) as fainter pixels where a strided subsample could
    drop them. ``H`` and ``W`` must be multiples of ``factor``.
    """

    def __init__(self, env: gym.Env, factor: int = 2) -> None:
        super().__init__(env)
        space = env.observation_space
        if not (isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3):
            raise ValueError(f"DownsampleImage takes [H, W, C] uint8 image observations, got {space}")
        if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
            raise ValueError(f"factor must be a positive integer, got {factor!r}")
        height, width, channels = space.shape
        if height % factor or width % factor:
            raise ValueError(f"factor {factor} does not divide the image size {height}x{width}")
        self.factor = factor
        self.observation_space = gym.spaces.Box(0, 255, (height // factor, width // factor, channels), np.uint8)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        height, width, channels = self.observation_space.shape
        blocks = observation.reshape(height, self.factor, width, self.factor, channels)
        return np.rint(blocks.mean(axis=(1, 3), dtype=np.float32)).astype(np.uint8)


class CloseWithLastEnv(gym.Wrapper):
    """Pass ``close`` on only when the last env so wrapped in this process closes.

    Memory Gym's ``close`` calls ``pygame.quit()``, which frees every pygame surface in the process: closing the
    env a config check built, or an evaluation env, would break the training envs still running beside it
    ("Surface is not initialized"). The env factory wraps each Memory Gym env in this.
    """

    _open: ClassVar[int] = 0

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self._closed = False
        CloseWithLastEnv._open += 1

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        CloseWithLastEnv._open -= 1
        if CloseWithLastEnv._open == 0:
            self.env.close()


__all__ = ["CloseWithLastEnv", "DownsampleImage", "ResetOptions"]
