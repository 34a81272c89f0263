"""Key-door, a small visual memory task: remember a key's colour, walk a corridor, open the door of that colour."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs._common import check_action, check_int, check_render_mode

CELL = 8  # pixels per grid cell
VIEW = 5  # the agent sees VIEW x VIEW cells around itself: a 40 x 40 image, big enough for NatureCNN (36)
PAD = VIEW // 2
WALL = (90, 90, 90)
FLOOR = (0, 0, 0)
AGENT = (255, 255, 255)
COLOURS = ((230, 25, 25), (25, 200, 25), (40, 80, 255), (240, 220, 30), (220, 40, 220), (30, 220, 220))


class KeyDoorEnv(gym.Env[np.ndarray, np.int64]):
    """A corridor of ``length + 1`` cells seen from above through a 5 x 5-cell window (40 x 40 RGB pixels).

    A key of one of ``n_colours`` colours sits in the wall niche above the start cell. At the far end of the
    corridor (cell ``length``) are two doors, one above and one below: one has the key's colour, the other a
    different colour, in random order. Actions: 0 right, 1 left, 2 up, 3 down (walls stop the agent). Going up
    or down at the end opens that door and ends the episode (terminated): +1 for the key's colour, 0 for the
    other. Every other step pays 0; after ``max_steps`` steps (default ``2 * (length + 1)``) the episode is
    truncated. The window is centred on the agent (a white square), so the key is in view only in the first
    three cells and the doors only in the last three; ``length >= 5`` keeps them from ever sharing a view.

    * Memory: the key's colour (one of ``n_colours``), seen as pixels and held from the third cell to the doors
      (``length - 2`` steps on the shortest path).
    * Optimal return: 1 (``length`` steps right, then the matching door).
    * Memoryless ceiling: 0.5, exactly. Whatever pair of colours the doors show, the key is either one with
      equal probability and no observation at the doors carries it; a wrong door pays the same 0 as a timeout.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 8}

    RIGHT, LEFT, UP, DOWN = 0, 1, 2, 3

    def __init__(
        self, length: int = 5, n_colours: int = 3, max_steps: int | None = None, render_mode: str | None = None
    ) -> None:
        self.length = check_int("length", length, 5)
        self.n_colours = check_int("n_colours", n_colours, 2, len(COLOURS))
        default_steps = 2 * (self.length + 1)
        self.max_steps = default_steps if max_steps is None else check_int("max_steps", max_steps, self.length + 1)
        self.render_mode = check_render_mode(render_mode, self.metadata["render_modes"])
        self.observation_space = spaces.Box(0, 255, (VIEW * CELL, VIEW * CELL, 3), np.uint8)
        self.action_space = spaces.Discrete(4)
        # the static map: walls everywhere but the corridor row, with PAD cells of wall beyond either end
        cells = np.empty((VIEW, self.length + 1 + 2 * PAD, 3), np.uint8)
        cells[:] = WALL
        cells[PAD, PAD : PAD + self.length + 1] = FLOOR
        self._walls = cells
        self.key = 0  # colour index of the key
        self.doors = (0, 1)  # colour indices of the (upper, lower) doors
        self.position = 0
        self.t = 0
        self._map = self._paint()

    def _paint(self) -> np.ndarray:
        cells = self._walls.copy()
        cells[PAD - 1, PAD] = COLOURS[self.key]
        cells[PAD - 1, PAD + self.length] = COLOURS[self.doors[0]]
        cells[PAD + 1, PAD + self.length] = COLOURS[self.doors[1]]
        return np.repeat(np.repeat(cells, CELL, axis=0), CELL, axis=1)

    def _observe(self) -> np.ndarray:
        left = self.position * CELL
        image = self._map[:, left : left + VIEW * CELL].copy()
        centre = PAD * CELL
        image[centre + 2 : centre + CELL - 2, centre + 2 : centre + CELL - 2] = AGENT
        return image

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.key = int(self.np_random.integers(self.n_colours))
        other = int(self.np_random.integers(self.n_colours - 1))
        other += other >= self.key  # uniform over the other colours
        self.doors = (self.key, other) if self.np_random.random() < 0.5 else (other, self.key)
        self.position = 0
        self.t = 0
        self._map = self._paint()
        return self._observe(), {}

    def step(self, action: np.int64 | int) -> tuple[np.ndarray, float, bool, bool, dict]:
        a = check_action(action, 4)
        self.t += 1
        reward, terminated = 0.0, False
        if a == self.RIGHT:
            self.position = min(self.position + 1, self.length)
        elif a == self.LEFT:
            self.position = max(self.position - 1, 0)
        elif self.position == self.length:
            terminated = True
            reward = 1.0 if self.doors[a - self.UP] == self.key else 0.0
        truncated = not terminated and self.t >= self.max_steps
        return self._observe(), reward, terminated, truncated, {}

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return self._observe()

    def oracle_action(self) -> int:
        if self.position < self.length:
            return self.RIGHT
        return self.UP if self.doors[0] == self.key else self.DOWN


def optimal_return(**_: Any) -> float:
    return 1.0


def memoryless_return(**_: Any) -> float:
    return 0.5
