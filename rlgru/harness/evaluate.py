"""Run evaluation episodes with the recurrent state carried exactly as in training.

SB3's ``evaluate_policy`` zeroes the state at every episode start, which is wrong for ``hidden_reset="trial"``
(meta-RL keeps memory across the episodes of a trial) and ``"never"``. Here the state is zeroed by the same rule
the algorithm uses (``rlgru.algorithm.hidden_reset.hidden_resets_after_step``), and optionally every ``k`` steps as
well, which is how the memory probe takes memory away.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from rlgru import RecurrentPPO
from rlgru.algorithm.hidden_reset import hidden_resets_after_step
from rlgru.runtime.files import atomic_write_text

#: called after every step with (the state after it, [n_layers, n_envs, state_size]; rewards; dones)
StepObserver = Callable[[np.ndarray, np.ndarray, np.ndarray], None]


@dataclass
class EvalResult:
    """Per-episode returns and lengths, plus the longest stretch the state was carried without a reset."""

    returns: list[float]
    lengths: list[int]
    deterministic: bool
    hidden_reset: str
    reset_every: int | None = None
    longest_memory: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns)) if self.returns else float("nan")

    @property
    def std(self) -> float:
        return float(np.std(self.returns)) if self.returns else float("nan")

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        extra = data.pop("extra")
        return {
            "mean_return": self.mean,
            "std_return": self.std,
            "episodes": len(self.returns),
            "mean_length": float(np.mean(self.lengths)) if self.lengths else float("nan"),
            **extra,
            **data,
        }

    def write_json(self, path: Path) -> None:
        atomic_write_text(path, json.dumps(self.summary(), indent=2) + "\n")


def run_episodes(
    model: RecurrentPPO,
    env: VecEnv,
    n_episodes: int,
    *,
    deterministic: bool = True,
    hidden_reset: str | None = None,
    reset_every: int | None = None,
    observer: StepObserver | None = None,
) -> EvalResult:
    """Play ``n_episodes`` over the envs of ``env`` (an even share per env, so short episodes are not favoured).

    :param hidden_reset: when the state is zeroed; defaults to the model's own setting.
    :param reset_every: also zero it every ``k`` steps of carried memory (1: a memoryless policy).
    """
    mode = hidden_reset or getattr(model, "hidden_reset", "episode")  # sb3-contrib's agents reset per episode
    if reset_every is not None and reset_every < 1:
        raise ValueError(f"reset_every must be >= 1, got {reset_every}")
    n_envs = env.num_envs
    targets = np.array([(n_episodes + i) // n_envs for i in range(n_envs)])
    counts = np.zeros(n_envs, dtype=int)
    returns: list[float] = []
    lengths: list[int] = []
    episode_return = np.zeros(n_envs)
    episode_length = np.zeros(n_envs, dtype=int)
    carried = np.zeros(n_envs, dtype=int)  # steps since the state was last zeroed by the hidden_reset rule
    longest = 0

    observations = env.reset()
    state: np.ndarray | None = None
    natural_resets = np.ones(n_envs, dtype=bool)
    while (counts < targets).any():
        resets = natural_resets.copy()
        if reset_every is not None:
            resets |= carried % reset_every == 0
        actions, next_state = model.predict(
            observations, state=state, episode_start=resets, deterministic=deterministic
        )
        observations, rewards, dones, infos = env.step(actions)
        if observer is not None:
            observer(next_state, rewards, dones)
        state = next_state
        episode_return += rewards
        episode_length += 1
        carried += 1
        longest = max(longest, int(carried.max()))
        natural_resets = hidden_resets_after_step(mode, env, dones, infos)
        carried[natural_resets] = 0
        for i in np.flatnonzero(dones):
            if counts[i] < targets[i]:
                monitor = infos[i].get("episode")  # the Monitor's raw return, when rewards are normalised
                returns.append(float(monitor["r"]) if monitor else float(episode_return[i]))
                lengths.append(int(monitor["l"]) if monitor else int(episode_length[i]))
                counts[i] += 1
            episode_return[i] = 0.0
            episode_length[i] = 0
    return EvalResult(returns, lengths, deterministic, mode, reset_every, longest)


__all__ = ["EvalResult", "StepObserver", "run_episodes"]
