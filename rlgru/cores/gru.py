"""GRU core. Parameters live in an ``nn.GRU`` so weights are interchangeable with PyTorch's GRU.

On CPU (float32/float64) the recurrence runs in rlgru's fused kernel (``rlgru.cores.fused_gru``), which handles
episode-start resets inside the time loop; elsewhere, or when the kernel cannot be built, it runs ``nn.GRU``.
"""

from __future__ import annotations

import torch
from torch import nn

from rlgru.cores import fused_gru
from rlgru.cores.base import MemoryCore, masked_mean


class GRUCore(MemoryCore):
    kind = "gru"

    def __init__(self, input_size: int, hidden_size: int, n_layers: int = 1) -> None:
        super().__init__(input_size, hidden_size, n_layers)
        self.gru = nn.GRU(input_size, hidden_size, num_layers=n_layers)

    @property
    def native_resets(self) -> bool:  # type: ignore[override]
        # With the kernel, a reset inside a sequence costs nothing, so the buffer need not cut sequences at resets.
        return fused_gru.fused_gru_available()

    def forward(
        self,
        x: torch.Tensor,
        state: torch.Tensor | None = None,
        episode_starts: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 3 or not self._fused(x):
            return super().forward(x, state, episode_starts)
        if state is None:
            state = self.initial_state(x.shape[1], x.device).to(x.dtype)
        # The kernel zeroes h_prev per (step, env) itself: no splitting at resets, no host sync to find them.
        keep = None if episode_starts is None else 1 - episode_starts.to(x.dtype)
        return fused_gru.run_layers(x, state, self._layers(), keep)

    def _run(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self._fused(x):
            return fused_gru.run_layers(x, state, self._layers(), None)
        return self.gru(x, state.contiguous())

    @staticmethod
    def _fused(x: torch.Tensor) -> bool:
        return x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and fused_gru.fused_gru_available()

    def _layers(self) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
        # nn.GRU keeps its parameters in this list, in layer_weights' order; reading it is ~10x cheaper than
        # four nn.Module attribute lookups per layer, which shows in single-step rollouts.
        flat = getattr(self.gru, "_flat_weights", None)
        if flat is None or len(flat) != 4 * self.n_layers or any(w is None for w in flat):
            return [self.layer_weights(layer) for layer in range(self.n_layers)]
        return [tuple(flat[4 * layer : 4 * layer + 4]) for layer in range(self.n_layers)]

    def layer_weights(self, layer: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(weight_ih, weight_hh, bias_ih, bias_hh)`` of one layer, in nn.GRU's (reset, update, new) order."""
        return tuple(getattr(self.gru, f"{n}_l{layer}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    @torch.no_grad()
    def diagnose(self, x: torch.Tensor, state: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, float]:
        update, reset = [], []
        layer_input = x
        for layer in range(self.n_layers):
            w_ih, w_hh, b_ih, b_hh = self.layer_weights(layer)
            h = state[layer]
            projected = layer_input @ w_ih.T + b_ih
            outputs = []
            for t in range(x.shape[0]):
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
