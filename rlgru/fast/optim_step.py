"""One gradient step of an update (zero, backward, clip, optimizer step) with the bookkeeping shortcuts of
``rlgru.fast.flat_grads`` and a direct fused-Adam call where they apply.

Why: on CPU the fused Adam kernel updates a policy's dozen or two tensors in tens of microseconds, while
``Optimizer.step`` spends several times that in Python (grouping tensors by device, reading state dicts, hooks,
profiler records) on every PPO minibatch. Between updates nothing of that changes, so the tensor lists are
gathered once and the same kernel is called directly, with the same state and the same result. Anything unusual
(another optimizer, AMSGrad, a parameter without gradient, state replaced by ``load_state_dict``, hooks) goes
through ``optimizer.step()`` as usual.
"""

from __future__ import annotations

from typing import Any

import torch as th

from rlgru.fast.flat_grads import FlatGradients


def optimizer_reasons(optimizer: th.optim.Optimizer) -> list[str]:
    """Why ``optimizer``'s step cannot call its fused kernel directly (empty: it can)."""
    if type(optimizer) not in (th.optim.Adam, th.optim.AdamW):
        return [f"the optimizer is {type(optimizer).__name__} (the direct call covers Adam and AdamW)"]
    if optimizer._optimizer_step_pre_hooks or optimizer._optimizer_step_post_hooks:  # hooks must still run
        return ["the optimizer has step hooks"]
    plain = all(
        g.get("fused")
        and not g.get("amsgrad")
        and not g.get("maximize")
        and not g.get("capturable")
        and not g.get("differentiable")
        and not isinstance(g["lr"], th.Tensor)
        for g in optimizer.param_groups
    )
    return [] if plain else ["a parameter group is not fused=True, or uses amsgrad/maximize/capturable/a tensor lr"]


def flat_gradient_reasons(module: th.nn.Module) -> list[str]:
    """Why ``module``'s gradients cannot live in one flat buffer (empty: they can)."""
    problem = FlatGradients.unsupported_reason(module.parameters())
    return [problem] if problem else []


