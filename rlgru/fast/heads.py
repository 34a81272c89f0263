"""The PPO loss from the memory cores' outputs onwards (MLP heads, action distribution, clipped objectives) and its
gradient, in one C++ call (``csrc/fused_heads.cpp``; the maths is written out in ``csrc/ppo_heads.h``).

Why: after the cores, a PPO minibatch is some forty small ops forward and as many backward whose arithmetic at RL
sizes takes microseconds while dispatching and recording them takes most of a millisecond. PPO differentiates the
loss right after computing it, so the kernel returns the gradient with the loss and autograd only passes it on.
``RecurrentPPO.minibatch_losses`` keeps the plain autograd version, which defines the loss; tests check that both
give the same losses and gradients. Policies with separate GRU/LSTM kernel cores go further: ``rlgru.fast.update``
runs the cores and these heads in one call per minibatch, and ``rlgru.fast.act`` their rollout step.

Covered: SB3's ``MlpExtractor`` heads (Linear layers with ReLU or Tanh), categorical (Discrete, MultiDiscrete) and
diagonal Gaussian (Box) actions, float32/float64 on CPU. ``unsupported_reasons`` says when not (``rlgru.fast.plan``
asks); anything else (and any machine where the kernel cannot be built, or ``RLGRU_DISABLE_FUSED_HEADS=1``) takes
the autograd path.
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


def unsupported_reasons(policy: Any) -> list[str]:
    """Why ``policy``'s heads cannot go through the kernel (empty: they can): the plain heads it differentiates, on
    a device and dtype it takes. Only ``rlgru.fast.plan`` asks."""
    extractor = getattr(policy, "mlp_extractor", None)
    if getattr(policy, "_head_kind", None) is None or extractor is None:
        return ["the action distribution is not one the kernel differentiates (categorical, multi-categorical or "
                "diagonal Gaussian without gSDE)"]
    reasons = []
    weight = policy.action_net.weight if isinstance(policy.action_net, nn.Linear) else None
    if weight is None or type(policy.value_net) is not nn.Linear:
        reasons.append("the action or value head is not a plain Linear layer")
    elif weight.device.type != "cpu" or weight.dtype not in (th.float32, th.float64):
        reasons.append(f"the heads are {weight.dtype} on {weight.device.type} (the kernel: float32/float64 on CPU)")
    if mlp_activations(extractor.policy_net) is None or mlp_activations(extractor.value_net) is None:
        reasons.append("an MLP layer is not Linear + ReLU/Tanh")
    if not reasons and not KERNEL.available():
        reasons.append(KERNEL.why_unavailable())
    return reasons


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
    """How every rlgru kernel takes a policy's heads (ones ``unsupported_reasons`` accepts): the MLPs' Linear tensors,
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


def twin_core_reasons(policy: Any) -> list[str]:
    """Why ``policy`` is not what the whole-step kernels (``rlgru.fast.act``, ``rlgru.fast.update``) take (empty: it
    is): separate actor and critic cores of one fused kernel cell, the same sizes, both in the kernel on its device."""
    actor, critic = getattr(policy, "actor_core", None), getattr(policy, "critic_core", None)
    if critic is None or policy.shared_core:
        return ["the actor and critic share one core (the kernels take separate ones)"]
    kernel_cell = isinstance(actor, KernelCore) and getattr(actor.kernel, "CELL", None) is not None
    if type(actor) is not type(critic) or not kernel_cell:
        return [f"the cores ({type(actor).__name__}) have no fused cell kernel (GRU and LSTM do)"]
    reasons = []
    sizes = (actor.input_size, actor.hidden_size, actor.n_layers)
    if sizes != (critic.input_size, critic.hidden_size, critic.n_layers):
        reasons.append("the actor's and critic's cores differ in size")
    if not actor.resets_natively(policy.device):
        reasons.append("the cores' recurrence does not run in their kernel here")
    return reasons


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
    "KERNEL", "HeadsArguments", "LossSettings", "linear_tensors", "mlp_activations", "ppo_loss", "twin_core_reasons",
    "unsupported_reasons",
]
