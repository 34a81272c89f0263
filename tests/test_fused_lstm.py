"""The fused LSTM kernel: nn.LSTM-exact outputs and gradients, native resets, float64 gradcheck, the fallbacks."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from rlgru.cores import LSTMCore
from rlgru.cores import fused_lstm as fl

needs_kernel = pytest.mark.skipif(not fl.fused_lstm_available(), reason="fused LSTM kernel could not be built here")
# Every kernel variant this CPU can run, plus PyTorch's LSTM (the fallback).
IMPLEMENTATIONS = ["fused", "generic", "torch"]
if fl.fused_lstm_available() and fl.fused_lstm_info()["isa"] == "avx512":
    IMPLEMENTATIONS.append("avx2")

F32 = {"atol": 2e-5, "rtol": 1e-4}


def weights(lstm: nn.LSTM, layer: int = 0) -> tuple[torch.Tensor, ...]:
    return tuple(getattr(lstm, f"{n}_l{layer}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))


def cell_reference(
    x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, w: tuple[torch.Tensor, ...], starts: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Step by step with torch.lstm_cell, zeroing h and c before the steps where an episode starts."""
    outputs, h, c = [], h0, c0
    for t in range(x.shape[0]):
        if starts is not None:
            keep = (1 - starts[t]).unsqueeze(-1)
            h, c = h * keep, c * keep
        h, c = torch.lstm_cell(x[t], (h, c), *w)
        outputs.append(h)
    return torch.stack(outputs), h, c


def grads(loss: torch.Tensor, tensors: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    return torch.autograd.grad(loss, tensors)


def check_against(got: tuple[torch.Tensor, ...], want: tuple[torch.Tensor, ...], tensors: list[torch.Tensor]) -> None:
    """Same outputs, and the same gradients of a random loss over (out, h_T, c_T)."""
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, **F32)
    weights_out = [torch.randn_like(w) for w in want]
    loss = sum((w * r).sum() for w, r in zip(want, weights_out, strict=True))
    expected = grads(loss, tensors)
    loss = sum((g * r).sum() for g, r in zip(got, weights_out, strict=True))
    for g, w in zip(grads(loss, tensors), expected, strict=True):
        torch.testing.assert_close(g, w, **F32)


@needs_kernel
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize(
    "shape",
    # Odd sizes hit every tail: partial SIMD lanes, leftover rows and chunks, and the unpacked (T*B < 64) as well
    # as the oneDNN-sized (41*37 rows) GEMM paths.
    [(5, 3, 4, 7), (9, 8, 16, 64), (6, 11, 5, 33), (3, 17, 12, 40), (70, 1, 3, 16), (41, 37, 33, 45)],
    ids=str,
)
def test_layer_matches_nn_lstm_outputs_state_and_gradients(implementation: str, shape: tuple[int, ...]) -> None:
    seq_len, batch, inputs, hidden = shape
    torch.manual_seed(sum(shape))
    lstm = nn.LSTM(inputs, hidden)
    x = torch.randn(seq_len, batch, inputs, requires_grad=True)
    h0 = torch.randn(batch, hidden, requires_grad=True)
    c0 = torch.randn(batch, hidden, requires_grad=True)
    expected, (h_n, c_n) = lstm(x, (h0.unsqueeze(0), c0.unsqueeze(0)))
    got = fl.lstm_layer(x, h0, c0, *weights(lstm), implementation=implementation)
    check_against(got, (expected, h_n[0], c_n[0]), [x, h0, c0, *lstm.parameters()])


@needs_kernel
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("shape", [(8, 5, 4, 9), (12, 9, 6, 48), (40, 8, 8, 32), (32, 17, 6, 64)], ids=str)
def test_resets_mid_sequence_match_a_step_by_step_reference(implementation: str, shape: tuple[int, ...]) -> None:
    seq_len, batch, inputs, hidden = shape
    torch.manual_seed(seq_len * batch)
    lstm = nn.LSTM(inputs, hidden)
    x = torch.randn(seq_len, batch, inputs, requires_grad=True)
    h0 = torch.randn(batch, hidden, requires_grad=True)
    c0 = torch.randn(batch, hidden, requires_grad=True)
    starts = (torch.rand(seq_len, batch) < 0.25).float()
    starts[0, 0] = starts[-1, -1] = 1.0
    want = cell_reference(x, h0, c0, weights(lstm), starts)
    got = fl.lstm_layer(x, h0, c0, *weights(lstm), resets=starts, implementation=implementation)
    check_against(got, want, [x, h0, c0, *lstm.parameters()])


