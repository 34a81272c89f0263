"""Every fast twin of the action distribution computes what SB3's own ``Distribution`` classes define.

The definitions are ``stable_baselines3.common.distributions`` (Categorical, MultiCategorical, DiagGaussian,
Bernoulli) and SB3's PPO loss written on them. The twins, each checked here against those and not against each
other: ``rlgru.algorithm.action_heads`` (sample and evaluate without distribution objects), the fused loss kernel
(``rlgru.fast.heads.ppo_loss``: log-probs, entropy, the loss and its gradient), the fused rollout step
(``rlgru.fast.act.FusedAct``: the action draw and its log-prob) and the exported sampling head
(``rlgru.export.actions.ActionHead``). Values are compared over random inputs, draws with seeded statistical tests
(chi-square on frequencies, z-tests and Kolmogorov-Smirnov for Gaussians) whose significance level is small and
whose seed is fixed, so they are deterministic.
"""

from __future__ import annotations

import functools
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from scipy import stats
from stable_baselines3.common.distributions import (
    BernoulliDistribution,
    Distribution,
    StateDependentNoiseDistribution,
    make_proba_distribution,
)
from stable_baselines3.common.env_util import make_vec_env

from rlgru import RecurrentPPO
from rlgru.algorithm import action_heads
from rlgru.export.actions import ActionHead
from rlgru.fast import heads as fused_heads
from rlgru.fast.act import FusedAct
from tests.helpers import RandomEpisodeEnv

#: every action space SB3 (and rlgru) supports; the Box is wide, so nothing here is clipped
SPACES: dict[str, spaces.Space] = {
    "discrete": spaces.Discrete(5),
    "multidiscrete": spaces.MultiDiscrete([2, 3, 4]),
    "box": spaces.Box(-50.0, 50.0, (3,), np.float32),
    "multibinary": spaces.MultiBinary(3),
}
#: the spaces whose distribution rlgru computes itself (``action_heads.head_kind`` is not None); MultiBinary and gSDE
#: go through SB3's objects everywhere but in the exported sampling head
TWIN_SPACES = ["discrete", "multidiscrete", "box"]
DTYPES = [th.float32, th.float64]
#: float32 rounding of log-softmax/logsumexp over logits up to ~20 is ~1e-6; float64 agrees to ~1e-14, so 1e-10
#: still catches a float64 path that secretly computes in float32 (errors ~1e-7), which 1e-6 would not
TOLERANCE = {th.float32: 1e-5, th.float64: 1e-10}
#: significance level of every statistical test: with fixed seeds the tests are deterministic, and a level this
#: small keeps them passing when seeds or library versions change, while 20k draws still see a 5% relative error
ALPHA = 1e-4
Z = stats.norm.isf(ALPHA / 2)  # two-sided z bound at ALPHA
N_DRAWS = 20_000

needs_fused_heads = pytest.mark.skipif(
    not fused_heads.KERNEL.available(), reason="the fused kernels could not be built"
)


# --------------------------------------------------------------------------------------------------- helpers
def action_dims(space: spaces.Space) -> list[int]:
    if isinstance(space, spaces.Discrete):
        return [int(space.n)]
    if isinstance(space, spaces.MultiDiscrete):
        return [int(n) for n in space.nvec]
    return []


def width(space: spaces.Space) -> int:
    """The action net's output width: logits, or Gaussian means / Bernoulli logits."""
    return sum(action_dims(space)) or int(np.prod(space.shape))


def sb3(space: spaces.Space, params: th.Tensor, log_std: th.Tensor | None = None) -> Distribution:
    """SB3's distribution for ``space`` from the action net's output (and log_std for a Box)."""
    distribution = make_proba_distribution(space)
    if isinstance(space, spaces.Box):
        return distribution.proba_distribution(params, log_std)
    return distribution.proba_distribution(params)


