"""CountRecall (after POPGym): keep a running count per symbol and report the queried one."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from gymnasium import spaces

from envs._common import FLOAT, SymbolicEnv, check_action, check_int


class CountRecallEnv(SymbolicEnv):
    """Symbols stream by; every step also asks how many times a queried symbol has been seen so far.

    Observation (``2 * n_symbols``): the new symbol one-hot, then the queried symbol one-hot; both are i.i.d.
    uniform. Action: the count of the queried symbol among all symbols shown so far, this step's included,
    capped at ``max_count`` (``Discrete(max_count + 1)``; the top answer means "``max_count`` or more").
    Each of the ``length`` steps pays ``1 / length`` for the right count; the episode then terminates.

    * Memory: ``n_symbols`` counters (each up to ``max_count``), kept for the whole episode of ``length`` steps.
    * Optimal return: 1.
    * Memoryless ceiling: exact, from ``memoryless_return``. A memoryless policy sees only whether the new
      symbol is the queried one; the count is that bit plus a Binomial(t, 1/n_symbols) draw, and t is
      uniform over the episode from the policy's point of view, so the best it can do is answer, for each
      value of the bit, the count most likely over the episode.
    """

    def __init__(
        self, length: int = 16, n_symbols: int = 3, max_count: int = 8, render_mode: str | None = None
    ) -> None:
        self.length = check_int("length", length, 1)
        self.n_symbols = check_int("n_symbols", n_symbols, 2)
        self.max_count = check_int("max_count", max_count, 1)
        self._set_render_mode(render_mode)
        self.observation_space = spaces.Box(0.0, 1.0, (2 * self.n_symbols,), FLOAT)
        self.action_space = spaces.Discrete(self.max_count + 1)
        self._pay = 1.0 / self.length
        self._rows = np.zeros((1, 2 * self.n_symbols), FLOAT)
        self.answers: list[int] = []
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        n, steps = self.n_symbols, np.arange(self.length)
        symbols = self.np_random.integers(n, size=self.length)
        queries = self.np_random.integers(n, size=self.length)
        rows = np.zeros((self.length + 1, 2 * n), FLOAT)
        rows[steps, symbols] = 1.0
        rows[steps, n + queries] = 1.0
        counts = np.cumsum(rows[:-1, :n], axis=0)[steps, queries]
        self._rows = rows
        self.answers = np.minimum(counts, self.max_count).astype(np.int64).tolist()
        self.t = 0
        return rows[0], {}

    def step(self, action: np.int64 | int) -> tuple[np.ndarray, float, bool, bool, dict]:
        a = check_action(action, self.max_count + 1)
        t = self.t
        reward = self._pay if a == self.answers[t] else 0.0
        self.t = t = t + 1
        return self._rows[t], reward, t >= self.length, False, {}

    def _features(self) -> np.ndarray:
        return self._rows[min(self.t, len(self._rows) - 1)]

    def _text(self) -> str:
        return f"t={self.t} answers so far={self.answers[: self.t]}"

    def oracle_action(self) -> int:
        return self.answers[self.t]


def optimal_return(**_: Any) -> float:
    return 1.0


@lru_cache(maxsize=256)
def _memoryless(length: int, n_symbols: int, max_count: int) -> tuple[float, int, int]:
    q = 1.0 / n_symbols
    earlier = np.zeros(max_count + 1)  # P(copies of the queried symbol among the t earlier symbols, capped)
    earlier[0] = 1.0
    mass = np.zeros((2, max_count + 1))  # for new symbol != / == query: expected steps whose answer is c
    for _ in range(length):
        mass[0] += earlier
        mass[1, 1:] += earlier[:-1]
        mass[1, -1] += earlier[-1]
        grown = earlier * (1 - q)
        grown[1:] += earlier[:-1] * q
        grown[-1] += earlier[-1] * q  # the cap absorbs
        earlier = grown
    value = ((1 - q) * mass[0].max() + q * mass[1].max()) / length
    return float(value), int(mass[0].argmax()), int(mass[1].argmax())


def memoryless_return(length: int, n_symbols: int, max_count: int, **_: Any) -> float:
    return _memoryless(int(length), int(n_symbols), int(max_count))[0]


def memoryless_answers(length: int, n_symbols: int, max_count: int, **_: Any) -> tuple[int, int]:
    """The best memoryless policy: the answer when the new symbol is not / is the queried one."""
    return _memoryless(int(length), int(n_symbols), int(max_count))[1:]
