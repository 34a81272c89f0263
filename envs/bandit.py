"""Meta-RL bandit (RL², Duan et al. 2016): one Bernoulli bandit per trial of several episodes.

The agent meets a fresh bandit every trial and has to explore it, then exploit what it learned in the later
episodes of the same trial: the one task here whose memory must survive episode boundaries.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from gymnasium import spaces

from envs._common import FLOAT, SymbolicEnv, check_action, check_int


class MetaBanditEnv(SymbolicEnv):
    """A ``n_arms``-armed Bernoulli bandit whose arm probabilities hold for a trial of ``episodes_per_trial``
    episodes of ``pulls_per_episode`` pulls each.

    A pull of arm ``a`` pays 1 with probability ``arm_probs[a]``, else 0. At the start of a trial the
    probabilities are drawn from the ``prior``:

    * ``"one_good"`` (default): one arm, chosen uniformly, pays with probability 0.8, the others 0.2. Finding
      it takes a few pulls and keeping it takes memory: win-stay / lose-shift, the best memoryless policy,
      leaves the good arm after each of its losses (per pull 0.67 with 2 arms, 0.49 with 5, against 0.8).
    * ``"uniform"``: every arm uniform on [0, 1], as in RL². Win-stay / lose-shift is nearly as good as
      learned or classic algorithms there (0.585 per pull over 20 pulls with 2 arms, Thompson sampling
      0.597, the best arm 0.667), so memory shows less.

    Observation (``n_arms + 2``): the previous pull's arm one-hot, its reward, and a flag that is 1 only on
    the first observation of a trial (where there is no previous pull and the rest is 0). The previous pull
    is carried across episode boundaries inside a trial, as in RL².

    Trials and episodes, exactly:

    * every ``reset()`` info and every ``step()`` info has the key ``"trial_start"`` (bool). It is True only
      in the info of a ``reset()`` that begins a new trial (new arm probabilities), False everywhere else;
    * the env counts episodes itself: a ``reset()`` begins a new trial when it is the first reset, when it
      gets a ``seed``, when ``options={"new_trial": True}``, or when the current trial has already had
      ``episodes_per_trial`` episodes; any other ``reset()`` begins the next episode of the same trial;
    * an episode ends after ``pulls_per_episode`` pulls: the last episode of a trial ends with
      ``terminated=True`` (the trial is over), the others with ``truncated=True`` (the task, the trial, goes
      on, so a value bootstrap at the boundary is right).

    * Memory: per-arm pulls and wins, kept for the whole trial (``episodes_per_trial * pulls_per_episode``
      pulls), across episode resets.
    * Optimal return (per episode): ``pulls_per_episode`` times the best arm's expected probability (0.8,
      or ``n_arms / (n_arms + 1)`` for the uniform prior), reached by an oracle that knows the probabilities;
      a bound no learner reaches, as it must explore (UCB1 and Thompson sampling figures:
      ``envs/bandit_baselines.py`` and the README).
    * Memoryless ceiling (per episode, averaged over a trial): ``memoryless_return``, the value of
      win-stay / lose-shift-to-the-next-arm, computed exactly per bandit (and, for the uniform prior,
      integrated over it numerically). A numerical search over all memoryless policies (2 and 3 arms, both
      priors) finds nothing better; for more arms it is the best memoryless policy we know, so read it as a
      tight lower bound of the ceiling.
    """

    PRIORS = ("one_good", "uniform")
    P_GOOD, P_BAD = 0.8, 0.2

    def __init__(
        self,
        n_arms: int = 2,
        pulls_per_episode: int = 2,
        episodes_per_trial: int = 10,
        prior: str = "one_good",
        render_mode: str | None = None,
    ) -> None:
        self.n_arms = check_int("n_arms", n_arms, 2)
        if prior not in self.PRIORS:
            raise ValueError(f"prior must be one of {self.PRIORS}, got {prior!r}")
        self.prior = prior
        self.pulls_per_episode = check_int("pulls_per_episode", pulls_per_episode, 1)
        self.episodes_per_trial = check_int("episodes_per_trial", episodes_per_trial, 1)
        self._set_render_mode(render_mode)
        self.observation_space = spaces.Box(0.0, 1.0, (self.n_arms + 2,), FLOAT)
        self.action_space = spaces.Discrete(self.n_arms)
        # row 2a + r: previous pull was arm a with reward r; the last row: first observation of a trial
        self._rows = np.zeros((2 * self.n_arms + 1, self.n_arms + 2), FLOAT)
        for a in range(self.n_arms):
            self._rows[2 * a : 2 * a + 2, a] = 1.0
            self._rows[2 * a + 1, self.n_arms] = 1.0
        self._rows[-1, -1] = 1.0
        self.arm_probs = np.zeros(self.n_arms)
        self.episode = 0  # episodes begun in the current trial
        self.pull = 0  # pulls made in the current trial
        self._probs: list[float] = []
        self._uniforms: list[float] = []
        self._row = 2 * self.n_arms
        self._pulls_left = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        new_trial = (
            seed is not None
            or not self._probs
            or self.episode >= self.episodes_per_trial
            or bool((options or {}).get("new_trial", False))
        )
        if new_trial:
            if self.prior == "uniform":
                self.arm_probs = self.np_random.random(self.n_arms)
            else:
                self.arm_probs = np.full(self.n_arms, self.P_BAD)
                self.arm_probs[self.np_random.integers(self.n_arms)] = self.P_GOOD
            self._probs = self.arm_probs.tolist()
            # a trial never has more pulls than this; drawing them now keeps step() cheap
            self._uniforms = self.np_random.random(self.episodes_per_trial * self.pulls_per_episode).tolist()
            self.episode = 0
            self.pull = 0
            self._row = 2 * self.n_arms
        self.episode += 1
        self._pulls_left = self.pulls_per_episode
        return self._rows[self._row].copy(), {"trial_start": new_trial}

    def step(self, action: np.int64 | int) -> tuple[np.ndarray, float, bool, bool, dict]:
        a = check_action(action, self.n_arms)
        if self._pulls_left <= 0:
            raise RuntimeError("the episode is over: call reset() before step()")
        won = self._uniforms[self.pull] < self._probs[a]
        self.pull += 1
        self._pulls_left -= 1
        self._row = 2 * a + won
        ended = self._pulls_left == 0
        terminated = ended and self.episode >= self.episodes_per_trial
        return self._rows[self._row].copy(), float(won), terminated, ended and not terminated, {"trial_start": False}

    def _features(self) -> np.ndarray:
        return self._rows[self._row]

    def _text(self) -> str:
        probs = " ".join(f"{p:.2f}" for p in self._probs)
        return f"episode {self.episode}/{self.episodes_per_trial} pull {self.pull} probs [{probs}]"

    def oracle_action(self) -> int:
        return int(np.argmax(self.arm_probs))


def optimal_return(n_arms: int, pulls_per_episode: int, prior: str, **_: Any) -> float:
    best = n_arms / (n_arms + 1) if prior == "uniform" else MetaBanditEnv.P_GOOD
    return pulls_per_episode * best


def _win_stay_lose_shift(probs: np.ndarray, n_pulls: int) -> float:
    """Mean reward per pull of win-stay / lose-shift-to-the-next-arm, for each row of ``probs`` (exact).

    The arm pulled is a Markov chain: stay after a win, move to the next arm after a loss; the first pull of a
    trial is uniform.
    """
    arm = np.full(probs.shape, 1.0 / probs.shape[-1])
    total = np.zeros(probs.shape[:-1])
    for _ in range(n_pulls):
        total += (arm * probs).sum(axis=-1)
        arm = arm * probs + np.roll(arm * (1.0 - probs), 1, axis=-1)
    return total / n_pulls


@lru_cache(maxsize=64)
def win_stay_lose_shift_value(n_arms: int, n_pulls: int, prior: str = "one_good") -> float:
    """Expected reward per pull of win-stay / lose-shift over a trial of ``n_pulls`` pulls, under ``prior``.

    ``one_good``: exact (the policy is symmetric under a cyclic relabelling of the arms, so the good arm can be
    arm 0). ``uniform``: exact per bandit, integrated over the prior with 8192 scrambled Sobol points, an
    error well under 1e-3.
    """
    if prior == "one_good":
        probs = np.full((1, n_arms), MetaBanditEnv.P_BAD)
        probs[0, 0] = MetaBanditEnv.P_GOOD
        return float(_win_stay_lose_shift(probs, n_pulls)[0])
    from scipy.stats import qmc  # scipy is a dependency of rlgru; imported here to keep `import envs` light

    probs = qmc.Sobol(d=n_arms, scramble=True, seed=0).random(8192)
    return float(_win_stay_lose_shift(probs, n_pulls).mean())


def memoryless_return(n_arms: int, pulls_per_episode: int, episodes_per_trial: int, prior: str, **_: Any) -> float:
    per_pull = win_stay_lose_shift_value(int(n_arms), int(pulls_per_episode) * int(episodes_per_trial), prior)
    return pulls_per_episode * per_pull
