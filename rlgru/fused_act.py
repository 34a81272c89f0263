"""A rollout step in one kernel call for the common policy: separate actor and critic GRU cores (a fused cell whose
rollout steps run in its kernel) under plain MLP heads.

Why: one rollout step of such a policy is two one-step core calls, four small MLP layers, the action layer, a
softmax or Gaussian draw and the value layer: some thirty ATen ops and a dozen ``nn.Module`` calls, each a few
microseconds of dispatch for a few microseconds of arithmetic at 8 envs. The cell kernel's ``act`` operator
(``csrc/kernel_host.h``) runs the same ATen ops in the same order and takes the same random draws, so a seed gives
the same actions either way; ``RLGRU_DISABLE_FUSED_ACT=1`` goes back to the module-by-module path, which stays the
definition (tests compare the two).
"""

from __future__ import annotations

from typing import Any

import torch as th

from rlgru.cores import _kernel_build
from rlgru.cores.kernel_core import KernelCore
from rlgru.fused_heads import _KINDS, fused_heads_supported, linear_tensors, mlp_activations

DISABLE_ENV = "RLGRU_DISABLE_FUSED_ACT"


def fused_act_supported(policy: Any) -> bool:
    """Whether ``policy``'s rollout step can go through its cell kernel's ``act`` operator."""
    actor, critic = getattr(policy, "actor_core", None), getattr(policy, "critic_core", None)
    return (
        not _kernel_build.env_flag(DISABLE_ENV)
        and critic is not None
        and not policy.shared_core
        and type(actor) is type(critic)
        and isinstance(actor, KernelCore)
        and getattr(actor.kernel, "CELL", None) is not None
        and (actor.input_size, actor.hidden_size, actor.n_layers)
        == (critic.input_size, critic.hidden_size, critic.n_layers)
        and actor.resets_natively(policy.device)
        and _kernel_runs_rollout_steps(actor, policy.action_net.weight)
        and fused_heads_supported(policy)
    )


def _kernel_runs_rollout_steps(core: KernelCore, like: th.Tensor) -> bool:
    """Whether the core's own rollout step is its kernel (an LSTM's is ``torch.lstm_cell``, whose rounding the kernel
    would not reproduce, so it keeps the module path)."""
    with th.no_grad():
        return core.uses_kernel(like.new_empty((1, 1, core.input_size)))


def act(
    policy: Any, features: th.Tensor | tuple[th.Tensor, th.Tensor], state: th.Tensor, deterministic: bool
) -> tuple[th.Tensor, th.Tensor, th.Tensor, th.Tensor]:
    """``(actions, values, log_prob, next_state)`` as ``RecurrentActorCriticPolicy.forward`` returns them (before
    its final reshape), from the extracted features and the already-reset state; no gradient."""
    pi_features, vf_features = features if isinstance(features, tuple) else (features, features)
    dtype = policy.action_net.weight.dtype
    extractor = policy.mlp_extractor
    kind = policy._head_kind
    dims = list(policy._action_dims) if kind == "multi_categorical" else []
    if kind == "categorical":
        dims = [policy.action_net.out_features]
    actions, values, log_prob, next_state = policy.actor_core.kernel.CELL.ops.act(
        [w for layer in policy.actor_core.layers() for w in layer],
        [w for layer in policy.critic_core.layers() for w in layer],
        pi_features.to(dtype),
        vf_features.to(dtype),
        state.to(dtype),
        linear_tensors(extractor.policy_net),
        linear_tensors(extractor.value_net),
        [policy.action_net.weight, policy.action_net.bias, policy.value_net.weight, policy.value_net.bias],
        policy.log_std if kind == "gaussian" else None,
        mlp_activations(extractor.policy_net),
        mlp_activations(extractor.value_net),
        _KINDS[kind],
        dims,
        deterministic,
    )
    return actions, values, log_prob, next_state


__all__ = ["DISABLE_ENV", "act", "fused_act_supported"]
