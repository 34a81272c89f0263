"""minGRU core (Feng et al. 2024, "Were RNNs All We Needed?"): a GRU whose gates read only the input.

``z_t = sigmoid(W_z x_t)``, ``h~_t = W_h x_t`` and ``h_t = (1 - z_t) h_{t-1} + z_t h~_t``. With no ``h_{t-1}``
inside the gates the recurrence is linear, ``h_t = a_t h_{t-1} + b_t``, so a whole rollout lane trains in one scan
(``rlgru.cores.scan``) and an episode start is just ``a_t = 0``.
"""

from __future__ import annotations

import torch
from torch import nn

from rlgru.cores import scan
from rlgru.cores.base import MemoryCore, dropout_between_layers
from rlgru.cores.scan import linear_scan
from rlgru.cores.settings import Dropout


class MinGRUCore(MemoryCore):
    """minGRU (Feng et al. 2024): input-only gates, trained with a parallel scan; resets inside the scan.

    Choices, and why:

    - Candidate ``h~ = W_h x`` (the paper's plain minGRU), not its ``g(x)`` (``x + 0.5`` / ``sigmoid``): ``g`` only
      keeps ``h`` positive for the paper's log-space scan, which cannot represent ``a_t = 0`` (a reset). Our scan
      works on ``a, b`` directly, so ``h`` may take either sign, like a GRU's.
    - Stacking: layer ``l + 1`` reads layer ``l``'s ``h`` directly (dropout in between while training). ``h`` is
      already a nonlinear function of the inputs (the sigmoid gates multiply them), and the policy's MLP follows
      the core; an extra block per layer would add cost and settings for little.
    - The update gate's bias starts at -2 (``z`` about 0.12, a memory of about 8 steps): states start out leaning
      towards keeping what they hold, the side memory tasks need; the weights start as ``nn.Linear``'s.
    - State: each layer's ``h`` (``state_size = hidden_size``).

    :param dropout: dropout on each layer's output but the last, while training.
    """

    policy_name = "MinGru"

    def __init__(self, input_size: int, hidden_size: int, n_layers: int = 1, *, dropout: Dropout = 0.0) -> None:
        super().__init__(input_size, hidden_size, n_layers)
        self.dropout = float(dropout)
        sizes = [self.input_size] + [self.hidden_size] * (self.n_layers - 1)
        #: per layer, one Linear to ``[z | h~]`` pre-activations
        self.gates = nn.ModuleList(nn.Linear(size, 2 * self.hidden_size) for size in sizes)
        with torch.no_grad():
            for layer in self.gates:
                layer.bias[: self.hidden_size].fill_(-2.0)

    def engine(self, device: torch.device | str) -> str:
        return scan.engine(device, self.compiled_kernels)

    def kernel_reasons(self, device: torch.device | str) -> list[str] | None:
        return scan.kernel_reasons(device, self.compiled_kernels)

    def recur(
        self, x: torch.Tensor, state: torch.Tensor, keep: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out, states, _ = self._run(x, state, keep)
        return out, states

    def _run(
        self, x: torch.Tensor, state: torch.Tensor, keep: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Every layer over the sequence: ``out``, the last states, and each layer's update gate ``z``."""
        layer_input, states, gates = x, [], []
        for layer, linear in enumerate(self.gates):
            z_pre, candidate = linear(layer_input).chunk(2, dim=-1)
            z = torch.sigmoid(z_pre)
            h0 = state[layer]
            if x.shape[0] == 1:  # a rollout step: h = lerp(kept h, h~, z), no scan machinery
                if keep is not None:
                    h0 = h0 * keep[0].unsqueeze(-1)
                h = torch.lerp(h0, candidate[0], z[0]).unsqueeze(0)
            else:
                carry = 1 - z if keep is None else (1 - z) * keep.unsqueeze(-1)
                h = linear_scan(carry, z * candidate, h0, self.compiled_kernels)
            states.append(h[-1])
            gates.append(z)
            rate = self.dropout if self.training else 0.0
            layer_input = dropout_between_layers(h, rate, last=layer == self.n_layers - 1)
        return layer_input, torch.stack(states), gates

    def trace(
        self, x: torch.Tensor, state: torch.Tensor, keep: torch.Tensor | None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out, _, gates = self._run(x, state, keep)
        return out, {"update_gate": torch.stack(gates).mean(0)}

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, dropout={self.dropout}"


__all__ = ["MinGRUCore"]
