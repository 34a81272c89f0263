"""A fused GRU layer for CPU, with per-step episode-start resets, and its pure-PyTorch fallback.

PyTorch runs ``nn.GRU`` on CPU as a chain of small ATen ops per step, while ``nn.LSTM`` gets oneDNN's fused
kernel; so a GRU, which does three quarters of an LSTM's gate arithmetic, trains several times slower. The C++
kernel in ``csrc/fused_gru.cpp`` does the input projection and the weight gradients as a few big GEMMs outside the
time loop and, per step, one register-tiled ``h @ W_hh^T`` whose epilogue applies the gates (backward mirrors it).

The kernel is compiled on first use with ``torch.utils.cpp_extension.load`` (ninja and a C++ compiler; cached in
torch's extension directory, ``$TORCH_EXTENSIONS_DIR`` or ``~/.cache/torch_extensions``). If that fails, or
``RLGRU_DISABLE_FUSED_GRU=1`` is set, or the tensors are not float32/float64 on CPU, ``gru_layer`` falls back to
PyTorch's own GRU, splitting the sequence where resets happen.

Memory: the kernel reuses its big buffers (activations, gradients) across calls from a pool capped at 256 MiB,
because re-faulting fresh pages every training step costs as much as the GEMMs; ``release_cached_memory()``
empties it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.autograd.function import once_differentiable

from rlgru.cores import _kernel_build

__all__ = [
    "DISABLE_ENV",
    "fused_gru_available",
    "fused_gru_info",
    "gru_layer",
    "load_extension",
    "release_cached_memory",
    "run_layers",
]

#: set to 1 to force the pure-PyTorch path
DISABLE_ENV = "RLGRU_DISABLE_FUSED_GRU"
_FUSED_DTYPES = (torch.float32, torch.float64)
#: kernel ``mode`` argument: the widest SIMD the CPU has, the generic (any-dtype) code, or AVX2 (for tests)
_MODES = {"fused": 0, "generic": 1, "avx2": 2}

KERNEL = _kernel_build.CompiledKernel(
    "rlgru_fused_gru",
    _kernel_build.CSRC / "fused_gru.cpp",
    DISABLE_ENV,
    "fused GRU kernel",
    "GRU cores use PyTorch's slower nn.GRU instead",
)

def load_extension(verbose: bool = False) -> bool:
    """Compile (first time only) and load the kernel; returns whether it is usable. Thread-safe, runs once."""
    return KERNEL.load(verbose)


def fused_gru_available() -> bool:
    """Whether GRU cores will use the compiled kernel (compiling it on first call)."""
    return KERNEL.available()


#: the name ``KernelCore`` looks the check up by
available = fused_gru_available
fused_gru_info = KERNEL.info
release_cached_memory = KERNEL.release_cached_memory


def _fused_ok(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and x.dtype in _FUSED_DTYPES and fused_gru_available()


class _FusedGRU(torch.autograd.Function):
    """One GRU layer over a sequence; saves the gate activations the backward kernel needs."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: torch.Tensor,
        h0: torch.Tensor,
        w_ih: torch.Tensor,
        w_hh: torch.Tensor,
        b_ih: torch.Tensor,
        b_hh: torch.Tensor,
        keep: torch.Tensor | None,
        mode: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out, h_last, saved = torch.ops.rlgru_fused_gru.forward(x, h0, w_ih, w_hh, b_ih, b_hh, keep, True, mode)
        ctx.save_for_backward(x, h0, w_ih, w_hh, out, saved, keep)
        ctx.mode = mode
        ctx.set_materialize_grads(False)
        return out, h_last

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: torch.Tensor | None, grad_h: torch.Tensor | None) -> tuple[Any, ...]:
        x, h0, w_ih, w_hh, out, saved, keep = ctx.saved_tensors
        if grad_out is None:
            grad_out = torch.zeros_like(out)
        need = ctx.needs_input_grad
        need_w = any(need[2:6])
        dx, dh0, dw_ih, dw_hh, db_ih, db_hh = torch.ops.rlgru_fused_gru.backward(
            grad_out, grad_h, x, h0, w_ih, w_hh, out, saved, keep, need[0], need[1], need_w, ctx.mode
        )
        grads = (dx, dh0, dw_ih, dw_hh, db_ih, db_hh)
        return (*(g if n else None for g, n in zip(grads, need[:6], strict=True)), None, None)


