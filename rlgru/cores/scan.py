"""The diagonal linear recurrence ``h_t = a_t * h_{t-1} + b_t`` that minGRU and LRU train with, resets included.

A reset is ``a_t = 0`` (the carried state is dropped, ``b_t`` is kept), so resets live inside the scan and training
replays whole rollout lanes. ``linear_scan`` is one ``autograd.Function`` whose backward is the reverse scan
``g_t = dout_t + conj(a_{t+1}) g_{t+1}``, ``da_t = g_t conj(h_{t-1})``, ``db_t = g_t``: one pass back in time
instead of autograd through every step. Real and complex tensors both work (PyTorch's conjugate-Wirtinger
gradients, hence the ``conj``).

On CPU the scan runs in a small compiled kernel (``csrc/linear_scan.cpp``, built on first use like the fused GRU
and LSTM kernels; ``RLGRU_DISABLE_LINEAR_SCAN=1`` turns it off): one call loops over time, where one PyTorch op per
step would spend far more on dispatch than on the few hundred multiply-adds a step holds at RL sizes. Without the
kernel, how the scan runs depends on the shape (measured on one CPU thread, ``benchmarks/scan_cores.py``):

- **sequential**: one fused ``addcmul`` per step over ``[B, N]``. O(T) work, and each step's slice stays in
  cache; the fastest on CPU above ``B * N`` of about 512 numbers (a log-depth scan does O(T log T) work over the
  whole ``[T, B, N]`` block and is memory-bound: 4x slower at ``B * N = 4096``, ``T = 128``).
- **chunked**: a Hillis-Steele log-depth scan inside chunks of ``CHUNK`` steps, all chunks at once, then one
  sequential pass over chunk ends and one fix-up. Fewer, bigger ops: wins where per-op overhead dominates
  (small ``B * N``) and on accelerators (one chunk of ``T`` steps: the plain log-depth scan).
"""

from __future__ import annotations

from typing import Any

import torch

from rlgru.cores import _kernel_build

KERNEL = _kernel_build.CompiledKernel(
    "rlgru_linear_scan",
    _kernel_build.CSRC / "linear_scan.cpp",
    "RLGRU_DISABLE_LINEAR_SCAN",
    "linear-scan kernel",
    "minGRU and LRU cores scan with PyTorch ops instead",
)

#: chunk length of the chunked scan on CPU
CHUNK = 8
#: the chunked scan beats the sequential one on CPU (forward + backward, one thread) only for sequences this long
#: or longer, with at most this many real numbers per step (``B * N``, twice that for complex numbers)
CHUNKED_MIN_STEPS = 64
CHUNKED_MAX_WIDTH = 512


def linear_scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor, use_kernel: bool = True) -> torch.Tensor:
    """``h [T, B, N]`` with ``h_t = a_t * h_{t-1} + b_t`` and ``h_{-1} = h0 [B, N]``.

    ``a`` broadcasts to ``b``'s shape (an expanded, time-constant ``a`` costs no memory); real or complex.
    ``use_kernel=False`` keeps to PyTorch even where the compiled kernel would run (a core's ``compiled_kernels``).
    """
    a = a.expand_as(b)
    return LinearScan.apply(a, b, h0, use_kernel)


