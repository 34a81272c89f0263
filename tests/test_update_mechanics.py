"""The PPO update's bookkeeping shortcuts change nothing: one flat gradient buffer zeroes and clips like
``zero_grad`` + ``clip_grad_norm_``, and the direct fused-Adam call updates exactly like ``optimizer.step()``."""

from __future__ import annotations

import copy

import pytest
import torch as th

from rlgru.fast.flat_grads import FlatGradients
from rlgru.fast.optim_step import FusedAdamStep


def small_net() -> th.nn.Module:
    th.manual_seed(0)
    return th.nn.Sequential(
        th.nn.Linear(5, 7),
        th.nn.Tanh(),
        th.nn.GRU(7, 6),
    )


def loss_of(net: th.nn.Module, x: th.Tensor) -> th.Tensor:
    hidden = net[1](net[0](x))
    out, _ = net[2](hidden.unsqueeze(1))
    return (out**2).sum()


def test_flat_buffer_accumulates_zeroes_and_clips_like_clip_grad_norm() -> None:
    net, reference = small_net(), small_net()
    flat = FlatGradients(net.parameters())
    x = th.randn(4, 5)
    for max_norm in (1e9, 0.1):  # no clipping, then clipping
        flat.zero_()
        reference.zero_grad()
        loss_of(net, x).backward()
        loss_of(net, x).backward()  # accumulates into the views
        loss_of(reference, x).backward()
        loss_of(reference, x).backward()
        norm = flat.clip_norm_(max_norm)
        expected_norm = th.nn.utils.clip_grad_norm_(reference.parameters(), max_norm)
        th.testing.assert_close(norm, expected_norm)
        for p, q in zip(net.parameters(), reference.parameters(), strict=True):
            th.testing.assert_close(p.grad, q.grad)
            assert p.grad.data_ptr() >= flat.buffer.data_ptr()  # still a view of the buffer


def test_flat_buffer_reattaches_after_someone_else_resets_grads() -> None:
    net = small_net()
    flat = FlatGradients(net.parameters())
    loss_of(net, th.randn(3, 5)).backward()
    first = next(net.parameters())
    th.optim.SGD(net.parameters(), lr=0.1).zero_grad()  # sets every .grad to None
    assert first.grad is None
    first.grad = th.ones_like(first)
    flat.attach()
    assert all(p.grad is v for p, v in zip(flat.parameters, flat.views, strict=True))
    th.testing.assert_close(flat.views[0], th.ones_like(first))
    assert float(flat.buffer.abs().sum()) == first.numel()  # the others restart from zero


def test_flat_buffer_refuses_mixed_dtypes() -> None:
    params = [th.nn.Parameter(th.zeros(2)), th.nn.Parameter(th.zeros(2, dtype=th.float64))]
    assert FlatGradients.try_for(params) is None


@pytest.mark.parametrize(
    "optimizer_class,kwargs",
    [
        (th.optim.Adam, {"eps": 1e-5, "fused": True}),
        (th.optim.Adam, {"weight_decay": 0.01, "fused": True}),
        (th.optim.AdamW, {"weight_decay": 0.01, "fused": True}),
        (th.optim.Adam, {}),  # not fused: always optimizer.step()
    ],
)
def test_direct_fused_adam_step_equals_optimizer_step(optimizer_class, kwargs) -> None:
    net = small_net()
    reference = copy.deepcopy(net)
    optimizer = optimizer_class(net.parameters(), lr=1e-2, **kwargs)
    reference_optimizer = optimizer_class(reference.parameters(), lr=1e-2, **kwargs)
    step = FusedAdamStep(optimizer)
    x = th.randn(4, 5)
    for i in range(5):
        for model, opt in ((net, optimizer), (reference, reference_optimizer)):
            opt.zero_grad()
            loss_of(model, x).backward()
        for group in (*optimizer.param_groups, *reference_optimizer.param_groups):
            group["lr"] = 1e-2 / (i + 1)  # as SB3's schedule does between updates
        step()
        reference_optimizer.step()
        for p, q in zip(net.parameters(), reference.parameters(), strict=True):
            assert th.equal(p, q)
    assert (step._lists is not None) == bool(kwargs.get("fused"))  # the direct path was in use where it applies
    if step._lists is not None:  # step counts shared as views of one counter, one add_ per update
        assert all(counter is not None and counter.numel() == len(params) for _, params, *_, counter in step._lists)
    state, reference_state = optimizer.state_dict()["state"], reference_optimizer.state_dict()["state"]
    for key in state:
        for name in ("step", "exp_avg", "exp_avg_sq"):
            assert th.equal(state[key][name], reference_state[key][name])


def test_direct_step_follows_a_loaded_state() -> None:
    net = small_net()
    optimizer = th.optim.Adam(net.parameters(), lr=1e-2, fused=True)
    step = FusedAdamStep(optimizer)
    x = th.randn(4, 5)
    for _ in range(2):
        optimizer.zero_grad()
        loss_of(net, x).backward()
        step()
    saved = copy.deepcopy(optimizer.state_dict())
    optimizer.load_state_dict(saved)  # new state tensors: the cached lists are stale
    optimizer.zero_grad()
    loss_of(net, x).backward()
    step()
    assert int(optimizer.state_dict()["state"][0]["step"]) == 3


def test_memory_diagnostics_are_computed_only_when_something_logs_them(tmp_path) -> None:
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.logger import configure

    from rlgru import RecurrentPPO
    from tests.helpers import RandomEpisodeEnv

    calls = []
    for outputs in ([], ["csv"]):
        env = make_vec_env(RandomEpisodeEnv, n_envs=2, seed=0)
        model = RecurrentPPO(
            "MlpGruPolicy",
            env,
            n_steps=8,
            batch_size=8,
            n_epochs=1,
            seed=0,
            policy_kwargs={"hidden_size": 4, "net_arch": [4]},
        )
        model.set_logger(configure(str(tmp_path / str(len(outputs))), outputs))
        original, n_outputs = model.policy.memory_diagnostics, len(outputs)

        def counted(*args, n=n_outputs, original=original, **kwargs):
            calls.append(n)
            return original(*args, **kwargs)

        model.policy.memory_diagnostics = counted
        model.learn(32)  # two updates; the first one's records are written with the second rollout
    assert calls == [1, 1]  # computed for both updates with the CSV logger, for neither without any output
    assert "memory/hidden_norm" in (tmp_path / "1" / "progress.csv").read_text()


def test_gradient_step_equals_the_textbook_sequence() -> None:
    from rlgru.fast.optim_step import GradientStep

    net, reference = small_net(), small_net()
    optimizer = th.optim.Adam(net.parameters(), lr=1e-2, eps=1e-5, fused=True)
    reference_optimizer = th.optim.Adam(reference.parameters(), lr=1e-2, eps=1e-5, fused=True)
    step = None
    x = th.randn(4, 5)
    for _ in range(4):
        step = GradientStep.for_module(step, net, optimizer)
        step(loss_of(net, x), max_grad_norm=0.05)  # small enough to clip every time
        reference_optimizer.zero_grad()
        loss_of(reference, x).backward()
        th.nn.utils.clip_grad_norm_(reference.parameters(), 0.05)
        reference_optimizer.step()
        for p, q in zip(net.parameters(), reference.parameters(), strict=True):
            th.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
    assert step.flat is not None and step.optimizer_step._lists is not None  # the shortcuts were in use
    assert GradientStep.for_module(step, net, optimizer) is step
    assert GradientStep.for_module(step, net, th.optim.Adam(net.parameters())) is not step
