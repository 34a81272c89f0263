"""DelayedRecall, batched: each env's episode is a row of observation codes and a row of answers, drawn at its reset."""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.batched._base import AnswerTableEnv
from envs.recall import DelayedRecallEnv


class DelayedRecallVectorEnv(AnswerTableEnv):
    """``envs.recall.DelayedRecallEnv`` for ``num_envs`` envs at once, with the same arguments and spaces.

    ``items[i]`` are the symbols env ``i`` shows and must recite; ``answers[i, t]`` is the action that pays at
    step ``t`` (-1, which never does, outside recall).

    * Memory: ``n_items`` symbols in order, the first held ``n_items + delay`` steps.
    * Optimal return: 1.
    * Memoryless ceiling: ``1 / n_symbols``.
    """

    def __init__(
        self,
        num_envs: int = 1,
        delay: int = 5,
        n_items: int = 3,
        n_symbols: int = 4,
        render_mode: str | None = None,
    ) -> None:
        single = DelayedRecallEnv(delay=delay, n_items=n_items, n_symbols=n_symbols)
        super().__init__(num_envs, single, render_mode)
        self.delay, self.n_items, self.n_symbols = single.delay, single.n_items, single.n_symbols
        self.length = single.length
        n = self.n_symbols
        self._pay = 1.0 / self.n_items
        self._recall_start = self.n_items + self.delay
        # codes 0..n-1: a shown symbol; n: the wait flag; n+1: the recall flag; n+2: the terminal zero row
        self._table = np.eye(n + 3, n + 2, dtype=np.float32)
        steps = np.arange(self.length + 1)
        phase = np.where(steps < self._recall_start, n, np.where(steps < self.length, n + 1, n + 2))
        self._rows = np.arange(self.num_envs)
        self._codes = np.repeat(phase[None], self.num_envs, axis=0)  # the first n_items columns: the items
        self.answers = np.full((self.num_envs, self.length + 1), -1, dtype=np.int64)
        self.items = np.zeros((self.num_envs, self.n_items), dtype=np.int64)
        self.t = np.zeros(self.num_envs, dtype=np.int64)

    def _begin(self, envs: np.ndarray, options: dict[str, Any], seeded: bool) -> dict[str, Any]:
        items = self.np_random.integers(self.n_symbols, size=(len(envs), self.n_items))
        self.items[envs] = items
        self._codes[envs, : self.n_items] = items
        self.answers[envs, self._recall_start : self.length] = items
        self.t[envs] = 0
        return {}

    def oracle_action(self) -> np.ndarray:
        """Every env's best action: the item due now during recall, 0 before."""
        return np.maximum(self.answers[self._rows, self.t], 0)
