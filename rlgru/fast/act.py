"""A rollout step in one kernel call for the common policy: separate actor and critic cores of one fused cell (GRU or
LSTM) under plain MLP heads.

Why: one rollout step of such a policy is two one-step core calls, four small MLP layers, the action layer, a
softmax or Gaussian draw and the value layer: some thirty ATen ops and a dozen ``nn.Module`` calls, each a few
microseconds of dispatch for a few microseconds of arithmetic at 8 envs. The cell kernel's ``act`` operator
(``csrc/ppo_cell.h``) runs the same ops in the same order (the GRU's kernel step, the LSTM's ``lstm_cell``) and
takes the same random draws, so a seed gives the same numbers, bit for bit, either way; ``RLGRU_DISABLE_FUSED_ACT=1``
goes back to the module-by-module path, which stays the definition (tests compare the two).
"""

from __future__ import annotations

from typing import Any

import torch as th

from rlgru.cores import _kernel_build
from rlgru.fast.cell_kernels import ppo_kernel
from rlgru.fast.heads import HeadsArguments

DISABLE_ENV = "RLGRU_DISABLE_FUSED_ACT"


def unsupported_reasons(policy: Any) -> list[str]:
    """Why the rollout step cannot go through the cell's ``act`` operator, beyond what the heads and the twin cores
    need (``rlgru.fast.plan`` asks those first); empty when it can."""
    if _kernel_build.env_flag(DISABLE_ENV):
        return [f"{DISABLE_ENV}=1"]
    kernel = ppo_kernel(policy.actor_core.kernel.CELL)
    return [] if kernel.available() else [kernel.why_unavailable()]


class FusedAct:
    """The ``act`` operator's fixed arguments for one policy, gathered once (the lookups cost more than they seem
    next to a 100 µs step); call it with the features, the already-reset state and ``deterministic``."""

    def __init__(self, policy: Any) -> None:
        self.op = ppo_kernel(policy.actor_core.kernel.CELL).ops.act
        self.dtype = policy.action_net.weight.dtype
        self.heads = HeadsArguments.of(policy)  # in the operator's argument order
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
            *self.heads,
            deterministic,
        )
        return actions, values, log_prob, next_state


__all__ = ["DISABLE_ENV", "FusedAct", "unsupported_reasons"]
