"""A fused GRU layer for CPU, with per-step episode-start resets, and its pure-PyTorch fallback.

PyTorch runs ``nn.GRU`` on CPU as a chain of small ATen ops per step, while ``nn.LSTM`` gets oneDNN's fused
kernel; so a GRU, which does three quarters of an LSTM's gate arithmetic, trains several times slower. The C++
kernel in ``csrc/fused_gru.cpp`` does the input projection and the weight gradients as a few big GEMMs outside the
time loop and, per step, one register-tiled ``h @ W_hh^T`` whose epilogue applies the gates (backward mirrors it).

The kernel is compiled on first use with ``torch.utils.cpp_extension.load`` (ninja and a C++ compiler; cached in
torch's extension directory, ``$TORCH_EXTENSIONS_DIR`` or ``~/.cache/torch_extensions``). If that fails, or
``RLGRU_DISABLE_FUSED_GRU=1`` is set, or the tensors are not float32/float64 on CPU, ``gru_layer`` falls back to
PyTorch's own GRU, splitting the sequence where resets happen. Everything but the cell itself is shared with the
fused LSTM in ``rlgru.cores.fused``.
"""

from __future__ import annotations

import torch

from rlgru.cores.fused import CELL_EXPORTS, FusedCell, Weights


def _torch_segment(x: torch.Tensor, state: torch.Tensor, weights: Weights) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.gru(x, state, list(weights), True, 1, 0.0, False, False, False)


GRU = FusedCell("GRU", 3, 1, _torch_segment, "GRU cores use PyTorch's slower nn.GRU instead")


def gru_layer(
    x: torch.Tensor, h0: torch.Tensor, weight_ih: torch.Tensor, weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None = None, bias_hh: torch.Tensor | None = None, resets: torch.Tensor | None = None,
    implementation: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """One nn.GRU-compatible layer: ``x [T, B, I]``, ``h0 [B, H]`` -> ``(out [T, B, H], h_last [B, H])``.

    ``resets [T, B]`` (bool or 0/1): a 1 at ``[t, b]`` zeroes env ``b``'s hidden state before step ``t``.
    ``implementation``: ``"auto"`` (kernel when usable, else PyTorch), ``"fused"`` (kernel, widest SIMD),
    ``"generic"`` (kernel's scalar code, the one float64 uses), ``"avx2"`` (kernel's AVX2 code even where
    AVX-512 exists) or ``"torch"`` (the fallback).
    """
    out, h = GRU.layer(x, (h0,), (weight_ih, weight_hh, bias_ih, bias_hh), resets, implementation)
    return out, h


KERNEL, DISABLE_ENV = GRU.kernel, GRU.kernel.disable_env  # set DISABLE_ENV to 1 to force the PyTorch path
# Thread-safe, compile-once loading; ``available`` (whether GRU cores use the kernel) is what KernelCore calls.
load_extension, available, release_cached_memory = KERNEL.load, KERNEL.available, KERNEL.release_cached_memory
fused_gru_available, fused_gru_info, fused_ok, run_layers = available, KERNEL.info, GRU.fused_ok, GRU.run_layers
run_pair = GRU.run_pair
CELL = GRU  # the FusedCell itself (rlgru.fast.update calls its operators directly)

__all__ = ["GRU", "fused_gru_available", "fused_gru_info", "gru_layer", *CELL_EXPORTS]
