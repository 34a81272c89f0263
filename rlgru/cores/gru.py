"""GRU core. Parameters live in an ``nn.GRU`` so weights are interchangeable with PyTorch's GRU.

On CPU (float32/float64) the recurrence runs in rlgru's fused kernel (``rlgru.cores.fused_gru``), which handles
episode-start resets inside the time loop; elsewhere, or when the kernel cannot be built, it runs ``nn.GRU``.
"""

from __future__ import annotations

import torch
from torch import nn

from rlgru.cores import fused_gru
from rlgru.cores.kernel_core import KernelCore


class GRUCore(KernelCore):
    """PyTorch's GRU cell (Cho et al. 2014) with rlgru's fused CPU kernel.

    :param dropout: dropout on each layer's output but the last, while training (``nn.GRU``'s ``dropout``).
    """

    policy_name = "Gru"
    kernel = fused_gru
    rnn_class = nn.GRU
    rnn_attribute = "gru"

    def run_segment(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.rnn(x, state.contiguous())

    def trace(
        self, x: torch.Tensor, state: torch.Tensor, keep: torch.Tensor | None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Replays the cell step by step to see its gates (the kernel keeps them to itself)."""
        update, reset = [], []
        keep = None if keep is None else keep.unsqueeze(-1)
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
        gates = {"update_gate": torch.stack(update), "reset_gate": torch.stack(reset)}
        return layer_input, {name: values.view(shape).mean(0) for name, values in gates.items()}