def random_inputs(
    space: spaces.Space, n: int, dtype: th.dtype, seed: int
) -> tuple[th.Tensor, th.Tensor | None, th.Tensor]:
    """``(params, log_std, actions)``: logits from near-uniform to sharply peaked (scales 0.1 to 20 per row) or
    Gaussian means and log stds in [-2, 1]; actions as the rollout buffer stores them ([n, action dims], float),
    Gaussian ones up to 3 stds from the mean."""
    generator = th.Generator().manual_seed(seed)
    k = width(space)
    scale = 10 ** th.empty(n, 1, dtype=th.float64).uniform_(-1, math.log10(20), generator=generator)
    if isinstance(space, spaces.Box):
        params = 2 * th.randn(n, k, dtype=th.float64, generator=generator)
        log_std = th.empty(k, dtype=th.float64).uniform_(-2, 1, generator=generator)
        actions = params + log_std.exp() * th.empty(n, k, dtype=th.float64).uniform_(-3, 3, generator=generator)
        return params.to(dtype), log_std.to(dtype), actions.to(dtype)
    params = scale * th.randn(n, k, dtype=th.float64, generator=generator)
    actions = th.stack([th.randint(d, (n,), generator=generator) for d in action_dims(space)], dim=1)
    return params.to(dtype), None, actions.to(dtype)


def sb3_actions(space: spaces.Space, actions: th.Tensor) -> th.Tensor:
    """Buffer-form actions as SB3's ``log_prob`` takes them (as ``RecurrentPPO.minibatch_losses`` passes them)."""
    if isinstance(space, spaces.Discrete):
        return actions.long().flatten()
    if isinstance(space, spaces.MultiDiscrete):
        return actions.long()
    return actions


def assert_close(got: th.Tensor, expected: th.Tensor, dtype: th.dtype, what: str) -> None:
    th.testing.assert_close(got, expected.to(got.dtype), rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype], msg=what)


def assert_frequencies_follow(counts: np.ndarray, probs: np.ndarray, what: str) -> None:
    """Chi-square goodness of fit of ``counts`` (any shape) to ``probs`` (same shape, summing to 1)."""
    counts, probs = counts.ravel(), probs.ravel().astype(np.float64)
    expected = counts.sum() * probs / probs.sum()
    assert expected.min() >= 5, "the chi-square test needs at least 5 expected draws per cell"
    p_value = stats.chisquare(counts, expected).pvalue
    assert p_value > ALPHA, f"{what}: frequencies {counts / counts.sum()} vs SB3's probabilities {probs} (p={p_value})"


def joint_counts(actions: np.ndarray, dims: list[int]) -> np.ndarray:
    """Counts of each joint action ``[n, len(dims)]`` over the grid ``dims``."""
    flat = np.ravel_multi_index(tuple(actions.T.astype(np.int64)), dims)
    return np.bincount(flat, minlength=int(np.prod(dims))).reshape(dims)


def sb3_joint_probs(space: spaces.Space, logits: th.Tensor) -> np.ndarray:
    """The probability SB3's distribution of ``logits`` [width] gives every joint action, from its ``log_prob``."""
    dims = action_dims(space)
    grid = th.as_tensor(np.indices(dims).reshape(len(dims), -1).T)
    distribution = sb3(space, logits.double().expand(len(grid), -1))
    return distribution.log_prob(sb3_actions(space, grid)).exp().numpy().reshape(dims)


def assert_gaussian_draws_follow(draws: np.ndarray, mean: np.ndarray, std: np.ndarray, what: str) -> None:
    """Per dimension: the sample mean and std within Z standard errors of SB3's, the standardised draws normal by a
    Kolmogorov-Smirnov test; across dimensions: uncorrelated (a diagonal Gaussian)."""
    n = len(draws)
    draws = draws.astype(np.float64)
    for j in range(draws.shape[1]):
        column = draws[:, j]
        assert abs(column.mean() - mean[j]) < Z * std[j] / math.sqrt(n), f"{what}: mean of dim {j}"
        assert abs(column.std(ddof=1) / std[j] - 1) < Z * math.sqrt(1 / (2 * (n - 1))), f"{what}: std of dim {j}"
        p_value = stats.kstest((column - mean[j]) / std[j], "norm").pvalue
        assert p_value > ALPHA, f"{what}: dim {j} is not normal with SB3's mean and std (KS p={p_value})"
    correlation = np.corrcoef(draws.T)[np.triu_indices(draws.shape[1], 1)]
    assert np.all(np.abs(correlation) < Z / math.sqrt(n)), f"{what}: dimensions correlated: {correlation}"


