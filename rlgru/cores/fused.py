"""What every fused CPU kernel shares on the Python side: the autograd wrapper, the layer entry point, stacked layers
and the PyTorch fallback.

A cell (``fused_gru``, ``fused_lstm``) is one ``FusedCell``: its compiled kernel (``csrc/fused_<cell>.cpp``, built
on first use by ``_kernel_build``) and PyTorch's own cell for the fallback. The kernel zeroes an env's state per
(step, env) inside its time loop; the fallback runs PyTorch's cell once per stretch of steps without a reset
(``base.split_at_resets``).

Memory: each kernel reuses its big buffers (activations, gradients) across calls from a pool capped at 256 MiB,
because re-faulting fresh pages every training step costs as much as the GEMMs; ``release_cached_memory()``
empties it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.autograd.function import once_differentiable

from rlgru.cores import _kernel_build
from rlgru.cores.base import dropout_between_layers, split_at_resets

Weights = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
#: PyTorch's own cell over a stretch with no reset inside: ``(x [T, B, I], state [n_states, B, H], weights) ->
#: (out [T, B, H], state [n_states, B, H])``
TorchSegment = Callable[[torch.Tensor, torch.Tensor, Weights], tuple[torch.Tensor, torch.Tensor]]

FUSED_DTYPES = (torch.float32, torch.float64)
#: kernel ``mode`` argument: the widest SIMD the CPU has, the generic (any-dtype) code, or AVX2 (for tests)
MODES = {"fused": 0, "generic": 1, "avx2": 2}


class _FusedLayer(torch.autograd.Function):
    """One layer of any cell over a sequence; saves what the cell's backward kernel needs.

    Inputs: ``ops`` (the kernel's ``torch.ops`` namespace), ``mode``, ``keep``, ``x``, the four weights, ``h0`` and
    the second state's initial value or None. Outputs: ``out``, ``h_T`` and, for two-state cells, the second state's
    last value.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, ops: Any, mode: int, keep: torch.Tensor | None, x: torch.Tensor, *tensors: torch.Tensor | None
    ) -> tuple[torch.Tensor, ...]:
        w_ih, w_hh, b_ih, b_hh, h0, c0 = tensors
        out, h, c, cs, saved = ops.forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, keep, True, mode)
        ctx.save_for_backward(x, h0, c0, w_ih, w_hh, out, cs, saved, keep)
        ctx.ops, ctx.mode = ops, mode
        ctx.set_materialize_grads(False)
        return (out, h) if c is None else (out, h, c)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: torch.Tensor | None, *grad_last: torch.Tensor | None) -> tuple[Any, ...]:
        x, h0, c0, w_ih, w_hh, out, cs, saved, keep = ctx.saved_tensors
        grad_h, grad_c = (*grad_last, None)[:2]
        if grad_out is None:
            grad_out = torch.zeros_like(out)
        need = ctx.needs_input_grad[3:]  # x, w_ih, w_hh, b_ih, b_hh, h0, c0
        need_x, need_w, need_state = need[0], any(need[1:5]), any(need[5:])
        dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh = ctx.ops.backward(
            grad_out, grad_h, grad_c, x, h0, c0, w_ih, w_hh, out, cs, saved, keep, need_x, need_state, need_w, ctx.mode
        )
        if db_hh is None:
            # The cell sums its biases, so both get this gradient; as separate tensors, since autograd may keep
            # either one as a .grad.
            db_hh = db_ih.clone() if need[3] and need[4] else db_ih
        grads = (dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dc0)
        return (None, None, None, *(g if n else None for g, n in zip(grads, need, strict=True)))


