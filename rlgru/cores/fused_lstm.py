"""A fused LSTM layer for CPU, with per-step episode-start resets, and its pure-PyTorch fallback.

PyTorch's ``nn.LSTM`` (oneDNN on CPU) is fast but cannot zero the state of some envs in the middle of a
sequence, so training had to cut sequences at every episode start and pad them. The C++ kernel in
``csrc/fused_lstm.cpp`` masks h and c per (step, env) inside its time loop instead; like the fused GRU
(``rlgru.cores.fused_gru``, whose building blocks it shares) it does the input projection and the weight gradients
as a few big GEMMs and, per step, one register-tiled ``h @ W_hh^T`` whose epilogue applies the gates.

The kernel is compiled on first use with ``torch.utils.cpp_extension.load`` (ninja and a C++ compiler; cached in
torch's extension directory). If that fails, or ``RLGRU_DISABLE_FUSED_LSTM=1`` is set, or the tensors are not
float32/float64 on CPU, ``lstm_layer`` falls back to PyTorch's own LSTM, splitting the sequence where resets
happen. Big buffers are pooled as in the GRU kernel; ``release_cached_memory()`` empties the pool.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.autograd.function import once_differentiable

from rlgru.cores import _kernel_build

__all__ = [
    "DISABLE_ENV",
    "fused_lstm_available",
    "fused_lstm_info",
    "load_extension",
    "lstm_layer",
    "release_cached_memory",
    "run_layers",
]

#: set to 1 to force the pure-PyTorch path
DISABLE_ENV = "RLGRU_DISABLE_FUSED_LSTM"
_FUSED_DTYPES = (torch.float32, torch.float64)
#: kernel ``mode`` argument: the widest SIMD the CPU has, the generic (any-dtype) code, or AVX2 (for tests)
_MODES = {"fused": 0, "generic": 1, "avx2": 2}

KERNEL = _kernel_build.CompiledKernel(
    "rlgru_fused_lstm",
    _kernel_build.CSRC / "fused_lstm.cpp",
    DISABLE_ENV,
    "fused LSTM kernel",
    "LSTM cores cut training sequences at resets and use nn.LSTM instead",
)

Weights = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def load_extension(verbose: bool = False) -> bool:
    """Compile (first time only) and load the kernel; returns whether it is usable. Thread-safe, runs once."""
    return KERNEL.load(verbose)


def fused_lstm_available() -> bool:
    """Whether LSTM cores will use the compiled kernel (compiling it on first call)."""
    return KERNEL.available()


#: the name ``KernelCore`` looks the check up by
available = fused_lstm_available
fused_lstm_info = KERNEL.info
release_cached_memory = KERNEL.release_cached_memory


def fused_ok(x: torch.Tensor) -> bool:
    """Whether ``x`` (device, dtype) can go through the kernel here."""
    return x.device.type == "cpu" and x.dtype in _FUSED_DTYPES and fused_lstm_available()


class _FusedLSTM(torch.autograd.Function):
    """One LSTM layer over a sequence; saves gate activations and cell states for the backward kernel."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: torch.Tensor,
        h0: torch.Tensor,
        c0: torch.Tensor,
        w_ih: torch.Tensor,
        w_hh: torch.Tensor,
        b_ih: torch.Tensor,
        b_hh: torch.Tensor,
        keep: torch.Tensor | None,
        mode: int,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out, h_last, c_last, cs, saved = torch.ops.rlgru_fused_lstm.forward(
            x, h0, c0, w_ih, w_hh, b_ih, b_hh, keep, True, mode
        )
        ctx.save_for_backward(x, h0, c0, w_ih, w_hh, out, cs, saved, keep)
        ctx.mode = mode
        ctx.set_materialize_grads(False)
        return out, h_last, c_last

    @staticmethod
    @once_differentiable
    def backward(
        ctx: Any, grad_out: torch.Tensor | None, grad_h: torch.Tensor | None, grad_c: torch.Tensor | None
    ) -> tuple[Any, ...]:
        x, h0, c0, w_ih, w_hh, out, cs, saved, keep = ctx.saved_tensors
        if grad_out is None:
            grad_out = torch.zeros_like(out)
        need = ctx.needs_input_grad
        need_w = any(need[3:7])
        dx, dh0, dc0, dw_ih, dw_hh, db = torch.ops.rlgru_fused_lstm.backward(
            grad_out,
            grad_h,
            grad_c,
            x,
            h0,
            c0,
            w_ih,
            w_hh,
            out,
            cs,
            saved,
            keep,
            need[0],
            need[1] or need[2],
            need_w,
            ctx.mode,
        )
        # Both biases get the same gradient; separate tensors, since autograd may keep either one as a .grad.
        db_hh = db.clone() if need[5] and need[6] else db
        grads = (dx, dh0, dc0, dw_ih, dw_hh, db, db_hh)
        return (*(g if n else None for g, n in zip(grads, need[:7], strict=True)), None, None)