@functools.cache
def _policy(space_name: str, core: str) -> th.nn.Module:
    """A separate-cores policy with no MLP in the heads, so the cores' width is the action net's input."""
    space = SPACES[space_name]
    env = make_vec_env(RandomEpisodeEnv, n_envs=1, seed=0, env_kwargs={"action_space": space})
    model = RecurrentPPO(
        "MlpPolicy", env, n_steps=8, batch_size=8, seed=0, device="cpu",
        policy_kwargs={"core": core, "hidden_size": width(space), "net_arch": []},
    )
    return model.policy


def policy_with_action_layer(
    space_name: str, dtype: th.dtype, weight: th.Tensor, bias: th.Tensor, log_std: th.Tensor | None, core: str = "gru"
) -> th.nn.Module:
    policy = _policy(space_name, core).to(dtype)
    with th.no_grad():
        policy.action_net.weight.copy_(weight)
        policy.action_net.bias.copy_(bias)
        if log_std is not None:
            policy.log_std.copy_(log_std)
    policy.set_training_mode(False)
    return policy


# ------------------------------------------------------------------------------ coverage of the action spaces
def test_every_distribution_rlgru_computes_itself_is_compared_here() -> None:
    """``action_heads.head_kind`` decides what every twin covers (the fused kernels take only policies with a head
    kind); a new kind must come with its comparison in this file, and MultiBinary and gSDE stay with SB3."""
    kinds = {name: action_heads.head_kind(make_proba_distribution(space)) for name, space in SPACES.items()}
    assert {name for name, kind in kinds.items() if kind is not None} == set(TWIN_SPACES)
    assert isinstance(make_proba_distribution(SPACES["multibinary"]), BernoulliDistribution)
    gsde = make_proba_distribution(SPACES["box"], use_sde=True)
    assert isinstance(gsde, StateDependentNoiseDistribution) and action_heads.head_kind(gsde) is None


# ------------------------------------------------------------------------------------------ action_heads.py
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("space_name", TWIN_SPACES)
def test_action_heads_log_prob_and_entropy_equal_sb3s(space_name: str, dtype: th.dtype) -> None:
    space = SPACES[space_name]
    params, log_std, actions = random_inputs(space, 256, dtype, seed=1)
    kind = action_heads.head_kind(make_proba_distribution(space))
    dims = action_dims(space) if kind == "multi_categorical" else []
    log_prob, entropy = action_heads.evaluate(kind, params, log_std, actions, dims)
    reference = sb3(space, params, log_std)
    assert_close(log_prob, reference.log_prob(sb3_actions(space, actions)), dtype, "log_prob")
    assert_close(entropy, reference.entropy(), dtype, "entropy")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("space_name", TWIN_SPACES)
def test_action_heads_draw_what_sb3_draws_for_a_seed(space_name: str, dtype: th.dtype) -> None:
    """``action_heads`` promises torch.distributions' random draws: the same seed, the same actions as SB3's
    ``sample()``; their log-probs and the deterministic actions (SB3's ``mode()``) match too."""
    space = SPACES[space_name]
    params, log_std, _ = random_inputs(space, 512, dtype, seed=2)
    kind = action_heads.head_kind(make_proba_distribution(space))
    dims = action_dims(space) if kind == "multi_categorical" else []
    reference = sb3(space, params, log_std)
    for seed in range(3):
        th.manual_seed(seed)
        actions, log_prob = action_heads.sample(kind, params, log_std, False, dims)
        th.manual_seed(seed)
        expected = reference.sample()
        assert actions.shape == expected.shape and actions.dtype == expected.dtype
        assert th.equal(actions, expected), f"seed {seed}: other draws than SB3's"
        assert_close(log_prob, reference.log_prob(expected), dtype, "log_prob of the draws")
    actions, log_prob = action_heads.sample(kind, params, log_std, True, dims)
    assert th.equal(actions, reference.mode())
    assert_close(log_prob, reference.log_prob(reference.mode()), dtype, "log_prob of the mode")


