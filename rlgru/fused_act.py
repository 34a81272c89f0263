"""A rollout step in one kernel call for the common policy: separate actor and critic cores of one fused cell (GRU or
LSTM) under plain MLP heads.

Why: one rollout step of such a policy is two one-step core calls, four small MLP layers, the action layer, a
softmax or Gaussian draw and the value layer: some thirty ATen ops and a dozen ``nn.Module`` calls, each a few
microseconds of dispatch for a few microseconds of arithmetic at 8 envs. The cell kernel's ``act`` operator
(``csrc/kernel_host.h``) runs the same ops in the same order (the GRU's kernel step, the LSTM's ``lstm_cell``) and
takes the same random draws, so a seed gives the same numbers, bit for bit, either way; ``RLGRU_DISABLE_FUSED_ACT=1``
goes back to the module-by-module path, which stays the definition (tests compare the two).
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
        and fused_heads_supported(policy)
    )


class FusedAct:
    """The ``act`` operator's fixed arguments for one policy, gathered once (the lookups cost more than they seem
    next to a 100 µs step); call it with the features, the already-reset state and ``deterministic``."""

    def __init__(self, policy: Any) -> None:
        extractor = policy.mlp_extractor
        kind = policy._head_kind
        dims = list(policy._action_dims) if kind == "multi_categorical" else []
        if kind == "categorical":
            dims = [policy.action_net.out_features]
        self.op = policy.actor_core.kernel.CELL.ops.act
        self.dtype = policy.action_net.weight.dtype
        self.fixed = (
            linear_tensors(extractor.policy_net),
            linear_tensors(extractor.value_net),
            [policy.action_net.weight, policy.action_net.bias, policy.value_net.weight, policy.value_net.bias],
            policy.log_std if kind == "gaussian" else None,
            mlp_activations(extractor.policy_net),
            mlp_activations(extractor.value_net),
            _KINDS[kind],
            dims,
        )
        self.actor_core, self.critic_core = policy.actor_core, policy.critic_core

    def __call__(
        self, features: th.Tensor | tuple[th.Tensor, th.Tensor], state: th.Tensor, deterministic: bool
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor, th.Tensor]:
        """``(actions, values, log_prob, next_state)`` as ``RecurrentActorCriticPolicy.forward`` returns them
        (before its final reshape); no gradient."""
        pi_features, vf_features = features if isinstance(features, tuple) else (features, features)
        actions, values, log_prob, next_state = self.op(
            [w for layer in self.actor_core.layers() for w in layer],  # (PyTorch may re-flatten RNN weights)
            [w for layer in self.critic_core.layers() for w in layer],
            pi_features.to(self.dtype),
            vf_features.to(self.dtype),
            state.to(self.dtype),
            *self.fixed,
            deterministic,
        )
        return actions, values, log_prob, next_state


__all__ = ["DISABLE_ENV", "FusedAct", "fused_act_supported"]
