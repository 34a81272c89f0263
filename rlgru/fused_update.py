"""A PPO minibatch's losses and gradient without autograd, for the common policy: an actor's and a critic's fused
GRU/LSTM core (``rlgru.cores.fused``) under the plain MLP heads of ``rlgru.fused_heads``.

Why: with both the cores and the heads in C++, what autograd still adds per minibatch is bookkeeping: two custom
Functions, the engine's graph walk, an accumulation per parameter and the Python between them, a few hundred
microseconds on a step whose arithmetic takes about as long. Here one kernel call (the cell's ``ppo_minibatch``,
``csrc/kernel_host.h``) runs each side's core forward, heads and loss with their gradient, and core backward, the
actor's side and the critic's side on two cores where the machine has a second one free (``csrc/pair_threads.h``);
the gradients go straight into the flat gradient buffer (``rlgru.flat_grads``).

``RecurrentPPO.minibatch_losses`` stays the definition (autograd through the same kernels): tests check that this
path gives the same losses and gradients, and ``RLGRU_DISABLE_FUSED_UPDATE=1`` turns it off.
Covered: separate actor and critic cores of one fused kernel cell, same sizes, no dropout between layers, a features
extractor without trainable parameters (e.g. ``FlattenExtractor``), heads ``fused_heads_supported`` accepts, every
trainable parameter among these. Anything else returns None from ``FusedUpdate.for_policy``.
"""

from __future__ import annotations

from typing import Any

import torch as th
from torch import nn

from rlgru.buffers import SequenceBatch
from rlgru.cores import _kernel_build
from rlgru.cores.kernel_core import KernelCore
from rlgru.flat_grads import FlatGradients
from rlgru.fused_heads import _KINDS, fused_heads_supported, linear_tensors, mlp_activations
from rlgru.policies import RecurrentActorCriticPolicy, _to_grid

DISABLE_ENV = "RLGRU_DISABLE_FUSED_UPDATE"
LOSS_NAMES = ("loss", "pg", "value", "entropy", "kl", "clip", "log_prob", "values")


