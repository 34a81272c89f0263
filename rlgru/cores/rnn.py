"""Plain RNN core (Elman): the vanishing-gradient baseline that GRU and LSTM are measured against."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from rlgru.cores.base import MemoryCore
from rlgru.cores.rnn_weights import TorchRNNWeights
from rlgru.cores.settings import Dropout


class RNNCore(TorchRNNWeights, MemoryCore):
    """``h_t = act(W_ih x_t + W_hh h_{t-1} + b)`` in ``nn.RNN``; sequences are split at resets.

    :param nonlinearity: ``"tanh"`` or ``"relu"``.
    :param dropout: dropout on each layer's output but the last, while training.
    """

    policy_name = "Rnn"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        n_layers: int = 1,
        *,
        nonlinearity: Literal["tanh", "relu"] = "tanh",
        dropout: Dropout = 0.0,
    ) -> None:
        super().__init__(input_size, hidden_size, n_layers)
        self.rnn = nn.RNN(self.input_size, self.hidden_size, num_layers=self.n_layers, nonlinearity=nonlinearity,
                          dropout=dropout)
        self._cell = torch.rnn_tanh_cell if nonlinearity == "tanh" else torch.rnn_relu_cell

    def run_segment(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape[0] == 1 and not torch.is_grad_enabled():
            return self._step(x, state)
        return self.rnn(x, state.contiguous())

    def _step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One rollout step through the cell kernel, cheaper than nn.RNN on a length-1 sequence."""
        layer_input, states = x[0], []
        for layer, weights in enumerate(self.layers()):
            h = self._cell(layer_input, state[layer], *weights)
            states.append(h)
            layer_input = self.dropped(h) if layer < self.n_layers - 1 else h
        return layer_input.unsqueeze(0), torch.stack(states)
