"""The part GRU and LSTM cores share: weights kept in a PyTorch RNN module, recurrence run in a fused kernel.

The kernel modules (``fused_gru``, ``fused_lstm``) take the stacked layers' weights and a per-step ``keep`` mask,
zeroing an env's state inside the time loop where an episode starts. With them a reset costs nothing, so training
replays whole rollout lanes (``resets_natively``). Without them (no compiler, other devices or dtypes) the buffer
cuts sequences at resets and the core runs its PyTorch module through ``run_segment``, split at resets; the GRU runs
a PyTorch time loop of its own on CPU instead (``gru_fallback``: nn.GRU is slow there).
"""

from __future__ import annotations

from types import ModuleType

import torch
from torch import nn

from rlgru.cores.base import MemoryCore, split_at_resets
from rlgru.cores.rnn_weights import TorchRNNWeights
from rlgru.cores.settings import Dropout

KERNEL_DTYPES = (torch.float32, torch.float64)


class KernelCore(TorchRNNWeights, MemoryCore):
    """Subclasses set ``kernel`` (a module with ``available()`` and ``run_layers``) and the PyTorch module class
    holding the weights.

    :param dropout: dropout on each layer's output but the last, while training (``nn.GRU``/``nn.LSTM``'s
        ``dropout``; sb3-contrib's ``lstm_kwargs=dict(dropout=...)``), in the kernel and the fallback alike.
    """

    kernel: ModuleType
    rnn_class: type[nn.RNNBase]
    #: the module's name in state dicts ("gru", "lstm"), as models saved by earlier versions have it
    rnn_attribute: str

    def __init__(self, input_size: int, hidden_size: int, n_layers: int = 1, *, dropout: Dropout = 0.0) -> None:
        super().__init__(input_size, hidden_size, n_layers)
        module = self.rnn_class(self.input_size, self.hidden_size, num_layers=self.n_layers, dropout=dropout)
        self.add_module(self.rnn_attribute, module)

    @property
    def rnn(self) -> nn.RNNBase:  # type: ignore[override]
        return getattr(self, self.rnn_attribute)

    def resets_natively(self, device: torch.device | str) -> bool:
        return not self.kernel_reasons(device)

    def kernel_reasons(self, device: torch.device | str) -> list[str]:
        if not self.compiled_kernels:
            return ["fast paths turned off for this model"]
        if torch.device(device).type != "cpu":
            return [f"the kernel runs on CPU, not {torch.device(device).type}"]
        return [] if self.kernel.available() else [self.kernel.KERNEL.why_unavailable()]

    def recur(
        self, x: torch.Tensor, state: torch.Tensor, keep: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.uses_kernel(x):
            return split_at_resets(self.run_segment, x, state, keep)
        # The kernel zeroes the state per (step, env) itself: no splitting at resets, no host sync to find them.
        return self.kernel.run_layers(x, state, self.layers(), keep, dropout=self.dropout_rate)

    def forward_beside(
        self,
        twin: MemoryCore,
        inputs: tuple[torch.Tensor, torch.Tensor],
        states: tuple[torch.Tensor, torch.Tensor],
        episode_starts: torch.Tensor | None = None,
    ) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """Both cores in one kernel call per layer when the kernel takes them (see ``MemoryCore.forward_beside``)."""
        x = inputs[0]
        if not (self.pairs_with(twin, inputs) and self.uses_kernel(x)):
            return super().forward_beside(twin, inputs, states, episode_starts)
        keep = None if episode_starts is None else 1 - episode_starts.to(x.dtype)
        return self.kernel.run_pair(
            inputs, states, (self.layers(), twin.layers()), keep, (self.dropout_rate, twin.dropout_rate)
        )

    def pairs_with(self, twin: MemoryCore, inputs: tuple[torch.Tensor, torch.Tensor]) -> bool:
        """Whether ``twin`` and ``inputs`` (this core's, then the twin's) can run side by side with this core in one
        call: a core of this class and sizes, inputs of one shape and dtype."""
        x, twin_x = inputs
        return (
            type(twin) is type(self)
            and isinstance(twin, KernelCore)
            and (twin.hidden_size, twin.n_layers, twin.input_size) == (self.hidden_size, self.n_layers, self.input_size)
            and x.shape == twin_x.shape
            and x.dim() == 3
            and x.shape[-1] == self.input_size
            and x.dtype == twin_x.dtype
        )

    def engine(self, device: torch.device | str) -> str:
        if self.resets_natively(device):
            return f"fused C++ kernel ({self.kernel.KERNEL.info()['isa']})"
        return f"PyTorch {type(self.rnn).__name__}"

    def uses_kernel(self, x: torch.Tensor) -> bool:
        """Whether inputs like ``x`` (device, dtype, shape) go through the kernel."""
        return self.compiled_kernels and x.device.type == "cpu" and x.dtype in KERNEL_DTYPES and self.kernel.available()


__all__ = ["KERNEL_DTYPES", "KernelCore"]
