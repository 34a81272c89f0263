"""A PPO minibatch's losses and gradient without autograd, for the common policy: an actor's and a critic's fused
GRU/LSTM core (``rlgru.cores.fused``) under the plain MLP heads of ``rlgru.fast.heads``.

Why: with both the cores and the heads in C++, what autograd still adds per minibatch is bookkeeping: two custom
Functions, the engine's graph walk, an accumulation per parameter and the Python between them, a few hundred
microseconds on a step whose arithmetic takes about as long. Here one kernel call (the cell's ``ppo_minibatch``,
``csrc/ppo_cell.h``) runs each side's core forward, heads and loss with their gradient, and core backward, the
actor's side and the critic's side on two cores where the machine has a second one free (``csrc/pair_threads.h``);
the gradients go straight into the flat gradient buffer (``rlgru.fast.flat_grads``).

``RecurrentPPO.minibatch_losses`` stays the definition (autograd through the same kernels): tests check that this
path gives the same losses and gradients, and ``RLGRU_DISABLE_FUSED_UPDATE=1`` turns it off.
Covered: separate actor and critic cores of one fused kernel cell, same sizes, no dropout between layers, a features
extractor without trainable parameters (e.g. ``FlattenExtractor``), heads ``rlgru.fast.heads`` covers, every
trainable parameter among these; ``rlgru.fast.plan`` decides, from ``unsupported_reasons``.
"""

from __future__ import annotations

from typing import Any

import torch as th
from torch import nn

from rlgru.cores import _kernel_build
from rlgru.cores.grid import core_input
from rlgru.cores.kernel_core import KernelCore
from rlgru.fast.cell_kernels import ppo_kernel
from rlgru.fast.flat_grads import FlatGradients
from rlgru.fast.heads import HeadsArguments

DISABLE_ENV = "RLGRU_DISABLE_FUSED_UPDATE"
LOSS_NAMES = ("loss", "pg", "value", "entropy", "kl", "clip", "log_prob", "values")


def gradient_order(policy: Any, heads: HeadsArguments) -> list[th.Tensor]:
    """The order gradients come out of the kernel in: both cores' layers, then the heads' weights."""
    layers = (*policy.actor_core.layers(), *policy.critic_core.layers())
    return [
        *(w for layer in layers for w in layer),
        *heads.pi_weights,
        *heads.vf_weights,
        *heads.heads,
        *([heads.log_std] if heads.log_std is not None else []),
    ]


def unsupported_reasons(policy: Any) -> list[str]:
    """Why a minibatch of ``policy`` cannot go through ``ppo_minibatch``, beyond what the heads and the twin cores
    need (``rlgru.fast.plan`` asks those first); empty when it can."""
    if _kernel_build.env_flag(DISABLE_ENV):
        return [f"{DISABLE_ENV}=1"]
    actor, critic = policy.actor_core, policy.critic_core
    reasons = []
    if actor.dropout_rate or critic.dropout_rate:
        reasons.append("dropout between core layers")
    extractors = (policy.features_extractor, getattr(policy, "vf_features_extractor", nn.Identity()))
    if any(p.requires_grad for extractor in extractors for p in extractor.parameters()):
        reasons.append("the features extractor has trainable parameters (the kernel starts at the cores)")
    if any(w is None or not w.requires_grad for layer in (*actor.layers(), *critic.layers()) for w in layer):
        reasons.append("a core weight is missing or frozen")
    if not reasons:
        trainable = {id(p) for p in policy.parameters() if p.requires_grad}
        covered = [id(p) for p in gradient_order(policy, HeadsArguments.of(policy))]
        if len(set(covered)) != len(covered) or set(covered) != trainable:
            reasons.append("the policy trains parameters beyond the cores and heads")
    if not reasons:
        kernel = ppo_kernel(actor.kernel.CELL)
        if not kernel.available():
            reasons.append(kernel.why_unavailable())
    return reasons


