"""Shared helpers: argument validation, one-hot episode buffers, and the base class of the symbolic tasks."""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

import gymnasium as gym
import numpy as np

FLOAT = np.float32


def check_int(name: str, value: object, minimum: int = 1, maximum: int | None = None) -> int:
    """``value`` as an int in ``[minimum, maximum]``; a ``ValueError`` naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def check_float(name: str, value: object, minimum: float = -math.inf, maximum: float = math.inf) -> float:
    """``value`` as a finite float in ``[minimum, maximum]``; a ``ValueError`` naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    value = float(value)
    if not minimum <= value <= maximum:
        raise ValueError(f"{name} must be in [{minimum}, {maximum}], got {value}")
    return value


def check_probability(name: str, value: object) -> float:
    return check_float(name, value, 0.0, 1.0)


def check_render_mode(render_mode: str | None, modes: list[str]) -> str | None:
    if render_mode is not None and render_mode not in modes:
        raise ValueError(f"render_mode must be None or one of {modes}, got {render_mode!r}")
    return render_mode


def check_action(action: object, n: int) -> int:
    """A Discrete(n) action as an int; raising here beats silently mis-scoring a bad action."""
    a = int(action)  # type: ignore[call-overload]
    if not 0 <= a < n:
        raise ValueError(f"action must be in [0, {n}), got {action!r}")
    return a


def one_hot_rows(symbols: np.ndarray, width: int, extra_rows: int = 1) -> np.ndarray:
    """One float32 one-hot row per symbol, then ``extra_rows`` zero rows (terminal observations).

    Building a whole episode's observations at reset keeps ``step`` free of allocation: each step returns a
    distinct row of an array made for that episode, which nobody writes to afterwards.
    """
    rows = np.zeros((len(symbols) + extra_rows, width), FLOAT)
    rows[np.arange(len(symbols)), symbols] = 1.0
    return rows


class SymbolicEnv(gym.Env[np.ndarray, np.int64]):
    """Base of the symbolic tasks: one-hot style Box observations, Discrete actions, text or image rendering.

    ``rgb_array`` draws the current observation as a row of grey squares (white = 1); it is offered because
    SB3's ``make_vec_env`` asks every env for ``render_mode="rgb_array"``.
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}
    render_mode: str | None = None

    def _set_render_mode(self, render_mode: str | None) -> None:
        self.render_mode = check_render_mode(render_mode, self.metadata["render_modes"])

    def _features(self) -> np.ndarray:
        """The current observation (not copied)."""
        raise NotImplementedError

    def _text(self) -> str:
        """One line describing the hidden state, for ``ansi`` rendering."""
        raise NotImplementedError

    def render(self) -> str | np.ndarray | None:  # type: ignore[override]
        if self.render_mode == "ansi":
            return self._text()
        if self.render_mode == "rgb_array":
            return features_image(self._features())
        return None


def features_image(features: np.ndarray, cell: int = 16) -> np.ndarray:
    levels = (np.clip(features, 0.0, 1.0) * 255.0).astype(np.uint8)
    row = np.repeat(levels, cell)
    return np.ascontiguousarray(np.broadcast_to(row[None, :, None], (cell, row.size, 3)))
