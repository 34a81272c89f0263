"""Env factory: ids, entry points, wrappers by short name, VecNormalize, seeding, and errors naming key paths."""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecNormalize

from rlgru.harness.config import EnvConfig
from rlgru.harness.env_factory import EnvSpec, check_env_spec, make_env, normalize_env
from rlgru.harness.errors import HarnessError


def test_registered_task_id_with_kwargs() -> None:
    env = make_env(EnvConfig(id="rlgru/TMaze-v0", env_kwargs={"length": 3}, n_envs=2), seed=0)
    try:
        assert isinstance(env, DummyVecEnv) and env.num_envs == 2
        assert env.get_attr("length")[0] == 3
    finally:
        env.close()


def test_entry_point_and_gym_wrappers_by_short_name() -> None:
    config = EnvConfig(id="envs.tmaze:TMazeEnv", env_kwargs={"length": 5}, n_envs=1,
                       wrappers=[{"name": "NoisyObservation", "kwargs": {"sigma": 0.0}},
                                 {"FrameStackObservation": {"stack_size": 2}}, "FlattenObservation"])
    env = make_env(config, seed=0)
    try:
        assert env.get_attr("length")[0] == 5
        plain = make_env(EnvConfig(id="rlgru/TMaze-v0", env_kwargs={"length": 5}, n_envs=1), seed=0)
        assert env.observation_space.shape[0] == 2 * plain.observation_space.shape[0]  # two frames
        plain.close()
    finally:
        env.close()


def test_mask_wrapper_hides_features() -> None:
    env = make_env(EnvConfig(id="CartPole-v1", n_envs=1, wrappers=[{"MaskObservation": {"indices": [0, 2]}}]), seed=0)
    try:
        assert env.observation_space.shape == (2,)
        assert env.reset().shape == (1, 2)
    finally:
        env.close()


def test_same_seed_same_episodes() -> None:
    def first_observations(seed: int) -> np.ndarray:
        env = make_env(EnvConfig(id="rlgru/RepeatFirst-Easy-v0", n_envs=3), seed=seed)
        try:
            return env.reset()
        finally:
            env.close()

    assert np.array_equal(first_observations(4), first_observations(4))
    assert not np.array_equal(first_observations(4), first_observations(5))


@pytest.mark.parametrize(
    ("spec", "where", "fragment"),
    [
        (EnvSpec("rlgru/TMaz-v0"), "env.id", "did you mean 'rlgru/TMaze-v0'"),
        (EnvSpec("NoSuchEnv-v9"), "env.id", "unknown environment 'NoSuchEnv-v9'"),
        (EnvSpec("no_such_module:Env"), "env.id", "cannot import module 'no_such_module'"),
        (EnvSpec("envs.tmaze:Nothing"), "env.id", "has no callable 'Nothing'"),
        (EnvSpec("rlgru/TMaze-v0", {"lenght": 3}), "env.env_kwargs", "lenght"),
        (EnvSpec("rlgru/TMaze-v0", {"length": -1}), "env.env_kwargs", "length"),
        (EnvSpec("CartPole-v1", {}, (("NoSuchWrapper", {}),)), "env.wrappers[0]", "unknown wrapper 'NoSuchWrapper'"),
        (EnvSpec("CartPole-v1", {}, (("MaskObservation", {"indices": [9]}),)), "env.wrappers[0]", "indices"),
    ],
)
def test_bad_env_sections_name_the_key(spec: EnvSpec, where: str, fragment: str) -> None:
    with pytest.raises(HarnessError) as caught:
        check_env_spec(spec)
    assert caught.value.where == where
    assert fragment in str(caught.value)


def test_vecnormalize_for_training_and_evaluation() -> None:
    config = EnvConfig(id="CartPole-v1", n_envs=2, normalize={"norm_reward": True, "clip_obs": 5.0})
    training = normalize_env(make_env(config, seed=0), config, gamma=0.9)
    evaluation = normalize_env(make_env(config, seed=1), config, gamma=0.9, training=False)
    try:
        assert isinstance(training, VecNormalize) and training.training and training.norm_reward
        assert training.gamma == 0.9 and training.clip_obs == 5.0
        assert isinstance(evaluation, VecNormalize) and not evaluation.training and not evaluation.norm_reward
    finally:
        training.close()
        evaluation.close()


def test_subprocess_workers_know_the_rlgru_ids() -> None:
    """Workers start fresh interpreters; the env spec registers our tasks there before gym.make."""
    config = EnvConfig(id="rlgru/TMaze-Easy-v0", n_envs=2, vec_env="subprocess")
    env = make_env(config, seed=0)
    try:
        assert isinstance(env, SubprocVecEnv)
        dummy = make_env(config, seed=0, vec_env="dummy")
        assert np.array_equal(env.reset(), dummy.reset())
        actions = np.array([0, 0])
        for _ in range(3):
            sub_step, dummy_step = env.step(actions), dummy.step(actions)
            assert np.array_equal(sub_step[0], dummy_step[0]) and np.array_equal(sub_step[1], dummy_step[1])
        dummy.close()
    finally:
        env.close()
