"""KeyDoor, batched: every view the task can show is drawn once, by the single env; a step looks views up."""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.batched._base import BatchedEnv, Outcome
from envs.key_door import PAD, KeyDoorEnv


class KeyDoorVectorEnv(BatchedEnv):
    """``envs.key_door.KeyDoorEnv`` for ``num_envs`` envs at once, with the same arguments and spaces.

    ``key[i]`` is env ``i``'s key colour and ``doors[i]`` the (upper, lower) door colours. A view depends only on
    the cell, plus the key's colour in the first ``PAD + 1`` cells or the doors' in the last ``PAD + 1`` (never
    both, as ``length >= 5``): a few hundred views at most, drawn at construction by a single env, so a step
    copies one stored view per env.

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
        self.length, self.n_colours, self.max_steps = single.length, single.n_colours, single.max_steps
        self._views = self._draw_views(single)
        super().__init__(num_envs, single, render_mode)
        self._rows = np.arange(self.num_envs)
        self.key = np.zeros(self.num_envs, dtype=np.int64)
        self.doors = np.zeros((self.num_envs, 2), dtype=np.int64)
        self.position = np.zeros(self.num_envs, dtype=np.int64)
        self.t = np.zeros(self.num_envs, dtype=np.int64)

    def _view_code(self, position: Any, key: Any, upper: Any, lower: Any) -> Any:
        """Index into ``_views``: the bare cell, the cell with the key in sight, or with the doors in sight."""
        n, near_doors = self.n_colours, self.length - PAD
        with_key = self.length + 1 + position * n + key
        with_doors = self.length + 1 + (PAD + 1) * n + (position - near_doors) * n * n + upper * n + lower
        return np.where(position <= PAD, with_key, np.where(position >= near_doors, with_doors, position))

    def _draw_views(self, single: KeyDoorEnv) -> np.ndarray:
        colours, cells = range(self.n_colours), range(self.length + 1)
        states = [(p, 0, 0, 1) for p in cells]
        states += [(p, key, 0, 1) for p in range(PAD + 1) for key in colours]
        states += [(p, 0, u, d) for p in range(self.length - PAD, self.length + 1) for u in colours for d in colours]
        views = np.zeros((len(states), *single.observation_space.shape), dtype=np.uint8)
        for position, key, upper, lower in states:  # the single env's own drawing, so the pixels are its
            single.key, single.doors, single.position = key, (upper, lower), position
            single._map = single._paint()
            views[self._view_code(position, key, upper, lower)] = single._observe()
        return views

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
        return self._views[self._view_code(self.position[rows], self.key[rows], *self.doors[rows].T)]

    def render(self) -> tuple[np.ndarray, ...] | None:
        """One frame per env: its view, as the single env renders."""
        if self.render_mode != "rgb_array" or self._obs is None:
            return None
        return tuple(self._obs)

    def oracle_action(self) -> np.ndarray:
        """Every env's best action: right to the doors, then the door of the key's colour."""
        upper = self.doors[:, 0] == self.key
        return np.where(self.position < self.length, self.RIGHT, np.where(upper, self.UP, self.DOWN))