def _fused_layer(
    x: torch.Tensor,
    h0: torch.Tensor,
    weights: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    keep: torch.Tensor | None,
    mode: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    if torch.is_grad_enabled() and (x.requires_grad or h0.requires_grad or any(w.requires_grad for w in weights)):
        return _FusedGRU.apply(x, h0, *weights, keep, mode)
    # Rollout inference: nothing is saved, no autograd bookkeeping.
    out, h_last, _ = torch.ops.rlgru_fused_gru.forward(x, h0, *weights, keep, False, mode)
    return out, h_last


def _torch_layer(
    x: torch.Tensor,
    h0: torch.Tensor,
    weights: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    keep: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PyTorch's GRU, run once per stretch of steps with no reset inside (the fallback)."""

    def run(xs: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, h_n = torch.gru(xs, h.unsqueeze(0).contiguous(), list(weights), True, 1, 0.0, False, False, False)
        return out, h_n[0]

    if keep is None:
        return run(x, h0)
    seq_len = x.shape[0]
    starts = (keep[1:] < 1).any(dim=1).nonzero().flatten().add(1).tolist() if seq_len > 1 else []
    bounds = [0, *starts, seq_len]
    outputs, h = [], h0
    for start, end in zip(bounds[:-1], bounds[1:], strict=True):
        out, h = run(x[start:end], h * keep[start].unsqueeze(-1))
        outputs.append(out)
    return (outputs[0] if len(outputs) == 1 else torch.cat(outputs)), h


def gru_layer(
    x: torch.Tensor,
    h0: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None = None,
    bias_hh: torch.Tensor | None = None,
    resets: torch.Tensor | None = None,
    implementation: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """One nn.GRU-compatible layer: ``x [T, B, I]``, ``h0 [B, H]`` -> ``(out [T, B, H], h_last [B, H])``.

    ``resets [T, B]`` (bool or 0/1): a 1 at ``[t, b]`` zeroes env ``b``'s hidden state before step ``t``.
    ``implementation``: ``"auto"`` (kernel when usable, else PyTorch), ``"fused"`` (kernel, widest SIMD),
    ``"generic"`` (kernel's scalar code, the one float64 uses), ``"avx2"`` (kernel's AVX2 code even where
    AVX-512 exists) or ``"torch"`` (the fallback).
    """
    if x.dim() != 3 or h0.dim() != 2:
        raise ValueError(f"expected x [T, B, I] and h0 [B, H], got {tuple(x.shape)} and {tuple(h0.shape)}")
    hidden = weight_hh.shape[1]
    if bias_ih is None:
        bias_ih = weight_ih.new_zeros(3 * hidden)
    if bias_hh is None:
        bias_hh = weight_hh.new_zeros(3 * hidden)
    keep = None if resets is None else 1 - resets.to(x.dtype)
    weights = (weight_ih, weight_hh, bias_ih, bias_hh)
    if implementation == "auto":
        implementation = "fused" if _fused_ok(x) else "torch"
    if implementation == "torch":
        return _torch_layer(x, h0, weights, keep)
    if implementation not in _MODES:
        raise ValueError(f"implementation must be auto, fused, generic, avx2 or torch, got {implementation!r}")
    if not load_extension():
        raise RuntimeError(f"the fused GRU kernel is unavailable: {KERNEL.state['error']}")
    return _fused_layer(x, h0, weights, keep, _MODES[implementation])


def run_layers(
    x: torch.Tensor,
    state: torch.Tensor,
    layers: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]],
    keep: torch.Tensor | None,
    mode: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stacked layers through the kernel (caller checked availability); ``keep = 1 - episode_starts``."""
    if len(layers) == 1:
        out, h = _fused_layer(x, state[0], layers[0], keep, mode)
        return out, h.unsqueeze(0)
    finals = []
    for layer, weights in enumerate(layers):
        x, h = _fused_layer(x, state[layer], weights, keep, mode)
        finals.append(h)
    return x, torch.stack(finals)