class FusedUpdate:
    """The kernels' fixed arguments for one policy that ``rlgru.fast.plan`` found this path covers."""

    def __init__(self, policy: Any, flat: FlatGradients) -> None:
        actor, critic = policy.actor_core, policy.critic_core
        assert isinstance(actor, KernelCore) and isinstance(critic, KernelCore)
        self.policy = policy
        self.cell = actor.kernel.CELL
        self.ops = ppo_kernel(self.cell).ops
        self.actor_weights = [w for layer in actor.layers() for w in layer]
        self.critic_weights = [w for layer in critic.layers() for w in layer]
        self.heads = HeadsArguments.of(policy)
        self.order = gradient_order(policy, self.heads)
        view_of = {id(p): view for p, view in zip(flat.parameters, flat.views, strict=True)}
        self.views = [view_of[id(p)] for p in self.order]
        self._prepared: tuple[Any, dict[str, Any]] | None = None

    def __call__(
        self,
        batch: Any,
        clip_range: float,
        clip_range_vf: float | None,
        ent_coef: float,
        vf_coef: float,
        normalize_advantage: bool,
    ) -> dict[str, th.Tensor]:
        """The losses ``RecurrentPPO.minibatch_losses`` returns (without autograd graph); the loss's gradient is in
        the flat buffer afterwards, replacing what was there."""
        heads = self.heads
        with th.no_grad():
            prep = self._prepare(batch, normalize_advantage)
            outputs = self.ops.ppo_minibatch(
                self.actor_weights, prep["actor_states"], prep["x_actor"],
                self.critic_weights, prep["critic_states"], prep["x_critic"],
                prep["keep"], prep["index"], heads.pi_weights, heads.vf_weights, heads.heads, heads.log_std,
                batch.actions, batch.old_log_prob, prep["advantages"], batch.returns, batch.old_values,
                float(clip_range), None if clip_range_vf is None else float(clip_range_vf),
                float(ent_coef), float(vf_coef), heads.pi_act, heads.vf_act, heads.kind, heads.dims,
            )
            th._foreach_copy_(self.views, outputs[8:])
        return dict(zip(LOSS_NAMES, outputs[:8], strict=True))

    def _layer_states(self, state: th.Tensor) -> list[th.Tensor]:
        """One core's packed state ``[n_layers, B, n_states * H]`` as the kernel takes it: each layer's h (and c)."""
        return [s for layer in state for s in self.cell._unpacked(layer) if s is not None]

    def _prepare(self, batch: Any, normalize_advantage: bool) -> dict[str, Any]:
        """What depends only on the batch (core inputs and states, reset mask, normalised advantages), kept while the
        same batch comes back: the buffer replays one batch every epoch when it holds the whole rollout."""
        if self._prepared is not None and self._prepared[0] is batch:
            return self._prepared[1]
        policy = self.policy
        mask = batch.mask
        grid = (mask, mask.flatten().nonzero().squeeze(1))
        padded = grid[1].numel() != mask.numel()
        features = policy.extract_features(batch.observations)
        pi_features, vf_features = features if isinstance(features, tuple) else (features, features)
        dtype = policy.action_net.weight.dtype
        x_actor = core_input(pi_features.to(dtype), grid)
        x_critic = x_actor if vf_features is pi_features else core_input(vf_features.to(dtype), grid)
        advantages = batch.advantages
        if normalize_advantage and advantages.numel() > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        actor_state, critic_state = policy._split_state(batch.initial_states.to(dtype))
        prepared = {"index": grid[1] if padded else None, "x_actor": x_actor, "x_critic": x_critic,
                    "actor_states": self._layer_states(actor_state), "critic_states": self._layer_states(critic_state),
                    "advantages": advantages, "keep": 1 - batch.resets.to(dtype)}
        self._prepared = (batch, prepared)
        return prepared


__all__ = ["DISABLE_ENV", "FusedUpdate", "gradient_order", "unsupported_reasons"]
