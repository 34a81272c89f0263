"""The policy's action distribution on the training hot path, without ``torch.distributions`` objects.

Building a ``torch.distributions.Categorical`` or ``Normal`` per call validates its arguments and every sample
(a dozen small tensor ops), and SB3 wraps it once more: on RL-sized batches that bookkeeping costs more than the
arithmetic. Rollouts and PPO updates only need *sample + log-prob* and *log-prob + entropy*, so this module
computes them directly, with the same maths and the same random draws as ``torch.distributions`` (the
normalised logits come from one ``log_softmax`` instead of ``logits - logsumexp``, equal to rounding): only the
overhead is gone. ``predict`` and ``get_distribution`` keep SB3's distribution objects.

Covered: Discrete, MultiDiscrete (categorical) and Box (diagonal Gaussian) actions. Bernoulli (MultiBinary) and
state-dependent exploration go through SB3's distributions (``head_kind`` returns None).
"""

from __future__ import annotations

import math
from typing import Literal

import torch as th
from stable_baselines3.common.distributions import (
    CategoricalDistribution,
    DiagGaussianDistribution,
    Distribution,
    MultiCategoricalDistribution,
)

HeadKind = Literal["categorical", "multi_categorical", "gaussian"]
_LOG_SQRT_2PI = math.log(math.sqrt(2 * math.pi))


def head_kind(action_dist: Distribution) -> HeadKind | None:
    """Which direct computation serves ``action_dist``; None means use the distribution object."""
    # exact types: a subclass may change the maths
    if type(action_dist) is CategoricalDistribution:
        return "categorical"
    if type(action_dist) is MultiCategoricalDistribution:
        return "multi_categorical"
    if type(action_dist) is DiagGaussianDistribution:
        return "gaussian"
    return None


def sample(
    kind: HeadKind, params: th.Tensor, log_std: th.Tensor | None, deterministic: bool, action_dims: list[int]
) -> tuple[th.Tensor, th.Tensor]:
    """``(actions, log_prob)`` from the action net's output ``params`` (logits or Gaussian means)."""
    if kind == "categorical":
        return _categorical_sample(params, deterministic)
    if kind == "multi_categorical":
        drawn = [_categorical_sample(logits, deterministic) for logits in th.split(params, action_dims, dim=1)]
        return th.stack([a for a, _ in drawn], dim=1), th.stack([lp for _, lp in drawn], dim=1).sum(dim=1)
    assert log_std is not None
    std = th.ones_like(params) * log_std.exp()
    actions = params if deterministic else params + th.empty_like(params).normal_() * std
    return actions, _gaussian_log_prob(params, std, actions)


def evaluate(
    kind: HeadKind, params: th.Tensor, log_std: th.Tensor | None, actions: th.Tensor, action_dims: list[int]
) -> tuple[th.Tensor, th.Tensor]:
    """``(log_prob, entropy)`` of ``actions`` (as the buffer stores them) under ``params``."""
    if kind == "categorical":
        return _categorical_evaluate(params, actions.long().reshape(-1))
    if kind == "multi_categorical":
        parts = [
            _categorical_evaluate(logits, action.long())
            for logits, action in zip(th.split(params, action_dims, dim=1), th.unbind(actions, dim=1), strict=True)
        ]
        return th.stack([lp for lp, _ in parts], dim=1).sum(dim=1), th.stack([e for _, e in parts], dim=1).sum(dim=1)
    assert log_std is not None
    std = th.ones_like(params) * log_std.exp()
    entropy = 0.5 + 0.5 * math.log(2 * math.pi) + th.log(std)
    return _gaussian_log_prob(params, std, actions), _sum_action_dims(entropy)


def _categorical_sample(logits: th.Tensor, deterministic: bool) -> tuple[th.Tensor, th.Tensor]:
    log_p = th.log_softmax(logits, dim=-1)  # = Categorical's logits - logsumexp(logits), in one op
    probs = th.softmax(log_p, dim=-1)
    if deterministic:
        actions = th.argmax(probs, dim=1)
    else:  # torch.distributions.Categorical.sample's draw, so seeds give the same actions
        actions = th.multinomial(probs, 1, True).T.reshape(-1)
    return actions, log_p.gather(-1, actions.unsqueeze(-1)).squeeze(-1)


def _categorical_evaluate(logits: th.Tensor, actions: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
    log_p = th.log_softmax(logits, dim=-1)
    log_prob = log_p.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    clamped = th.clamp(log_p, min=th.finfo(log_p.dtype).min)
    entropy = -(clamped * th.softmax(log_p, dim=-1)).sum(-1)
    return log_prob, entropy


def _gaussian_log_prob(mean: th.Tensor, std: th.Tensor, actions: th.Tensor) -> th.Tensor:
    per_dim = -((actions - mean) ** 2) / (2 * std**2) - std.log() - _LOG_SQRT_2PI
    return _sum_action_dims(per_dim)


def _sum_action_dims(values: th.Tensor) -> th.Tensor:
    return values.sum(dim=1) if values.dim() > 1 else values.sum()


__all__ = ["HeadKind", "evaluate", "head_kind", "sample"]
