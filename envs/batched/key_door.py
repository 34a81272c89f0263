"""KeyDoor, batched: each env's painted map is kept as pixels; a step crops every env's window at once."""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.batched._base import BatchedEnv, Outcome
from envs.key_door import AGENT, CELL, COLOURS, PAD, VIEW, KeyDoorEnv


class KeyDoorVectorEnv(BatchedEnv):
    """``envs.key_door.KeyDoorEnv`` for ``num_envs`` envs at once, with the same arguments and spaces.

    ``key[i]`` is env ``i``'s key colour and ``doors[i]`` the (upper, lower) door colours; the 40 x 40 x 3 views
    are cropped from one map of pixels per env.

    * Memory: the key's colour, seen as pixels, for about ``length - 2`` steps.
    * Optimal return: 1.
    * Memoryless ceiling: 0.5.
    """

    RIGHT, LEFT, UP, DOWN = KeyDoorEnv.RIGHT, KeyDoorEnv.LEFT, KeyDoorEnv.UP, KeyDoorEnv.DOWN

    def __init__(
        self,
        num_envs: int = 1,
        length: int = 5,
        n_colours: int = 3,
        max_steps: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        single = KeyDoorEnv(length=length, n_colours=n_colours, max_steps=max_steps)
        walls = single._paint()  # the static map (the key and doors are painted over per env)
        super().__init__(num_envs, single, render_mode)
        self.length, self.n_colours, self.max_steps = single.length, single.n_colours, single.max_steps
        self._colours = np.array(COLOURS, dtype=np.uint8)
        self._maps = np.repeat(walls[None], self.num_envs, axis=0)
        self._window = np.arange(VIEW * CELL)
        self._rows = np.arange(self.num_envs)
        self.key = np.zeros(self.num_envs, dtype=np.int64)
        self.doors = np.zeros((self.num_envs, 2), dtype=np.int64)
        self.position = np.zeros(self.num_envs, dtype=np.int64)
        self.t = np.zeros(self.num_envs, dtype=np.int64)

    def _begin(self, envs: np.ndarray, options: dict[str, Any], seeded: bool) -> dict[str, Any]:
        k = len(envs)
        key = self.np_random.integers(self.n_colours, size=k)
        other = self.np_random.integers(self.n_colours - 1, size=k)
        other += other >= key  # uniform over the other colours
        key_first = self.np_random.random(k) < 0.5
        self.key[envs] = key
        self.doors[envs] = np.where(key_first[:, None], np.stack([key, other], 1), np.stack([other, key], 1))
        self.position[envs] = 0
        self.t[envs] = 0
        self._paint_cell(envs, PAD - 1, PAD, self.key[envs])
        self._paint_cell(envs, PAD - 1, PAD + self.length, self.doors[envs, 0])
        self._paint_cell(envs, PAD + 1, PAD + self.length, self.doors[envs, 1])
        return {}

    def _paint_cell(self, envs: np.ndarray, row: int, column: int, colours: np.ndarray) -> None:
        rows, columns = slice(row * CELL, (row + 1) * CELL), slice(column * CELL, (column + 1) * CELL)
        self._maps[envs, rows, columns] = self._colours[colours][:, None, None, :]

    def _advance(self, actions: np.ndarray, live: np.ndarray) -> Outcome:
        at_doors = self.position == self.length
        opened = live & (actions >= self.UP) & at_doors
        chosen = self.doors[self._rows, np.clip(actions - self.UP, 0, 1)]
        reward = np.where(opened & (chosen == self.key), 1.0, 0.0)
        self.position += live & (actions == self.RIGHT) & ~at_doors
        self.position -= live & (actions == self.LEFT) & (self.position > 0)
        self.t += live
        return reward, opened, ~opened & (self.t >= self.max_steps)

    def _observe(self, envs: np.ndarray | None) -> np.ndarray:
        rows = self._rows if envs is None else envs
        columns = self.position[rows, None] * CELL + self._window  # (envs, 40): each env's window of pixels
        images = self._maps[rows[:, None], :, columns].transpose(0, 2, 1, 3)  # (envs, 40, 40, 3)
        centre = PAD * CELL
        images[:, centre + 2 : centre + CELL - 2, centre + 2 : centre + CELL - 2] = AGENT
        return images

    def render(self) -> tuple[np.ndarray, ...] | None:
        """One frame per env: its view, as the single env renders."""
        if self.render_mode != "rgb_array" or self._obs is None:
            return None
        return tuple(self._obs)

    def oracle_action(self) -> np.ndarray:
        """Every env's best action: right to the doors, then the door of the key's colour."""
        upper = self.doors[:, 0] == self.key
        return np.where(self.position < self.length, self.RIGHT, np.where(upper, self.UP, self.DOWN))