# --------------------------------------------------------------------------------------- the fused loss kernel
def sb3_ppo_loss(
    space: spaces.Space, policy: th.nn.Module, core_pi: th.Tensor, core_vf: th.Tensor,
    settings: fused_heads.LossSettings,
) -> dict[str, th.Tensor]:
    """SB3's ``PPO.train`` loss on SB3's distribution (the heads have no MLP: latents are the cores' outputs)."""
    distribution = sb3(space, policy.action_net(core_pi), policy.log_std if isinstance(space, spaces.Box) else None)
    log_prob = distribution.log_prob(sb3_actions(space, settings.actions))
    entropy = distribution.entropy()
    ratio = th.exp(log_prob - settings.old_log_prob)
    advantages, clip = settings.advantages, settings.clip_range
    policy_loss = -th.min(advantages * ratio, advantages * th.clamp(ratio, 1 - clip, 1 + clip)).mean()
    values = policy.value_net(core_vf).flatten()
    if settings.clip_range_vf is not None:
        c = settings.clip_range_vf
        values = settings.old_values + th.clamp(values - settings.old_values, -c, c)
    value_loss = th.nn.functional.mse_loss(settings.returns, values)
    entropy_loss = -th.mean(entropy)
    return {
        "loss": policy_loss + settings.ent_coef * entropy_loss + settings.vf_coef * value_loss,
        "pg": policy_loss,
        "value": value_loss,
        "entropy": entropy_loss,
        "log_prob": log_prob,
        "row_entropy": entropy,
        "values": values,
    }


@needs_fused_heads
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("space_name", TWIN_SPACES)
def test_fused_loss_terms_and_gradient_equal_sb3s(space_name: str, dtype: th.dtype) -> None:
    """The kernel's log-probs, per-row entropies (one row per call: it returns their mean), losses and the loss's
    gradient in the logits / Gaussian means and log_std, against autograd through SB3's distribution."""
    space = SPACES[space_name]
    n = 96
    params, log_std, actions = random_inputs(space, n, dtype, seed=3)
    k = width(space)
    policy = policy_with_action_layer(space_name, dtype, th.eye(k), th.zeros(k), log_std)  # logits = core_pi
    assert policy._head_kind is not None
    generator = th.Generator().manual_seed(4)
    with th.no_grad():
        reference_log_prob = sb3(space, params, log_std).log_prob(sb3_actions(space, actions))
    settings = fused_heads.LossSettings(
        actions=actions,
        old_log_prob=reference_log_prob + 0.15 * th.randn(n, generator=generator, dtype=th.float64).to(dtype),
        advantages=th.randn(n, generator=generator, dtype=th.float64).to(dtype),
        returns=th.randn(n, generator=generator, dtype=th.float64).to(dtype),
        old_values=th.randn(n, generator=generator, dtype=th.float64).to(dtype),
        clip_range=0.1, clip_range_vf=0.2, ent_coef=0.05, vf_coef=0.5,
    )
    core_vf = th.randn(n, k, generator=generator, dtype=th.float64).to(dtype)

    def run(fused: bool) -> tuple[dict[str, th.Tensor], dict[str, th.Tensor]]:
        policy.zero_grad(set_to_none=True)
        pi = params.clone().requires_grad_(True)
        vf = core_vf.clone().requires_grad_(True)
        out = fused_heads.ppo_loss(policy, pi, vf, settings) if fused else sb3_ppo_loss(space, policy, pi, vf, settings)
        out["loss"].backward()
        grads = {"logits or means": pi.grad, "core_vf": vf.grad, "value_net.weight": policy.value_net.weight.grad}
        if isinstance(space, spaces.Box):
            grads["log_std"] = policy.log_std.grad
        return {key: value.detach() for key, value in out.items()}, grads

    reference, reference_grads = run(fused=False)
    got, grads = run(fused=True)
    ratio = (reference["log_prob"] - settings.old_log_prob).exp()
    assert 0 < float(((ratio - 1).abs() > settings.clip_range).double().mean()) < 1, "ratios on both sides of the clip"
    for key in ("log_prob", "loss", "pg", "value", "entropy", "values"):
        assert_close(got[key], reference[key], dtype, key)
    for name, grad in grads.items():
        # gradients are means over rows of terms of size ~1: float32 rounding relative to that, float64 exact-ish
        atol = 1e-6 if dtype == th.float32 else 1e-12
        th.testing.assert_close(grad, reference_grads[name], rtol=10 * TOLERANCE[dtype], atol=atol, msg=name)

    with th.no_grad():  # per-row entropies: the kernel returns -mean(H), so one row per call
        for i in range(0, n, 3):
            row = fused_heads.LossSettings(
                settings.actions[i : i + 1], settings.old_log_prob[i : i + 1], settings.advantages[i : i + 1],
                settings.returns[i : i + 1], settings.old_values[i : i + 1], 0.1, None, 0.0, 0.5,
            )
            entropy = -fused_heads.ppo_loss(policy, params[i : i + 1], core_vf[i : i + 1], row)["entropy"]
            assert_close(entropy, reference["row_entropy"][i], dtype, f"entropy of row {i}")


