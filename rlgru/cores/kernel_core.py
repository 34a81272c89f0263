"""The part GRU and LSTM cores share: weights kept in a PyTorch RNN module, recurrence run in a fused kernel.

The kernel modules (``fused_gru``, ``fused_lstm``) take the stacked layers' weights and a per-step ``keep`` mask,
zeroing an env's state inside the time loop where an episode starts. With them a reset costs nothing, so training
replays whole rollout lanes (``native_resets``). Without them (no compiler, other devices or dtypes) the core falls
back to the PyTorch module through ``MemoryCore.forward``, which splits the sequence at resets.
"""

from __future__ import annotations

from types import ModuleType

import torch

from rlgru.cores.base import MemoryCore

KERNEL_DTYPES = (torch.float32, torch.float64)


class KernelCore(MemoryCore):
    """Subclasses set ``kernel``: a module with ``available()`` and ``run_layers``."""

    kernel: ModuleType

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


__all__ = ["KERNEL_DTYPES", "KernelCore"]