class FusedUpdate:
    """The kernels' fixed arguments for one policy; ``for_policy`` says whether the policy qualifies."""

    def __init__(self, policy: RecurrentActorCriticPolicy, flat: FlatGradients) -> None:
        actor, critic = policy.actor_core, policy.critic_core
        assert isinstance(actor, KernelCore) and isinstance(critic, KernelCore)
        self.policy, self.flat = policy, flat
        self.cell = actor.kernel.CELL
        self.actor_layers, self.critic_layers = actor.layers(), critic.layers()
        self.actor_weights = [w for layer in self.actor_layers for w in layer]
        self.critic_weights = [w for layer in self.critic_layers for w in layer]
        extractor = policy.mlp_extractor
        self.pi_weights = linear_tensors(extractor.policy_net)
        self.vf_weights = linear_tensors(extractor.value_net)
        self.heads = [policy.action_net.weight, policy.action_net.bias, policy.value_net.weight, policy.value_net.bias]
        self.log_std = policy.log_std if policy._head_kind == "gaussian" else None
        self.pi_act = mlp_activations(extractor.policy_net)
        self.vf_act = mlp_activations(extractor.value_net)
        self.kind = _KINDS[policy._head_kind]
        self.dims = list(policy._action_dims) if policy._head_kind == "multi_categorical" else []
        if policy._head_kind == "categorical":
            self.dims = [policy.action_net.out_features]
        # the order gradients come out in: both cores' layers, then the heads kernel's weights (its input order)
        self.order = [
            *self.actor_weights,
            *self.critic_weights,
            *self.pi_weights,
            *self.vf_weights,
            *self.heads,
            *([self.log_std] if self.log_std is not None else []),
        ]
        view_of = {id(p): view for p, view in zip(flat.parameters, flat.views, strict=True)}
        self.views = [view_of[id(p)] for p in self.order]
        self._prepared: tuple[SequenceBatch, dict[str, Any]] | None = None

    @classmethod
    def for_policy(cls, policy: Any, flat: FlatGradients | None) -> FusedUpdate | None:
        """A ``FusedUpdate`` if ``policy`` is one this path covers exactly (see the module docstring), else None."""
        if flat is None or _kernel_build.env_flag(DISABLE_ENV) or not isinstance(policy, RecurrentActorCriticPolicy):
            return None
        actor, critic = policy.actor_core, policy.critic_core
        if (
            critic is None
            or policy.shared_core
            or type(actor) is not type(critic)
            or not isinstance(actor, KernelCore)
            or getattr(actor.kernel, "CELL", None) is None
            or (actor.input_size, actor.hidden_size, actor.n_layers)
            != (critic.input_size, critic.hidden_size, critic.n_layers)
            or actor.dropout_rate or critic.dropout_rate
            or not actor.resets_natively(policy.device)
            or not fused_heads_supported(policy)
            or policy.action_net.weight.dtype not in (th.float32, th.float64)
            or any(p.requires_grad for p in policy.features_extractor.parameters())
            or any(p.requires_grad for p in getattr(policy, "vf_features_extractor", nn.Identity()).parameters())
        ):
            return None
        if any(w is None or not w.requires_grad for layer in (*actor.layers(), *critic.layers()) for w in layer):
            return None
        update = cls(policy, flat)
        trainable = {id(p) for p in policy.parameters() if p.requires_grad}
        covered = [id(p) for p in update.order]
        if len(set(covered)) != len(covered) or set(covered) != trainable:
            return None
        return update

    def __call__(
        self,
        batch: SequenceBatch,
        clip_range: float,
        clip_range_vf: float | None,
        ent_coef: float,
        vf_coef: float,
        normalize_advantage: bool,
    ) -> dict[str, th.Tensor]:
        """The losses ``RecurrentPPO.minibatch_losses`` returns (without autograd graph); the loss's gradient is in
        the flat buffer afterwards, replacing what was there."""
        with th.no_grad():
            prep = self._prepare(batch, normalize_advantage)
            outputs = self.cell.ops.ppo_minibatch(
                self.actor_weights, prep["actor_states"], prep["x_actor"],
                self.critic_weights, prep["critic_states"], prep["x_critic"],
                prep["keep"], prep["index"], self.pi_weights, self.vf_weights, self.heads, self.log_std,
                batch.actions, batch.old_log_prob, prep["advantages"], batch.returns, batch.old_values,
                float(clip_range), None if clip_range_vf is None else float(clip_range_vf),
                float(ent_coef), float(vf_coef), self.pi_act, self.vf_act, self.kind, self.dims,
            )
            th._foreach_copy_(self.views, outputs[8:])
        return dict(zip(LOSS_NAMES, outputs[:8], strict=True))

    def _layer_states(self, state: th.Tensor) -> list[th.Tensor]:
        """One core's packed state ``[n_layers, B, n_states * H]`` as the kernel takes it: each layer's h (and c)."""
        return [s for layer in state for s in self.cell._unpacked(layer) if s is not None]

    def _prepare(self, batch: SequenceBatch, normalize_advantage: bool) -> dict[str, Any]:
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
        x_actor = _to_core_grid(pi_features.to(dtype), grid)
        x_critic = x_actor if vf_features is pi_features else _to_core_grid(vf_features.to(dtype), grid)
        advantages = batch.advantages
        if normalize_advantage and advantages.numel() > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        actor_state, critic_state = policy._split_state(batch.initial_states.to(dtype))
        prepared = {"index": grid[1] if padded else None, "x_actor": x_actor, "x_critic": x_critic,
                    "actor_states": self._layer_states(actor_state), "critic_states": self._layer_states(critic_state),
                    "advantages": advantages, "keep": 1 - batch.resets.to(dtype)}
        self._prepared = (batch, prepared)
        return prepared

    def forget_batch(self) -> None:
        """Drop the kept batch (its rollout is over)."""
        self._prepared = None


def _to_core_grid(per_sample: th.Tensor, grid: tuple[th.Tensor, th.Tensor]) -> th.Tensor:
    """Per-sample rows ``[N, F]`` as the cores take them: the padded time-major grid ``[T, n_seq, F]``."""
    mask, index = grid
    if index.numel() == mask.numel():
        return per_sample.reshape(*mask.shape, -1)
    return _to_grid(per_sample, mask, index)


__all__ = ["DISABLE_ENV", "FusedUpdate"]
