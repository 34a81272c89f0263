"""RepeatPrevious and RepeatFirst, batched: each env's episode is a row of symbol codes drawn at its reset."""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.batched._base import BatchedEnv, Outcome
from envs.repeat import RepeatFirstEnv, RepeatPreviousEnv


class RepeatPreviousVectorEnv(BatchedEnv):
    """``envs.repeat.RepeatPreviousEnv`` for ``num_envs`` envs at once, with the same arguments and spaces.

    ``symbols[i]`` is env ``i``'s episode (``length`` symbols, then a code for the terminal zero observation).

    * Memory: the last ``k`` symbols, each held ``k`` steps.
    * Optimal return: 1.
    * Memoryless ceiling: ``1 / n_symbols``.
    """

    def __init__(
        self, num_envs: int = 1, k: int = 2, n_symbols: int = 4, length: int = 32, render_mode: str | None = None
    ) -> None:
        single = RepeatPreviousEnv(k=k, n_symbols=n_symbols, length=length)
        super().__init__(num_envs, single, render_mode)
        self.k, self.n_symbols, self.length = single.k, single.n_symbols, single.length
        self._pay = 1.0 / (self.length - self.k)
        self._table = np.eye(self.n_symbols + 1, self.n_symbols, dtype=np.float32)  # code n_symbols: zeros
        self._rows = np.arange(self.num_envs)
        self.symbols = np.full((self.num_envs, self.length + 1), self.n_symbols, dtype=np.int64)
        self.t = np.zeros(self.num_envs, dtype=np.int64)

    def _begin(self, envs: np.ndarray, options: dict[str, Any], seeded: bool) -> dict[str, Any]:
        self.symbols[envs, : self.length] = self.np_random.integers(self.n_symbols, size=(len(envs), self.length))
        self.t[envs] = 0
        return {}

    def _advance(self, actions: np.ndarray, live: np.ndarray) -> Outcome:
        t = self.t
        right = live & (t >= self.k) & (actions == self.symbols[self._rows, t - self.k])
        reward = np.where(right, self._pay, 0.0)
        self.t += live
        return reward, self.t >= self.length, np.zeros(self.num_envs, dtype=bool)

    def _observe(self, envs: np.ndarray | None) -> np.ndarray:
        if envs is None:
            return self._table[self.symbols[self._rows, self.t]]
        return self._table[self.symbols[envs, self.t[envs]]]

    def oracle_action(self) -> np.ndarray:
        """Every env's best action now (the symbol ``k`` steps back, 0 before there is one)."""
        return np.where(self.t >= self.k, self.symbols[self._rows, self.t - self.k], 0)


class RepeatFirstVectorEnv(BatchedEnv):
    """``envs.repeat.RepeatFirstEnv`` for ``num_envs`` envs at once, with the same arguments and spaces.

    ``symbols[i]`` is env ``i``'s episode; ``symbols[i, 0]`` is the symbol to repeat.

    * Memory: one symbol, held ``length - 1`` steps against distractors.
    * Optimal return: 1.
    * Memoryless ceiling: ``1 / n_symbols``.
    """

    def __init__(self, num_envs: int = 1, length: int = 8, n_symbols: int = 4, render_mode: str | None = None) -> None:
        single = RepeatFirstEnv(length=length, n_symbols=n_symbols)
        super().__init__(num_envs, single, render_mode)
        self.length, self.n_symbols = single.length, single.n_symbols
        n = self.n_symbols
        self._pay = 1.0 / (self.length - 1)
        # codes 0..n-1: a symbol; n: the terminal zero row; n+1..2n: a symbol with the first-step flag
        self._table = np.zeros((2 * n + 1, n + 1), dtype=np.float32)
        self._table[np.arange(n), np.arange(n)] = 1.0
        self._table[n + 1 + np.arange(n), np.arange(n)] = 1.0
        self._table[n + 1 :, n] = 1.0
        self._rows = np.arange(self.num_envs)
        self.symbols = np.full((self.num_envs, self.length + 1), n, dtype=np.int64)
        self.t = np.zeros(self.num_envs, dtype=np.int64)

    def _begin(self, envs: np.ndarray, options: dict[str, Any], seeded: bool) -> dict[str, Any]:
        self.symbols[envs, : self.length] = self.np_random.integers(self.n_symbols, size=(len(envs), self.length))
        self.t[envs] = 0
        return {}

    def _advance(self, actions: np.ndarray, live: np.ndarray) -> Outcome:
        right = live & (self.t > 0) & (actions == self.symbols[:, 0])
        reward = np.where(right, self._pay, 0.0)
        self.t += live
        return reward, self.t >= self.length, np.zeros(self.num_envs, dtype=bool)

    def _observe(self, envs: np.ndarray | None) -> np.ndarray:
        rows = self._rows if envs is None else envs
        t = self.t[rows]
        return self._table[self.symbols[rows, t] + (t == 0) * (self.n_symbols + 1)]

    def oracle_action(self) -> np.ndarray:
        """Every env's best action: its episode's first symbol."""
        return self.symbols[:, 0].copy()
