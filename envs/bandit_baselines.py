"""Classic bandit algorithms playing ``MetaBanditEnv`` from its observations: reference points for RL² agents.

Each policy sees exactly what an agent sees: the observation (previous arm, previous reward, trial flag) and
the info's ``trial_start``. It forgets everything at a trial start, and counts each pull once, from the
observation it then acts on (after an episode boundary that is the reset observation, which repeats the last
pull; the terminal observation before it is not acted on, as in an SB3 vector env).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from envs._common import check_int
from envs.bandit import MetaBanditEnv


class BanditPolicy(Protocol):
    def act(self, obs: np.ndarray, info: dict[str, Any]) -> int: ...


class _CountingPolicy:
    """Per-arm pull and win counts for the current trial, updated from the observations."""

    def __init__(self, n_arms: int) -> None:
        self.n_arms = check_int("n_arms", n_arms, 2)
        self.pulls = np.zeros(self.n_arms)
        self.wins = np.zeros(self.n_arms)

    def _observe(self, obs: np.ndarray, info: dict[str, Any]) -> None:
        if info.get("trial_start", False):
            self.pulls[:] = 0.0
            self.wins[:] = 0.0
            return
        previous = obs[: self.n_arms]
        if previous.any():
            arm = int(previous.argmax())
            self.pulls[arm] += 1.0
            self.wins[arm] += float(obs[self.n_arms])

    def act(self, obs: np.ndarray, info: dict[str, Any]) -> int:
        self._observe(obs, info)
        return self._choose()

    def _choose(self) -> int:
        raise NotImplementedError


class UCB1Policy(_CountingPolicy):
    """UCB1 (Auer et al. 2002): each arm once, then the highest ``mean + sqrt(2 ln t / n)``."""

    def _choose(self) -> int:
        untried = np.flatnonzero(self.pulls == 0)
        if untried.size:
            return int(untried[0])
        t = self.pulls.sum()
        return int(np.argmax(self.wins / self.pulls + np.sqrt(2.0 * math.log(t) / self.pulls)))


class ThompsonPolicy(_CountingPolicy):
    """Thompson sampling with a Beta(1, 1) prior per arm, the prior the bandits are drawn from."""

    def __init__(self, n_arms: int, seed: int | None = None) -> None:
        super().__init__(n_arms)
        self.rng = np.random.default_rng(seed)

    def _choose(self) -> int:
        return int(np.argmax(self.rng.beta(1.0 + self.wins, 1.0 + self.pulls - self.wins)))


class WinStayLoseShiftPolicy:
    """The best memoryless policy known: repeat a winning arm, move to the next arm after a loss.

    It reads only the current observation, so it is what a memoryless agent can reach.
    """

    def __init__(self, n_arms: int, seed: int | None = None) -> None:
        self.n_arms = check_int("n_arms", n_arms, 2)
        self.rng = np.random.default_rng(seed)

    def act(self, obs: np.ndarray, info: dict[str, Any]) -> int:
        previous = obs[: self.n_arms]
        if not previous.any():  # first pull of a trial
            return int(self.rng.integers(self.n_arms))
        arm = int(previous.argmax())
        return arm if obs[self.n_arms] > 0.5 else (arm + 1) % self.n_arms


@dataclass(frozen=True)
class BanditScore:
    reward_per_pull: float  # mean reward per pull over all trials
    regret_per_trial: float  # mean of sum over a trial's pulls of (best arm's p - pulled arm's p)
    episode_return: float  # mean episode return, comparable with TaskSpec.optimal_return / memoryless_return
    n_trials: int


def evaluate_bandit_policy(policy: BanditPolicy, n_trials: int = 500, seed: int = 0, **env_kwargs: Any) -> BanditScore:
    """Play ``n_trials`` trials of ``MetaBanditEnv(**env_kwargs)`` and score the policy (pseudo-regret)."""
    n_trials = check_int("n_trials", n_trials, 1)
    env = MetaBanditEnv(**env_kwargs)
    obs, info = env.reset(seed=seed)
    rewards = regret = 0.0
    for _ in range(n_trials):
        for episode in range(env.episodes_per_trial):
            if episode > 0:
                obs, info = env.reset()
            best = float(env.arm_probs.max())
            done = False
            while not done:
                action = policy.act(obs, info)
                regret += best - float(env.arm_probs[action])
                obs, reward, terminated, truncated, info = env.step(action)
                rewards += reward
                done = terminated or truncated
        obs, info = env.reset()  # the next trial
    pulls = n_trials * env.episodes_per_trial * env.pulls_per_episode
    return BanditScore(
        reward_per_pull=rewards / pulls,
        regret_per_trial=regret / n_trials,
        episode_return=rewards / (n_trials * env.episodes_per_trial),
        n_trials=n_trials,
    )


def baseline_scores(n_trials: int = 500, seed: int = 0, **env_kwargs: Any) -> dict[str, BanditScore]:
    """UCB1, Thompson sampling and the best memoryless policy on the same sequence of bandits."""
    n_arms = MetaBanditEnv(**env_kwargs).n_arms
    policies: dict[str, BanditPolicy] = {
        "ucb1": UCB1Policy(n_arms),
        "thompson": ThompsonPolicy(n_arms, seed=seed),
        "win_stay_lose_shift": WinStayLoseShiftPolicy(n_arms, seed=seed),
    }
    return {name: evaluate_bandit_policy(p, n_trials, seed, **env_kwargs) for name, p in policies.items()}
