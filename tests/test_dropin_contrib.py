"""What sb3-contrib's own RecurrentPPO tests exercise, checked against rlgru in rlgru's words.

sb3-contrib's ``tests/test_lstm.py`` passes against ``rlgru.RecurrentPPO`` with only its import changed
(``benchmarks/contrib_test_suite.py`` runs it from a checkout); these tests keep the same behaviours covered here,
where that file is not shipped: ``lstm_kwargs`` with its nn.LSTM meaning, the option combinations sb3-contrib
refuses (with the exception type its users catch), image, Dict, continuous and multi-dimensional action spaces, gSDE.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import FakeImageEnv
from stable_baselines3.common.evaluation import evaluate_policy

from rlgru import RecurrentPPO
from rlgru.algorithm.policies import IncompatiblePolicyOptions
from rlgru.cores import core_names

TWO_LAYERS_WITH_DROPOUT = [
    {"enable_critic_lstm": True, "lstm_hidden_size": 4, "lstm_kwargs": {"dropout": 0.5}, "n_lstm_layers": 2},
    {"enable_critic_lstm": False, "lstm_hidden_size": 4, "lstm_kwargs": {"dropout": 0.5}, "n_lstm_layers": 2},
]


@pytest.mark.parametrize("policy_kwargs", TWO_LAYERS_WITH_DROPOUT)
def test_lstm_kwargs_dropout_reaches_every_core(policy_kwargs: dict) -> None:
    model = RecurrentPPO("MlpLstmPolicy", "CartPole-v1", n_steps=16, seed=0, policy_kwargs=policy_kwargs)
    cores = [c for c in (model.policy.actor_core, model.policy.critic_core) if c is not None]
    assert len(cores) == (2 if policy_kwargs["enable_critic_lstm"] else 1)
    assert all(core.lstm.dropout == 0.5 and core.n_layers == 2 for core in cores)
    model.learn(32)


@pytest.mark.parametrize("core", ["gru", "lstm", "rnn", "mingru", "lru"])
def test_dropout_acts_between_layers_only_while_training(core: str) -> None:
    """Train mode: two calls on the same inputs differ (fresh masks); eval mode: equal to a core built without
    dropout from the same weights. The fused kernels and the PyTorch fallback both take this path."""
    layers = {"core": core, "hidden_size": 16, "n_layers": 2}
    model = RecurrentPPO("MlpPolicy", "CartPole-v1", n_steps=16, seed=0,
                         policy_kwargs={**layers, "core_kwargs": {"dropout": 0.5}})
    plain = RecurrentPPO("MlpPolicy", "CartPole-v1", n_steps=16, seed=0, policy_kwargs=layers)
    plain.policy.load_state_dict(model.policy.state_dict())
    x, starts = th.randn(6, 3, model.policy.features_dim), (th.rand(6, 3) < 0.3).float()
    dropped, reference = model.policy.actor_core, plain.policy.actor_core
    dropped.train()
    first, _ = dropped(x, None, starts)
    second, _ = dropped(x, None, starts)
    assert not th.allclose(first, second)
    dropped.eval()
    reference.eval()
    th.testing.assert_close(dropped(x, None, starts)[0], reference(x, None, starts)[0])


@pytest.mark.parametrize("policy_kwargs", [
    {"shared_lstm": True, "enable_critic_lstm": True},
    {"shared_lstm": True},  # sb3-contrib's enable_critic_lstm defaults to True: refused there too
    {"shared_lstm": True, "enable_critic_lstm": False, "share_features_extractor": False},
    {"shared_core": True, "share_features_extractor": False},
])
def test_contradictory_options_are_refused_as_sb3_contrib_refuses_them(policy_kwargs: dict) -> None:
    with pytest.raises(AssertionError) as raised:
        RecurrentPPO("MlpLstmPolicy", "CartPole-v1", n_steps=16, seed=0, policy_kwargs=policy_kwargs)
    assert isinstance(raised.value, IncompatiblePolicyOptions) and isinstance(raised.value, ValueError)
    assert "share" in str(raised.value)


@pytest.mark.parametrize("policy_kwargs", [
    {}, {"share_features_extractor": False}, {"shared_lstm": True, "enable_critic_lstm": False},
    *TWO_LAYERS_WITH_DROPOUT, {"enable_critic_lstm": False, "lstm_hidden_size": 4, "share_features_extractor": False},
])
def test_image_observations_train_with_every_critic_layout(policy_kwargs: dict) -> None:
    env = FakeImageEnv(screen_height=40, screen_width=40, n_channels=3)
    RecurrentPPO("CnnLstmPolicy", env, n_steps=16, n_epochs=2, seed=0,
                 policy_kwargs={**policy_kwargs, "features_extractor_kwargs": {"features_dim": 32}}).learn(32)


class _DictObservation(gym.ObservationWrapper):
    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.observation_space = spaces.Dict({"obs": env.observation_space})

    def observation(self, observation: np.ndarray) -> dict[str, np.ndarray]:
        return {"obs": observation}


@pytest.mark.parametrize("policy_kwargs", [{}, {"shared_lstm": True, "enable_critic_lstm": False},
                                           *TWO_LAYERS_WITH_DROPOUT])
def test_dict_observations_train_and_evaluate(policy_kwargs: dict) -> None:
    env = make_vec_env("CartPole-v1", n_envs=1, wrapper_class=_DictObservation)
    model = RecurrentPPO("MultiInputLstmPolicy", env, n_steps=32, policy_kwargs=policy_kwargs).learn(64)
    mean, _ = evaluate_policy(model, env, n_eval_episodes=2, warn=False)
    assert mean > 0


def test_gsde_with_value_clipping_on_continuous_actions() -> None:
    model = RecurrentPPO("MlpLstmPolicy", "Pendulum-v1", n_steps=16, seed=0, sde_sample_freq=4, use_sde=True,
                         clip_range_vf=0.1)
    model.learn(64)
    assert hasattr(model.policy, "log_std") and model.logger.name_to_value["train/clip_range_vf"] == 0.1


class _MatrixActionEnv(gym.Env):
    """Box actions of shape (2, 2): predict and the buffer must keep the action's shape, not flatten it away."""

    observation_space = spaces.Box(-1, 1, (10,), np.float32)
    action_space = spaces.Box(-1, 1, (2, 2), np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        assert action.shape == (2, 2)
        return self.observation_space.sample(), 1.0, bool(self.np_random.random() > 0.8), False, {}


@pytest.mark.parametrize("core", core_names())
def test_multi_dimensional_box_actions(core: str) -> None:
    model = RecurrentPPO("MlpPolicy", _MatrixActionEnv(), n_steps=64, n_epochs=2,
                         policy_kwargs={"core": core, "hidden_size": 8}).learn(64)
    actions, _ = model.predict(np.zeros((3, 10), np.float32), deterministic=True)
    assert actions.shape == (3, 2, 2)
    evaluate_policy(model, model.get_env(), n_eval_episodes=2)
