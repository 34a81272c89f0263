"""The one-call rollout step (``rlgru.fast.act``) gives what the policy's module-by-module path gives.

Same actions (the same random draws for a seed), values, log-probs and next state for both fused cells, every action
distribution the heads kernel covers, stacked layers, sampled and deterministic; a whole rollout fills the buffer
identically either way; policies it does not cover keep the module path.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env

from rlgru import RecurrentPPO
from rlgru.fast import act as fused_act
from rlgru.fast import heads as fused_heads
from tests.helpers import ACTION_SPACES, RandomEpisodeEnv

pytestmark = pytest.mark.skipif(not fused_heads.KERNEL.available(), reason="the fused kernels could not be built")


def make_model(core: str = "gru", action_space: str = "discrete", n_layers: int = 1, **policy_kwargs) -> RecurrentPPO:
    env = make_vec_env(RandomEpisodeEnv, n_envs=4, seed=1, env_kwargs={"action_space": ACTION_SPACES[action_space]})
    kwargs = {"hidden_size": 8, "n_layers": n_layers, "net_arch": {"pi": [16], "vf": [12]}, "core": core,
              "log_std_init": -0.3, **policy_kwargs}
    return RecurrentPPO("MlpPolicy", env, n_steps=16, batch_size=32, seed=0, policy_kwargs=kwargs)


def module_path(policy, obs: th.Tensor, state: th.Tensor, deterministic: bool, monkeypatch) -> tuple[th.Tensor, ...]:
    with monkeypatch.context() as patch:
        patch.setenv(fused_act.DISABLE_ENV, "1")
        assert policy._fused_act() is None
        return policy(obs, state, deterministic)


@pytest.mark.parametrize(
    "core,action_space,n_layers",
    [("gru", "discrete", 1), ("gru", "box", 2), ("gru", "multidiscrete", 1), ("lstm", "discrete", 2),
     ("lstm", "box", 1)],
)
@pytest.mark.parametrize("deterministic", [False, True])
def test_step_equals_the_module_path(core: str, action_space: str, n_layers: int, deterministic: bool,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    model = make_model(core, action_space, n_layers)
    policy = model.policy
    assert policy._fused_act() is not None
    policy.set_training_mode(False)
    obs = th.randn(4, 4)
    state = th.randn(n_layers, 4, policy.state_size)
    for seed in range(3):
        with th.no_grad():
            th.manual_seed(seed)
            got = policy(obs, state, deterministic)
            th.manual_seed(seed)
            reference = module_path(policy, obs, state, deterministic, monkeypatch)
        assert policy._fused_act() is not None
        for name, a, b in zip(("actions", "values", "log_prob", "next_state"), got, reference, strict=True):
            assert a.shape == b.shape and a.dtype == b.dtype, name
            if name == "actions":
                assert th.equal(a, b), "the same random draws must give the same actions"
            else:
                assert th.equal(a, b), name  # the same ops in the same order: bit for bit


@pytest.mark.parametrize("core", ["gru", "lstm"])
def test_a_rollout_fills_the_buffer_identically(core: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def rollout(disabled: bool) -> dict[str, np.ndarray]:
        monkeypatch.setenv(fused_act.DISABLE_ENV, "1" if disabled else "0")
        model = make_model(core, "discrete")
        _, callback = model._setup_learn(10_000, None)
        assert model.collect_rollouts(model.env, callback, model.rollout_buffer, model.n_steps)
        buffer = model.rollout_buffer
        return {name: getattr(buffer, name).copy() for name in ("actions", "values", "log_probs", "states", "rewards")}

    fast, reference = rollout(False), rollout(True)
    assert np.array_equal(fast["actions"], reference["actions"])
    for name in ("values", "log_probs", "states", "rewards"):
        assert np.array_equal(fast[name], reference[name]), name


@pytest.mark.parametrize(
    "why,kwargs",
    [
        ("shared core", {"shared_core": True}),
        ("critic projection", {"critic_core": False}),
        ("no kernel cell", {"core": "mingru"}),
        ("heads the kernel does not cover", {"activation_fn": th.nn.ELU}),
    ],
)
def test_policies_it_does_not_cover_keep_the_module_path(why: str, kwargs: dict) -> None:
    model = make_model(**kwargs)
    assert model.policy._fused_act() is None, why
    model.learn(32)
