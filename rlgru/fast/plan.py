"""Which fast paths a policy's training and rollouts take, and why the others do not: decided here and only here.

The autograd/SB3 code is rlgru's definition of the algorithm; each fast path is a twin of one piece of it, tested
against it, used where it covers the policy exactly. Each twin answers "why not?" for a policy
(``unsupported_reasons``); this module asks them in order and returns the answers as a ``FastPathPlan``, which
``RecurrentPPO`` follows, ``rlgru train`` prints in one line and the run directory keeps (``fast_paths.json``).

``fast_paths=False`` on a model (``algorithm.fast_paths: false`` in a config), or ``RLGRU_NO_FAST_PATHS=1`` in the
environment, turns every fast path off, the cores' compiled kernels included: what is left is the definition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch as th

from rlgru.cores._kernel_build import NO_FAST_PATHS_ENV, env_flag
from rlgru.fast import act, heads, optim_step, update

#: what a core without its kernel costs, as measured with every fast path off (results/fallback_speed.md, CartPoleNoVel
#: at three sizes) against the kernels' 1.4x SB3 PPO (results/training_speed.md)
FALLBACK_COST = {
    "GRUCore": "GRU cores then train through rlgru's PyTorch GRU loop, at 0.23-0.50x SB3 PPO's speed and 0.91-1.10x "
    "the LSTM fallback's (results/fallback_speed.md)",
    "LSTMCore": "LSTM cores then train through PyTorch's nn.LSTM, at 0.21-0.49x SB3 PPO's speed "
    "(results/fallback_speed.md)",
}


@dataclass(frozen=True)
class Choice:
    """One fast path: whether it runs, and why not when it does not."""

    name: str
    used: bool
    reasons: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"{self.name}: on" if self.used else f"{self.name}: off ({'; '.join(self.reasons) or 'n/a'})"


@dataclass(frozen=True)
class FastPathPlan:
    """The answer for one policy (and optimiser): the cores' kernels, then each PPO fast path in the order they
    build on each other (heads, then the one-call rollout step and minibatch, then the optimiser step)."""

    cores: tuple[Choice, ...]
    heads: Choice
    act: Choice
    update: Choice
    flat_gradients: Choice
    adam_step: Choice
    enabled: bool = True
    costs: tuple[str, ...] = field(default=())

    @property
    def choices(self) -> tuple[Choice, ...]:
        return (*self.cores, self.heads, self.act, self.update, self.flat_gradients, self.adam_step)

    def summary(self) -> str:
        """One line: what runs fast and what does not, with the first reason for each."""
        if not self.enabled:
            return f"fast paths: all off ({self.heads.reasons[0]}): the definition runs (autograd, PyTorch cores)"
        on = [c.name for c in self.choices if c.used]
        off = [f"{c.name} ({c.reasons[0]})" for c in self.choices if not c.used and c.reasons]
        line = f"fast paths: {', '.join(on) or 'none'}"
        if off:
            line += f"; not: {', '.join(off)}"
        if self.costs:
            line += f"; cost: {' '.join(self.costs)}"
        return line

    def to_dict(self) -> dict[str, Any]:
        """For ``fast_paths.json`` in a run directory."""
        return {
            "enabled": self.enabled,
            "summary": self.summary(),
            "paths": [{"name": c.name, "used": c.used, "reasons": list(c.reasons)} for c in self.choices],
            "costs": list(self.costs),
        }


def fast_paths_enabled(setting: bool = True) -> bool:
    """Whether a model with ``fast_paths=setting`` may take any fast path in this process."""
    return setting and not env_flag(NO_FAST_PATHS_ENV)


def plan_fast_paths(policy: Any, optimizer: th.optim.Optimizer | None = None, enabled: bool = True) -> FastPathPlan:
    """The fast paths ``policy`` takes (its updates with ``optimizer``, when given), and why not the others.

    ``enabled`` is the model's ``fast_paths`` setting. Each path needs the ones it builds on: the one-call rollout
    step and minibatch need the fused heads and twin kernel cores; the minibatch also needs the flat gradients.
    """
    device = getattr(policy, "device", th.device("cpu"))
    cores = _cores(policy)
    if not fast_paths_enabled(enabled):
        why = (f"{NO_FAST_PATHS_ENV}=1",) if env_flag(NO_FAST_PATHS_ENV) else ("fast_paths=False",)
        return FastPathPlan(
            cores=tuple(Choice(f"{label} kernel", False, why) for label, core in cores if core.kernel_reasons(device)
                        is not None),
            heads=Choice("fused heads", False, why),
            act=Choice("one-call rollout step", False, why),
            update=Choice("one-call minibatch", False, why),
            flat_gradients=Choice("flat gradients", False, why),
            adam_step=Choice("direct fused Adam", False, why),
            enabled=False,
        )

    core_choices, costs = [], []
    for label, core in cores:
        reasons = core.kernel_reasons(device)
        if reasons is None:  # the core has no kernel to choose
            continue
        core_choices.append(Choice(f"{label} kernel", not reasons, tuple(reasons)))
        if reasons and any("could not be built" in r for r in reasons) and type(core).__name__ in FALLBACK_COST:
            costs.append(FALLBACK_COST[type(core).__name__])

    heads_reasons = heads.unsupported_reasons(policy)
    twin_reasons = heads_reasons or heads.twin_core_reasons(policy)
    act_reasons = twin_reasons or act.unsupported_reasons(policy)
    flat_reasons = optim_step.flat_gradient_reasons(policy) if optimizer is not None else ["no optimiser"]
    update_reasons = twin_reasons or update.unsupported_reasons(policy)
    if not update_reasons and flat_reasons:
        update_reasons = ["no flat gradient buffer"]
    adam_reasons = optim_step.optimizer_reasons(optimizer) if optimizer is not None else ["no optimiser"]
    return FastPathPlan(
        cores=tuple(core_choices),
        heads=Choice("fused heads", not heads_reasons, tuple(heads_reasons)),
        act=Choice("one-call rollout step", not act_reasons, tuple(act_reasons)),
        update=Choice("one-call minibatch", not update_reasons, tuple(update_reasons)),
        flat_gradients=Choice("flat gradients", not flat_reasons, tuple(flat_reasons)),
        adam_step=Choice("direct fused Adam", not adam_reasons, tuple(adam_reasons)),
        costs=tuple(dict.fromkeys(costs)),
    )


def _cores(policy: Any) -> list[tuple[str, Any]]:
    """``(label, core)`` for each distinct memory core of ``policy``."""
    actor, critic = getattr(policy, "actor_core", None), getattr(policy, "critic_core", None)
    if actor is None:
        return []
    if critic is None or critic is actor:
        return [("core", actor)]
    return [("actor core", actor), ("critic core", critic)]


__all__ = ["Choice", "FALLBACK_COST", "FastPathPlan", "fast_paths_enabled", "plan_fast_paths"]
