"""The memoryless baseline: the same policy with its recurrence cut, so a benchmark can show what memory buys.

A GRU or LSTM result means little on its own: a task may be solvable from the current observation, or its episodes
short enough that chance does well. Swapping the core for this one keeps everything else (extractor, heads, PPO,
budget, seeds) the same, which frame-stacking baselines in another library cannot promise.
"""

from __future__ import annotations

import torch
from torch import nn

from rlgru.cores.base import MemoryCore


class MemorylessCore(MemoryCore):
    """A feed-forward layer (``tanh(W x_t + b)``) in the core's place: every output depends on this step alone.

    The state is each layer's latest output, carried so the contract, the buffers and the memory probe's plots work
    unchanged; no step ever reads it, so resets inside a training sequence cost nothing.
    """

    policy_name = "Memoryless"
    #: nothing survives a step: tests and reports that need a memory leave this core out
    remembers = False

    def __init__(self, input_size: int, hidden_size: int, n_layers: int = 1) -> None:
        super().__init__(input_size, hidden_size, n_layers)
        sizes = [self.input_size] + [self.hidden_size] * self.n_layers
        pairs = zip(sizes[:-1], sizes[1:], strict=True)
        self.layers = nn.ModuleList(nn.Linear(inputs, outputs) for inputs, outputs in pairs)

    def recur(
        self, x: torch.Tensor, state: torch.Tensor, keep: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        last_outputs = []
        for layer in self.layers:
            x = torch.tanh(layer(x))
            last_outputs.append(x[-1])
        return x, torch.stack(last_outputs)
