"""The PPO loss from the memory cores' outputs onwards (MLP heads, action distribution, clipped objectives) and its
gradient, in one C++ call (``csrc/fused_heads.cpp``; the maths is written out in ``cores/csrc/ppo_heads.h``).

Why: after the cores, a PPO minibatch is some forty small ops forward and as many backward whose arithmetic at RL
sizes takes microseconds while dispatching and recording them takes most of a millisecond. PPO differentiates the
loss right after computing it, so the kernel returns the gradient with the loss and autograd only passes it on.
``RecurrentPPO.minibatch_losses`` keeps the plain autograd version, which defines the loss; tests check that both
give the same losses and gradients. Policies with separate GRU/LSTM kernel cores go further: ``rlgru.fused_update``
runs the cores and these heads in one call per minibatch, and ``rlgru.fused_act`` their rollout step.

Covered: SB3's ``MlpExtractor`` heads (Linear layers with ReLU or Tanh), categorical (Discrete, MultiDiscrete) and
diagonal Gaussian (Box) actions, float32/float64 on CPU. ``fused_heads_supported`` says when; anything else (and
any machine where the kernel cannot be built, or ``RLGRU_DISABLE_FUSED_HEADS=1``) takes the autograd path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch as th
from torch import nn

from rlgru.cores import _kernel_build
from rlgru.cores.kernel_core import KernelCore

KERNEL = _kernel_build.CompiledKernel(
    "rlgru_fused_heads",
    Path(__file__).resolve().parent / "csrc" / "fused_heads.cpp",
    "RLGRU_DISABLE_FUSED_HEADS",
    "fused heads kernel",
    "PPO updates run the heads and the loss through autograd instead",
    check_op="loss",
)

_ACTIVATIONS = {nn.ReLU: 0, nn.Tanh: 1}  # the kernel's activation codes
_KINDS = {"categorical": 0, "multi_categorical": 0, "gaussian": 1}  # the kernel's distribution codes


@dataclass(frozen=True)
class LossSettings:
    """The minibatch's fixed inputs: buffer fields (no gradient) and this update's coefficients."""

    actions: th.Tensor
    old_log_prob: th.Tensor
    advantages: th.Tensor  # already normalised if the algorithm normalises them
    returns: th.Tensor
    old_values: th.Tensor
    clip_range: float
    clip_range_vf: float | None
    ent_coef: float
    vf_coef: float


def mlp_activations(net: nn.Module) -> list[int] | None:
    """Activation codes of an ``nn.Sequential`` of (Linear with bias, ReLU|Tanh) pairs, else None."""
    if not isinstance(net, nn.Sequential) or len(net) % 2:
        return None
    modules = list(net)
    codes = []
    for linear, activation in zip(modules[::2], modules[1::2], strict=True):
        code = _ACTIVATIONS.get(type(activation))
        if type(linear) is not nn.Linear or linear.bias is None or code is None:
            return None
        codes.append(code)
    return codes


def fused_heads_supported(policy: Any) -> bool:
    """Whether ``policy``'s heads are the plain ones the kernel differentiates, on a device and dtype it takes."""
    extractor = getattr(policy, "mlp_extractor", None)
    if getattr(policy, "_head_kind", None) is None or extractor is None:
        return False
    weight = policy.action_net.weight if isinstance(policy.action_net, nn.Linear) else None
    return (
        weight is not None
        and weight.device.type == "cpu"
        and weight.dtype in (th.float32, th.float64)
        and type(policy.value_net) is nn.Linear
        and mlp_activations(extractor.policy_net) is not None
        and mlp_activations(extractor.value_net) is not None
        and KERNEL.available()
    )


def ppo_loss(policy: Any, core_pi: th.Tensor, core_vf: th.Tensor, settings: LossSettings) -> dict[str, th.Tensor]:
    """The losses ``RecurrentPPO.minibatch_losses`` returns, from the cores' per-sample outputs.

    ``core_vf`` is what the critic's MLP reads (the critic core's output, or the actor's, or a projection).
    """
    arguments = HeadsArguments.of(policy)
    log_std = arguments.log_std
    inputs = (core_pi, core_vf, *arguments.pi_weights, *arguments.vf_weights, *arguments.heads,
              *([log_std] if log_std is not None else []))
    call = _KernelCall(arguments, settings)
    if th.is_grad_enabled() and any(t.requires_grad for t in inputs):
        outputs = _HeadsAndLoss.apply(call, *inputs)
    else:
        outputs = call(inputs, with_grads=False)[:8]
    names = ("loss", "pg", "value", "entropy", "kl", "clip", "log_prob", "values")
    return dict(zip(names, outputs, strict=True))


def linear_tensors(net: nn.Sequential) -> list[th.Tensor]:
    """Weight and bias of every Linear layer of ``net``, in order (how the kernels take an MLP)."""
    return [t for m in net if isinstance(m, nn.Linear) for t in (m.weight, m.bias)]


