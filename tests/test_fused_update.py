"""The autograd-free minibatch (``rlgru.fast.update``) computes what ``RecurrentPPO.minibatch_losses`` defines.

Same losses, log-probs and values, and the same gradient in every parameter, for both fused cells, every action
distribution the heads kernel covers, stacked layers, padded sequences (a BPTT window that does not divide the
rollout) and value clipping, with ratios pushed across the clip range; a whole ``learn()`` ends at the same
parameters either way; policies it does not cover take the autograd path.
"""

from __future__ import annotations

import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env

from rlgru import RecurrentPPO
from rlgru.fast import heads as fused_heads
from rlgru.fast.optim_step import GradientStep
from rlgru.fast.update import DISABLE_ENV, FusedUpdate
from tests.helpers import ACTION_SPACES, RandomEpisodeEnv

pytestmark = pytest.mark.skipif(not fused_heads.KERNEL.available(), reason="the fused loss kernel could not be built")


def make_model(core: str = "gru", action_space: str = "discrete", n_layers: int = 1, **kwargs) -> RecurrentPPO:
    env = make_vec_env(RandomEpisodeEnv, n_envs=3, seed=1, env_kwargs={"action_space": ACTION_SPACES[action_space]})
    policy_kwargs = {"hidden_size": 8, "n_layers": n_layers, "net_arch": {"pi": [16], "vf": [12]}, "core": core,
                     "log_std_init": -0.3, **kwargs.pop("policy_kwargs", {})}
    return RecurrentPPO("MlpPolicy", env, n_steps=16, batch_size=24, seed=0, policy_kwargs=policy_kwargs, **kwargs)


def perturbed_after_rollout(model: RecurrentPPO) -> None:
    _, callback = model._setup_learn(10_000, None)
    assert model.collect_rollouts(model.env, callback, model.rollout_buffer, model.n_steps)
    with th.no_grad():  # move the policy away from the one that acted, so ratios leave the clip range
        for param in model.policy.parameters():
            param.add_(0.05 * th.randn_like(param))


@pytest.mark.parametrize(
    "core,action_space,n_layers,max_seq_len,clip_range_vf",
    [
        ("gru", "discrete", 1, None, None),
        ("gru", "box", 2, 6, 0.05),
        ("gru", "multidiscrete", 1, 5, None),
        ("lstm", "discrete", 2, None, 0.05),
        ("lstm", "box", 1, 6, None),
    ],
)
def test_losses_and_gradient_equal_the_autograd_definition(
    core: str, action_space: str, n_layers: int, max_seq_len: int | None, clip_range_vf: float | None
) -> None:
    model = make_model(core, action_space, n_layers, max_seq_len=max_seq_len, ent_coef=0.01)
    perturbed_after_rollout(model)
    policy = model.policy
    step = GradientStep(policy, policy.optimizer)
    assert model.fast_path_plan().update.used
    update = FusedUpdate(policy, step.flat)
    generator = th.Generator().manual_seed(0)
    padded = False
    for batch in model.rollout_buffer.get(model.batch_size):
        padded |= not bool(batch.mask.all())
        batch = batch._replace(
            old_log_prob=batch.old_log_prob + 0.15 * th.randn(batch.old_log_prob.shape, generator=generator),
            old_values=batch.old_values + 0.1 * th.randn(batch.old_values.shape, generator=generator),
        )
        step.flat.zero_()
        reference = model.minibatch_losses(batch, 0.1, clip_range_vf, fused=False)
        reference["loss"].backward()
        reference_grad = step.flat.buffer.clone()
        step.flat.buffer.fill_(float("nan"))  # the update must write every gradient, not add to one
        got = update(batch, 0.1, clip_range_vf, model.ent_coef, model.vf_coef, model.normalize_advantage)
        assert 0 < float(reference["clip"]) < 1, "the test needs ratios on both sides of the clip range"
        for key in ("loss", "pg", "value", "entropy", "kl", "clip", "log_prob", "values"):
            th.testing.assert_close(got[key], reference[key].detach(), rtol=1e-5, atol=1e-5, msg=key)
        th.testing.assert_close(step.flat.buffer, reference_grad, rtol=1e-4, atol=1e-6)
    assert padded == (max_seq_len is not None), "padding should come exactly from the BPTT window"


def test_training_ends_at_the_same_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    def trained(disabled: bool) -> dict[str, th.Tensor]:
        monkeypatch.setenv(DISABLE_ENV, "1" if disabled else "0")
        model = make_model("gru", "discrete", n_epochs=3)
        model.learn(96)
        return {name: p.detach().clone() for name, p in model.policy.named_parameters()}

    fast, reference = trained(False), trained(True)
    assert fast.keys() == reference.keys()
    for name, value in fast.items():
        th.testing.assert_close(value, reference[name], rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize(
    "why,kwargs",
    [
        ("shared core", {"policy_kwargs": {"shared_core": True}}),
        ("critic projection", {"policy_kwargs": {"critic_core": False}}),
        ("no kernel cell", {"policy_kwargs": {"core": "mingru"}}),
        ("heads the kernel does not cover", {"policy_kwargs": {"activation_fn": th.nn.ELU}}),
        ("dropout between layers", {"policy_kwargs": {"n_layers": 2, "core_kwargs": {"dropout": 0.1}}}),
    ],
)
def test_policies_it_does_not_cover_take_the_autograd_path(why: str, kwargs: dict) -> None:
    model = make_model(**kwargs)
    model.policy.set_training_mode(True)
    plan = model.fast_path_plan()
    assert not plan.update.used, why
    assert plan.update.reasons, "the plan says why"
    model.learn(48)  # and training works through autograd


def test_the_switch_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    model = make_model()
    assert model.fast_path_plan().update.used
    monkeypatch.setenv(DISABLE_ENV, "1")
    plan = model.fast_path_plan()
    assert not plan.update.used and plan.update.reasons == (f"{DISABLE_ENV}=1",)
