"""A fused LSTM layer for CPU, with per-step episode-start resets, and its pure-PyTorch fallback.

PyTorch's ``nn.LSTM`` (oneDNN on CPU) is fast but cannot zero the state of some envs in the middle of a
sequence, so training had to cut sequences at every episode start and pad them. The C++ kernel in
``csrc/fused_lstm.cpp`` masks h and c per (step, env) inside its time loop instead; like the fused GRU it does the
input projection and the weight gradients as a few big GEMMs and, per step, one register-tiled ``h @ W_hh^T``
whose epilogue applies the gates.

Compiled on first use like the GRU kernel (``rlgru.cores.fused_gru``). If that fails, or
``RLGRU_DISABLE_FUSED_LSTM=1`` is set, or the tensors are not float32/float64 on CPU, ``lstm_layer`` falls back to
PyTorch's own LSTM, splitting the sequence where resets happen. Everything but the cell itself is shared with the
fused GRU in ``rlgru.cores.fused``; cores keep an LSTM layer's state as ``[h | c]``.
"""

from __future__ import annotations

import torch

from rlgru.cores.fused import CELL_EXPORTS, FusedCell, Weights


def _torch_segment(x: torch.Tensor, state: torch.Tensor, weights: Weights) -> tuple[torch.Tensor, torch.Tensor]:
    out, h, c = torch.lstm(x, (state[:1], state[1:]), list(weights), True, 1, 0.0, False, False, False)
    return out, torch.cat((h, c))


LSTM = FusedCell("LSTM", 4, 2, _torch_segment, "LSTM cores cut training sequences at resets and use nn.LSTM instead")


def lstm_layer(
    x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, weight_ih: torch.Tensor, weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None = None, bias_hh: torch.Tensor | None = None, resets: torch.Tensor | None = None,
    implementation: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One nn.LSTM-compatible layer: ``x [T, B, I]``, ``h0, c0 [B, H]`` -> ``(out [T, B, H], h_T, c_T)``.

    ``resets [T, B]`` (bool or 0/1): a 1 at ``[t, b]`` zeroes env ``b``'s h and c before step ``t``.
    ``implementation``: as for ``gru_layer``: ``"auto"``, ``"fused"``, ``"generic"``, ``"avx2"`` or ``"torch"``.
    """
    out, h, c = LSTM.layer(x, (h0, c0), (weight_ih, weight_hh, bias_ih, bias_hh), resets, implementation)
    return out, h, c


KERNEL, DISABLE_ENV = LSTM.kernel, LSTM.kernel.disable_env  # set DISABLE_ENV to 1 to force the PyTorch path
# Thread-safe, compile-once loading; ``available`` (whether LSTM cores use the kernel) is what KernelCore calls.
load_extension, available, release_cached_memory = KERNEL.load, KERNEL.available, KERNEL.release_cached_memory
fused_lstm_available, fused_lstm_info, fused_ok, run_layers = available, KERNEL.info, LSTM.fused_ok, LSTM.run_layers
run_pair = LSTM.run_pair
CELL = LSTM  # the FusedCell itself (rlgru.fast.update calls its operators directly)

__all__ = ["LSTM", "fused_lstm_available", "fused_lstm_info", "lstm_layer", *CELL_EXPORTS]
