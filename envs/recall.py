"""Delayed recall (a copy task): see a few symbols, wait through a long blank delay, then recite them in order."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from envs._common import FLOAT, SymbolicEnv, check_action, check_int


class DelayedRecallEnv(SymbolicEnv):
    """Show ``n_items`` random symbols, then ``delay`` blank steps, then ask for the symbols back in order.

    Observation (``n_symbols + 2``): during presentation the symbol one-hot; during the delay a "wait" flag
    (feature ``n_symbols``); during recall a "recall" flag (feature ``n_symbols + 1``), identical at every
    recall step. Action: a symbol. The j-th recall step pays ``1 / n_items`` for naming the j-th symbol;
    every other step pays 0. The episode has ``2 * n_items + delay`` steps and then terminates.

    The delay is the knob: a few hundred blank steps separate gated cores (GRU, LSTM) from a plain RNN, whose
    gradient through the delay vanishes.

    * Memory: ``n_items`` symbols in order, the first held ``n_items + delay`` steps.
    * Optimal return: 1.
    * Memoryless ceiling: ``1 / n_symbols``, exactly: every recall observation is the same whatever the
      symbols were.
    """

    def __init__(self, delay: int = 5, n_items: int = 3, n_symbols: int = 4, render_mode: str | None = None) -> None:
        self.delay = check_int("delay", delay, 0)
        self.n_items = check_int("n_items", n_items, 1)
        self.n_symbols = check_int("n_symbols", n_symbols, 2)
        self._set_render_mode(render_mode)
        self.length = 2 * self.n_items + self.delay
        self.observation_space = spaces.Box(0.0, 1.0, (self.n_symbols + 2,), FLOAT)
        self.action_space = spaces.Discrete(self.n_symbols)
        self._pay = 1.0 / self.n_items
        self._recall_start = self.n_items + self.delay
        # every episode's observations are this template with the presented symbols written in
        self._template = np.zeros((self.length + 1, self.n_symbols + 2), FLOAT)
        self._template[self.n_items : self._recall_start, self.n_symbols] = 1.0
        self._template[self._recall_start : self.length, self.n_symbols + 1] = 1.0
        self._rows = self._template
        self.items: list[int] = []
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        items = self.np_random.integers(self.n_symbols, size=self.n_items)
        self._rows = self._template.copy()
        self._rows[np.arange(self.n_items), items] = 1.0
        self.items = items.tolist()
        self.t = 0
        return self._rows[0], {}

    def step(self, action: np.int64 | int) -> tuple[np.ndarray, float, bool, bool, dict]:
        a = check_action(action, self.n_symbols)
        t = self.t
        reward = self._pay if t >= self._recall_start and a == self.items[t - self._recall_start] else 0.0
        self.t = t = t + 1
        return self._rows[t], reward, t >= self.length, False, {}

    def _features(self) -> np.ndarray:
        return self._rows[min(self.t, len(self._rows) - 1)]

    def _text(self) -> str:
        phase = "show" if self.t < self.n_items else "wait" if self.t < self._recall_start else "recall"
        return f"t={self.t} {phase} items={self.items}"

    def oracle_action(self) -> int:
        return self.items[self.t - self._recall_start] if self.t >= self._recall_start else 0


def optimal_return(**_: Any) -> float:
    return 1.0


def memoryless_return(n_symbols: int, **_: Any) -> float:
    return 1.0 / n_symbols
