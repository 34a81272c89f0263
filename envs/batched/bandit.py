"""The meta-RL bandit, batched: each env's trial (arm probabilities, pre-drawn coins) and its place in it."""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.bandit import MetaBanditEnv
from envs.batched._base import BatchedEnv, Outcome


class MetaBanditVectorEnv(BatchedEnv):
    """``envs.bandit.MetaBanditEnv`` for ``num_envs`` envs at once, with the same arguments, spaces and trials.

    Every reset info and step info has ``"trial_start"`` (a bool per env, with Gymnasium's ``"_trial_start"``
    mask): True only where a reset began a new trial. A reset begins one where the env has not started a trial
    yet, where its trial has had its ``episodes_per_trial`` episodes, on a seeded reset, and with
    ``options={"new_trial": True}``; autoresets inside a trial keep its arms. ``arm_probs[i]`` and
    ``uniforms[i]`` (one coin per pull of the trial) are env ``i``'s trial.

    * Memory: per-arm statistics across a trial's episodes.
    * Optimal return (per episode): ``pulls_per_episode`` times the best arm's probability.
    * Memoryless ceiling: ``envs.bandit.memoryless_return`` (win-stay / lose-shift).
    """

    def __init__(
        self,
        num_envs: int = 1,
        n_arms: int = 2,
        pulls_per_episode: int = 2,
        episodes_per_trial: int = 10,
        prior: str = "one_good",
        render_mode: str | None = None,
    ) -> None:
        single = MetaBanditEnv(n_arms, pulls_per_episode, episodes_per_trial, prior)
        super().__init__(num_envs, single, render_mode)
        self.n_arms, self.prior = single.n_arms, single.prior
        self.pulls_per_episode, self.episodes_per_trial = single.pulls_per_episode, single.episodes_per_trial
        # row 2a + r: arm a was pulled and paid r; the last row: a trial's first observation
        a = self.n_arms
        self._table = np.zeros((2 * a + 1, a + 2), dtype=np.float32)
        self._table[np.arange(2 * a), np.arange(2 * a) // 2] = 1.0
        self._table[1 : 2 * a : 2, a] = 1.0
        self._table[2 * a, a + 1] = 1.0
        self._first = 2 * a
        self._rows = np.arange(self.num_envs)
        n = self.num_envs
        self.arm_probs = np.zeros((n, self.n_arms))
        # one coin per pull of a trial, and a spare column so a finished env's index stays in range
        self.uniforms = np.ones((n, self.episodes_per_trial * self.pulls_per_episode + 1))
        self.started = np.zeros(n, dtype=bool)  # has begun a trial
        self.episode = np.zeros(n, dtype=np.int64)  # episodes begun in the current trial
        self.pull = np.zeros(n, dtype=np.int64)  # pulls made in the current trial
        self.pulls_left = np.zeros(n, dtype=np.int64)
        self._code = np.full(n, self._first, dtype=np.int64)

    def _begin(self, envs: np.ndarray, options: dict[str, Any], seeded: bool) -> dict[str, Any]:
        new_trial = seeded or bool(options.get("new_trial", False))
        fresh = envs[new_trial | ~self.started[envs] | (self.episode[envs] >= self.episodes_per_trial)]
        if len(fresh):
            k = len(fresh)
            if self.prior == "uniform":
                self.arm_probs[fresh] = self.np_random.random((k, self.n_arms))
            else:
                self.arm_probs[fresh] = MetaBanditEnv.P_BAD
                self.arm_probs[fresh, self.np_random.integers(self.n_arms, size=k)] = MetaBanditEnv.P_GOOD
            self.uniforms[fresh, :-1] = self.np_random.random((k, self.uniforms.shape[1] - 1))
            self.started[fresh] = True
            self.episode[fresh] = 0
            self.pull[fresh] = 0
            self._code[fresh] = self._first
        self.episode[envs] += 1
        self.pulls_left[envs] = self.pulls_per_episode
        trial_start = np.zeros(self.num_envs, dtype=bool)
        trial_start[fresh] = True
        mask = np.zeros(self.num_envs, dtype=bool)
        mask[envs] = True
        return {"trial_start": trial_start, "_trial_start": mask}

    def _advance(self, actions: np.ndarray, live: np.ndarray) -> Outcome:
        won = self.uniforms[self._rows, self.pull] < self.arm_probs[self._rows, actions]
        self.pull += live
        self.pulls_left -= live
        self._code = np.where(live, 2 * actions + won, self._code)
        ended = live & (self.pulls_left == 0)
        terminated = ended & (self.episode >= self.episodes_per_trial)
        return won.astype(np.float64), terminated, ended & ~terminated

    def _step_info(self) -> dict[str, Any]:
        return {"trial_start": np.zeros(self.num_envs, dtype=bool), "_trial_start": np.ones(self.num_envs, dtype=bool)}

    def _observe(self, envs: np.ndarray | None) -> np.ndarray:
        return self._table[self._code if envs is None else self._code[envs]]

    def oracle_action(self) -> np.ndarray:
        """Every env's best arm (an oracle that knows the probabilities, as the single env's)."""
        return np.argmax(self.arm_probs, axis=1)