# --------------------------------------------------------------------------------------- the fused rollout step
#: fixed action-layer outputs for the draws: skewed logits (some action at ~2%) or Gaussian means and log stds
FIXED_LOGITS = {
    "discrete": [1.2, 0.5, 0.0, -0.7, -2.1],
    "multidiscrete": [0.4, -0.4, 1.5, 0.0, -1.0, -1.3, 0.2, 0.9, 1.6],
    "multibinary": [0.8, -1.5, 0.1],  # the exported head only: no other twin draws Bernoulli actions
}
FIXED_GAUSSIAN = ([0.3, -1.2, 2.0], [-1.0, 0.0, 0.5])  # means, log stds


def fused_step(
    space_name: str, core: str, dtype: th.dtype, batch: int
) -> tuple[FusedAct, th.Tensor, th.Tensor, Distribution]:
    """The fused step of a policy whose action net outputs the fixed parameters whatever the cores say (zero weight,
    the parameters as bias), features and state for ``batch`` envs, and SB3's distribution of those parameters."""
    space = SPACES[space_name]
    k = width(space)
    if isinstance(space, spaces.Box):
        bias, log_std = th.tensor(FIXED_GAUSSIAN[0]), th.tensor(FIXED_GAUSSIAN[1])
    else:
        bias, log_std = th.tensor(FIXED_LOGITS[space_name]), None
    policy = policy_with_action_layer(space_name, dtype, th.zeros(k, k), bias, log_std, core)
    assert policy._fused_act() is not None, "the policy must qualify for the fused rollout step"
    generator = th.Generator().manual_seed(5)
    features = th.randn(batch, policy.observation_space.shape[0], generator=generator).to(dtype)
    state = th.randn(policy.actor_core.n_layers, batch, policy.state_size, generator=generator).to(dtype)
    params = bias.to(dtype).expand(batch, k)
    reference = sb3(space, params, None if log_std is None else log_std.to(dtype))
    return FusedAct(policy), features, state, reference


@needs_fused_heads
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("core", ["gru", "lstm"])
@pytest.mark.parametrize("space_name", TWIN_SPACES)
def test_fused_step_draws_from_sb3s_distribution(space_name: str, core: str, dtype: th.dtype) -> None:
    """20k draws of the fused step for one set of logits/means: frequencies (joint ones for MultiDiscrete, so
    independence between the dims is tested too) by chi-square against SB3's probabilities, Gaussian draws against
    SB3's mean and std; the log-prob it returns is SB3's of the drawn action."""
    step, features, state, reference = fused_step(space_name, core, dtype, N_DRAWS)
    th.manual_seed(6)
    with th.no_grad():
        actions, _, log_prob, _ = step(features, state, False)
    assert_close(log_prob, reference.log_prob(actions), dtype, "log_prob of the draws")
    space = SPACES[space_name]
    if isinstance(space, spaces.Box):
        mean, std = reference.distribution.mean[0].double().numpy(), reference.distribution.stddev[0].double().numpy()
        assert_gaussian_draws_follow(actions.numpy(), mean, std, f"{core} fused step")
        return
    dims = action_dims(space)
    drawn = actions.numpy().reshape(N_DRAWS, len(dims))
    expected = sb3_joint_probs(space, th.tensor(FIXED_LOGITS[space_name]))
    assert_frequencies_follow(joint_counts(drawn, dims), expected, f"{core} fused step")


