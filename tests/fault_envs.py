"""Environments that misbehave on purpose: for the divergence guard's tests, and trials that die or fail."""

from __future__ import annotations

import os
import signal
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class BadValueEnv(gym.Env):
    """A trivial task (reward 1 for action 1) whose ``what`` ("reward" or "observation") becomes ``value`` (NaN by
    default) from this env's ``bad_from``-th step on."""

    def __init__(self, bad_from: int = 40, what: str = "reward", value: float = float("nan")) -> None:
        self.observation_space = spaces.Box(-1.0, 1.0, (3,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.bad_from, self.what, self.value = bad_from, what, value
        self.steps = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.t = 0
        return self._observation(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.steps += 1
        self.t += 1
        bad = self.steps >= self.bad_from
        reward = self.value if bad and self.what == "reward" else float(action == 1)
        return self._observation(), reward, self.t >= 8, False, {}

    def _observation(self) -> np.ndarray:
        observation = self.np_random.uniform(-1, 1, 3).astype(np.float32)
        if self.what == "observation" and self.steps >= self.bad_from:
            observation[1] = self.value
        return observation


class KillOnce(gym.Wrapper):
    """Kills its own process (SIGKILL, as an OOM killer or a lost machine would) at its ``at_step``-th step, once:
    the first time it writes ``marker``, and never again while that file exists."""

    def __init__(self, env: gym.Env, marker: str, at_step: int = 100) -> None:
        super().__init__(env)
        self.marker, self.at_step, self.steps = marker, at_step, 0

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        self.steps += 1
        if self.steps == self.at_step and not os.path.exists(self.marker):
            with open(self.marker, "w") as handle:
                handle.write(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return self.env.step(action)


class FailingEnv(gym.Wrapper):
    """Raises at its ``at_step``-th step: a run that fails (its trial is recorded as failed, with this error)."""

    def __init__(self, env: gym.Env, at_step: int = 20) -> None:
        super().__init__(env)
        self.at_step, self.steps = at_step, 0

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        self.steps += 1
        if self.steps >= self.at_step:
            raise RuntimeError("this env breaks on purpose")
        return self.env.step(action)