class LinearScan(torch.autograd.Function):
    """Forward: the scan; backward: the reverse scan (see the module docstring)."""

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor, use_kernel: bool) -> torch.Tensor:
        h = scan(a, b, h0, use_kernel)
        ctx.save_for_backward(a, h0, h)
        ctx.use_kernel = use_kernel
        return h

    @staticmethod
    def backward(ctx: Any, grad_h: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        a, h0, h = ctx.saved_tensors
        need_a, need_b, need_h0, _ = ctx.needs_input_grad
        if ctx.use_kernel and uses_kernel(grad_h):
            g, grad_a, grad_h0 = KERNEL.ops.backward(a, grad_h, h, h0, need_a, need_h0)
            return (grad_a if need_a else None), (g if need_b else None), (grad_h0 if need_h0 else None), None
        a_conj = a.conj().resolve_conj()  # once here, not once per step inside the reverse scan
        g = reverse_scan(a_conj, grad_h)
        grad_a = grad_h0 = None
        if ctx.needs_input_grad[0]:  # g_t * conj(h_{t-1}), without materialising the shifted h
            grad_a = torch.empty_like(g)
            torch.mul(g[0], h0.conj(), out=grad_a[0])
            torch.mul(g[1:], h[:-1].conj(), out=grad_a[1:])
        if ctx.needs_input_grad[2]:
            grad_h0 = a_conj[0] * g[0]
        return grad_a, g if ctx.needs_input_grad[1] else None, grad_h0, None


def uses_kernel(b: torch.Tensor) -> bool:
    """Whether a scan over tensors like ``b`` runs in the compiled kernel (CPU, and the kernel builds)."""
    return b.device.type == "cpu" and KERNEL.available()


def engine(device: torch.device | str, use_kernel: bool = True) -> str:
    """What runs scans on ``device``, for ``MemoryCore.engine``."""
    on_cpu = torch.device(device).type == "cpu"
    return "linear-scan C++ kernel" if use_kernel and on_cpu and KERNEL.available() else "parallel scan (PyTorch)"


def kernel_reasons(device: torch.device | str, use_kernel: bool = True) -> list[str]:
    """Why scans on ``device`` do not run in the compiled kernel (empty: they do), for ``MemoryCore.kernel_reasons``."""
    if not use_kernel:
        return ["fast paths turned off for this model"]
    if torch.device(device).type != "cpu":
        return [f"the kernel runs on CPU, not {torch.device(device).type}"]
    return [] if KERNEL.available() else [KERNEL.why_unavailable()]


def scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor, use_kernel: bool = True) -> torch.Tensor:
    """The scan without autograd: ``h_t = a_t * h_{t-1} + b_t`` from ``h_{-1} = h0``."""
    if use_kernel and uses_kernel(b):
        return KERNEL.ops.forward(a, b, h0)
    if _sequential_is_faster(b):
        out, h = torch.empty_like(b), h0
        # unbind: one call for all T views, cheaper than indexing per step
        for b_t, a_t, out_t in zip(b.unbind(0), a.unbind(0), out.unbind(0), strict=True):
            h = torch.addcmul(b_t, a_t, h, out=out_t)
        return out
    return _chunked(a, b, h0, _chunk(b))


def reverse_scan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The scan backwards in time: ``g_t = a_{t+1} * g_{t+1} + b_t`` from ``g_{T-1} = b_{T-1}`` (``a_0`` unused)."""
    if _sequential_is_faster(b):
        out = torch.empty_like(b)
        g = out[-1].copy_(b[-1])
        steps = zip(reversed(b.unbind(0)[:-1]), reversed(a.unbind(0)[1:]), reversed(out.unbind(0)[:-1]), strict=True)
        for b_t, a_next, out_t in steps:
            g = torch.addcmul(b_t, a_next, g, out=out_t)
        return out
    # in flipped time step s multiplies by a_{T-s}: shift a by one, then flip (the wrapped-around a_0 hits zeros)
    shifted = torch.cat([a[1:], a[:1]]).flip(0)
    return _chunked(shifted, b.flip(0), torch.zeros_like(b[0]), _chunk(b)).flip(0)


def _sequential_is_faster(b: torch.Tensor) -> bool:
    width = b[0].numel() * (2 if b.is_complex() else 1)
    return b.device.type == "cpu" and (width > CHUNKED_MAX_WIDTH or b.shape[0] < CHUNKED_MIN_STEPS)


def _chunk(b: torch.Tensor) -> int:
    return CHUNK if b.device.type == "cpu" else b.shape[0]


def _chunked(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor, chunk: int) -> torch.Tensor:
    """Log-depth scan inside chunks, then carries across chunks; ``T`` is padded to a multiple of ``chunk``."""
    steps = b.shape[0]
    n_chunks = -(-steps // chunk)
    pad = n_chunks * chunk - steps
    tail = b.shape[1:]
    dense = torch.contiguous_format
    a = torch.cat([a, a.new_ones(pad, *tail)]) if pad else a.clone(memory_format=dense)
    b = torch.cat([b, b.new_zeros(pad, *tail)]) if pad else b.clone(memory_format=dense)
    a = a.view(n_chunks, chunk, *tail)
    b = b.view(n_chunks, chunk, *tail)
    b[0, 0].addcmul_(a[0, 0], h0)
    step = 1
    while step < chunk:
        # out of place on the right-hand side: the slices overlap
        b[:, step:] = torch.addcmul(b[:, step:], a[:, step:], b[:, :-step])
        a[:, step:] = a[:, step:] * a[:, :-step]
        step *= 2
    if n_chunks > 1:
        carry = torch.zeros_like(b[:, 0])  # carry[i]: the state entering chunk i (chunk 0's is folded in already)
        for i in range(1, n_chunks):
            torch.addcmul(b[i - 1, -1], a[i - 1, -1], carry[i - 1], out=carry[i])
        b.addcmul_(a, carry.unsqueeze(1))
    return b.view(n_chunks * chunk, *tail)[:steps]


__all__ = [
    "CHUNK",
    "CHUNKED_MAX_WIDTH",
    "CHUNKED_MIN_STEPS",
    "KERNEL",
    "LinearScan",
    "engine",
    "kernel_reasons",
    "linear_scan",
    "reverse_scan",
    "scan",
    "uses_kernel",
]
