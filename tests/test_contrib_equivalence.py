"""rlgru's LSTM agent against sb3-contrib's: same seed, same start; same rollout, same PPO gradient.

This is what makes rlgru a drop-in: a user who changes the import keeps the algorithm, bit for bit up to float
rounding, and only the speed changes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch as th
from sb3_contrib import RecurrentPPO as ContribRecurrentPPO
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.env_util import make_vec_env

from rlgru import RecurrentPPO
from tests.helpers import ACTION_SPACES, RandomEpisodeEnv

N_ENVS, N_STEPS = 4, 16


def contrib_names_to_rlgru(state_dict: dict[str, th.Tensor]) -> dict[str, th.Tensor]:
    renames = (("lstm_actor.", "actor_core.lstm."), ("lstm_critic.", "critic_core.lstm."),
               ("critic.", "critic_projection."))
    renamed = {}
    for name, value in state_dict.items():
        for old, new in renames:
            if name.startswith(old):
                name = new + name[len(old):]
        renamed[name] = value
    return renamed


def make_pair(policy_kwargs: dict[str, Any], action_space: str = "discrete", **ppo_kwargs: Any) -> tuple[Any, Any]:
    models = []
    for cls in (ContribRecurrentPPO, RecurrentPPO):
        env = make_vec_env(lambda: RandomEpisodeEnv(action_space=ACTION_SPACES[action_space]), n_envs=N_ENVS, seed=3)
        models.append(cls("MlpLstmPolicy", env, seed=3, n_steps=N_STEPS, policy_kwargs=policy_kwargs, **ppo_kwargs))
    return models[0], models[1]


POLICY_KWARGS = {
    "separate critic LSTM": {"lstm_hidden_size": 16, "enable_critic_lstm": True, "ortho_init": False},
    "linear critic": {"lstm_hidden_size": 16, "enable_critic_lstm": False},
    "shared two-layer LSTM": {"lstm_hidden_size": 16, "shared_lstm": True, "enable_critic_lstm": False,
                              "n_lstm_layers": 2},
}


@pytest.mark.parametrize("policy_kwargs", POLICY_KWARGS.values(), ids=POLICY_KWARGS.keys())
def test_same_seed_gives_sb3_contribs_initial_weights(policy_kwargs: dict[str, Any]) -> None:
    contrib, ours = make_pair(policy_kwargs)
    expected = contrib_names_to_rlgru(contrib.policy.state_dict())
    actual = ours.policy.state_dict()
    assert actual.keys() == expected.keys()
    for name in actual:
        assert th.equal(actual[name], expected[name]), name


def env_major(array: np.ndarray) -> np.ndarray:
    """A rollout field as ``[n_envs * n_steps, ...]``, the layout SB3 buffers switch to when sampled."""
    if array.shape[:2] == (N_STEPS, N_ENVS):
        array = RolloutBuffer.swap_and_flatten(array)
    return array.reshape(N_ENVS * N_STEPS, -1)


@pytest.mark.parametrize("action_space", ["discrete", "box"])
@pytest.mark.parametrize("policy_kwargs", POLICY_KWARGS.values(), ids=POLICY_KWARGS.keys())
def test_same_rollouts_and_same_ppo_gradient_as_sb3_contrib(
    policy_kwargs: dict[str, Any], action_space: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # learning_rate 0 keeps both policies equal across two rollouts (so the state crosses a rollout boundary) and
    # leaves the full-batch gradient of the last update in .grad; no gradient clipping, so no norm couples them.
    contrib, ours = make_pair(policy_kwargs, action_space, batch_size=N_STEPS * N_ENVS, n_epochs=1,
                              learning_rate=0.0, max_grad_norm=1e9)
    # sb3-contrib cuts one env lane at a random index each epoch (a side effect of its minibatch sampler that
    # truncates that lane's backpropagation); pin the cut to the lane boundary so both replay the same sequences.
    monkeypatch.setattr(np.random, "randint", lambda *args, **kwargs: 0)
    for model in (contrib, ours):
        th.manual_seed(0)
        model.learn(2 * N_STEPS * N_ENVS)

    for field in ("observations", "actions", "rewards", "episode_starts", "values", "log_probs", "returns"):
        np.testing.assert_allclose(env_major(getattr(ours.rollout_buffer, field)),
                                   env_major(getattr(contrib.rollout_buffer, field)), rtol=1e-5, atol=1e-5,
                                   err_msg=field)
    assert ours.rollout_buffer.episode_starts.sum() > 0  # episodes did end inside the rollout
    contrib_grads = contrib_names_to_rlgru({n: p.grad for n, p in contrib.policy.named_parameters()})
    for name, param in ours.policy.named_parameters():
        expected = contrib_grads[name]
        assert param.grad is not None and expected is not None, name
        th.testing.assert_close(param.grad, expected, rtol=1e-4, atol=1e-6, msg=name)
