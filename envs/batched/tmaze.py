"""The passive T-maze, batched: a cue, a position and a step count per env."""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.batched._base import BatchedEnv, Outcome
from envs.tmaze import CORRIDOR, CUE_UP, JUNCTION, TMazeEnv


class TMazeVectorEnv(BatchedEnv):
    """``envs.tmaze.TMazeEnv`` for ``num_envs`` envs at once, with the same arguments and spaces.

    ``goal[i]`` is env ``i``'s cue (0: the up arm pays, 1: the down arm), ``position[i]`` its cell.

    * Memory: one bit, held ``length + 1`` steps.
    * Optimal return: 1.
    * Memoryless ceiling: 0.5.
    """

    FORWARD, BACK, UP, DOWN = TMazeEnv.FORWARD, TMazeEnv.BACK, TMazeEnv.UP, TMazeEnv.DOWN

    def __init__(
        self, num_envs: int = 1, length: int = 5, max_steps: int | None = None, render_mode: str | None = None
    ) -> None:
        single = TMazeEnv(length=length, max_steps=max_steps)
        super().__init__(num_envs, single, render_mode)
        self.length, self.max_steps = single.length, single.max_steps
        self._table = np.eye(4, dtype=np.float32)
        self.goal = np.zeros(self.num_envs, dtype=np.int64)
        self.position = np.zeros(self.num_envs, dtype=np.int64)
        self.t = np.zeros(self.num_envs, dtype=np.int64)
        self._code = np.full(self.num_envs, CUE_UP, dtype=np.int64)  # which row of the table each env shows

    def _begin(self, envs: np.ndarray, options: dict[str, Any], seeded: bool) -> dict[str, Any]:
        self.goal[envs] = self.np_random.integers(2, size=len(envs))
        self.position[envs] = 0
        self.t[envs] = 0
        self._code[envs] = CUE_UP + self.goal[envs]
        return {}

    def _advance(self, actions: np.ndarray, live: np.ndarray) -> Outcome:
        at_junction = self.position == self.length
        turned = live & (actions >= self.UP) & at_junction
        reward = np.where(turned & (actions - self.UP == self.goal), 1.0, 0.0)
        self.position += live & (actions == self.FORWARD) & ~at_junction
        self.position -= live & (actions == self.BACK) & (self.position > 0)
        self.t += live
        truncated = ~turned & (self.t >= self.max_steps)
        self._code = np.where(live, np.where(self.position == self.length, JUNCTION, CORRIDOR), self._code)
        return reward, turned, truncated

    def _observe(self, envs: np.ndarray | None) -> np.ndarray:
        return self._table[self._code if envs is None else self._code[envs]]

    def oracle_action(self) -> np.ndarray:
        """Every env's best action: forward along the corridor, then the cued arm."""
        return np.where(self.position < self.length, self.FORWARD, self.UP + self.goal)
