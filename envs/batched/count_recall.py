"""CountRecall, batched: each env's symbols, queries and right answers are drawn and counted at its reset."""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.batched._base import AnswerTableEnv
from envs.count_recall import CountRecallEnv


class CountRecallVectorEnv(AnswerTableEnv):
    """``envs.count_recall.CountRecallEnv`` for ``num_envs`` envs at once, with the same arguments and spaces.

    ``symbols[i]`` and ``queries[i]`` are env ``i``'s episode, ``answers[i]`` the capped counts it must give.

    * Memory: ``n_symbols`` counters for the whole episode.
    * Optimal return: 1.
    * Memoryless ceiling: ``envs.count_recall.memoryless_return`` (exact).
    """

    def __init__(
        self,
        num_envs: int = 1,
        length: int = 16,
        n_symbols: int = 3,
        max_count: int = 8,
        render_mode: str | None = None,
    ) -> None:
        single = CountRecallEnv(length=length, n_symbols=n_symbols, max_count=max_count)
        super().__init__(num_envs, single, render_mode)
        self.length, self.n_symbols, self.max_count = single.length, single.n_symbols, single.max_count
        n = self.n_symbols
        self._pay = 1.0 / self.length
        # code s * n + q: symbol s shown, q queried; code n * n: the terminal zero row
        self._table = np.zeros((n * n + 1, 2 * n), dtype=np.float32)
        symbol, query = np.divmod(np.arange(n * n), n)
        self._table[np.arange(n * n), symbol] = 1.0
        self._table[np.arange(n * n), n + query] = 1.0
        self._rows = np.arange(self.num_envs)
        shape = (self.num_envs, self.length)
        self.symbols = np.zeros(shape, dtype=np.int64)
        self.queries = np.zeros(shape, dtype=np.int64)
        self.answers = np.zeros((self.num_envs, self.length + 1), dtype=np.int64)  # the last column: padding
        self._codes = np.full((self.num_envs, self.length + 1), n * n, dtype=np.int64)
        self.t = np.zeros(self.num_envs, dtype=np.int64)

    def _begin(self, envs: np.ndarray, options: dict[str, Any], seeded: bool) -> dict[str, Any]:
        n, shape = self.n_symbols, (len(envs), self.length)
        symbols = self.np_random.integers(n, size=shape)
        queries = self.np_random.integers(n, size=shape)
        counts = np.cumsum(symbols[..., None] == np.arange(n), axis=1)  # (envs, steps, symbol)
        asked = np.take_along_axis(counts, queries[..., None], axis=2)[..., 0]
        self.symbols[envs], self.queries[envs] = symbols, queries
        self.answers[envs, : self.length] = np.minimum(asked, self.max_count)
        self._codes[envs, : self.length] = symbols * n + queries
        self.t[envs] = 0
        return {}

    def oracle_action(self) -> np.ndarray:
        """Every env's best action: the right count now."""
        return self.answers[self._rows, self.t].copy()
