"""LSTM core; its state packs ``h`` and ``c`` side by side as ``[h | c]``. Parameters live in an ``nn.LSTM``.

On CPU (float32/float64) multi-step calls run in rlgru's fused kernel (``rlgru.cores.fused_lstm``), which zeroes
h and c per (step, env) inside the time loop, so training replays whole rollout lanes with their resets instead
of cutting sequences at every reset (``native_resets``). Single no-grad rollout steps use ``torch.lstm_cell``,
slightly faster than the kernel at T = 1 (``results/lstm_kernel.md``). Without the kernel (or on other devices)
the recurrence runs in ``nn.LSTM``, split at resets.
"""

from __future__ import annotations

import torch
from torch import nn

from rlgru.cores import fused_lstm
from rlgru.cores.kernel_core import KernelCore


class LSTMCore(KernelCore):
    """PyTorch's LSTM cell (Hochreiter & Schmidhuber 1997) with rlgru's fused CPU kernel.

    :param dropout: dropout on each layer's output but the last, while training (``nn.LSTM``'s ``dropout``;
        sb3-contrib's ``lstm_kwargs=dict(dropout=...)``).
    """

    policy_name = "Lstm"
    kernel = fused_lstm
    rnn_class = nn.LSTM
    rnn_attribute = "lstm"

    @property
    def state_size(self) -> int:
        return 2 * self.hidden_size  # [h | c]

    def readout(self, layer_state: torch.Tensor) -> torch.Tensor:
        return layer_state[..., : self.hidden_size]

    def uses_kernel(self, x: torch.Tensor) -> bool:
        # Rollout steps (T = 1, no grad): torch.lstm_cell, via run_segment, edges out the kernel.
        return not (x.shape[0] == 1 and not torch.is_grad_enabled()) and super().uses_kernel(x)

    def run_segment(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h0, c0 = state.split(self.hidden_size, dim=-1)
        if x.shape[0] == 1 and not torch.is_grad_enabled():
            return self._step(x, h0, c0)
        out, (h, c) = self.rnn(x, (h0.contiguous(), c0.contiguous()))
        return out, torch.cat((h, c), dim=-1)

    def _step(self, x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One rollout step through the cell kernel: about 3x cheaper than nn.LSTM on a length-1 sequence."""
        layer_input, states = x[0], []
        layers = self.layers()
        for layer in range(self.n_layers):
            h, c = torch.lstm_cell(layer_input, (h0[layer], c0[layer]), *layers[layer])
            states.append(torch.cat((h, c), dim=-1))
            layer_input = self.dropped(h) if layer < self.n_layers - 1 else h
        return layer_input.unsqueeze(0), torch.stack(states)

    def trace(
        self, x: torch.Tensor, state: torch.Tensor, keep: torch.Tensor | None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Replays the cell step by step to see its gates (the kernel keeps them to itself)."""
        gates = {"input_gate": [], "forget_gate": [], "output_gate": []}
        keep = None if keep is None else keep.unsqueeze(-1)
        layer_input = x
        for layer in range(self.n_layers):
            w_ih, w_hh, b_ih, b_hh = self.layer_weights(layer)
            h, c = state[layer].split(self.hidden_size, dim=-1)
            projected = layer_input @ w_ih.T + b_ih
            outputs = []
            for t in range(x.shape[0]):
                if keep is not None:
                    h, c = h * keep[t], c * keep[t]
                i, f, g, o = (projected[t] + h @ w_hh.T + b_hh).chunk(4, dim=-1)
                i, f, o = i.sigmoid(), f.sigmoid(), o.sigmoid()
                c = f * c + i * g.tanh()
                h = o * c.tanh()
                outputs.append(h)
                for name, value in (("input_gate", i), ("forget_gate", f), ("output_gate", o)):
                    gates[name].append(value)
            layer_input = torch.stack(outputs)
        shape = (self.n_layers, *x.shape[:2], self.hidden_size)
        return layer_input, {name: torch.stack(values).view(shape).mean(0) for name, values in gates.items()}
