"""Tiny environments for testing state handling: random episode lengths, trials, every space SB3 supports."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

ACTION_SPACES: dict[str, spaces.Space] = {
    "discrete": spaces.Discrete(3),
    "box": spaces.Box(-1.0, 1.0, (2,), np.float32),
    "multidiscrete": spaces.MultiDiscrete([2, 3]),
    "multibinary": spaces.MultiBinary(3),
}

OBSERVATION_SPACES: dict[str, spaces.Space] = {
    "box": spaces.Box(-1.0, 1.0, (4,), np.float32),
    "discrete": spaces.Discrete(5),
    "multidiscrete": spaces.MultiDiscrete([3, 4]),
    "multibinary": spaces.MultiBinary(4),
    "dict": spaces.Dict({"a": spaces.Box(-1.0, 1.0, (3,), np.float32), "b": spaces.Discrete(3)}),
    "tuple": spaces.Tuple((spaces.Box(-1.0, 1.0, (2,), np.float32), spaces.Discrete(3))),
    "image": spaces.Box(0, 255, (36, 36, 1), np.uint8),
}


class RandomEpisodeEnv(gym.Env):
    """Random observations and rewards; episodes of random length, some ending by truncation.

    Every third reset starts a new trial and says so with ``info["trial_start"]``, as the meta-RL tasks do.
    """

    def __init__(
        self,
        observation_space: spaces.Space | None = None,
        action_space: spaces.Space | None = None,
        min_len: int = 2,
        max_len: int = 9,
        episodes_per_trial: int = 3,
    ) -> None:
        self.observation_space = observation_space or OBSERVATION_SPACES["box"]
        self.action_space = action_space or ACTION_SPACES["discrete"]
        self.min_len, self.max_len = min_len, max_len
        self.episodes_per_trial = episodes_per_trial
        self._episodes_in_trial = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        self.observation_space.seed(int(self.np_random.integers(2**31)))
        if seed is not None:
            self._episodes_in_trial = 0
        trial_start = self._episodes_in_trial % self.episodes_per_trial == 0
        self._episodes_in_trial += 1
        self._remaining = int(self.np_random.integers(self.min_len, self.max_len + 1))
        self._truncate = bool(self.np_random.random() < 0.5)
        return self.observation_space.sample(), {"trial_start": trial_start}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        self._remaining -= 1
        ended = self._remaining <= 0
        reward = float(self.np_random.normal())
        return self.observation_space.sample(), reward, ended and not self._truncate, ended and self._truncate, {
            "trial_start": False
        }


class CueRecallEnv(gym.Env):
    """A cue (one of two) is shown at the first step only; after ``delay`` blank steps a query asks for it.

    Reward +1 for naming the cue at the query, -1 otherwise, 0 elsewhere. Optimal return 1; a memoryless policy
    sees the same query observation whatever the cue was, so its expected return is at most 0.
    """

    def __init__(self, delay: int = 4) -> None:
        self.delay = delay
        self.observation_space = spaces.Box(0.0, 1.0, (3,), np.float32)  # [cue is 0, cue is 1, query]
        self.action_space = spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._cue = int(self.np_random.integers(2))
        self._t = 0
        obs = np.zeros(3, np.float32)
        obs[self._cue] = 1.0
        return obs, {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self._t += 1
        obs = np.zeros(3, np.float32)
        if self._t <= self.delay:
            return obs, 0.0, False, False, {}
        if self._t == self.delay + 1:
            obs[2] = 1.0
            return obs, 0.0, False, False, {}
        return obs, 1.0 if int(action) == self._cue else -1.0, True, False, {}
