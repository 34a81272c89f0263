"""GRU core. Parameters live in an ``nn.GRU`` so weights are interchangeable with PyTorch's GRU.

On CPU (float32/float64) the recurrence runs in rlgru's fused kernel (``rlgru.cores.fused_gru``), which handles
episode-start resets inside the time loop. Where the kernel cannot be built or is turned off, it runs
``rlgru.cores.gru_fallback``: a PyTorch time loop with a hand-written backward, because ``nn.GRU`` on CPU trains at
under half the speed of ``nn.LSTM`` (``results/fallback_speed.md``); single no-grad rollout steps take
``torch.gru_cell``. Other devices run ``nn.GRU``.
"""

from __future__ import annotations

import torch
from torch import nn

from rlgru.cores import fused_gru, gru_fallback
from rlgru.cores.base import MemoryCore
from rlgru.cores.kernel_core import KernelCore


class GRUCore(KernelCore):
    """PyTorch's GRU cell (Cho et al. 2014) with rlgru's fused CPU kernel.

    :param dropout: dropout on each layer's output but the last, while training (``nn.GRU``'s ``dropout``).
    """

    policy_name = "Gru"
    kernel = fused_gru
    rnn_class = nn.GRU
    rnn_attribute = "gru"

    def recur(
        self, x: torch.Tensor, state: torch.Tensor, keep: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.runs_fallback(x):
            return super().recur(x, state, keep)
        if x.shape[0] == 1 and not torch.is_grad_enabled():
            return self._step(x, state if keep is None else state * keep[0].view(1, -1, 1))
        out, final = gru_fallback.run_layers(
            x.unsqueeze(0), state.unsqueeze(1), [self.layers()], keep, [self.dropout_rate]
        )
        return out[0], final[:, 0]

    def forward_beside(
        self,
        twin: MemoryCore,
        inputs: tuple[torch.Tensor, torch.Tensor],
        states: tuple[torch.Tensor, torch.Tensor],
        episode_starts: torch.Tensor | None = None,
    ) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """Without the kernel, both cores stacked in one PyTorch time loop (half the per-step ops of two loops)."""
        x = inputs[0]
        single_step = x.shape[0] == 1 and not torch.is_grad_enabled()
        if single_step or not (self.runs_fallback(x) and self.pairs_with(twin, inputs)):
            return super().forward_beside(twin, inputs, states, episode_starts)
        assert isinstance(twin, GRUCore)
        keep = None if episode_starts is None else 1 - episode_starts.to(x.dtype)
        out, final = gru_fallback.run_layers(
            torch.stack(inputs), torch.stack(states, 1), [self.layers(), twin.layers()], keep,
            [self.dropout_rate, twin.dropout_rate],
        )
        return (out[0], final[:, 0]), (out[1], final[:, 1])

    def runs_fallback(self, x: torch.Tensor) -> bool:
        """Whether inputs like ``x`` go through ``gru_fallback``: on CPU, in float32/float64, without the kernel."""
        return gru_fallback.supports(x) and not self.uses_kernel(x)

    def engine(self, device: torch.device | str) -> str:
        if torch.device(device).type == "cpu" and not self.resets_natively(device):
            return "PyTorch time loop with hand-written backward (rlgru.cores.gru_fallback)"
        return super().engine(device)

    def run_segment(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.rnn(x, state.contiguous())

    def _step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One rollout step through the cell op: cheaper than the loop's setup, or nn.GRU, at T = 1."""
        layer_input, states = x[0], []
        for layer, weights in enumerate(self.layers()):
            h = torch.gru_cell(layer_input, state[layer], *weights)
            states.append(h)
            layer_input = self.dropped(h) if layer < self.n_layers - 1 else h
        return layer_input.unsqueeze(0), torch.stack(states)

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
