"""The meta-RL bandit's trial contract (``info["trial_start"]``), episode structure and classic baselines."""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env

import envs
from envs import MetaBanditEnv
from envs.bandit_baselines import (
    ThompsonPolicy,
    UCB1Policy,
    WinStayLoseShiftPolicy,
    baseline_scores,
    evaluate_bandit_policy,
)


def play_episode(env: MetaBanditEnv, action: int = 0) -> list[tuple[bool, bool, dict]]:
    ends = []
    while True:
        _, _, terminated, truncated, info = env.step(action)
        ends.append((terminated, truncated, info))
        if terminated or truncated:
            return ends


def test_trial_start_is_true_only_on_the_reset_that_begins_a_trial() -> None:
    env = MetaBanditEnv(n_arms=3, pulls_per_episode=3, episodes_per_trial=4, prior="uniform")
    flags, probs = [], []
    for _ in range(12):  # three trials
        _, info = env.reset()
        flags.append(info["trial_start"])
        probs.append(env.arm_probs.copy())
        steps = play_episode(env)
        assert all(step_info == {"trial_start": False} for _, _, step_info in steps)
    assert flags == [True, False, False, False] * 3
    for trial in range(3):  # probabilities hold within a trial and change between trials
        block = probs[4 * trial : 4 * trial + 4]
        assert all(np.array_equal(block[0], p) for p in block)
    assert not np.array_equal(probs[0], probs[4])


def test_seed_or_option_starts_a_new_trial() -> None:
    env = MetaBanditEnv(episodes_per_trial=5, prior="uniform")
    assert env.reset(seed=1)[1] == {"trial_start": True}
    first = env.arm_probs.copy()
    play_episode(env)
    assert env.reset()[1] == {"trial_start": False}
    play_episode(env)
    assert env.reset(seed=1)[1] == {"trial_start": True}  # mid-trial, and the same seed gives the same bandit
    np.testing.assert_array_equal(env.arm_probs, first)
    play_episode(env)
    assert env.reset(options={"new_trial": True})[1] == {"trial_start": True}
    assert env.episode == 1


def test_episode_ends_truncated_inside_a_trial_and_terminated_at_its_end() -> None:
    env = MetaBanditEnv(pulls_per_episode=2, episodes_per_trial=3)
    env.reset(seed=0)
    ends = []
    for episode in range(3):
        if episode:
            env.reset()
        steps = play_episode(env)
        assert len(steps) == 2 and steps[0][:2] == (False, False)
        ends.append(steps[-1][:2])
    assert ends == [(False, True), (False, True), (True, False)]
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


def test_observation_carries_the_previous_pull_across_episodes() -> None:
    env = MetaBanditEnv(n_arms=3, pulls_per_episode=1, episodes_per_trial=3)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, [0, 0, 0, 0, 1])  # no previous pull, trial flag
    last, reward, *_ = env.step(2)
    assert last[2] == 1 and last[3] == reward and last[4] == 0
    obs, info = env.reset()
    assert not info["trial_start"]
    np.testing.assert_array_equal(obs, last)
    env.step(0)
    env.reset()
    env.step(0)
    obs, info = env.reset()  # a new trial forgets
    assert info["trial_start"]
    np.testing.assert_array_equal(obs, [0, 0, 0, 0, 1])


def test_one_good_prior() -> None:
    env = MetaBanditEnv(n_arms=4)
    for seed in range(20):
        env.reset(seed=seed)
        assert sorted(env.arm_probs) == [0.2, 0.2, 0.2, 0.8]


def test_trial_starts_reach_rlgru_through_an_sb3_vec_env() -> None:
    """The algorithm reads trial starts from the vec env's reset infos: one per trial, for every env."""
    from rlgru.algorithm.hidden_reset import hidden_resets_after_step

    spec = envs.TASKS["MetaBandit"]
    kwargs = spec.kwargs("Easy")
    trial_length = kwargs["pulls_per_episode"] * kwargs["episodes_per_trial"]
    vec_env = make_vec_env(spec.preset_id("Easy"), n_envs=2, seed=0)
    vec_env.reset()
    resets = []
    for _ in range(3 * trial_length):
        _, _, dones, infos = vec_env.step(np.zeros(2, dtype=np.int64))
        resets.append(hidden_resets_after_step("trial", vec_env, dones, infos))
        assert hidden_resets_after_step("episode", vec_env, dones, infos).sum() == dones.sum()
    resets = np.array(resets)
    assert resets.sum(axis=0).tolist() == [3, 3]
    assert resets[trial_length - 1 :: trial_length].all()


def test_baselines_score_between_memoryless_and_oracle() -> None:
    spec = envs.TASKS["MetaBandit"]
    kwargs = spec.kwargs("Medium")
    scores = baseline_scores(n_trials=300, seed=0, **kwargs)
    memoryless, optimal = spec.memoryless_return(**kwargs), spec.optimal_return(**kwargs)
    assert scores["win_stay_lose_shift"].episode_return == pytest.approx(memoryless, rel=0.05)
    for name in ("ucb1", "thompson"):
        assert memoryless < scores[name].episode_return < optimal, name
        assert scores[name].regret_per_trial < scores["win_stay_lose_shift"].regret_per_trial


def test_regret_is_zero_for_the_oracle_and_matches_reward() -> None:
    class FirstArm:
        def __init__(self, env: MetaBanditEnv) -> None:
            self.env = env

        def act(self, obs: np.ndarray, info: dict) -> int:
            return 0

    score = evaluate_bandit_policy(FirstArm(MetaBanditEnv()), n_trials=200, n_arms=2, prior="uniform")
    # always pulling arm 0 of uniform bandits: expected reward 1/2 per pull, regret E[max - p0] = 1/6 per pull
    pulls = 20
    assert score.reward_per_pull == pytest.approx(0.5, abs=0.03)
    assert score.regret_per_trial / pulls == pytest.approx(1 / 6, abs=0.02)


def test_policies_validate_and_reset_per_trial() -> None:
    with pytest.raises(ValueError, match="n_arms"):
        UCB1Policy(1)
    policy = ThompsonPolicy(2, seed=0)
    obs = np.array([0, 1, 1, 0], np.float32)  # arm 1 paid
    policy.act(obs, {"trial_start": False})
    assert policy.pulls.tolist() == [0, 1] and policy.wins.tolist() == [0, 1]
    policy.act(np.array([0, 0, 0, 1], np.float32), {"trial_start": True})
    assert policy.pulls.sum() == 0
    assert WinStayLoseShiftPolicy(3).act(np.array([0, 0, 1, 0, 0], np.float32), {}) == 0
