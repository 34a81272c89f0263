"""The action head of an exported policy: the action ``predict`` would return, from the actor's latent.

Deterministic actions are each distribution's mode, post-processed as ``predict`` does (Box actions clipped to the
space, or unscaled from [-1, 1] when the policy squashes). The sampling variant draws from the same distributions
with noise made inside the graph (``RandomUniformLike``/``RandomNormalLike`` in ONNX), so a game can keep its agents
unpredictable without a second runtime; it is refused for gSDE, whose noise lives in a matrix resampled by training.
Actions come out in the action space's dtype, ready for ``env.step``.
"""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.distributions import (
    BernoulliDistribution,
    CategoricalDistribution,
    DiagGaussianDistribution,
    MultiCategoricalDistribution,
    StateDependentNoiseDistribution,
)
from torch import nn

from rlgru.export.errors import ExportError


class ActionHead(nn.Module):
    """``forward(latent_pi [B, latent]) -> actions [B, *action_space.shape]``, using the policy's own layers."""

    def __init__(self, policy: nn.Module, sample: bool) -> None:
        super().__init__()
        self.action_net = policy.action_net
        self.sample = sample
        self.space: spaces.Space = policy.action_space
        self.shape = tuple(int(n) for n in self.space.shape)
        self.dtype = torch.from_numpy(np.zeros(0, dtype=self.space.dtype)).dtype
        distribution = policy.action_dist
        self.kind = _kind(distribution, sample)
        self.splits = [int(n) for n in distribution.action_dims] if self.kind == "multicategorical" else []
        self.tanh = self.kind == "gaussian" and getattr(distribution, "bijector", None) is not None
        self.squash = bool(policy.squash_output) and self.kind == "gaussian"
        self.log_std = policy.log_std if self.kind == "gaussian" and sample else None
        if isinstance(self.space, spaces.Box):
            self.register_buffer("low", torch.as_tensor(self.space.low, dtype=torch.float32))
            self.register_buffer("high", torch.as_tensor(self.space.high, dtype=torch.float32))

    def forward(self, latent_pi: torch.Tensor) -> torch.Tensor:
        out = self.action_net(latent_pi)
        if self.kind == "categorical":
            return self._categorical(out)
        if self.kind == "multicategorical":
            return torch.stack([self._categorical(logits) for logits in out.split(self.splits, dim=-1)], dim=1)
        if self.kind == "bernoulli":
            probs = torch.sigmoid(out)
            chosen = torch.rand_like(probs) < probs if self.sample else torch.round(probs)
            return chosen.to(self.dtype).reshape((-1, *self.shape))
        actions = out + self.log_std.exp() * torch.randn_like(out) if self.sample else out
        if self.tanh:
            actions = torch.tanh(actions)
        actions = actions.reshape((-1, *self.shape))
        if self.squash:  # BasePolicy.unscale_action
            return self.low + 0.5 * (actions + 1.0) * (self.high - self.low)
        return torch.max(torch.min(actions, self.high), self.low)

    def _categorical(self, logits: torch.Tensor) -> torch.Tensor:
        if self.sample:  # Gumbel-max: argmax(logits + Gumbel noise) is a draw from softmax(logits)
            uniform = torch.rand_like(logits).clamp_min(torch.finfo(torch.float32).tiny)
            logits = logits - torch.log(-torch.log(uniform))
        return torch.argmax(logits, dim=-1).to(self.dtype)


def _kind(distribution: object, sample: bool) -> str:
    if isinstance(distribution, StateDependentNoiseDistribution):
        if sample:
            raise ExportError(
                "sampled actions with gSDE cannot be exported: its exploration noise is a matrix "
                "resampled during training, not part of the policy; export deterministic actions"
            )
        return "gaussian"
    kinds = {
        CategoricalDistribution: "categorical",
        MultiCategoricalDistribution: "multicategorical",
        BernoulliDistribution: "bernoulli",
        DiagGaussianDistribution: "gaussian",
    }
    for cls, kind in kinds.items():
        if isinstance(distribution, cls):
            return kind
    raise ExportError(
        f"actions from a {type(distribution).__name__} cannot be exported: export supports Discrete, "
        "MultiDiscrete, MultiBinary and Box action spaces"
    )


__all__ = ["ActionHead"]
