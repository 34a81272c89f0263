"""The part GRU and LSTM cores share: weights kept in a PyTorch RNN module, recurrence run in a fused kernel.

The kernel modules (``fused_gru``, ``fused_lstm``) take the stacked layers' weights and a per-step ``keep`` mask,
zeroing an env's state inside the time loop where an episode starts. With them a reset costs nothing, so training
replays whole rollout lanes (``native_resets``). Without them (no compiler, other devices or dtypes) the core falls
back to the PyTorch module through ``MemoryCore.forward``, which splits the sequence at resets.
"""

from __future__ import annotations

from types import ModuleType

import torch
from torch import nn

from rlgru.cores.base import MemoryCore

Weights = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
KERNEL_DTYPES = (torch.float32, torch.float64)


class KernelCore(MemoryCore):
    """Subclasses set ``kernel`` (a module with ``available()`` and ``run_layers``) and ``rnn`` (their module)."""

    kernel: ModuleType
    rnn: nn.RNNBase

    @property
    def native_resets(self) -> bool:  # type: ignore[override]
        return self.kernel.available()

    def forward(
        self,
        x: torch.Tensor,
        state: torch.Tensor | None = None,
        episode_starts: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 3 or not self.uses_kernel(x):
            return super().forward(x, state, episode_starts)
        if state is None:
            state = self.initial_state(x.shape[1], x.device).to(x.dtype)
        # The kernel zeroes the state per (step, env) itself: no splitting at resets, no host sync to find them.
        keep = None if episode_starts is None else 1 - episode_starts.to(x.dtype)
        return self.kernel.run_layers(x, state, self.layers(), keep)

    def uses_kernel(self, x: torch.Tensor) -> bool:
        """Whether inputs like ``x`` (device, dtype, shape) go through the kernel."""
        return x.device.type == "cpu" and x.dtype in KERNEL_DTYPES and self.kernel.available()

    def layers(self) -> list[Weights]:
        """Every layer's ``(weight_ih, weight_hh, bias_ih, bias_hh)``, in PyTorch's gate order."""
        # PyTorch's RNN modules keep their parameters in this list, in layer_weights' order; reading it is ~10x
        # cheaper than four nn.Module attribute lookups per layer, which shows in single-step rollouts.
        flat = getattr(self.rnn, "_flat_weights", None)
        if flat is None or len(flat) != 4 * self.n_layers or any(w is None for w in flat):
            return [self.layer_weights(layer) for layer in range(self.n_layers)]
        return [tuple(flat[4 * layer : 4 * layer + 4]) for layer in range(self.n_layers)]

    def layer_weights(self, layer: int) -> Weights:
        """``(weight_ih, weight_hh, bias_ih, bias_hh)`` of one layer."""
        return tuple(getattr(self.rnn, f"{n}_l{layer}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))


__all__ = ["KERNEL_DTYPES", "KernelCore", "Weights"]
