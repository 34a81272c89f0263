"""Every parameter gradient of a policy as a view of one flat buffer: zeroing and norm clipping in one op each.

A PPO update zeroes, measures and scales each parameter's gradient once per minibatch; with a dozen or more small
tensors (cores, heads, biases) ``zero_grad`` and ``clip_grad_norm_`` cost a few microseconds of dispatch per tensor
and per op, more than the arithmetic at RL sizes. Backward accumulates into the views in place, so the flat buffer
always holds the whole gradient; the results equal ``clip_grad_norm_``'s up to float summation order.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch as th


class FlatGradients:
    """Gradients of ``parameters`` (those that require grad) laid out in one buffer; see the module docstring.

    Something else may replace a ``.grad`` (``optimizer.zero_grad()`` sets them to None, a user may assign one):
    ``attach()`` checks the layout and rebuilds the views, carrying the current values over.
    """

    def __init__(self, parameters: Iterable[th.nn.Parameter]) -> None:
        self.parameters = [p for p in parameters if p.requires_grad]
        problem = self.unsupported_reason(self.parameters)
        if problem:
            raise ValueError(problem)
        first = self.parameters[0]
        self.buffer = th.zeros(sum(p.numel() for p in self.parameters), dtype=first.dtype, device=first.device)
        self.views = []
        offset = 0
        for p in self.parameters:
            self.views.append(self.buffer[offset : offset + p.numel()].view_as(p))
            offset += p.numel()
        self.attach()

    @staticmethod
    def unsupported_reason(parameters: Iterable[th.nn.Parameter]) -> str:
        """Why ``parameters`` cannot share one buffer (empty: they can); touches nothing."""
        trainable = [p for p in parameters if p.requires_grad]
        if not trainable:
            return "no parameter requires a gradient"
        first = trainable[0]
        if any(p.dtype != first.dtype or p.device != first.device for p in trainable):
            return "flat gradients need one dtype and one device for every parameter"
        return ""

    @classmethod
    def try_for(cls, parameters: Iterable[th.nn.Parameter]) -> FlatGradients | None:
        """A ``FlatGradients`` when the parameters allow one (one dtype and device, dense), else None."""
        try:
            return cls(parameters)
        except ValueError:
            return None

    def attach(self) -> None:
        """Make every ``.grad`` its view of the buffer again (keeping its current value) where it is not."""
        for p, view in zip(self.parameters, self.views, strict=True):
            grad = p.grad
            if grad is view:
                continue
            if grad is None:
                view.zero_()
            else:
                view.copy_(grad)
            p.grad = view

    def zero_(self) -> None:
        self.buffer.zero_()

    def clip_norm_(self, max_norm: float) -> th.Tensor:
        """Scale the gradient to L2 norm ``max_norm`` if larger, as ``clip_grad_norm_``; returns the norm before."""
        total_norm = th.linalg.vector_norm(self.buffer)
        self.buffer.mul_(th.clamp(max_norm / (total_norm + 1e-6), max=1.0))
        return total_norm


__all__ = ["FlatGradients"]
