"""The fused GRU kernel: nn.GRU-exact outputs and gradients, native resets, float64 gradcheck, the fallbacks."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from rlgru.cores import GRUCore
from rlgru.cores import fused_gru as fg

needs_kernel = pytest.mark.skipif(not fg.fused_gru_available(), reason="fused GRU kernel could not be built here")
# Every kernel variant this CPU can run, plus PyTorch's GRU (the fallback).
IMPLEMENTATIONS = ["fused", "generic", "torch"]
if fg.fused_gru_available() and fg.fused_gru_info()["isa"] == "avx512":
    IMPLEMENTATIONS.append("avx2")

F32 = {"atol": 2e-5, "rtol": 1e-4}


def weights(gru: nn.GRU, layer: int = 0) -> tuple[torch.Tensor, ...]:
    return tuple(getattr(gru, f"{n}_l{layer}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))


def cell_reference(x: torch.Tensor, h0: torch.Tensor, w: tuple[torch.Tensor, ...], starts: torch.Tensor | None):
    """Step by step with torch.gru_cell, zeroing h before the steps where an episode starts."""
    outputs, h = [], h0
    for t in range(x.shape[0]):
        if starts is not None:
            h = h * (1 - starts[t]).unsqueeze(-1)
        h = torch.gru_cell(x[t], h, *w)
        outputs.append(h)
    return torch.stack(outputs), h


def grads(loss: torch.Tensor, tensors: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    return torch.autograd.grad(loss, tensors)


@needs_kernel
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize(
    "shape",
    # Odd sizes hit every tail: partial SIMD lanes, leftover rows and chunks, untransposable edges, and the
    # unpacked (T*B < 64) as well as the oneDNN-sized (41*37 rows) GEMM paths.
    [(5, 3, 4, 7), (9, 8, 16, 64), (6, 11, 5, 33), (3, 17, 12, 40), (70, 1, 3, 16), (4, 20, 8, 24), (41, 37, 33, 45)],
    ids=str,
)
def test_layer_matches_nn_gru_outputs_and_gradients(implementation: str, shape: tuple[int, ...]) -> None:
    seq_len, batch, inputs, hidden = shape
    torch.manual_seed(sum(shape))
    gru = nn.GRU(inputs, hidden)
    x = torch.randn(seq_len, batch, inputs, requires_grad=True)
    h0 = torch.randn(batch, hidden, requires_grad=True)
    expected, expected_h = gru(x, h0.unsqueeze(0))
    out, h = fg.gru_layer(x, h0, *weights(gru), implementation=implementation)
    torch.testing.assert_close(out, expected, **F32)
    torch.testing.assert_close(h, expected_h[0], **F32)
    go, gh = torch.randn_like(out), torch.randn_like(h)
    tensors = [x, h0, *gru.parameters()]
    expected_grads = grads((expected * go).sum() + (expected_h[0] * gh).sum(), tensors)
    for got, want in zip(grads((out * go).sum() + (h * gh).sum(), tensors), expected_grads, strict=True):
        torch.testing.assert_close(got, want, **F32)


@needs_kernel
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("shape", [(8, 5, 4, 9), (12, 9, 6, 48), (40, 8, 8, 32)], ids=str)
def test_resets_mid_sequence_match_a_step_by_step_reference(implementation: str, shape: tuple[int, ...]) -> None:
    seq_len, batch, inputs, hidden = shape
    torch.manual_seed(seq_len * batch)
    gru = nn.GRU(inputs, hidden)
    x = torch.randn(seq_len, batch, inputs, requires_grad=True)
    h0 = torch.randn(batch, hidden, requires_grad=True)
    starts = (torch.rand(seq_len, batch) < 0.25).float()
    starts[0, 0] = 1.0
    expected, expected_h = cell_reference(x, h0, weights(gru), starts)
    out, h = fg.gru_layer(x, h0, *weights(gru), resets=starts, implementation=implementation)
    torch.testing.assert_close(out, expected, **F32)
    torch.testing.assert_close(h, expected_h, **F32)
    go, gh = torch.randn_like(out), torch.randn_like(h)
    tensors = [x, h0, *gru.parameters()]
    expected_grads = grads((expected * go).sum() + (expected_h * gh).sum(), tensors)
    for got, want in zip(grads((out * go).sum() + (h * gh).sum(), tensors), expected_grads, strict=True):
        torch.testing.assert_close(got, want, **F32)


@needs_kernel
def test_reset_zeroes_state_before_the_step_exactly() -> None:
    """A reset at (t, b) makes env b's output from t on independent of everything before t."""
    torch.manual_seed(3)
    gru = nn.GRU(3, 8)
    x = torch.randn(6, 2, 3)
    starts = torch.zeros(6, 2, dtype=torch.bool)
    starts[3, 1] = True
    out, _ = fg.gru_layer(x, torch.randn(2, 8), *weights(gru), resets=starts)
    fresh, _ = fg.gru_layer(x[3:, 1:], torch.zeros(1, 8), *weights(gru))
    torch.testing.assert_close(out[3:, 1:], fresh, atol=1e-6, rtol=1e-6)


