"""Passive T-Maze (Bakker 2002; Ni et al. 2023): a cue at the first step decides the arm at the far junction."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from envs._common import FLOAT, SymbolicEnv, check_action, check_int

CUE_UP, CUE_DOWN, CORRIDOR, JUNCTION = range(4)  # observation features


class TMazeEnv(SymbolicEnv):
    """Walk a corridor of ``length`` cells, then turn into the arm the first observation pointed to.

    The agent starts at cell 0 of a corridor whose junction is cell ``length``. The first observation is the
    cue (``[1,0,0,0]`` up or ``[0,1,0,0]`` down); afterwards the corridor looks the same everywhere
    (``[0,0,1,0]``) and the junction shows ``[0,0,0,1]``, the same whatever the cue. Actions: 0 forward,
    1 back, 2 up, 3 down (moving into a wall stays put). Going up or down at the junction ends the episode
    (terminated) with reward +1 for the cued arm and 0 for the other; every other step rewards 0. After
    ``max_steps`` steps (default ``2 * (length + 1)``) the episode is truncated, so a policy that never
    moves still ends.

    * Memory: one bit (the cue), held for ``length + 1`` steps (from the first observation to the turn).
    * Optimal return: 1 (``length`` steps forward, then the cued turn, ``length + 1`` steps in all).
    * Memoryless ceiling: 0.5, exactly. The junction observation does not depend on the cue, so a
      memoryless policy turns up with the same probability whatever the cue; acting on the cue at step 0
      can only change *whether* the junction is reached in time, and a wrong arm pays the same 0 as a
      timeout, so nothing beats a coin flip at the junction.
    """

    FORWARD, BACK, UP, DOWN = 0, 1, 2, 3

    def __init__(self, length: int = 5, max_steps: int | None = None, render_mode: str | None = None) -> None:
        self.length = check_int("length", length, 1)
        default_steps = 2 * (self.length + 1)
        self.max_steps = default_steps if max_steps is None else check_int("max_steps", max_steps, self.length + 1)
        self._set_render_mode(render_mode)
        self.observation_space = spaces.Box(0.0, 1.0, (4,), FLOAT)
        self.action_space = spaces.Discrete(4)
        self._rows = np.eye(4, dtype=FLOAT)
        self.goal = 0  # 0: the up arm pays, 1: the down arm pays
        self.position = 0
        self.t = 0
        self._row = CUE_UP

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.goal = int(self.np_random.integers(2))
        self.position = 0
        self.t = 0
        self._row = CUE_UP + self.goal
        return self._rows[self._row].copy(), {}

    def step(self, action: np.int64 | int) -> tuple[np.ndarray, float, bool, bool, dict]:
        a = check_action(action, 4)
        self.t += 1
        reward, terminated = 0.0, False
        if a == 0:
            if self.position < self.length:
                self.position += 1
        elif a == 1:
            if self.position > 0:
                self.position -= 1
        elif self.position == self.length:
            terminated = True
            reward = 1.0 if a - 2 == self.goal else 0.0
        truncated = not terminated and self.t >= self.max_steps
        self._row = JUNCTION if self.position == self.length else CORRIDOR
        return self._rows[self._row].copy(), reward, terminated, truncated, {}

    def _features(self) -> np.ndarray:
        return self._rows[self._row]

    def _text(self) -> str:
        cells = ["."] * (self.length + 1)
        cells[self.position] = "A"
        return f"{'UD'[self.goal]} |{''.join(cells)}| t={self.t}"

    # an oracle that reads the hidden cue, used by the tests and as documentation of the optimum
    def oracle_action(self) -> int:
        return self.FORWARD if self.position < self.length else self.UP + self.goal


def optimal_return(**_: Any) -> float:
    return 1.0


def memoryless_return(**_: Any) -> float:
    return 0.5