def _fused_layer(
    x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, weights: Weights, keep: torch.Tensor | None, mode: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if torch.is_grad_enabled() and (
        x.requires_grad or h0.requires_grad or c0.requires_grad or any(w.requires_grad for w in weights)
    ):
        return _FusedLSTM.apply(x, h0, c0, *weights, keep, mode)
    # Rollout inference: nothing is saved, no autograd bookkeeping.
    out, h_last, c_last, _, _ = torch.ops.rlgru_fused_lstm.forward(x, h0, c0, *weights, keep, False, mode)
    return out, h_last, c_last


def _torch_layer(
    x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, weights: Weights, keep: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PyTorch's LSTM, run once per stretch of steps with no reset inside (the fallback)."""

    def run(xs: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        state = (h.unsqueeze(0).contiguous(), c.unsqueeze(0).contiguous())
        out, h_n, c_n = torch.lstm(xs, state, list(weights), True, 1, 0.0, False, False, False)
        return out, h_n[0], c_n[0]

    if keep is None:
        return run(x, h0, c0)
    seq_len = x.shape[0]
    starts = (keep[1:] < 1).any(dim=1).nonzero().flatten().add(1).tolist() if seq_len > 1 else []
    bounds = [0, *starts, seq_len]
    outputs, h, c = [], h0, c0
    for start, end in zip(bounds[:-1], bounds[1:], strict=True):
        k = keep[start].unsqueeze(-1)
        out, h, c = run(x[start:end], h * k, c * k)
        outputs.append(out)
    return (outputs[0] if len(outputs) == 1 else torch.cat(outputs)), h, c


def lstm_layer(
    x: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None = None,
    bias_hh: torch.Tensor | None = None,
    resets: torch.Tensor | None = None,
    implementation: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One nn.LSTM-compatible layer: ``x [T, B, I]``, ``h0, c0 [B, H]`` -> ``(out [T, B, H], h_T, c_T)``.

    ``resets [T, B]`` (bool or 0/1): a 1 at ``[t, b]`` zeroes env ``b``'s h and c before step ``t``.
    ``implementation``: ``"auto"`` (kernel when usable, else PyTorch), ``"fused"`` (kernel, widest SIMD),
    ``"generic"`` (kernel's scalar code, the one float64 uses), ``"avx2"`` (kernel's AVX2 code even where
    AVX-512 exists) or ``"torch"`` (the fallback).
    """
    if x.dim() != 3 or h0.dim() != 2 or c0.dim() != 2:
        raise ValueError(
            f"expected x [T, B, I], h0 and c0 [B, H], got {tuple(x.shape)}, {tuple(h0.shape)}, {tuple(c0.shape)}"
        )
    hidden = weight_hh.shape[1]
    if bias_ih is None:
        bias_ih = weight_ih.new_zeros(4 * hidden)
    if bias_hh is None:
        bias_hh = weight_hh.new_zeros(4 * hidden)
    keep = None if resets is None else 1 - resets.to(x.dtype)
    weights = (weight_ih, weight_hh, bias_ih, bias_hh)
    if implementation == "auto":
        implementation = "fused" if fused_ok(x) else "torch"
    if implementation == "torch":
        return _torch_layer(x, h0, c0, weights, keep)
    if implementation not in _MODES:
        raise ValueError(f"implementation must be auto, fused, generic, avx2 or torch, got {implementation!r}")
    if not load_extension():
        raise RuntimeError(f"the fused LSTM kernel is unavailable: {KERNEL.state['error']}")
    return _fused_layer(x, h0, c0, weights, keep, _MODES[implementation])


def run_layers(
    x: torch.Tensor, state: torch.Tensor, layers: list[Weights], keep: torch.Tensor | None, mode: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stacked layers through the kernel (caller checked availability); ``state`` is ``[L, B, 2H]`` packed as
    ``[h | c]`` (LSTMCore's layout), ``keep = 1 - episode_starts``. Returns ``(out, final state [L, B, 2H])``."""
    hidden = state.shape[-1] // 2
    finals = []
    for layer, weights in enumerate(layers):
        x, h, c = _fused_layer(x, state[layer, :, :hidden], state[layer, :, hidden:], weights, keep, mode)
        finals.append(torch.cat((h, c), dim=-1))
    return x, (finals[0].unsqueeze(0) if len(finals) == 1 else torch.stack(finals))
