"""KeyDoor, batched: each view is the bare corridor's view at the env's cell, with its key and doors painted on."""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.batched._base import BatchedEnv, Outcome
from envs.key_door import AGENT, CELL, COLOURS, PAD, VIEW, KeyDoorEnv


class KeyDoorVectorEnv(BatchedEnv):
    """``envs.key_door.KeyDoorEnv`` for ``num_envs`` envs at once, with the same arguments and spaces.

    ``key[i]`` is env ``i``'s key colour and ``doors[i]`` the (upper, lower) door colours. A view is copied from
    the bare corridor's view at the env's cell (one per cell, shared by all envs), then the key and doors in sight
    are painted on, a few envs at a time, by where they sit in the window.

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
        super().__init__(num_envs, single, render_mode)
        self.length, self.n_colours, self.max_steps = single.length, single.n_colours, single.max_steps
        self._colours = np.array(COLOURS, dtype=np.uint8)
        bare = np.repeat(np.repeat(single._walls, CELL, axis=0), CELL, axis=1)  # the map without key and doors
        centre = slice(PAD * CELL + 2, (PAD + 1) * CELL - 2)
        self._views = np.stack([bare[:, p * CELL : (p + VIEW) * CELL] for p in range(self.length + 1)])
        self._views[:, centre, centre] = AGENT
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
        return {}

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
        position = self.position[rows]
        images = self._views[position]
        key_column, door_column = PAD - position, PAD + self.length - position  # in window cells; in sight: 0..4
        for column in range(VIEW):
            key_here, doors_here = key_column == column, door_column == column
            if key_here.any():
                self._paint(images, key_here, PAD - 1, column, self.key[rows[key_here]])
            if doors_here.any():
                self._paint(images, doors_here, PAD - 1, column, self.doors[rows[doors_here], 0])
                self._paint(images, doors_here, PAD + 1, column, self.doors[rows[doors_here], 1])
        return images

    def _paint(self, images: np.ndarray, which: np.ndarray, row: int, column: int, colours: np.ndarray) -> None:
        cells = (slice(row * CELL, (row + 1) * CELL), slice(column * CELL, (column + 1) * CELL))
        images[(which, *cells)] = self._colours[colours][:, None, None, :]

    def render(self) -> tuple[np.ndarray, ...] | None:
        """One frame per env: its view, as the single env renders."""
        if self.render_mode != "rgb_array" or self._obs is None:
            return None
        return tuple(self._obs)

    def oracle_action(self) -> np.ndarray:
        """Every env's best action: right to the doors, then the door of the key's colour."""
        upper = self.doors[:, 0] == self.key
        return np.where(self.position < self.length, self.RIGHT, np.where(upper, self.UP, self.DOWN))
