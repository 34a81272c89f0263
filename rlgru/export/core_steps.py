"""One recurrent step of each memory core in plain PyTorch ops, the form exporters can read.

Training runs the built-in cores through compiled kernels (torch custom ops, which neither ONNX nor a TorchScript
file without rlgru's libraries can hold) and LRU through complex tensors (which ONNX cannot hold). A deployed policy
takes one step at a time, so each built-in core gets a step written from its public weights in real arithmetic.
Any other core, a user's own included, is stepped through its own ``forward`` with rlgru's kernels switched off;
``register_step`` lets a core whose ``forward`` does not trace bring a step of its own.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

import torch
from torch import nn
from torch.nn import functional as F

from rlgru.cores.base import MemoryCore
from rlgru.cores.gru import GRUCore
from rlgru.cores.lru import PHASE_LOG_MAX, LRUCore
from rlgru.cores.lstm import LSTMCore
from rlgru.cores.memoryless import MemorylessCore
from rlgru.cores.mingru import MinGRUCore
from rlgru.cores.rnn import RNNCore


class CoreStep(nn.Module):
    """``forward(x [B, input_size], state [n_layers, B, state_size]) -> (out [B, hidden_size], next state)``.

    The state is already zeroed where an episode starts; the step holds the core itself (``self.core``), so it
    reads the trained weights rather than a copy.
    """

    def __init__(self, core: MemoryCore) -> None:
        super().__init__()
        self.core = core

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


StepBuilder = Callable[[MemoryCore], CoreStep]
_STEPS: dict[type[MemoryCore], StepBuilder] = {}


def register_step(core_class: type[MemoryCore], builder: StepBuilder) -> None:
    """Export ``core_class`` (exactly that class, not its subclasses) with ``builder(core)``'s step."""
    if not (isinstance(core_class, type) and issubclass(core_class, MemoryCore)):
        raise TypeError(f"register_step takes a MemoryCore subclass, got {core_class!r}")
    _STEPS[core_class] = builder


def core_step(core: MemoryCore) -> CoreStep:
    """The exportable step of ``core``: its registered one, else its own ``forward`` run with kernels off.

    Lookup is by exact class: a subclass may have changed the recurrence its parent's step encodes.
    """
    builder = _STEPS.get(type(core), ForwardStep)
    return builder(core)


class ForwardStep(CoreStep):
    """Any core through its own ``forward`` on a one-step sequence, with rlgru's compiled kernels switched off, so
    a core built on them (a ``GRUCore`` subclass, ``linear_scan``) takes its PyTorch path. Whether that path traces
    is the core's business; the exporter checks the traced graph for operators it cannot write."""

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with kernels_off():
            out, next_state = self.core(x.unsqueeze(0), state)
        return out.squeeze(0), next_state


@contextlib.contextmanager
def kernels_off() -> Iterator[None]:
    """Set every rlgru kernel's documented opt-out variable for the duration (the kernels read it per call)."""
    from rlgru.cores import fused_gru, fused_lstm, scan

    names = [kernel.disable_env for kernel in (fused_gru.KERNEL, fused_lstm.KERNEL, scan.KERNEL)]
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(dict.fromkeys(names, "1"))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# ------------------------------------------------------------------------------------------- the built-in cores
class GRUStep(CoreStep):
    """PyTorch's GRU cell, gates in its order (reset, update, new)."""

    core: GRUCore

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        layer_input, states = x, []
        for layer in range(self.core.n_layers):
            w_ih, w_hh, b_ih, b_hh = self.core.layer_weights(layer)
            h = state[layer]
            x_r, x_z, x_n = F.linear(layer_input, w_ih, b_ih).chunk(3, dim=-1)
            h_r, h_z, h_n = F.linear(h, w_hh, b_hh).chunk(3, dim=-1)
            r = torch.sigmoid(x_r + h_r)
            z = torch.sigmoid(x_z + h_z)
            n = torch.tanh(x_n + r * h_n)
            layer_input = n + z * (h - n)
            states.append(layer_input)
        return layer_input, torch.stack(states)


