"""Plain tanh RNN core: the vanishing-gradient baseline that GRU and LSTM are measured against."""

from __future__ import annotations

import torch
from torch import nn

from rlgru.cores.base import MemoryCore


class RNNCore(MemoryCore):
    kind = "rnn"

    def __init__(self, input_size: int, hidden_size: int, n_layers: int = 1) -> None:
        super().__init__(input_size, hidden_size, n_layers)
        self.rnn = nn.RNN(input_size, hidden_size, num_layers=n_layers, nonlinearity="tanh")

    def _run(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape[0] == 1 and not torch.is_grad_enabled():
            return self._step(x, state)
        return self.rnn(x, state.contiguous())

    def _step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One rollout step through the cell kernel, cheaper than nn.RNN on a length-1 sequence."""
        layer_input, states = x[0], []
        for layer, weights in enumerate(self.layers()):
            layer_input = torch.rnn_tanh_cell(layer_input, state[layer], *weights)
            states.append(layer_input)
        return layer_input.unsqueeze(0), torch.stack(states)