class FusedAdamStep:
    """Calls ``optimizer``'s fused kernel directly when the optimizer allows it, else ``optimizer.step()``."""

    def __init__(self, optimizer: th.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self._lists: list[tuple[Any, ...]] | None = None
        self._state: Any = None

    def __call__(self) -> None:
        if not self._fast_path_ready():
            self.optimizer.step()
            self._gather()
            return
        assert self._lists is not None
        for group, params, grads, exp_avgs, exp_avg_sqs, steps, counter in self._lists:
            beta1, beta2 = group["betas"]
            if counter is not None:  # every step count is a view of it: one op instead of one per tensor
                counter.add_(1)
            else:
                th._foreach_add_(steps, 1)
            kernel = th._fused_adamw_ if group.get("decoupled_weight_decay") or self._adamw else th._fused_adam_
            kernel(
                params,
                grads,
                exp_avgs,
                exp_avg_sqs,
                [],
                steps,
                amsgrad=False,
                lr=float(group["lr"]),
                beta1=float(beta1),
                beta2=float(beta2),
                weight_decay=float(group["weight_decay"]),
                eps=float(group["eps"]),
                maximize=False,
                grad_scale=None,
                found_inf=None,
            )

    @property
    def _adamw(self) -> bool:
        return type(self.optimizer) is th.optim.AdamW

    def _eligible(self) -> bool:
        return not optimizer_reasons(self.optimizer)

    def _gather(self) -> None:
        """Collect the tensor lists, if every parameter has a gradient and Adam state on the CPU."""
        self._lists, self._state = None, None
        if not self._eligible():
            return
        lists = []
        for group in self.optimizer.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if len(params) != len(group["params"]) or any(p.device.type != "cpu" or p.grad.is_sparse for p in params):
                return
            states = [self.optimizer.state.get(p, {}) for p in params]
            if any(not {"exp_avg", "exp_avg_sq", "step"} <= s.keys() for s in states):
                return
            counter = _shared_step_counter(states)
            lists.append(
                (
                    group,
                    params,
                    [p.grad for p in params],
                    [s["exp_avg"] for s in states],
                    [s["exp_avg_sq"] for s in states],
                    [s["step"] for s in states],
                    counter,
                )
            )
        self._lists, self._state = lists, self.optimizer.state

    def _fast_path_ready(self) -> bool:
        if self._lists is None or self.optimizer.state is not self._state or not self._eligible():
            return False
        groups = self.optimizer.param_groups
        if len(groups) != len(self._lists):
            return False
        for group, (cached_group, params, grads, *_) in zip(groups, self._lists, strict=True):
            if group is not cached_group or len(group["params"]) != len(params):
                return False
            if any(p is not q or p.grad is not g for p, q, g in zip(group["params"], params, grads, strict=True)):
                return False
        return True


def _shared_step_counter(states: list[dict[str, Any]]) -> th.Tensor | None:
    """Make a group's step counts views of one tensor (same values) and return it, so that one ``add_`` counts a
    step for every parameter; None when they are not all scalar float tensors on the CPU.

    Anything that reads or saves the optimizer's state sees the same numbers; ``load_state_dict`` replaces the
    state, which ``FusedAdamStep`` notices and gathers (and shares) afresh.
    """
    steps = [s["step"] for s in states]
    if not steps or any(
        not isinstance(t, th.Tensor) or t.dim() != 0 or t.device.type != "cpu" or t.dtype != steps[0].dtype
        or t.requires_grad for t in steps
    ):
        return None
    counter = th.stack(steps)
    for i, state in enumerate(states):
        state["step"] = counter[i]
    return counter


class GradientStep:
    """``zero_grad(); loss.backward(); clip_grad_norm_(max_norm); optimizer.step()`` for ``module``'s parameters.

    Built once per policy and optimizer (``for_module`` rebuilds when either changed); gradients live in one flat
    buffer where the parameters allow it.
    """

    def __init__(self, module: th.nn.Module, optimizer: th.optim.Optimizer, fast: bool = True) -> None:
        self.module, self.optimizer, self.fast = module, optimizer, fast
        self.parameters = [p for p in module.parameters() if p.requires_grad]
        self.flat = FlatGradients.try_for(self.parameters) if fast else None
        self.optimizer_step: Any = FusedAdamStep(optimizer) if fast else optimizer.step

    @classmethod
    def for_module(
        cls, previous: GradientStep | None, module: th.nn.Module, optimizer: th.optim.Optimizer, fast: bool = True
    ) -> GradientStep:
        """``previous`` if it still fits ``module``, ``optimizer`` and ``fast`` (its gradient views re-attached), else
        anew. ``fast`` (from ``rlgru.fast.plan``): the flat buffer and the direct fused-Adam call where they apply;
        otherwise exactly ``zero_grad``, ``backward``, ``clip_grad_norm_``, ``optimizer.step``."""
        params = [p for p in module.parameters() if p.requires_grad]
        if (
            previous is None
            or previous.fast != fast
            or previous.optimizer is not optimizer
            or len(previous.parameters) != len(params)
            or any(a is not b for a, b in zip(previous.parameters, params, strict=True))
        ):
            return cls(module, optimizer)
        if previous.flat is not None:
            previous.flat.attach()
        return previous

    def apply(self, max_grad_norm: float) -> None:
        """Clip and step with a gradient already written into the flat buffer (``rlgru.fast.update``)."""
        assert self.flat is not None, "apply() needs the flat gradient buffer"
        self.flat.clip_norm_(max_grad_norm)
        self.optimizer_step()

    def __call__(self, loss: th.Tensor, max_grad_norm: float) -> None:
        if self.flat is not None:
            self.flat.zero_()
            loss.backward()
            self.flat.clip_norm_(max_grad_norm)
        else:
            self.optimizer.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(self.parameters, max_grad_norm)
        self.optimizer_step()


__all__ = ["FusedAdamStep", "GradientStep", "flat_gradient_reasons", "optimizer_reasons"]