class _FusedPair(torch.autograd.Function):
    """One layer of two independent cells of one kind (an actor's and a critic's core) in one kernel call each way.

    Inputs: ``ops``, ``mode``, ``keep``, ``two_states`` (whether the cell has a second state), then for each side
    ``x, w_ih, w_hh, b_ih, b_hh, h0, c0`` as ``_FusedLayer`` takes them; the sides may share ``x`` (autograd then
    sums its gradients). Outputs: each side's ``out, h_T`` (and the second state's last value for two-state cells).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, ops: Any, mode: int, keep: torch.Tensor | None, two_states: bool, *tensors: torch.Tensor | None
    ) -> tuple[torch.Tensor, ...]:
        side_a, side_b = tensors[:7], tensors[7:]
        args = [[x, h0, c0, w_ih, w_hh, b_ih, b_hh] for x, w_ih, w_hh, b_ih, b_hh, h0, c0 in (side_a, side_b)]
        results = ops.forward_pair(args[0], args[1], keep, True, mode)
        to_save: list[torch.Tensor | None] = []
        outputs: list[torch.Tensor] = []
        for side, (out, h, c, cs, saved) in zip((side_a, side_b), (results[:5], results[5:]), strict=True):
            x, w_ih, w_hh, _, _, h0, c0 = side
            to_save += [x, h0, c0, w_ih, w_hh, out, cs, saved]
            outputs += [out, h] if not two_states else [out, h, c]
        ctx.save_for_backward(*to_save, keep)
        ctx.ops, ctx.mode, ctx.two_states = ops, mode, two_states
        ctx.set_materialize_grads(False)
        return tuple(outputs)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, *grads: torch.Tensor | None) -> tuple[Any, ...]:
        saved = ctx.saved_tensors
        keep = saved[-1]
        per_side = 3 if ctx.two_states else 2
        args, need_flags, needs = [], [], []
        for side in range(2):
            x, h0, c0, w_ih, w_hh, out, cs, kept = saved[8 * side : 8 * side + 8]
            grad_out, grad_h, *grad_c = grads[per_side * side : per_side * side + per_side]
            if grad_out is None:
                grad_out = torch.zeros_like(out)
            need = ctx.needs_input_grad[4 + 7 * side : 11 + 7 * side]  # x, w_ih, w_hh, b_ih, b_hh, h0, c0
            args.append([grad_out, grad_h, grad_c[0] if grad_c else None, x, h0, c0, w_ih, w_hh, out, cs, kept])
            need_flags += [int(need[0]), int(any(need[5:])), int(any(need[1:5]))]
            needs.append(need)
        results = ctx.ops.backward_pair(args[0], args[1], keep, need_flags, ctx.mode)
        grads_in: list[torch.Tensor | None] = []
        for side, need in enumerate(needs):
            dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh = results[7 * side : 7 * side + 7]
            if db_hh is None:  # shared biases: both get the gradient, as separate tensors (see _FusedLayer)
                db_hh = db_ih.clone() if need[3] and need[4] else db_ih
            side_grads = (dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dc0)
            grads_in += [g if n else None for g, n in zip(side_grads, need, strict=True)]
        return (None, None, None, None, *grads_in)


class FusedCell:
    """One recurrent cell's fused kernel, with its autograd wrapper and its PyTorch fallback.

    ``name`` ("GRU") names the kernel (``csrc/fused_gru.cpp``, ``torch.ops.rlgru_fused_gru``, the opt-out variable
    ``RLGRU_DISABLE_FUSED_GRU``); ``n_gates`` gate blocks in the weights; ``n_states`` state tensors per layer, h
    first, packed side by side on the last axis of a core's state (LSTM: ``[h | c]``); ``torch_segment`` the
    fallback; ``consequence`` what a failed build means for users.
    """

    def __init__(self, name: str, n_gates: int, n_states: int, torch_segment: TorchSegment, consequence: str) -> None:
        self.name = name
        self.n_gates = n_gates
        self.n_states = n_states
        self.torch_segment = torch_segment
        self.kernel = _kernel_build.CompiledKernel(
            f"rlgru_fused_{name.lower()}",
            _kernel_build.CSRC / f"fused_{name.lower()}.cpp",
            f"RLGRU_DISABLE_FUSED_{name.upper()}",
            f"fused {name} kernel",
            consequence,
        )
        self.ops = self.kernel.ops  # the torch.ops namespace; its operators appear once the kernel is loaded

    def fused_ok(self, x: torch.Tensor) -> bool:
        """Whether ``x`` (device, dtype) can go through the kernel here (compiling it on first call)."""
        return x.device.type == "cpu" and x.dtype in FUSED_DTYPES and self.kernel.available()

    def fused_layer(
        self,
        x: torch.Tensor,
        h0: torch.Tensor,
        c0: torch.Tensor | None,
        weights: Weights,
        keep: torch.Tensor | None,
        mode: int,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(out, h_T, second state's last value or None)`` through the kernel (loaded by the caller)."""
        ops = self.ops
        if torch.is_grad_enabled() and (
            x.requires_grad
            or h0.requires_grad
            or (c0 is not None and c0.requires_grad)
            or any(w.requires_grad for w in weights)
        ):
            outs = _FusedLayer.apply(ops, mode, keep, x, *weights, h0, c0)
            return outs if len(outs) == 3 else (*outs, None)
        # Rollout inference: nothing is saved, no autograd bookkeeping.
        out, h, c, _, _ = ops.forward(x, h0, c0, *weights, keep, False, mode)
        return out, h, c

    def torch_layer(
        self, x: torch.Tensor, states: Sequence[torch.Tensor], weights: Weights, keep: torch.Tensor | None
    ) -> tuple[torch.Tensor, ...]:
        """The fallback: PyTorch's cell once per stretch of steps with no reset inside."""
        out, state = split_at_resets(lambda xs, s: self.torch_segment(xs, s, weights), x, torch.stack(states), keep)
        return (out, *state.unbind(0))

    def layer(
        self,
        x: torch.Tensor,
        states: Sequence[torch.Tensor],
        weights: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None],
        resets: torch.Tensor | None,
        implementation: str,
    ) -> tuple[torch.Tensor, ...]:
        """The body of ``gru_layer`` / ``lstm_layer``: missing biases are zeros, ``resets`` becomes ``keep``."""
        if x.dim() != 3 or any(s.dim() != 2 for s in states):
            shapes = ", ".join(str(tuple(s.shape)) for s in states)
            raise ValueError(f"expected x [T, B, I] and states [B, H], got {tuple(x.shape)} and {shapes}")
        weight_ih, weight_hh, bias_ih, bias_hh = weights
        gates = self.n_gates * weight_hh.shape[1]
        full = (
            weight_ih,
            weight_hh,
            weight_ih.new_zeros(gates) if bias_ih is None else bias_ih,
            weight_hh.new_zeros(gates) if bias_hh is None else bias_hh,
        )
        keep = None if resets is None else 1 - resets.to(x.dtype)
        if implementation == "auto":
            implementation = "fused" if self.fused_ok(x) else "torch"
        if implementation == "torch":
            return self.torch_layer(x, states, full, keep)
        if implementation not in MODES:
            raise ValueError(f"implementation must be auto, fused, generic, avx2 or torch, got {implementation!r}")
        if not self.kernel.load():
            raise RuntimeError(f"the fused {self.name} kernel is unavailable: {self.kernel.state['error']}")
        second = states[1] if len(states) > 1 else None
        out, h, c = self.fused_layer(x, states[0], second, full, keep, MODES[implementation])
        return (out, h) if c is None else (out, h, c)

    def run_layers(
        self,
        x: torch.Tensor,
        state: torch.Tensor,
        layers: list[Weights],
        keep: torch.Tensor | None,
        mode: int = 0,
        dropout: float = 0.0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Stacked layers through the kernel (the caller checked availability); what cores call.

        ``state [n_layers, B, n_states * H]`` (states side by side), ``keep = 1 - episode_starts``; ``dropout`` is
        applied to every layer's output but the last, as nn.GRU / nn.LSTM do while training (pass 0 in eval mode).
        Returns ``(out, final state)`` shaped like ``state``.
        """
        finals = []
        for layer, weights in enumerate(layers):
            if layer:
                x = dropout_between_layers(x, dropout)
            x, h, c = self.fused_layer(x, *self._unpacked(state[layer]), weights, keep, mode)
            finals.append(self._packed(h, c))
        return x, _stacked(finals)

    def run_pair(
        self,
        inputs: tuple[torch.Tensor, torch.Tensor],
        states: tuple[torch.Tensor, torch.Tensor],
        layers: tuple[list[Weights], list[Weights]],
        keep: torch.Tensor | None,
        dropouts: tuple[float, float] = (0.0, 0.0),
        mode: int = 0,
    ) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """``run_layers`` for two independent stacks of one cell (an actor's and a critic's core) at once: one
        kernel call per layer and direction for both, the second stack on another core when one is free (the
        kernel offers it to ATen's inter-op pool; see ``csrc/kernel_host.h``).

        ``inputs`` may be one tensor twice; the stacks must have as many layers. Returns each stack's
        ``(out, final state)``.
        """
        (x_a, x_b), (state_a, state_b) = inputs, states
        finals: tuple[list[torch.Tensor], list[torch.Tensor]] = ([], [])
        training = torch.is_grad_enabled() and any(
            t.requires_grad for t in (x_a, x_b, state_a, state_b, *layers[0][0], *layers[1][0])
        )
        for layer, (weights_a, weights_b) in enumerate(zip(*layers, strict=True)):
            if layer:
                x_a, x_b = dropout_between_layers(x_a, dropouts[0]), dropout_between_layers(x_b, dropouts[1])
            (h0_a, c0_a), (h0_b, c0_b) = self._unpacked(state_a[layer]), self._unpacked(state_b[layer])
            if training:
                outs = _FusedPair.apply(self.ops, mode, keep, self.n_states == 2, x_a, *weights_a, h0_a, c0_a,
                                        x_b, *weights_b, h0_b, c0_b)
                if self.n_states == 1:
                    (x_a, h_a, x_b, h_b), c_a, c_b = outs, None, None
                else:
                    x_a, h_a, c_a, x_b, h_b, c_b = outs
            else:  # rollout inference: nothing saved, no autograd bookkeeping
                results = self.ops.forward_pair([x_a, h0_a, c0_a, *weights_a], [x_b, h0_b, c0_b, *weights_b], keep,
                                                False, mode)
                x_a, h_a, c_a, x_b, h_b, c_b = results[0], results[1], results[2], *results[5:8]
            finals[0].append(self._packed(h_a, c_a))
            finals[1].append(self._packed(h_b, c_b))
        return (x_a, _stacked(finals[0])), (x_b, _stacked(finals[1]))

    def _unpacked(self, layer_state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One layer's packed state ``[B, n_states * H]`` as the kernel takes it: ``(h, second state or None)``."""
        if self.n_states == 1:
            return layer_state, None
        hidden = layer_state.shape[-1] // 2
        return layer_state[:, :hidden], layer_state[:, hidden:]

    @staticmethod
    def _packed(h: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return h if c is None else torch.cat((h, c), dim=-1)


def _stacked(finals: list[torch.Tensor]) -> torch.Tensor:
    """Per-layer final states as ``[n_layers, B, size]``."""
    return finals[0].unsqueeze(0) if len(finals) == 1 else torch.stack(finals)


#: what each cell module (``fused_gru``, ``fused_lstm``) exports besides its own names
CELL_EXPORTS = (
    *("CELL", "DISABLE_ENV", "KERNEL", "available", "fused_ok"),
    *("load_extension", "release_cached_memory", "run_layers", "run_pair"),
)

__all__ = ["CELL_EXPORTS", "FUSED_DTYPES", "MODES", "FusedCell", "TorchSegment", "Weights"]