@needs_kernel
@pytest.mark.parametrize("implementation", ["fused", "generic"])
def test_gradcheck_float64(implementation: str) -> None:
    """Float64 runs the kernel's generic code, the same gate code the SIMD kernels inline."""
    torch.manual_seed(0)
    seq_len, batch, inputs, hidden = 5, 3, 2, 4
    dt = torch.float64
    x = torch.randn(seq_len, batch, inputs, dtype=dt, requires_grad=True)
    h0 = torch.randn(batch, hidden, dtype=dt, requires_grad=True)
    params = [
        torch.randn(s, dtype=dt, requires_grad=True) * 0.5
        for s in [(3 * hidden, inputs), (3 * hidden, hidden), (3 * hidden,), (3 * hidden,)]
    ]
    params = [p.detach().requires_grad_() for p in params]
    starts = torch.zeros(seq_len, batch, dtype=dt)
    starts[2, 1] = starts[3, 0] = 1.0

    def run(*tensors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return fg.gru_layer(*tensors, resets=starts, implementation=implementation)

    assert torch.autograd.gradcheck(run, (x, h0, *params), eps=1e-6, atol=1e-7, rtol=1e-5)


@needs_kernel
@pytest.mark.parametrize("n_layers", [1, 3])
def test_core_matches_its_nn_gru_with_grads(n_layers: int) -> None:
    torch.manual_seed(n_layers)
    core = GRUCore(6, 20, n_layers)
    x = torch.randn(11, 7, 6, requires_grad=True)
    state = torch.randn(n_layers, 7, 20, requires_grad=True)
    out, new_state = core(x, state)
    expected, expected_state = core.gru(x, state)
    torch.testing.assert_close(out, expected, **F32)
    torch.testing.assert_close(new_state, expected_state, **F32)
    go = torch.randn_like(out)
    tensors = [x, state, *core.parameters()]
    expected_grads = grads((expected * go).sum() + expected_state.sum(), tensors)
    for got, want in zip(grads((out * go).sum() + new_state.sum(), tensors), expected_grads, strict=True):
        torch.testing.assert_close(got, want, **F32)


@needs_kernel
def test_core_resets_in_every_layer_and_match_the_fallback() -> None:
    torch.manual_seed(5)
    core = GRUCore(4, 12, 2)
    x = torch.randn(10, 6, 4, requires_grad=True)
    state = torch.randn(2, 6, 12)
    starts = (torch.rand(10, 6) < 0.3).float()
    out, new_state = core(x, state, starts)
    loss = out.square().sum() + new_state.sum()
    fused_grads = grads(loss, [x, *core.parameters()])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(fg.DISABLE_ENV, "1")
        assert not fg.fused_gru_available()
        ref_out, ref_state = core(x, state, starts)
        ref_grads = grads(ref_out.square().sum() + ref_state.sum(), [x, *core.parameters()])
    torch.testing.assert_close(out, ref_out, **F32)
    torch.testing.assert_close(new_state, ref_state, **F32)
    for got, want in zip(fused_grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, **F32)


@needs_kernel
def test_single_step_inference_is_grad_free_and_matches() -> None:
    torch.manual_seed(2)
    core = GRUCore(5, 16, 2)
    x, state = torch.randn(1, 8, 5), torch.randn(2, 8, 16)
    starts = torch.tensor([[1.0, 0, 0, 1, 0, 0, 0, 0]])
    with torch.no_grad():
        out, new_state = core(x, state, starts)
    assert not out.requires_grad and not new_state.requires_grad
    expected, expected_state = core.gru(x, state * (1 - starts).view(1, 8, 1))
    torch.testing.assert_close(out, expected, **F32)
    torch.testing.assert_close(new_state, expected_state, **F32)


@needs_kernel
def test_float64_core_and_non_contiguous_inputs() -> None:
    torch.manual_seed(4)
    core = GRUCore(3, 10, 2).double()
    x = torch.randn(4, 7, 3, dtype=torch.float64).transpose(0, 1)  # [T=7, B=4, I=3] view
    assert not x.is_contiguous()
    state = torch.randn(2, 4, 10, dtype=torch.float64)
    out, new_state = core(x, state)
    expected, expected_state = core.gru(x, state)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(new_state, expected_state)


@needs_kernel
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_nan_propagates_like_nn_gru(implementation: str) -> None:
    """The kernel's own exp must not clamp a NaN into a finite gate value (it would hide divergence)."""
    gru = nn.GRU(3, 20)
    with torch.no_grad():
        gru.weight_hh_l0[5, 2] = float("nan")
    for seq_len in (1, 40):  # the unpacked and the register-tiled path
        x = torch.randn(seq_len, 4, 3)
        out, _ = fg.gru_layer(x, torch.ones(4, 20), *weights(gru), implementation=implementation)
        expected, _ = gru(x, torch.ones(1, 4, 20))
        assert torch.equal(out.isnan(), expected.isnan())


@needs_kernel
def test_buffer_pool_release_keeps_live_tensors() -> None:
    torch.manual_seed(8)
    gru = nn.GRU(16, 64)
    x = torch.randn(40, 16, 16)
    first, _ = fg.gru_layer(x, torch.zeros(16, 64), *weights(gru))
    kept = first.clone()
    fg.release_cached_memory()
    torch.testing.assert_close(first, kept, rtol=0, atol=0)
    del first
    fg.release_cached_memory()
    again, _ = fg.gru_layer(x, torch.zeros(16, 64), *weights(gru))
    torch.testing.assert_close(again, kept, rtol=0, atol=0)


def test_layer_weights_shortcut_follows_the_parameters() -> None:
    core = GRUCore(3, 5, 2)
    assert all(
        a is b for layer in range(2) for a, b in zip(core.layers()[layer], core.layer_weights(layer), strict=True)
    )
    core = core.double()
    assert all(
        a is b for layer in range(2) for a, b in zip(core.layers()[layer], core.layer_weights(layer), strict=True)
    )


def test_disable_env_forces_the_pytorch_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(fg.DISABLE_ENV, "1")
    assert not fg.fused_gru_available()
    torch.manual_seed(6)
    core = GRUCore(3, 6, 2)
    x = torch.randn(5, 4, 3)
    starts = torch.zeros(5, 4)
    starts[2, 1] = 1
    out, _ = core(x, None, starts)
    h = torch.zeros(2, 4, 6)
    steps = []
    for t in range(5):
        step, h = core.gru(x[t : t + 1], h * (1 - starts[t]).view(1, 4, 1))
        steps.append(step)
    torch.testing.assert_close(out, torch.cat(steps), **F32)


def test_build_failure_warns_once_and_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(verbose: bool) -> None:
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(fg.KERNEL, "build_and_load", broken)
    for key, value in {"done": False, "ok": False, "error": None}.items():
        monkeypatch.setitem(fg.KERNEL.state, key, value)
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler"):
        assert not fg.fused_gru_available()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not fg.fused_gru_available()
        core = GRUCore(2, 4)
        x = torch.randn(3, 2, 2)
        torch.testing.assert_close(core(x)[0], core.gru(x)[0])
        with pytest.raises(RuntimeError, match="unavailable"):
            fg.gru_layer(x, torch.zeros(2, 4), *weights(core.gru), implementation="fused")


def test_bad_implementation_name() -> None:
    gru = nn.GRU(2, 3)
    with pytest.raises(ValueError, match="implementation"):
        fg.gru_layer(torch.randn(2, 1, 2), torch.zeros(1, 3), *weights(gru), implementation="cuda")
