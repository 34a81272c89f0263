"""A memory core of your own, trained by rlgru without editing it: README, "Your own memory core"."""

from __future__ import annotations

import torch
from torch import nn

from rlgru.cores import MemoryCore


class LeakyCore(MemoryCore):
    """A leaky tanh RNN: ``h_t = leak * h_{t-1} + (1 - leak) * tanh(W x_t + U h_{t-1} + b)``.

    :param leak: how much of the old state survives a step; a setting (``core_kwargs: {leak: 0.8}``).
    """

    def __init__(self, input_size: int, hidden_size: int, n_layers: int = 1, *, leak: float = 0.5) -> None:
        super().__init__(input_size, hidden_size, n_layers)
        if not 0.0 <= leak < 1.0:
            raise ValueError(f"leak must be in [0, 1), got {leak}")
        self.leak = leak
        sizes = [input_size] + [hidden_size] * (n_layers - 1)
        self.cells = nn.ModuleList(nn.RNNCell(size, hidden_size) for size in sizes)

    def recur(
        self, x: torch.Tensor, state: torch.Tensor, keep: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [T, B, I]``, ``state [n_layers, B, H]``; where ``keep[t, b] == 0`` env b's memory starts afresh."""
        hidden = list(state.unbind(0))
        outputs = []
        for t in range(x.shape[0]):
            layer_input = x[t]
            for i, cell in enumerate(self.cells):
                h = hidden[i] if keep is None else hidden[i] * keep[t].unsqueeze(-1)
                hidden[i] = self.leak * h + (1 - self.leak) * cell(layer_input, h)
                layer_input = hidden[i]
            outputs.append(layer_input)
        return torch.stack(outputs), torch.stack(hidden)
