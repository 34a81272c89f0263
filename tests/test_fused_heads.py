"""The fused PPO loss kernel computes what the autograd definition in ``RecurrentPPO.minibatch_losses`` computes.

Same losses, log-probs and values, and the same gradient for every parameter, with ratios pushed outside the clip
range (so both branches of the clipped objective and of value clipping are taken), for every action distribution
it covers, both activations, several head shapes and every way the critic can read the cores.
"""

from __future__ import annotations

import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env

from rlgru import RecurrentPPO
from rlgru.fast import heads as fused
from tests.helpers import ACTION_SPACES, RandomEpisodeEnv

pytestmark = pytest.mark.skipif(not fused.KERNEL.available(), reason="the fused loss kernel could not be built")

CRITICS = {
    "separate": {},
    "shared": {"shared_core": True},
    "shared-detached": {"shared_core": True, "critic_trains_core": False},
    "projection": {"critic_core": False},
}


def perturbed_model(
    action_space: str, activation: type[th.nn.Module], net_arch, critic: dict, **kwargs
) -> RecurrentPPO:
    env = make_vec_env(RandomEpisodeEnv, n_envs=3, seed=1, env_kwargs={"action_space": ACTION_SPACES[action_space]})
    model = RecurrentPPO(
        "MlpGruPolicy",
        env,
        n_steps=16,
        batch_size=24,
        seed=0,
        policy_kwargs={
            "hidden_size": 8,
            "net_arch": net_arch,
            "activation_fn": activation,
            "log_std_init": -0.3,
            **critic,
        },
        **kwargs,
    )
    _, callback = model._setup_learn(10_000, None)
    assert model.collect_rollouts(model.env, callback, model.rollout_buffer, model.n_steps)
    with th.no_grad():  # move the policy away from the one that acted, so ratios leave the clip range
        for param in model.policy.parameters():
            param.add_(0.05 * th.randn_like(param))
    return model


def losses_and_grads(
    model: RecurrentPPO, batch, use_kernel: bool, clip_range_vf: float | None
) -> tuple[dict[str, th.Tensor], dict[str, th.Tensor]]:
    model.policy.zero_grad(set_to_none=True)
    losses = model.minibatch_losses(batch, clip_range=0.1, clip_range_vf=clip_range_vf, fused=use_kernel)
    losses["loss"].backward()
    grads = {name: p.grad.clone() for name, p in model.policy.named_parameters() if p.grad is not None}
    return {k: v.detach() for k, v in losses.items()}, grads


@pytest.mark.parametrize("critic", CRITICS.values(), ids=CRITICS.keys())
@pytest.mark.parametrize("action_space", ["discrete", "multidiscrete", "box"])
@pytest.mark.parametrize(
    "activation,net_arch,clip_range_vf,ent_coef",
    [
        (th.nn.ReLU, {"pi": [16], "vf": [16]}, None, 0.0),
        (th.nn.Tanh, {"pi": [16, 8], "vf": [12]}, 0.05, 0.01),
        (th.nn.ReLU, [], 0.05, 0.01),
    ],
)
def test_fused_loss_equals_autograd_definition(
    critic: dict, action_space: str, activation, net_arch, clip_range_vf, ent_coef
) -> None:
    model = perturbed_model(action_space, activation, net_arch, critic, clip_range_vf=clip_range_vf, ent_coef=ent_coef)
    assert model.fast_path_plan().heads.used
    generator = th.Generator().manual_seed(0)
    for batch in model.rollout_buffer.get(model.batch_size):
        # spread ratios and value changes around the clip ranges
        batch = batch._replace(
            old_log_prob=batch.old_log_prob + 0.15 * th.randn(batch.old_log_prob.shape, generator=generator),
            old_values=batch.old_values + 0.1 * th.randn(batch.old_values.shape, generator=generator),
        )
        reference, reference_grads = losses_and_grads(model, batch, False, clip_range_vf)
        got, grads = losses_and_grads(model, batch, True, clip_range_vf)
        assert 0 < float(reference["clip"]) < 1, "the test needs ratios on both sides of the clip range"
        for key in ("loss", "pg", "value", "entropy", "kl", "clip", "log_prob", "values"):
            th.testing.assert_close(got[key], reference[key], rtol=1e-5, atol=1e-5, msg=key)
        assert grads.keys() == reference_grads.keys()
        for name, grad in grads.items():
            th.testing.assert_close(grad, reference_grads[name], rtol=1e-4, atol=1e-6, msg=name)


def test_without_gradients_it_only_computes_the_losses() -> None:
    model = perturbed_model("discrete", th.nn.ReLU, [16], {})
    batch = next(iter(model.rollout_buffer.get(model.batch_size)))
    with th.no_grad():
        got = model.minibatch_losses(batch, clip_range=0.2, fused=True)
        reference = model.minibatch_losses(batch, clip_range=0.2, fused=False)
    assert not got["loss"].requires_grad
    th.testing.assert_close(got["log_prob"], reference["log_prob"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("why", ["activation", "multibinary", "sde"])
def test_heads_it_does_not_cover_take_the_autograd_path(why: str) -> None:
    policy_kwargs = {"hidden_size": 8, "net_arch": [8]}
    action_space, extra = "discrete", {}
    if why == "activation":
        policy_kwargs["activation_fn"] = th.nn.ELU
    elif why == "multibinary":
        action_space = "multibinary"
    else:
        action_space, extra = "box", {"use_sde": True}
    env = make_vec_env(RandomEpisodeEnv, n_envs=2, seed=1, env_kwargs={"action_space": ACTION_SPACES[action_space]})
    model = RecurrentPPO("MlpGruPolicy", env, n_steps=8, batch_size=8, policy_kwargs=policy_kwargs, **extra)
    assert not model.fast_path_plan().heads.used
    model.learn(16)  # and training still works, through autograd
