"""Repeat tasks (after POPGym): name a symbol seen earlier while new random symbols keep arriving."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from envs._common import FLOAT, SymbolicEnv, check_action, check_int, one_hot_rows


class RepeatPreviousEnv(SymbolicEnv):
    """Each step shows a random symbol; the correct action is the symbol shown ``k`` steps ago.

    Observation: the current symbol, one-hot over ``n_symbols``. Action: a symbol. An episode has ``length``
    steps (then terminates); the first ``k`` have no answer and pay 0, each later step pays
    ``1 / (length - k)`` when the action equals the symbol of ``k`` steps before.

    * Memory: a sliding window of the last ``k`` symbols, each held exactly ``k`` steps.
    * Optimal return: 1.
    * Memoryless ceiling: ``1 / n_symbols``, exactly: symbols are i.i.d. uniform, so the symbol ``k`` steps
      back is independent of the current observation.
    """

    def __init__(self, k: int = 2, n_symbols: int = 4, length: int = 32, render_mode: str | None = None) -> None:
        self.n_symbols = check_int("n_symbols", n_symbols, 2)
        self.length = check_int("length", length, 2)
        self.k = check_int("k", k, 1, self.length - 1)
        self._set_render_mode(render_mode)
        self.observation_space = spaces.Box(0.0, 1.0, (self.n_symbols,), FLOAT)
        self.action_space = spaces.Discrete(self.n_symbols)
        self._pay = 1.0 / (self.length - self.k)
        self._rows = np.zeros((1, self.n_symbols), FLOAT)
        self.symbols: list[int] = []
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        symbols = self.np_random.integers(self.n_symbols, size=self.length)
        self._rows = one_hot_rows(symbols, self.n_symbols)
        self.symbols = symbols.tolist()
        self.t = 0
        return self._rows[0], {}

    def step(self, action: np.int64 | int) -> tuple[np.ndarray, float, bool, bool, dict]:
        a = check_action(action, self.n_symbols)
        t = self.t
        reward = self._pay if t >= self.k and a == self.symbols[t - self.k] else 0.0
        self.t = t = t + 1
        return self._rows[t], reward, t >= self.length, False, {}

    def _features(self) -> np.ndarray:
        return self._rows[min(self.t, len(self._rows) - 1)]

    def _text(self) -> str:
        return f"t={self.t} seen={''.join(map(str, self.symbols[: self.t + 1]))}"

    def oracle_action(self) -> int:
        return self.symbols[self.t - self.k] if self.t >= self.k else 0


class RepeatFirstEnv(SymbolicEnv):
    """The correct action is always the episode's first symbol, while random distractor symbols stream by.

    Observation: the current symbol one-hot over ``n_symbols``, plus a flag that is 1 only at the first step.
    An episode has ``length`` steps (then terminates). The action at the first step (where the answer is in
    view) pays nothing; each later step pays ``1 / (length - 1)`` for naming the first symbol.

    * Memory: one symbol (``log2(n_symbols)`` bits), held for ``length - 1`` steps against distractors.
    * Optimal return: 1.
    * Memoryless ceiling: ``1 / n_symbols``, exactly: after the first step the observation is independent
      of the first symbol.
    """

    def __init__(self, length: int = 8, n_symbols: int = 4, render_mode: str | None = None) -> None:
        self.length = check_int("length", length, 2)
        self.n_symbols = check_int("n_symbols", n_symbols, 2)
        self._set_render_mode(render_mode)
        self.observation_space = spaces.Box(0.0, 1.0, (self.n_symbols + 1,), FLOAT)
        self.action_space = spaces.Discrete(self.n_symbols)
        self._pay = 1.0 / (self.length - 1)
        self._rows = np.zeros((1, self.n_symbols + 1), FLOAT)
        self.first = 0
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        symbols = self.np_random.integers(self.n_symbols, size=self.length)
        self._rows = one_hot_rows(symbols, self.n_symbols + 1)
        self._rows[0, self.n_symbols] = 1.0
        self.first = int(symbols[0])
        self.t = 0
        return self._rows[0], {}

    def step(self, action: np.int64 | int) -> tuple[np.ndarray, float, bool, bool, dict]:
        a = check_action(action, self.n_symbols)
        t = self.t
        reward = self._pay if t > 0 and a == self.first else 0.0
        self.t = t = t + 1
        return self._rows[t], reward, t >= self.length, False, {}

    def _features(self) -> np.ndarray:
        return self._rows[min(self.t, len(self._rows) - 1)]

    def _text(self) -> str:
        return f"t={self.t} first={self.first}"

    def oracle_action(self) -> int:
        return self.first


def repeat_previous_memoryless(n_symbols: int, **_: Any) -> float:
    return 1.0 / n_symbols


def repeat_first_memoryless(n_symbols: int, **_: Any) -> float:
    return 1.0 / n_symbols


def optimal_return(**_: Any) -> float:
    return 1.0
