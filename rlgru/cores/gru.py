"""GRU core. Parameters live in an ``nn.GRU`` so weights are interchangeable with PyTorch's GRU.

On CPU (float32/float64) the recurrence runs in rlgru's fused kernel (``rlgru.cores.fused_gru``), which handles
episode-start resets inside the time loop; elsewhere, or when the kernel cannot be built, it runs ``nn.GRU``.
"""

from __future__ import annotations

import torch
from torch import nn

from rlgru.cores import fused_gru
from rlgru.cores.base import keep_mask, masked_mean
from rlgru.cores.kernel_core import KernelCore


class GRUCore(KernelCore):
    kind = "gru"
    kernel = fused_gru

    def __init__(self, input_size: int, hidden_size: int, n_layers: int = 1) -> None:
        super().__init__(input_size, hidden_size, n_layers)
        self.gru = nn.GRU(input_size, hidden_size, num_layers=n_layers)

    @property
    def rnn(self) -> nn.GRU:  # type: ignore[override]
        return self.gru

    def _run(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.gru(x, state.contiguous())

    @torch.no_grad()
    def diagnose(
        self,
        x: torch.Tensor,
        state: torch.Tensor,
        mask: torch.Tensor | None = None,
        episode_starts: torch.Tensor | None = None,
    ) -> dict[str, float]:
        update, reset = [], []
        keep = keep_mask(episode_starts, x)
        layer_input = x
        for layer in range(self.n_layers):
            w_ih, w_hh, b_ih, b_hh = self.layer_weights(layer)
            h = state[layer]
            projected = layer_input @ w_ih.T + b_ih
            outputs = []
            for t in range(x.shape[0]):
                if keep is not None:
                    h = h * keep[t]
                gx_r, gx_z, gx_n = projected[t].chunk(3, dim=-1)
                gh_r, gh_z, gh_n = (h @ w_hh.T + b_hh).chunk(3, dim=-1)
                r = (gx_r + gh_r).sigmoid()
                z = (gx_z + gh_z).sigmoid()
                n = (gx_n + r * gh_n).tanh()
                h = n + z * (h - n)
                outputs.append(h)
                update.append(z)
                reset.append(r)
            layer_input = torch.stack(outputs)
        shape = (self.n_layers, *x.shape[:2], self.hidden_size)
        return {
            "update_gate": masked_mean(torch.stack(update).view(shape).mean(0), mask),
            "reset_gate": masked_mean(torch.stack(reset).view(shape).mean(0), mask),
            "hidden_norm": masked_mean(layer_input.norm(dim=-1), mask),
        }
