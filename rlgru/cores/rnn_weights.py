"""Weight access for cores whose parameters live in a PyTorch RNN module (``nn.GRU``, ``nn.LSTM``, ``nn.RNN``).

Keeping the parameters in PyTorch's own module keeps weights interchangeable with ``nn.GRU``/``nn.LSTM`` (and with
sb3-contrib's LSTM policies); the fused kernels and the single-step cell paths read them per layer from here.
"""

from __future__ import annotations

import torch
from torch import nn

from rlgru.cores.base import dropout_between_layers

Weights = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class TorchRNNWeights:
    """Mixin for ``MemoryCore`` subclasses that keep their weights in ``self.rnn`` (an ``nn.RNNBase``)."""

    rnn: nn.RNNBase
    n_layers: int

    def layers(self) -> list[Weights]:
        """Every layer's ``(weight_ih, weight_hh, bias_ih, bias_hh)``, in PyTorch's gate order."""
        # PyTorch's RNN modules keep their parameters in this list, in layer_weights' order; reading it is ~10x
        # cheaper than four nn.Module attribute lookups per layer, which shows in single-step rollouts.
        flat = getattr(self.rnn, "_flat_weights", None)
        if flat is None or len(flat) != 4 * self.n_layers or any(w is None for w in flat):
            return [self.layer_weights(layer) for layer in range(self.n_layers)]
        return [tuple(flat[4 * layer : 4 * layer + 4]) for layer in range(self.n_layers)]

    def layer_weights(self, layer: int) -> Weights:
        """``(weight_ih, weight_hh, bias_ih, bias_hh)`` of one layer."""
        return tuple(getattr(self.rnn, f"{n}_l{layer}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    @property
    def dropout_rate(self) -> float:
        """Dropout between stacked layers while training (``nn.RNNBase``'s ``dropout``); 0 in eval mode."""
        return float(self.rnn.dropout) if self.rnn.training and self.n_layers > 1 else 0.0

    def dropped(self, layer_output: torch.Tensor) -> torch.Tensor:
        """A non-last layer's output as the next layer sees it."""
        return dropout_between_layers(layer_output, self.dropout_rate)
