"""Each task's documented optimum and memoryless ceiling, measured with scripted policies.

Oracles peek at the hidden truth (``env.oracle_action()``, or the unwrapped state for control tasks) and must
reach the optimum; the best memoryless policies see only the current observation and must land on the
documented ceiling, averaged over many episodes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import envs
from envs import masked
from envs.count_recall import memoryless_answers
from envs.key_door import CELL, COLOURS, PAD

SYMBOLIC = [s for s in envs.list_tasks() if s.category not in ("control",)]
Policy = Callable[[np.ndarray, gym.Env], Any]


def mean_return(env_id: str, policy: Policy, episodes: int, seed: int = 0, **kwargs: Any) -> tuple[float, float]:
    """Mean and standard error of the episode return; ``policy(obs, env)``."""
    env = gym.make(env_id, **kwargs)
    returns = []
    obs, _ = env.reset(seed=seed)
    for _ in range(episodes):
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs, env.unwrapped))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
        obs, _ = env.reset()
    return float(np.mean(returns)), float(np.std(returns) / np.sqrt(episodes))


@pytest.mark.parametrize("spec", SYMBOLIC, ids=lambda s: s.name)
@pytest.mark.parametrize("level", envs.LEVELS)
def test_oracle_reaches_the_optimum(spec: envs.TaskSpec, level: str) -> None:
    """Deterministic tasks exactly; the bandit's oracle (best arm every pull) in expectation."""
    episodes = 200 if spec.name == "MetaBandit" else 20
    mean, stderr = mean_return(spec.preset_id(level), lambda obs, env: env.oracle_action(), episodes)
    assert mean == pytest.approx(spec.optimal_return(**spec.kwargs(level)), abs=4 * stderr + 1e-9)


def _symbol(obs: np.ndarray, n: int) -> int:
    return int(np.argmax(obs[:n]))


def memoryless_policy(spec: envs.TaskSpec, kwargs: dict[str, Any]) -> Policy:
    """The best memoryless policy of each task: a function of the current observation only."""
    name = spec.name
    if name == "TMaze":  # forward until the junction, then always up
        return lambda obs, env: 2 if obs[3] == 1.0 else 0
    if name in ("RepeatPrevious", "RepeatFirst"):  # any function of the current symbol does as well
        return lambda obs, env: _symbol(obs, kwargs["n_symbols"])
    if name == "CountRecall":
        n, (no_match, match) = kwargs["n_symbols"], memoryless_answers(**kwargs)
        return lambda obs, env: match if _symbol(obs, n) == _symbol(obs[n:], n) else no_match
    if name == "DelayedRecall":
        return lambda obs, env: 0
    if name == "MetaBandit":  # win-stay / lose-shift to the next arm
        k = kwargs["n_arms"]

        def win_stay_lose_shift(obs: np.ndarray, env: gym.Env) -> int:
            if not obs[:k].any():
                return int(env.np_random.integers(k))  # the env's generator: reproducible, and never sees the bandit
            arm = _symbol(obs, k)
            return arm if obs[k] == 1.0 else (arm + 1) % k

        return win_stay_lose_shift
    if name == "KeyDoor":
        return _key_door_door_by_colour
    raise AssertionError(name)


def _key_door_door_by_colour(obs: np.ndarray, env: gym.Env) -> int:
    """Walk right until the doors are in view; then open the door whose colour comes first in the palette.

    It reads the image but remembers nothing; any such rule opens the key's door half the time.
    """
    centre = PAD * CELL + CELL // 2
    upper = tuple(int(c) for c in obs[(PAD - 1) * CELL + CELL // 2, centre])
    lower = tuple(int(c) for c in obs[(PAD + 1) * CELL + CELL // 2, centre])
    palette = [tuple(colour) for colour in COLOURS]
    if upper not in palette or lower not in palette:  # the agent's cell has walls above and below
        return 0
    return 2 if palette.index(upper) < palette.index(lower) else 3


@pytest.mark.parametrize("spec", SYMBOLIC, ids=lambda s: s.name)
@pytest.mark.parametrize("level", envs.LEVELS)
def test_best_memoryless_policy_sits_at_the_ceiling(spec: envs.TaskSpec, level: str) -> None:
    kwargs = spec.kwargs(level)
    episodes = {"TMaze": 2000, "KeyDoor": 2000, "MetaBandit": 1000}.get(spec.name, 400)
    mean, stderr = mean_return(spec.preset_id(level), memoryless_policy(spec, kwargs), episodes)
    ceiling = spec.memoryless_return(**kwargs)
    assert abs(mean - ceiling) < 4 * stderr + 1e-3, f"{spec.name}-{level}: {mean:.4f} +- {stderr:.4f} vs {ceiling:.4f}"


def test_tmaze_cue_dependent_timing_does_not_help() -> None:
    """Acting on the cue at step 0 (stall on one cue, go on the other) still cannot beat a coin flip."""

    def policy(obs: np.ndarray, env: gym.Env) -> int:
        if obs[1] == 1.0:  # cue "down": step back into the wall once, i.e. arrive one step later
            return 1
        return 2 if obs[3] == 1.0 else 0

    mean, stderr = mean_return("rlgru/TMaze-Easy-v0", policy, 2000)
    assert mean < 0.5 + 4 * stderr


def test_count_recall_ceiling_by_brute_force() -> None:
    """The best memoryless answers beat every other constant pair of answers (exhaustive, exact)."""
    kwargs = {"length": 6, "n_symbols": 2, "max_count": 3}
    best = envs.TASKS["CountRecall"].memoryless_return(**kwargs)
    env = envs.CountRecallEnv(**kwargs)
    scores = {}
    for no_match in range(4):
        for match in range(4):
            total, episodes = 0.0, 3000
            env.reset(seed=1)
            for _ in range(episodes):
                obs, _ = env.reset()
                done = False
                while not done:
                    same = _symbol(obs, 2) == _symbol(obs[2:], 2)
                    obs, reward, done, _, _ = env.step(match if same else no_match)
                    total += reward
            scores[no_match, match] = total / episodes
    assert max(scores.values()) == pytest.approx(best, abs=0.02)


CONTROL = {
    "CartPoleNoVel": (masked.cartpole_oracle_action, masked.cartpole_memoryless_action, 20, 200),
    "PendulumNoVel": (masked.pendulum_oracle_action, masked.pendulum_memoryless_action, 10, 50),
}


@pytest.mark.parametrize("name", CONTROL)
def test_control_tasks_reference_controllers(name: str) -> None:
    """Full-state oracles near the documented optimum; the best memoryless controllers near the estimate."""
    spec = envs.TASKS[name]
    oracle, memoryless, oracle_episodes, memoryless_episodes = CONTROL[name]
    optimum, ceiling = spec.optimal_return(), spec.memoryless_return()
    scale = abs(optimum - ceiling)
    for level in envs.LEVELS:
        mean, _ = mean_return(spec.preset_id(level), lambda obs, env: oracle(env), oracle_episodes, seed=1000)
        assert mean >= optimum - 0.1 * scale, (level, mean)
    mean, _ = mean_return(spec.preset_id("Easy"), lambda obs, env: memoryless(obs), memoryless_episodes, seed=1000)
    assert abs(mean - ceiling) < 0.1 * scale, mean