class LSTMStep(CoreStep):
    """PyTorch's LSTM cell (input, forget, cell, output gates); the state is ``[h | c]``."""

    core: LSTMCore

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        size = self.core.hidden_size
        layer_input, states = x, []
        for layer in range(self.core.n_layers):
            w_ih, w_hh, b_ih, b_hh = self.core.layer_weights(layer)
            h, c = state[layer, :, :size], state[layer, :, size:]
            i, f, g, o = (F.linear(layer_input, w_ih, b_ih) + F.linear(h, w_hh, b_hh)).chunk(4, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            layer_input = torch.sigmoid(o) * torch.tanh(c)
            states.append(torch.cat((layer_input, c), dim=-1))
        return layer_input, torch.stack(states)


class RNNStep(CoreStep):
    """Elman cell with the core's nonlinearity (tanh or relu)."""

    core: RNNCore

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        activation = torch.tanh if self.core.rnn.nonlinearity == "tanh" else torch.relu
        layer_input, states = x, []
        for layer in range(self.core.n_layers):
            w_ih, w_hh, b_ih, b_hh = self.core.layer_weights(layer)
            layer_input = activation(F.linear(layer_input, w_ih, b_ih) + F.linear(state[layer], w_hh, b_hh))
            states.append(layer_input)
        return layer_input, torch.stack(states)


class MinGRUStep(CoreStep):
    """``h = h + z (h~ - h)`` with ``[z | h~]`` from the input alone."""

    core: MinGRUCore

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        layer_input, states = x, []
        for layer, linear in enumerate(self.core.gates):
            z_pre, candidate = linear(layer_input).chunk(2, dim=-1)
            h = state[layer]
            layer_input = h + torch.sigmoid(z_pre) * (candidate - h)
            states.append(layer_input)
        return layer_input, torch.stack(states)


class LRUStep(CoreStep):
    """The LRU's complex recurrence in real and imaginary parts; the state is ``[real | imag]`` as in the core.

    The core's input map writes interleaved ``(re, im)`` rows and its output map reads interleaved columns: even
    rows/columns are the real parts, odd ones the imaginary parts.
    """

    core: LRUCore

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        size = self.core.hidden_size
        u, states = F.gelu(self.core.encoder(x)), []
        for index, layer in enumerate(self.core.layers):
            modulus = layer.modulus()
            angle = layer.theta_log.clamp_max(PHASE_LOG_MAX).exp()
            lam_re, lam_im = modulus * torch.cos(angle), modulus * torch.sin(angle)
            gamma = layer.gamma_log.exp().unsqueeze(-1)
            weight = layer.input_map.weight.view(size, 2, -1)  # reshapes of constants fold away in ONNX
            b_re = F.linear(u, weight[:, 0] * gamma)
            b_im = F.linear(u, weight[:, 1] * gamma)
            h_re, h_im = state[index, :, :size], state[index, :, size:]
            new_re = lam_re * h_re - lam_im * h_im + b_re
            new_im = lam_re * h_im + lam_im * h_re + b_im
            out_weight = layer.output_map.weight.view(-1, size, 2)
            y = F.linear(new_re, out_weight[..., 0]) + F.linear(new_im, out_weight[..., 1], layer.output_map.bias)
            u = F.gelu(y + layer.skip * u)
            states.append(torch.cat((new_re, new_im), dim=-1))
        return u, torch.stack(states)


class MemorylessStep(CoreStep):
    """``tanh(W x + b)`` per layer; the state is each layer's output, never read."""

    core: MemorylessCore

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        layer_input, states = x, []
        for linear in self.core.layers:
            layer_input = torch.tanh(F.linear(layer_input, linear.weight, linear.bias))
            states.append(layer_input)
        return layer_input, torch.stack(states)


for _class, _step in (
    (GRUCore, GRUStep),
    (LSTMCore, LSTMStep),
    (RNNCore, RNNStep),
    (MinGRUCore, MinGRUStep),
    (LRUCore, LRUStep),
    (MemorylessCore, MemorylessStep),
):
    register_step(_class, _step)

__all__ = ["CoreStep", "ForwardStep", "StepBuilder", "core_step", "kernels_off", "register_step"]
