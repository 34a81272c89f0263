"""nn.GRU's recurrence in plain PyTorch, for CPUs where rlgru's C++ GRU kernel cannot be built or is disabled.

PyTorch runs ``nn.GRU`` on CPU as a dozen small autograd-recorded ops per step (``nn.LSTM`` gets oneDNN's fused
kernel), and its backward replays as many graph nodes; a GRU trained that way is slower than an LSTM. Here one
``torch.autograd.Function`` per layer runs the time loop with autograd off and a hand-written backward through
time: the input projection, the weight gradients and every gate derivative that does not depend on the incoming
gradient are big ops over all steps, leaving per step one GEMM and four elementwise ops forward, one GEMM and two
elementwise ops backward (a few more at steps where an episode starts mid-sequence: resets are applied inside the
loop). An actor's and a critic's core run stacked on a leading axis (batched GEMMs), so the pair costs the per-step
ops of one. At RL sizes dispatching an op costs more than its arithmetic; ``_GRULayer`` says what else that led to.
Speed against nn.LSTM's oneDNN kernel: ``results/fallback_speed.md``.

Same function as ``nn.GRU`` (gate order r, z, n; ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``), weights read
from the core's ``nn.GRU``; float32 and float64.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Sequence
from typing import Any

import torch
from torch.autograd.function import once_differentiable

from rlgru.cores.base import dropout_between_layers

Weights = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
DTYPES = (torch.float32, torch.float64)


def supports(x: torch.Tensor) -> bool:
    """Whether inputs like ``x`` run here (elsewhere nn.GRU stays: cuDNN on GPUs is fast)."""
    return x.device.type == "cpu" and x.dtype in DTYPES


def run_layers(
    x: torch.Tensor,
    state: torch.Tensor,
    layers: Sequence[Sequence[Weights]],
    keep: torch.Tensor | None,
    dropouts: Sequence[float],
) -> tuple[torch.Tensor, torch.Tensor]:
    """``S`` stacks of GRU layers of one size side by side (an actor's and a critic's core, or one core), in one loop.

    ``x [S, T, B, I]``, ``state [n_layers, S, B, H]``, ``layers[s][layer]`` stack ``s``'s ``(weight_ih, weight_hh,
    bias_ih, bias_hh)``, ``keep [T, B]`` (0 zeroes an env's state before that step, in every stack) or None,
    ``dropouts[s]`` stack ``s``'s dropout between layers (0 in eval mode). Returns ``out [S, T, B, H]`` and the final
    state ``[n_layers, S, B, H]``.
    """
    steps = x.shape[1]
    resets_at = [keep is not None] + [False] * (steps - 1)
    # Which later steps need the mask too; a host sync, and in a sequence minibatch (whose sequences start at step 0)
    # a single one.
    if keep is not None and steps > 1 and bool(keep[1:].min() < 1):
        resets_at[1:] = (keep[1:] < 1).any(dim=1).tolist()
    finals = []
    for layer in range(len(layers[0])):
        if layer:
            x = _dropped(x, dropouts)
        x, h_last = _GRULayer.apply(keep, resets_at, x, state[layer], *(w for stack in layers for w in stack[layer]))
        finals.append(h_last)
    return x, torch.stack(finals)


def _dropped(x: torch.Tensor, rates: Sequence[float]) -> torch.Tensor:
    if all(rate == rates[0] for rate in rates):
        return dropout_between_layers(x, rates[0])
    return torch.stack([dropout_between_layers(x[s], rate) for s, rate in enumerate(rates)])


def _weight_grad(d_out: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """``d_out [S, N, O]^T @ inputs [S, N, K]`` as ``[S, O, K]``, computed as ``(inputs^T @ d_out)^T``: several times
    faster when ``K`` is small (narrow observations)."""
    return torch.bmm(inputs.transpose(1, 2), d_out).transpose(1, 2)


def _live_rows(grad_h: torch.Tensor) -> torch.Tensor | None:
    """The (step, env) rows of ``grad_h [S, T, B, H]`` that carry a gradient in some stack, when gathering them pays;
    None for all rows. In a padded sequence minibatch the steps past a sequence's end get none (their outputs are
    dropped), so their rows add nothing to the weight gradients; below 64 hidden units the gathers cost about what
    the smaller GEMMs save."""
    stacks, steps, batch, hidden = grad_h.shape
    if hidden < 64:
        return None
    live = grad_h.view(stacks, steps * batch, hidden).abs().amax(2).amax(0) > 0
    rows = live.nonzero().squeeze(1)  # one host sync
    return rows if rows.numel() < 0.8 * steps * batch else None


def _select(a: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
    """``a [S, T, B, K]`` (or ``[S, T * B, K]``) as ``[S, rows, K]``."""
    flat = a.reshape(a.shape[0], -1, a.shape[-1])
    return flat if rows is None else flat.index_select(1, rows)


class _Scratch(threading.local):
    """The backward's scratch buffers, kept from call to call (per thread): PyTorch's CPU allocator hands large
    tensors back to the OS, and faulting in fresh pages at every training step cost up to a fifth of the layer's
    time (some 500 page faults per call at RL sizes). Nothing handed out here leaves the backward."""

    LIMIT = 16 * 2**20  # bytes per buffer; bigger ones are allocated per call

    def __init__(self) -> None:
        self.buffers: dict[tuple[str, torch.dtype, torch.device], torch.Tensor] = {}

    def take(self, name: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        numel = math.prod(shape)
        if numel * like.element_size() > self.LIMIT:
            return like.new_empty(shape)
        key = (name, like.dtype, like.device)
        buffer = self.buffers.get(key)
        if buffer is None or buffer.numel() < numel:
            buffer = self.buffers[key] = like.new_empty(numel)
        return buffer[:numel].view(shape)


_SCRATCH = _Scratch()


class _GRULayer(torch.autograd.Function):
    """One layer of ``S`` GRUs side by side over a sequence: ``(keep [T, B] or None, resets_at, x [S, T, B, I],
    h0 [S, B, H], then each stack's w_ih [3H, I], w_hh [3H, H], b_ih [3H], b_hh [3H]) -> (out [S, T, B, H],
    h_T [S, B, H])``.

    ``resets_at[t]``: whether ``keep[t]`` may hold a 0 (steps without one skip the mask). Stacks lead every buffer,
    so the GEMMs over all steps and the bias sums work on plain views. The loops take per-step views made once by
    ``unbind``: at these sizes making a view costs a third of an op, and slicing in the loop would make several per
    step.

    The forward loop runs on ``u = (h + 1) / 2``. There the GRU's tanh becomes a sigmoid (``tanh(a) = 2 sigmoid(2a) -
    1``; ATen's tanh costs two to three times a sigmoid on CPU) and the update stays one lerp: ``u' = s + z (u - s)``
    with ``s = sigmoid(2a) = (n + 1) / 2``. The weights fold the change of variable in: ``h W^T = u (2W)^T - W 1``,
    and the new gate's block is doubled so that it yields ``2a``.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, keep: torch.Tensor | None, resets_at: Sequence[bool], x: torch.Tensor, h0: torch.Tensor,
        *weights: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        w_ih, w_hh, b_ih, b_hh = (torch.stack(weights[k::4]) for k in range(4))
        stacks, steps, batch, _ = x.shape
        hidden = w_hh.shape[-1]
        # u = (h + 1) / 2 in the loop: h W^T + b = u (2W)^T + (b - W 1), and the new gate's block is doubled on top so
        # that the step yields 2a. gates[t] starts as what u @ w_u lands on: W_i x + b_i + b_h - W_h 1 for r and z,
        # 2 (b_hn - W_hn 1) for the new gate; the step leaves r, z and 2 (W_hn h + b_hn) there. new_gate holds
        # 2 (W_in x + b_in) until the step turns it into s.
        w_u = (w_hh * _gate_scale(hidden, x.dtype, x.device, (2.0, 2.0, 4.0))[:, None]).transpose(1, 2).contiguous()
        bias_h = b_hh - w_hh.sum(2)
        bias = torch.cat((b_ih[:, : 2 * hidden] + bias_h[:, : 2 * hidden], b_ih[:, 2 * hidden :]), 1)
        gates = torch.baddbmm(bias.unsqueeze(1), x.reshape(stacks, steps * batch, -1), w_ih.transpose(1, 2))
        gates = gates.view(stacks, steps, batch, 3 * hidden)
        new_gate = gates[..., 2 * hidden :] * 2
        gates[..., 2 * hidden :] = 2 * bias_h[:, None, None, 2 * hidden :]
        out = x.new_empty(stacks, steps, batch, hidden)
        step_gates, r_z = gates.unbind(1), gates[..., : 2 * hidden].unbind(1)
        r, z, hn = (gates[..., k * hidden : (k + 1) * hidden].unbind(1) for k in range(3))
        new_gates, outs = new_gate.unbind(1), out.unbind(1)
        half = x.new_tensor(0.5)
        u = torch.add(half, h0, alpha=0.5)
        with torch.inference_mode():  # skips autograd's dispatch, a fifth of these tiny ops' cost
            for t in range(steps):
                if resets_at[t]:
                    u = torch.lerp(half, u, keep[t].view(1, batch, 1))  # h * keep
                step_gates[t].baddbmm_(u, w_u)
                r_z[t].sigmoid_()
                new_gates[t].addcmul_(r[t], hn[t]).sigmoid_()
                u = torch.lerp(new_gates[t], u, z[t], out=outs[t])
        out.mul_(2).sub_(1)  # u -> h
        if any(ctx.needs_input_grad):
            ctx.save_for_backward(keep, x, h0, w_ih, w_hh, gates, new_gate, out)
            ctx.resets_at = resets_at
        ctx.set_materialize_grads(False)
        return out, out[:, -1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: torch.Tensor | None, grad_last: torch.Tensor | None) -> tuple[Any, ...]:
        keep, x, h0, w_ih, w_hh, gates, s, out = ctx.saved_tensors
        resets_at = ctx.resets_at
        need_x, need_h0, *need_weights = ctx.needs_input_grad[2:]
        stacks, steps, batch, hidden = out.shape
        shape = (stacks, steps, batch, hidden)
        r, z, hn2 = (gates[..., k * hidden : (k + 1) * hidden] for k in range(3))  # hn2 = 2 (W_hn h + b_hn)
        # the state each step started from
        h_prev = torch.cat((h0.unsqueeze(1), out[:, :-1]), dim=1, out=_SCRATCH.take("h_prev", shape, out))
        for t in (t for t, reset in enumerate(resets_at) if reset):
            h_prev[:, t] *= keep[t].view(1, batch, 1)
        # Each step's derivatives are dL/d out[t] times factors known from the forward pass, computed here for all
        # steps at once: d out[t] / d (r and z pre-activations, W_hn h + b_hn), the blocks of the step's GEMM
        # (d_gates). The loop then needs one GEMM and two elementwise ops per step:
        # dL/d out[t-1] = grad_out[t-1] + keep_t * (dL/d out[t] * z_t + d_gates_t @ W_hh).
        # With n = 2s - 1, d out / d n's pre-activation is (1 - z)(1 - n^2) = 4 e, e = s (1 - s)(1 - z). The r and
        # W_hn h blocks are kept at 1/2 and 1/4 of their value (fewer ops over all steps); W_hh's rows in the
        # loop's GEMM and the weight gradients after it take the inverse (GATE_SCALE).
        factors = _SCRATCH.take("factors", (stacks, steps, batch, 3, hidden), out)
        f_r, f_z, f_hn = factors.unbind(3)
        e, one_minus_z = _SCRATCH.take("e", shape, out), _SCRATCH.take("one_minus_z", shape, out)
        torch.sub(out.new_ones(()), z, out=one_minus_z)
        torch.addcmul(s, s, s, value=-1, out=e).mul_(one_minus_z)
        torch.mul(e, r, out=f_hn)  # (1 - z)(1 - n^2) r / 4
        torch.mul(f_hn, hn2, out=f_r).addcmul_(f_r, r, value=-1)  # (1 - z)(1 - n^2) hn r (1 - r) / 2
        torch.add(h_prev, s, alpha=-2, out=f_z).add_(1).mul_(z).mul_(one_minus_z)  # (h - n) z (1 - z)
        gate_scale = _gate_scale(hidden, out.dtype, out.device, GATE_SCALE)
        w_scaled = w_hh * gate_scale[:, None]
        grad_h = _SCRATCH.take("grad_h", shape, out)
        if grad_out is None:
            grad_h.zero_()
        else:
            grad_h.copy_(grad_out)
        if grad_last is not None:
            grad_h[:, -1] += grad_last
        # The loop turns factors into dL/d (the step GEMMs' outputs), in place.
        grad_hs, grad_blocks = grad_h.unbind(1), grad_h.unsqueeze(3).unbind(1)
        factor_steps, z_steps = factors.unbind(1), z.unbind(1)
        d_steps = factors.view(stacks, steps, batch, 3 * hidden).unbind(1)
        with torch.inference_mode():
            for t in range(steps - 1, 0, -1):
                factor_steps[t].mul_(grad_blocks[t])
                if resets_at[t]:
                    through = torch.mul(grad_hs[t], z_steps[t]).baddbmm_(d_steps[t], w_scaled)
                    grad_hs[t - 1].addcmul_(through, keep[t].view(1, batch, 1))
                else:
                    grad_hs[t - 1].addcmul_(grad_hs[t], z_steps[t]).baddbmm_(d_steps[t], w_scaled)
            factor_steps[0].mul_(grad_blocks[0])
        grad_h0 = grad_w_hh = grad_b_hh = grad_w_ih = grad_b_ih = None
        if need_h0:
            grad_h0 = torch.mul(grad_hs[0], z_steps[0]).baddbmm_(d_steps[0], w_scaled)
            if resets_at[0]:
                grad_h0 *= keep[0].view(1, batch, 1)
        need_w_ih, need_w_hh, need_b_ih, need_b_hh = (any(need_weights[k::4]) for k in range(4))
        flat = factors.view(stacks, steps * batch, 3 * hidden)  # dL/d the step GEMMs' outputs
        rows = _live_rows(grad_h)
        if need_w_hh or need_b_hh:
            live = _select(flat, rows)
            grad_w_hh = _weight_grad(live, _select(h_prev, rows)) * gate_scale[:, None] if need_w_hh else None
            grad_b_hh = live.sum(1) * gate_scale if need_b_hh else None
        # The input projection's gradient is the same but in the new gate's block, where it is dL/d n's
        # pre-activation (4 e dL/d out, kept at 1/4 like the block it replaces) rather than r times that.
        torch.mul(grad_h, e, out=f_hn)
        grad_x = torch.bmm(flat, w_ih * gate_scale[:, None]).view(stacks, steps, batch, -1) if need_x else None
        if need_w_ih or need_b_ih:
            live = _select(flat, rows)
            grad_w_ih = _weight_grad(live, _select(x, rows)) * gate_scale[:, None] if need_w_ih else None
            grad_b_ih = live.sum(1) * gate_scale if need_b_ih else None
        grads = (grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)
        per_weight = [None if g is None else g[stack] for stack in range(stacks) for g in grads]
        per_weight = [g if need else None for g, need in zip(per_weight, need_weights, strict=True)]
        return None, None, grad_x, grad_h0, *per_weight


#: the inverse of the factors the backward keeps its r and W_hn h blocks at
GATE_SCALE = (2.0, 1.0, 4.0)


@functools.lru_cache(maxsize=64)
def _gate_scale(
    hidden: int, dtype: torch.dtype, device: torch.device, blocks: tuple[float, float, float]
) -> torch.Tensor:
    """``blocks``' three numbers, each repeated over its gate block's rows."""
    return torch.tensor(blocks, dtype=dtype, device=device).repeat_interleave(hidden)


__all__ = ["DTYPES", "run_layers", "supports"]