@needs_fused_heads
@pytest.mark.parametrize("core", ["gru", "lstm"])
@pytest.mark.parametrize("space_name", TWIN_SPACES)
def test_fused_step_takes_sb3s_draws_for_a_seed_and_its_mode(space_name: str, core: str) -> None:
    """The same seed gives the fused step the actions SB3's ``sample()`` gives (the kernel replays
    torch.multinomial's and Normal's random numbers); deterministic steps return SB3's ``mode()``."""
    step, features, state, reference = fused_step(space_name, core, th.float32, 512)
    for seed in range(3):
        th.manual_seed(seed)
        with th.no_grad():
            actions = step(features, state, False)[0]
        th.manual_seed(seed)
        expected = reference.sample()
        assert th.equal(actions.reshape(expected.shape), expected), f"seed {seed}: other draws than SB3's"
    with th.no_grad():
        actions, _, log_prob, _ = step(features, state, True)
    mode = reference.mode()
    assert th.equal(actions.reshape(mode.shape), mode)
    assert_close(log_prob, reference.log_prob(mode), th.float32, "log_prob of the mode")


# ----------------------------------------------------------------------------------- the exported sampling head
def action_head(space_name: str, sample: bool) -> tuple[ActionHead, th.Tensor, Distribution]:
    """An ``ActionHead`` on an action net that outputs fixed parameters, the latents, and SB3's distribution."""
    space = SPACES[space_name]
    k = width(space)
    net = th.nn.Linear(4, k)
    if isinstance(space, spaces.Box):
        bias, log_std = th.tensor(FIXED_GAUSSIAN[0]), th.nn.Parameter(th.tensor(FIXED_GAUSSIAN[1]))
    else:
        bias = th.tensor(FIXED_LOGITS[space_name])
        log_std = None
    with th.no_grad():
        net.weight.zero_()
        net.bias.copy_(bias)
    distribution = make_proba_distribution(space)
    policy = SimpleNamespace(action_net=net, action_space=space, action_dist=distribution, squash_output=False,
                             log_std=log_std)
    latent = th.randn(N_DRAWS, 4, generator=th.Generator().manual_seed(7))
    reference = sb3(space, bias.expand(N_DRAWS, k), None if log_std is None else log_std.detach())
    return ActionHead(policy, sample), latent, reference


@pytest.mark.parametrize("space_name", list(SPACES))
def test_exported_sampling_head_draws_from_sb3s_distribution(space_name: str) -> None:
    """The exported graph's own sampler (Gumbel-max, uniform threshold, Gaussian noise) against SB3's
    distribution, for every action space, MultiBinary included; the deterministic head returns SB3's mode."""
    head, latent, reference = action_head(space_name, sample=True)
    th.manual_seed(8)
    with th.no_grad():
        actions = head(latent)
    space = SPACES[space_name]
    if isinstance(space, spaces.Box):
        mean, std = reference.distribution.mean[0].double().numpy(), reference.distribution.stddev[0].double().numpy()
        assert_gaussian_draws_follow(actions.numpy(), mean, std, "exported head")
    else:
        dims = action_dims(space) or [2] * int(space.n)
        drawn = actions.numpy().reshape(N_DRAWS, len(dims))
        if isinstance(space, spaces.MultiBinary):  # SB3's Bernoulli: independent bits of probability sigmoid(logit)
            probs = reference.distribution.probs[0].double().numpy()
            expected = functools.reduce(np.multiply.outer, [np.array([1 - p, p]) for p in probs])
        else:
            expected = sb3_joint_probs(space, th.tensor(FIXED_LOGITS[space_name]))
        assert_frequencies_follow(joint_counts(drawn, dims), expected, "exported head")
    deterministic, latent, reference = action_head(space_name, sample=False)
    with th.no_grad():
        mode = deterministic(latent[:64])
    expected_mode = reference.mode()[:64].reshape(mode.shape)
    assert th.equal(mode.to(expected_mode.dtype), expected_mode)