class HeadsArguments(NamedTuple):
    """How every rlgru kernel takes a policy's heads (``fused_heads_supported`` ones): the MLPs' Linear tensors,
    the action and value layers, log_std (Gaussian only), activation codes, distribution code and action dims."""

    pi_weights: list[th.Tensor]
    vf_weights: list[th.Tensor]
    heads: list[th.Tensor]  # action W, b, value W, b
    log_std: th.Tensor | None
    pi_act: list[int]
    vf_act: list[int]
    kind: int
    dims: list[int]

    @classmethod
    def of(cls, policy: Any) -> HeadsArguments:
        extractor, head_kind = policy.mlp_extractor, policy._head_kind
        dims = list(policy._action_dims) if head_kind == "multi_categorical" else []
        if head_kind == "categorical":
            dims = [policy.action_net.out_features]
        pi_act, vf_act = mlp_activations(extractor.policy_net), mlp_activations(extractor.value_net)
        assert pi_act is not None and vf_act is not None, "heads the kernels do not cover"
        return cls(
            linear_tensors(extractor.policy_net),
            linear_tensors(extractor.value_net),
            [policy.action_net.weight, policy.action_net.bias, policy.value_net.weight, policy.value_net.bias],
            policy.log_std if head_kind == "gaussian" else None,
            pi_act,
            vf_act,
            _KINDS[head_kind],
            dims,
        )


def twin_kernel_cores(policy: Any) -> bool:
    """Whether ``policy`` has separate actor and critic cores of one fused kernel cell, the same sizes, both in the
    kernel on its device, under heads the kernels cover: what the whole-step kernels (``rlgru.fused_act``,
    ``rlgru.fused_update``) take."""
    actor, critic = getattr(policy, "actor_core", None), getattr(policy, "critic_core", None)
    return (
        critic is not None
        and not policy.shared_core
        and type(actor) is type(critic)
        and isinstance(actor, KernelCore)
        and getattr(actor.kernel, "CELL", None) is not None
        and (actor.input_size, actor.hidden_size, actor.n_layers)
        == (critic.input_size, critic.hidden_size, critic.n_layers)
        and actor.resets_natively(policy.device)
        and fused_heads_supported(policy)
    )


class _KernelCall:
    """The kernel's fixed arguments for one minibatch; called with the differentiable inputs."""

    def __init__(self, arguments: HeadsArguments, settings: LossSettings) -> None:
        self.arguments, self.settings = arguments, settings

    def __call__(self, inputs: tuple[th.Tensor, ...], with_grads: bool) -> list[th.Tensor]:
        core_pi, core_vf = inputs[:2]
        n_pi, n_vf = len(self.arguments.pi_weights), len(self.arguments.vf_weights)
        pi_w = inputs[2 : 2 + n_pi]
        vf_w = inputs[2 + n_pi : 2 + n_pi + n_vf]
        heads = inputs[2 + n_pi + n_vf : 6 + n_pi + n_vf]
        log_std = inputs[-1] if self.arguments.log_std is not None else None
        s = self.settings
        return KERNEL.ops.loss(
            core_pi,
            core_vf,
            list(pi_w),
            list(vf_w),
            list(heads),
            log_std,
            s.actions,
            s.old_log_prob,
            s.advantages,
            s.returns,
            s.old_values,
            float(s.clip_range),
            None if s.clip_range_vf is None else float(s.clip_range_vf),
            float(s.ent_coef),
            float(s.vf_coef),
            self.arguments.pi_act,
            self.arguments.vf_act,
            self.arguments.kind,
            self.arguments.dims,
            with_grads,
        )


class _HeadsAndLoss(th.autograd.Function):
    """Outputs the loss (differentiable: its gradient comes from the forward call) and, without gradient, its
    parts and the recomputed log-probs and values."""

    @staticmethod
    def forward(ctx: Any, call: _KernelCall, *inputs: th.Tensor) -> tuple[th.Tensor, ...]:  # type: ignore[override]
        results = call(inputs, with_grads=True)
        outputs, ctx.grads = tuple(results[:8]), results[8:]
        ctx.mark_non_differentiable(*outputs[1:])
        return outputs

    @staticmethod
    def backward(ctx: Any, grad_loss: th.Tensor, *_: Any) -> tuple[th.Tensor | None, ...]:
        grads, needs = ctx.grads, ctx.needs_input_grad[1:]
        del ctx.grads
        scale = None if float(grad_loss) == 1.0 else grad_loss
        return (
            None,
            *((g if scale is None else g * scale) if need else None for g, need in zip(grads, needs, strict=True)),
        )


__all__ = [
    "KERNEL", "HeadsArguments", "LossSettings", "fused_heads_supported", "linear_tensors", "mlp_activations",
    "ppo_loss", "twin_kernel_cores",
]