@needs_kernel
def test_reset_zeroes_h_and_c_before_the_step_exactly() -> None:
    """A reset at (t, b) makes env b's outputs from t on independent of everything before t."""
    torch.manual_seed(3)
    lstm = nn.LSTM(3, 8)
    x = torch.randn(6, 2, 3)
    starts = torch.zeros(6, 2, dtype=torch.bool)
    starts[3, 1] = True
    out, _, _ = fl.lstm_layer(x, torch.randn(2, 8), torch.randn(2, 8), *weights(lstm), resets=starts)
    fresh, _, _ = fl.lstm_layer(x[3:, 1:], torch.zeros(1, 8), torch.zeros(1, 8), *weights(lstm))
    torch.testing.assert_close(out[3:, 1:], fresh, atol=1e-6, rtol=1e-6)


@needs_kernel
@pytest.mark.parametrize("implementation", ["fused", "generic"])
def test_gradcheck_float64_with_resets(implementation: str) -> None:
    """Float64 runs the kernel's generic code, the same gate code the SIMD kernels inline."""
    torch.manual_seed(0)
    seq_len, batch, inputs, hidden = 5, 3, 2, 4
    dt = torch.float64
    gates = 4 * hidden
    shapes = [(batch, hidden), (batch, hidden), (gates, inputs), (gates, hidden), (gates,), (gates,)]
    x = torch.randn(seq_len, batch, inputs, dtype=dt, requires_grad=True)
    params = [(torch.randn(s, dtype=dt) * 0.5).requires_grad_() for s in shapes]
    starts = torch.zeros(seq_len, batch, dtype=dt)
    starts[2, 1] = starts[3, 0] = starts[4, 2] = 1.0

    def run(*tensors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return fl.lstm_layer(*tensors, resets=starts, implementation=implementation)

    assert torch.autograd.gradcheck(run, (x, *params), eps=1e-6, atol=1e-7, rtol=1e-5)


@needs_kernel
@pytest.mark.parametrize("n_layers", [1, 2])
@pytest.mark.parametrize("with_resets", [False, True])
def test_core_matches_its_nn_lstm_with_grads(n_layers: int, with_resets: bool) -> None:
    torch.manual_seed(n_layers + 10 * with_resets)
    seq_len, batch, hidden = 11, 7, 20
    core = LSTMCore(6, hidden, n_layers)
    assert core.native_resets
    x = torch.randn(seq_len, batch, 6, requires_grad=True)
    state = torch.randn(n_layers, batch, 2 * hidden, requires_grad=True)
    starts = (torch.rand(seq_len, batch) < 0.2).float() if with_resets else None
    out, new_state = core(x, state, starts)
    # Reference: nn.LSTM one step at a time, zeroing the state where an episode starts.
    h, c = state[..., :hidden], state[..., hidden:]
    steps = []
    for t in range(seq_len):
        if starts is not None:
            keep = (1 - starts[t]).view(1, batch, 1)
            h, c = h * keep, c * keep
        step, (h, c) = core.lstm(x[t : t + 1], (h.contiguous(), c.contiguous()))
        steps.append(step)
    expected, expected_state = torch.cat(steps), torch.cat((h, c), dim=-1)
    torch.testing.assert_close(out, expected, **F32)
    torch.testing.assert_close(new_state, expected_state, **F32)
    go = torch.randn_like(out)
    tensors = [x, state, *core.parameters()]
    expected_grads = grads((expected * go).sum() + expected_state.square().sum(), tensors)
    for got, want in zip(grads((out * go).sum() + new_state.square().sum(), tensors), expected_grads, strict=True):
        torch.testing.assert_close(got, want, **F32)


@needs_kernel
def test_core_resets_match_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(5)
    core = LSTMCore(4, 12, 2)
    x = torch.randn(10, 6, 4, requires_grad=True)
    state = torch.randn(2, 6, 24)
    starts = (torch.rand(10, 6) < 0.3).float()
    out, new_state = core(x, state, starts)
    fused_grads = grads(out.square().sum() + new_state.sum(), [x, *core.parameters()])
    monkeypatch.setenv(fl.DISABLE_ENV, "1")
    assert not fl.fused_lstm_available() and not core.native_resets
    ref_out, ref_state = core(x, state, starts)
    ref_grads = grads(ref_out.square().sum() + ref_state.sum(), [x, *core.parameters()])
    torch.testing.assert_close(out, ref_out, **F32)
    torch.testing.assert_close(new_state, ref_state, **F32)
    for got, want in zip(fused_grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, **F32)


@needs_kernel
@pytest.mark.parametrize("seq_len", [1, 3])
def test_inference_is_grad_free_and_matches(seq_len: int) -> None:
    torch.manual_seed(2)
    core = LSTMCore(5, 16, 2)
    x, state = torch.randn(seq_len, 8, 5), torch.randn(2, 8, 32)
    starts = torch.zeros(seq_len, 8)
    starts[0, 0] = starts[-1, 3] = 1.0
    with torch.no_grad():
        out, new_state = core(x, state, starts)
        monkeypatch = pytest.MonkeyPatch()
        monkeypatch.setenv(fl.DISABLE_ENV, "1")
        try:
            expected, expected_state = core(x, state, starts)
        finally:
            monkeypatch.undo()
    assert not out.requires_grad and not new_state.requires_grad
    torch.testing.assert_close(out, expected, **F32)
    torch.testing.assert_close(new_state, expected_state, **F32)


@needs_kernel
def test_float64_core_and_non_contiguous_inputs() -> None:
    torch.manual_seed(4)
    core = LSTMCore(3, 10, 2).double()
    x = torch.randn(4, 7, 3, dtype=torch.float64).transpose(0, 1)  # [T=7, B=4, I=3] view
    assert not x.is_contiguous()
    state = torch.randn(2, 4, 20, dtype=torch.float64)
    out, new_state = core(x, state)
    expected, (h, c) = core.lstm(x, (state[..., :10].contiguous(), state[..., 10:].contiguous()))
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(new_state, torch.cat((h, c), dim=-1))


@needs_kernel
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_nan_propagates_like_nn_lstm(implementation: str) -> None:
    lstm = nn.LSTM(3, 20)
    with torch.no_grad():
        lstm.weight_hh_l0[5, 2] = float("nan")
    for seq_len in (1, 40):  # the unpacked and the register-tiled path
        x = torch.randn(seq_len, 4, 3)
        ones = torch.ones(4, 20)
        out, _, _ = fl.lstm_layer(x, ones, ones, *weights(lstm), implementation=implementation)
        expected, _ = lstm(x, (torch.ones(1, 4, 20), torch.ones(1, 4, 20)))
        assert torch.equal(out.isnan(), expected.isnan())


@needs_kernel
def test_bias_gradients_are_separate_tensors() -> None:
    lstm = nn.LSTM(4, 8)
    out, h, c = fl.lstm_layer(torch.randn(6, 3, 4), torch.zeros(3, 8), torch.zeros(3, 8), *weights(lstm))
    (out.sum() + c.sum()).backward()
    assert lstm.bias_ih_l0.grad.data_ptr() != lstm.bias_hh_l0.grad.data_ptr()
    torch.testing.assert_close(lstm.bias_ih_l0.grad, lstm.bias_hh_l0.grad)


def test_disable_env_forces_the_pytorch_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(fl.DISABLE_ENV, "1")
    assert not fl.fused_lstm_available()
    core = LSTMCore(3, 6, 2)
    assert not core.native_resets
    torch.manual_seed(6)
    x = torch.randn(5, 4, 3)
    starts = torch.zeros(5, 4)
    starts[2, 1] = 1
    out, _ = core(x, None, starts)
    h = c = torch.zeros(2, 4, 6)
    steps = []
    for t in range(5):
        keep = (1 - starts[t]).view(1, 4, 1)
        step, (h, c) = core.lstm(x[t : t + 1], (h * keep, c * keep))
        steps.append(step)
    torch.testing.assert_close(out, torch.cat(steps), **F32)
    # lstm_layer's own fallback agrees with the step-by-step reference too
    w = weights(core.lstm)
    got = fl.lstm_layer(x, torch.ones(4, 6), torch.ones(4, 6), *w, resets=starts)
    want = cell_reference(x, torch.ones(4, 6), torch.ones(4, 6), w, starts)
    for g, e in zip(got, want, strict=True):
        torch.testing.assert_close(g, e, **F32)


def test_build_failure_warns_once_and_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(verbose: bool) -> None:
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(fl.KERNEL, "build_and_load", broken)
    for key, value in {"done": False, "ok": False, "error": None}.items():
        monkeypatch.setitem(fl.KERNEL.state, key, value)
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler"):
        assert not fl.fused_lstm_available()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        core = LSTMCore(2, 4)
        assert not core.native_resets
        x = torch.randn(3, 2, 2)
        torch.testing.assert_close(core(x)[0], core.lstm(x)[0])
        with pytest.raises(RuntimeError, match="unavailable"):
            fl.lstm_layer(x, torch.zeros(2, 4), torch.zeros(2, 4), *weights(core.lstm), implementation="fused")


def test_bad_implementation_name() -> None:
    lstm = nn.LSTM(2, 3)
    with pytest.raises(ValueError, match="implementation"):
        fl.lstm_layer(torch.randn(2, 1, 2), torch.zeros(1, 3), torch.zeros(1, 3), *weights(lstm), implementation="x")
