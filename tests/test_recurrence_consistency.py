"""The core risk of recurrent PPO: training must replay exactly what the rollout computed.

Before any gradient step, the log-probs and values recomputed from the buffer's padded sequences must equal the
rollout-time ones for every sample, with episodes ending mid-rollout, rollouts cut mid-episode, sequences cut
at max_seq_len, padding, and memory carried across episodes (trial/never) and across rollouts.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env

from rlgru import RecurrentPPO
from rlgru.cores import core_names
from rlgru.fast.optim_step import GradientStep
from rlgru.fast.update import FusedUpdate
from tests.helpers import ACTION_SPACES, RandomEpisodeEnv


def make_model(core: str, shared: bool, hidden_reset: str, action_space: str = "discrete", **kwargs) -> RecurrentPPO:
    env = make_vec_env(RandomEpisodeEnv, n_envs=3, seed=1, env_kwargs={"action_space": ACTION_SPACES[action_space]})
    return RecurrentPPO(
        "MlpGruPolicy",
        env,
        n_steps=20,
        batch_size=24,
        max_seq_len=7,
        hidden_reset=hidden_reset,
        seed=0,
        policy_kwargs={"core": core, "hidden_size": 16, "shared_core": shared, "net_arch": [16]},
        **kwargs,
    )


def collect(model: RecurrentPPO, n_rollouts: int) -> None:
    """Collect rollouts, training in between so the later ones start from carried state and new weights."""
    _, callback = model._setup_learn(10_000, None)
    for i in range(n_rollouts):
        assert model.collect_rollouts(model.env, callback, model.rollout_buffer, model.n_steps)
        if i + 1 < n_rollouts:
            model.train()


def assert_replay_matches_rollout(model: RecurrentPPO) -> None:
    """Both ways train() computes a minibatch: ``minibatch_losses`` and, where the policy allows it, the
    autograd-free update (``rlgru.fast.update``)."""
    buffer = model.rollout_buffer
    policy = model.policy
    plan = model.fast_path_plan()
    fused_update = FusedUpdate(policy, GradientStep(policy, policy.optimizer).flat) if plan.update.used else None
    covered = policy.core in ("gru", "lstm") and policy.critic_core is not None and plan.heads.used
    assert (fused_update is not None) == covered, "the fused update covers separate GRU/LSTM kernel cores"
    n_checked = 0
    with th.no_grad():
        for batch in buffer.get(model.batch_size):
            computed = [model.minibatch_losses(batch, clip_range=0.2)]
            if fused_update is not None:
                computed.append(fused_update(batch, 0.2, None, model.ent_coef, model.vf_coef, True))
            for losses in computed:
                np.testing.assert_allclose(losses["log_prob"], batch.old_log_prob, atol=1e-5)
                np.testing.assert_allclose(losses["values"], batch.old_values, atol=1e-5)
            n_checked += int(batch.mask.sum())
    assert n_checked == buffer.buffer_size * buffer.n_envs, "every rollout sample is replayed exactly once"


@pytest.mark.parametrize(
    "core,shared,hidden_reset,cut_at_resets",
    list(itertools.product(core_names(), [False, True], ["episode", "trial", "never"], [True, False])),
)
def test_first_epoch_logprobs_match_rollout(core: str, shared: bool, hidden_reset: str, cut_at_resets: bool) -> None:
    """Both replay layouts: sequences cut at resets, and uncut lanes whose cores reset mid-sequence."""
    model = make_model(core, shared, hidden_reset)
    model.rollout_buffer.cut_at_resets = cut_at_resets
    collect(model, n_rollouts=3)
    resets = model.rollout_buffer.hidden_resets
    episode_starts = model.rollout_buffer.episode_starts.astype(bool)
    assert episode_starts[1:].any(), "the test needs episodes that end mid-rollout"
    if hidden_reset == "episode":
        assert (resets == episode_starts).all()
    elif hidden_reset == "trial":
        assert resets.any() and (resets <= episode_starts).all() and (resets < episode_starts).any()
    else:
        assert not resets.any()
    assert_replay_matches_rollout(model)


@pytest.mark.parametrize("core", core_names())
@pytest.mark.parametrize("hidden_reset", ["episode", "trial"])
def test_first_epoch_logprobs_match_rollout_with_every_fast_path_off(core: str, hidden_reset: str) -> None:
    """The definition alone (``fast_paths=False``: PyTorch cores, autograd heads): the same guarantee."""
    model = make_model(core, False, hidden_reset, fast_paths=False)
    assert not any(choice.used for choice in model.fast_path_plan().choices)
    collect(model, n_rollouts=3)
    assert model.rollout_buffer.episode_starts[1:].any(), "the test needs episodes that end mid-rollout"
    assert_replay_matches_rollout(model)


@pytest.mark.parametrize("action_space", sorted(ACTION_SPACES))
def test_first_epoch_logprobs_match_rollout_for_action_spaces(action_space: str) -> None:
    model = make_model("gru", False, "episode", action_space=action_space)
    collect(model, n_rollouts=2)
    assert_replay_matches_rollout(model)


def test_train_with_zero_learning_rate_sees_ratio_one_throughout() -> None:
    """Through train() itself: with lr=0 no step changes the policy, so every ratio is 1 in every epoch."""
    model = make_model("gru", False, "trial", learning_rate=0.0, n_epochs=3)
    collect(model, n_rollouts=2)
    model.train()
    logged = model.logger.name_to_value
    assert logged["train/approx_kl"] == pytest.approx(0.0, abs=1e-7)
    assert logged["train/clip_fraction"] == 0.0


def test_critic_without_core_matches_rollout() -> None:
    env = make_vec_env(RandomEpisodeEnv, n_envs=2, seed=3)
    model = RecurrentPPO("MlpLstmPolicy", env, n_steps=16, batch_size=16, seed=0,
                         policy_kwargs={"lstm_hidden_size": 8, "enable_critic_lstm": False})
    assert model.policy.critic_core is None and model.policy.critic_projection is not None
    collect(model, n_rollouts=2)
    assert_replay_matches_rollout(model)


def test_state_persists_across_rollouts_and_learn_calls() -> None:
    model = make_model("gru", False, "never")
    model.learn(60)
    state_after_first = model._last_state.clone()
    assert state_after_first.abs().sum() > 0
    _, callback = model._setup_learn(60, None, reset_num_timesteps=False)
    assert th.equal(model._last_state, state_after_first), "learn(reset_num_timesteps=False) keeps the memory"
    model._setup_learn(60, None, reset_num_timesteps=True)
    assert model._last_state.abs().sum() == 0, "a fresh learn() resets the envs, so memory starts from zero"
