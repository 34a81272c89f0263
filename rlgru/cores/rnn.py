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
        out, h = self.rnn(x, state.contiguous())
        return out, h
