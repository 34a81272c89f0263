"""Stop training the moment its numbers go bad, and say which number, where and when.

Left alone, one NaN reward turns into NaN advantages, NaN weights and, a rollout later, a long traceback about
distribution logits that names neither the env nor the reward; an exploding learning rate trains on for hours with a
collapsed policy. ``VecCheckFinite`` checks what the env returns (rewards, observations) and ``DivergenceGuard``
checks what each update produced (losses, weights, and how far the weights grew), before a checkpoint is taken, so
the last checkpoint on disk is always a good one. Both raise ``DivergenceError``, whose message is one line.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper


class DivergenceError(FloatingPointError):
    """Training produced a non-finite or exploding quantity; ``str()`` names the env, step and quantity."""

    def __init__(self, env_id: str, step: int, quantity: str, detail: str) -> None:
        self.env_id, self.step, self.quantity = env_id, step, quantity
        super().__init__(f"{env_id}: training diverged at step {step}: {quantity} {detail}")


class VecCheckFinite(VecEnvWrapper):
    """Raises ``DivergenceError`` when the env returns a non-finite reward or observation.

    Put it directly around the env (under ``VecNormalize``, whose statistics one NaN would poison for good).
    ``step_offset`` is added to its own step count so messages give the training step (``DivergenceGuard`` sets it).
    """

    def __init__(self, venv: VecEnv, env_id: str = "env") -> None:
        super().__init__(venv)
        self.env_id = env_id
        self.steps = 0
        self.step_offset = 0

    def reset(self) -> Any:
        observations = self.venv.reset()
        self._check_observations(observations, " at reset")
        return observations

    def step_wait(self) -> Any:
        observations, rewards, dones, infos = self.venv.step_wait()
        self.steps += self.num_envs
        bad = ~np.isfinite(np.asarray(rewards, dtype=np.float64))
        if bad.any():
            index = int(np.flatnonzero(bad)[0])
            raise DivergenceError(
                self.env_id, self.step_offset + self.steps, "reward", f"is {rewards[index]} (env {index} returned it)"
            )
        self._check_observations(observations)
        for index, info in enumerate(infos):
            if info.get("terminal_observation") is not None:
                self._check_observations(info["terminal_observation"], " as an episode's last", index)
        return observations, rewards, dones, infos

    def _check_observations(self, observations: Any, when: str = "", env_index: int | None = None) -> None:
        """``observations`` batched over envs, or one env's (``env_index``) when ``env_index`` is given."""
        for key, array in _arrays(observations):
            if array.dtype.kind in "fc" and not np.isfinite(array).all():
                position = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
                env = env_index if env_index is not None else (position[0] if position else 0)
                raise DivergenceError(
                    self.env_id,
                    self.step_offset + self.steps,
                    f"observation{key}",
                    f"holds {array[position]} (env {env} returned it{when})",
                )


def _arrays(observations: Any, key: str = "") -> list[tuple[str, np.ndarray]]:
    if isinstance(observations, dict):
        return [item for name, value in observations.items() for item in _arrays(value, f"{key}[{name!r}]")]
    if isinstance(observations, tuple):
        return [item for index, value in enumerate(observations) for item in _arrays(value, f"{key}[{index}]")]
    return [(key, np.asarray(observations))]


class DivergenceGuard(BaseCallback):
    """After every update (and before any checkpoint callback listed after it): losses and weights must be finite,
    and the weights' norm must stay within ``max_weight_growth`` times its value when training started.

    A learning rate far too high shows as weights growing by orders of magnitude in one update while losses stay
    finite (entropy 0, value loss ~1e7); healthy PPO runs change the norm by a few percent.
    """

    def __init__(self, env_id: str = "env", max_weight_growth: float | None = 100.0, check_finite: bool = True) -> None:
        super().__init__()
        self.env_id = env_id
        self.max_weight_growth = max_weight_growth
        self.check_finite = check_finite
        self._start_norm = math.nan

    def _on_training_start(self) -> None:
        self._start_norm = self._check_weights(growth=False)
        env = self.model.get_env()
        while env is not None:
            if isinstance(env, VecCheckFinite):
                env.step_offset = self.num_timesteps - env.steps
            env = getattr(env, "venv", None)

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        self.check()

    def _on_training_end(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise ``DivergenceError`` if the last update's losses or the weights went bad."""
        for key, value in self.model.logger.name_to_value.items() if self.check_finite else ():
            if key.startswith("train/") and isinstance(value, (int, float)) and not math.isfinite(value):
                raise DivergenceError(self.env_id, self.num_timesteps, key, f"is {value} after an update")
        self._check_weights(growth=True)

    def _check_weights(self, growth: bool) -> float:
        with torch.no_grad():
            squares = {
                name: float(parameter.double().pow(2).sum()) for name, parameter in self.model.policy.named_parameters()
            }
        norm = math.sqrt(sum(squares.values()))
        if not math.isfinite(norm) and self.check_finite:
            name = next(name for name, value in squares.items() if not math.isfinite(value))
            raise DivergenceError(self.env_id, self.num_timesteps, f"weight {name}", "is not finite after an update")
        limit = self.max_weight_growth
        if growth and limit is not None and self._start_norm > 0 and not norm <= limit * self._start_norm:
            raise DivergenceError(
                self.env_id,
                self.num_timesteps,
                "the weights' norm",
                f"grew {norm / self._start_norm:.3g}-fold in training ({self._start_norm:.3g} -> {norm:.3g}; "
                f"the limit is {limit:g}): the learning rate is likely too high",
            )
        return norm


__all__ = ["DivergenceError", "DivergenceGuard", "VecCheckFinite"]
