"""The fused GRU and LSTM kernels: nn.GRU / nn.LSTM-exact outputs and gradients, native resets, float64 gradcheck,
dropout between stacked layers, the fallbacks. Every test runs for both cells unless it is about one cell only."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import pytest
import torch
from torch import nn

from rlgru.cores import fused_gru as fg
from rlgru.cores import fused_lstm as fl
from rlgru.cores.fused import FusedCell
from rlgru.cores.gru import GRUCore
from rlgru.cores.lstm import LSTMCore

F32 = {"atol": 2e-5, "rtol": 1e-4}
Tensors = tuple[torch.Tensor, ...]


@dataclass(frozen=True)
class Cell:
    """One fused kernel as these tests drive it."""

    name: str
    module: ModuleType  # fused_gru / fused_lstm
    fused: FusedCell  # its kernel and glue: fused_gru.GRU / fused_lstm.LSTM
    n_gates: int
    rnn: type[nn.RNNBase]
    core: type  # GRUCore / LSTMCore
    n_states: int  # h (GRU); h and c (LSTM)
    torch_cell: Callable[..., torch.Tensor | Tensors]  # torch.gru_cell / torch.lstm_cell

    def available(self) -> bool:
        return self.module.available()

    def layer(self, x: torch.Tensor, states: Tensors, w: Tensors, **kwargs: object) -> Tensors:
        """``gru_layer`` / ``lstm_layer``: ``(out, *last states)``."""
        fn = fg.gru_layer if self.n_states == 1 else fl.lstm_layer
        return fn(x, *states, *w, **kwargs)

    def run_module(self, rnn: nn.RNNBase, x: torch.Tensor, state: torch.Tensor) -> Tensors:
        """nn.GRU / nn.LSTM on a core-layout state ``[L, B, n_states * H]``: ``(out, state)``."""
        if self.n_states == 1:
            return rnn(x, state.contiguous())
        h, c = state.chunk(2, dim=-1)
        out, (h, c) = rnn(x, (h.contiguous(), c.contiguous()))
        return out, torch.cat((h, c), dim=-1)

    def module_steps(
        self, rnn: nn.RNNBase, x: torch.Tensor, state: torch.Tensor, starts: torch.Tensor | None
    ) -> Tensors:
        """The module one step at a time, zeroing the state where an episode starts."""
        steps = []
        for t in range(x.shape[0]):
            if starts is not None:
                state = state * (1 - starts[t]).view(1, -1, 1)
            out, state = self.run_module(rnn, x[t : t + 1], state)
            steps.append(out)
        return torch.cat(steps), state

    def cell_reference(self, x: torch.Tensor, states: Tensors, w: Tensors, starts: torch.Tensor | None) -> Tensors:
        """Step by step with torch.gru_cell / lstm_cell, zeroing the states before the steps where episodes start."""
        outputs, states = [], tuple(states)
        for t in range(x.shape[0]):
            if starts is not None:
                keep = (1 - starts[t]).unsqueeze(-1)
                states = tuple(s * keep for s in states)
            new = self.torch_cell(x[t], states[0] if self.n_states == 1 else states, *w)
            states = (new,) if self.n_states == 1 else tuple(new)
            outputs.append(states[0])
        return (torch.stack(outputs), *states)


GRU = Cell("gru", fg, fg.GRU, 3, nn.GRU, GRUCore, 1, torch.gru_cell)
LSTM = Cell("lstm", fl, fl.LSTM, 4, nn.LSTM, LSTMCore, 2, torch.lstm_cell)
CELLS = [GRU, LSTM]
# Every kernel variant this CPU can run, plus PyTorch's own cell (the fallback).
IMPLEMENTATIONS = ["fused", "generic", "torch"]
if fg.fused_gru_available() and fg.fused_gru_info()["isa"] == "avx512":
    IMPLEMENTATIONS.append("avx2")


@pytest.fixture(params=CELLS, ids=lambda c: c.name)
def cell(request: pytest.FixtureRequest) -> Cell:
    """A cell whose kernel is built (tests of the kernel)."""
    if not request.param.available():
        pytest.skip(f"fused {request.param.name} kernel could not be built here")
    return request.param


@pytest.fixture(params=CELLS, ids=lambda c: c.name)
def any_cell(request: pytest.FixtureRequest) -> Cell:
    """A cell, kernel or not (tests of the fallbacks)."""
    return request.param


def weights(rnn: nn.RNNBase, layer: int = 0) -> Tensors:
    return tuple(getattr(rnn, f"{n}_l{layer}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))


def grads(loss: torch.Tensor, tensors: list[torch.Tensor]) -> Tensors:
    return torch.autograd.grad(loss, tensors)


def check_against(got: Tensors, want: Tensors, tensors: list[torch.Tensor], **tol: float) -> None:
    """Same outputs, and the same gradients of a random loss over all of them."""
    tol = tol or F32
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, **tol)
    weights_out = [torch.randn_like(w) for w in want]
    expected = grads(sum((w * r).sum() for w, r in zip(want, weights_out, strict=True)), tensors)
    loss = sum((g * r).sum() for g, r in zip(got, weights_out, strict=True))
    for g, w in zip(grads(loss, tensors), expected, strict=True):
        torch.testing.assert_close(g, w, **tol)


def random_states(cell: Cell, batch: int, hidden: int, **kwargs: object) -> Tensors:
    return tuple(torch.randn(batch, hidden, **kwargs) for _ in range(cell.n_states))


# ------------------------------------------------------------------------------------------------ one layer
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize(
    "shape",
    # Odd sizes hit every tail: partial SIMD lanes, leftover rows and chunks, untransposable edges, and the
    # unpacked (T*B < 64) as well as the oneDNN-sized (41*37 rows) GEMM paths.
    [(5, 3, 4, 7), (9, 8, 16, 64), (6, 11, 5, 33), (3, 17, 12, 40), (70, 1, 3, 16), (4, 20, 8, 24), (41, 37, 33, 45)],
    ids=str,
)
def test_layer_matches_the_module_outputs_states_and_gradients(
    cell: Cell, implementation: str, shape: tuple[int, ...]
) -> None:
    seq_len, batch, inputs, hidden = shape
    torch.manual_seed(sum(shape))
    rnn = cell.rnn(inputs, hidden)
    x = torch.randn(seq_len, batch, inputs, requires_grad=True)
    states = random_states(cell, batch, hidden, requires_grad=True)
    expected, last = cell.run_module(rnn, x, torch.cat(states, dim=-1).unsqueeze(0))
    got = cell.layer(x, states, weights(rnn), implementation=implementation)
    check_against(got, (expected, *last[0].chunk(cell.n_states, dim=-1)), [x, *states, *rnn.parameters()])


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("shape", [(8, 5, 4, 9), (12, 9, 6, 48), (40, 8, 8, 32), (32, 17, 6, 64)], ids=str)
def test_resets_mid_sequence_match_a_step_by_step_reference(
    cell: Cell, implementation: str, shape: tuple[int, ...]
) -> None:
    seq_len, batch, inputs, hidden = shape
    torch.manual_seed(seq_len * batch)
    rnn = cell.rnn(inputs, hidden)
    x = torch.randn(seq_len, batch, inputs, requires_grad=True)
    states = random_states(cell, batch, hidden, requires_grad=True)
    starts = (torch.rand(seq_len, batch) < 0.25).float()
    starts[0, 0] = starts[-1, -1] = 1.0
    want = cell.cell_reference(x, states, weights(rnn), starts)
    got = cell.layer(x, states, weights(rnn), resets=starts, implementation=implementation)
    check_against(got, want, [x, *states, *rnn.parameters()])


def test_reset_zeroes_the_state_before_the_step_exactly(cell: Cell) -> None:
    """A reset at (t, b) makes env b's outputs from t on independent of everything before t."""
    torch.manual_seed(3)
    rnn = cell.rnn(3, 8)
    x = torch.randn(6, 2, 3)
    starts = torch.zeros(6, 2, dtype=torch.bool)
    starts[3, 1] = True
    out = cell.layer(x, random_states(cell, 2, 8), weights(rnn), resets=starts)[0]
    fresh = cell.layer(x[3:, 1:], tuple(torch.zeros(1, 8) for _ in range(cell.n_states)), weights(rnn))[0]
    torch.testing.assert_close(out[3:, 1:], fresh, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("implementation", ["fused", "generic"])
def test_gradcheck_float64_with_resets(cell: Cell, implementation: str) -> None:
    """Float64 runs the kernel's generic code, the same gate code the SIMD kernels inline."""
    torch.manual_seed(0)
    seq_len, batch, inputs, hidden = 5, 3, 2, 4
    dt = torch.float64
    gates = cell.n_gates * hidden
    x = torch.randn(seq_len, batch, inputs, dtype=dt, requires_grad=True)
    shapes = [*[(batch, hidden)] * cell.n_states, (gates, inputs), (gates, hidden), (gates,), (gates,)]
    params = [(torch.randn(s, dtype=dt) * 0.5).requires_grad_() for s in shapes]
    starts = torch.zeros(seq_len, batch, dtype=dt)
    starts[2, 1] = starts[3, 0] = starts[4, 2] = 1.0

    def run(x: torch.Tensor, *tensors: torch.Tensor) -> Tensors:
        states, w = tensors[: cell.n_states], tensors[cell.n_states :]
        return cell.layer(x, states, w, resets=starts, implementation=implementation)

    assert torch.autograd.gradcheck(run, (x, *params), eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_nan_propagates_like_the_module(cell: Cell, implementation: str) -> None:
    """The kernel's own exp must not clamp a NaN into a finite gate value (it would hide divergence)."""
    rnn = cell.rnn(3, 20)
    with torch.no_grad():
        rnn.weight_hh_l0[5, 2] = float("nan")
    for seq_len in (1, 40):  # the unpacked and the register-tiled path
        x = torch.randn(seq_len, 4, 3)
        ones = tuple(torch.ones(4, 20) for _ in range(cell.n_states))
        out = cell.layer(x, ones, weights(rnn), implementation=implementation)[0]
        expected, _ = cell.run_module(rnn, x, torch.ones(1, 4, 20 * cell.n_states))
        assert torch.equal(out.isnan(), expected.isnan())


def test_buffer_pool_release_keeps_live_tensors(cell: Cell) -> None:
    torch.manual_seed(8)
    rnn = cell.rnn(16, 64)
    x = torch.randn(40, 16, 16)
    zeros = tuple(torch.zeros(16, 64) for _ in range(cell.n_states))
    first = cell.layer(x, zeros, weights(rnn))[0]
    kept = first.clone()
    cell.module.release_cached_memory()
    torch.testing.assert_close(first, kept, rtol=0, atol=0)
    del first
    cell.module.release_cached_memory()
    again = cell.layer(x, zeros, weights(rnn))[0]
    torch.testing.assert_close(again, kept, rtol=0, atol=0)


def test_lstm_bias_gradients_are_separate_tensors() -> None:
    """The LSTM kernel sums its biases, so both get one gradient; autograd still gets two tensors."""
    if not LSTM.available():
        pytest.skip("fused LSTM kernel could not be built here")
    lstm = nn.LSTM(4, 8)
    out, h, c = fl.lstm_layer(torch.randn(6, 3, 4), torch.zeros(3, 8), torch.zeros(3, 8), *weights(lstm))
    (out.sum() + c.sum()).backward()
    assert lstm.bias_ih_l0.grad.data_ptr() != lstm.bias_hh_l0.grad.data_ptr()
    torch.testing.assert_close(lstm.bias_ih_l0.grad, lstm.bias_hh_l0.grad)


def test_bad_implementation_name(any_cell: Cell) -> None:
    rnn = any_cell.rnn(2, 3)
    with pytest.raises(ValueError, match="implementation"):
        any_cell.layer(torch.randn(2, 1, 2), tuple(torch.zeros(1, 3) for _ in range(any_cell.n_states)),
                       weights(rnn), implementation="cuda")


# ------------------------------------------------------------------------------------------ stacked layers
def stacked(cell: Cell, n_layers: int, seq_len: int, batch: int, hidden: int, seed: int) -> tuple:
    torch.manual_seed(seed)
    rnn = cell.rnn(hidden, hidden, num_layers=n_layers)
    x = torch.randn(seq_len, batch, hidden, requires_grad=True)
    state = torch.randn(n_layers, batch, cell.n_states * hidden)
    return rnn, x, state, [weights(rnn, layer) for layer in range(n_layers)]


def test_run_layers_without_dropout_is_the_plain_stack(cell: Cell) -> None:
    """dropout=0 changes nothing: bit for bit the layers chained by hand, with and without resets."""
    rnn, x, state, layers = stacked(cell, 3, 9, 6, 16, seed=1)
    keep = 1 - (torch.rand(9, 6) < 0.2).float()
    for k in (None, keep):
        out, final = cell.module.run_layers(x, state, layers, k, dropout=0.0)
        default_out, default_final = cell.module.run_layers(x, state, layers, k)
        layer_input, finals = x, []
        for layer, w in enumerate(layers):
            layer_input, *last = cell.layer(layer_input, state[layer].chunk(cell.n_states, dim=-1), w,
                                            resets=None if k is None else 1 - k)
            finals.append(torch.cat(last, dim=-1))
        for got in (out, default_out):
            assert torch.equal(got, layer_input)
        for got in (final, default_final):
            assert torch.equal(got, torch.stack(finals))


def test_run_layers_drops_out_between_layers_only(cell: Cell, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each layer but the first gets the previous layer's output with about p of it zeroed and the rest scaled by
    1 / (1 - p); the last layer's output and every final state are not dropped."""
    p = 0.4
    rnn, x, state, layers = stacked(cell, 3, 20, 16, 32, seed=2)
    keep = 1 - (torch.rand(20, 16) < 0.1).float()
    calls = []
    original = cell.fused.fused_layer

    def spy(layer_input: torch.Tensor, *args: object) -> Tensors:
        result = original(layer_input, *args)
        calls.append((layer_input, result))
        return result

    monkeypatch.setattr(cell.fused, "fused_layer", spy)
    out, final = cell.module.run_layers(x, state, layers, keep, dropout=p)
    plain_out, _ = cell.module.run_layers(x, state, layers, keep)
    assert len(calls) == 6 and calls[0][0] is x
    assert not torch.allclose(out, plain_out)
    for (layer_input, _), (_, (previous_out, _, _)) in zip(calls[1:3], calls[0:2], strict=True):
        dropped = layer_input == 0
        assert abs(dropped.float().mean().item() - p) < 0.05
        assert not (previous_out == 0).any()
        torch.testing.assert_close(layer_input[~dropped], previous_out[~dropped] / (1 - p))
    assert torch.equal(out, calls[2][1][0])
    finals = [torch.cat([s for s in result[1:] if s is not None], dim=-1) for _, result in calls[:3]]
    assert torch.equal(final, torch.stack(finals))
    out.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_run_layers_dropout_is_the_module_s(cell: Cell) -> None:
    """Under one seed, the kernel's stacked layers draw nn.GRU / nn.LSTM's dropout masks: the same outputs."""
    rnn, x, state, layers = stacked(cell, 3, 12, 5, 16, seed=3)
    rnn.dropout = 0.3
    torch.manual_seed(7)
    out, final = cell.module.run_layers(x, state, layers, None, dropout=0.3)
    torch.manual_seed(7)
    expected, expected_final = cell.run_module(rnn.train(), x, state)
    torch.testing.assert_close(out, expected, **F32)
    torch.testing.assert_close(final, expected_final, **F32)


# ------------------------------------------------------------------------------------------------- cores
@pytest.mark.parametrize("n_layers", [1, 3])
@pytest.mark.parametrize("with_resets", [False, True])
def test_core_matches_its_module_with_grads(cell: Cell, n_layers: int, with_resets: bool) -> None:
    torch.manual_seed(n_layers + 10 * with_resets)
    seq_len, batch, hidden = 11, 7, 20
    core = cell.core(6, hidden, n_layers)
    assert core.resets_natively("cpu")
    x = torch.randn(seq_len, batch, 6, requires_grad=True)
    state = torch.randn(n_layers, batch, cell.n_states * hidden, requires_grad=True)
    starts = (torch.rand(seq_len, batch) < 0.2).float() if with_resets else None
    out, new_state = core(x, state, starts)
    if starts is None:
        expected, expected_state = cell.run_module(core.rnn, x, state)
    else:
        expected, expected_state = cell.module_steps(core.rnn, x, state, starts)
    torch.testing.assert_close(out, expected, **F32)
    torch.testing.assert_close(new_state, expected_state, **F32)
    go = torch.randn_like(out)
    tensors = [x, state, *core.parameters()]
    expected_grads = grads((expected * go).sum() + expected_state.square().sum(), tensors)
    for got, want in zip(grads((out * go).sum() + new_state.square().sum(), tensors), expected_grads, strict=True):
        torch.testing.assert_close(got, want, **F32)


def test_core_resets_in_every_layer_match_the_fallback(cell: Cell, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(5)
    core = cell.core(4, 12, 2)
    x = torch.randn(10, 6, 4, requires_grad=True)
    state = torch.randn(2, 6, cell.n_states * 12)
    starts = (torch.rand(10, 6) < 0.3).float()
    out, new_state = core(x, state, starts)
    fused_grads = grads(out.square().sum() + new_state.sum(), [x, *core.parameters()])
    monkeypatch.setenv(cell.module.DISABLE_ENV, "1")
    assert not cell.module.available() and not core.resets_natively("cpu")
    ref_out, ref_state = core(x, state, starts)
    ref_grads = grads(ref_out.square().sum() + ref_state.sum(), [x, *core.parameters()])
    torch.testing.assert_close(out, ref_out, **F32)
    torch.testing.assert_close(new_state, ref_state, **F32)
    for got, want in zip(fused_grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, **F32)


@pytest.mark.parametrize("seq_len", [1, 3])
def test_inference_is_grad_free_and_matches(cell: Cell, seq_len: int) -> None:
    torch.manual_seed(2)
    core = cell.core(5, 16, 2)
    x, state = torch.randn(seq_len, 8, 5), torch.randn(2, 8, cell.n_states * 16)
    starts = torch.zeros(seq_len, 8)
    starts[0, 0] = starts[-1, 3] = 1.0
    with torch.no_grad():
        out, new_state = core(x, state, starts)
        expected, expected_state = cell.module_steps(core.rnn, x, state, starts)
    assert not out.requires_grad and not new_state.requires_grad
    torch.testing.assert_close(out, expected, **F32)
    torch.testing.assert_close(new_state, expected_state, **F32)


def test_rollout_steps_see_every_weight_change(cell: Cell) -> None:
    """Small steps reuse packed weights while the weights stay the same: any change, even through ``.data`` (which
    bypasses version counters) or in a copy at the same shape, must be seen at the next step."""
    torch.manual_seed(3)
    core = cell.core(3, 16, 1)
    x, state = torch.randn(1, 4, 3), torch.randn(1, 4, cell.n_states * 16)
    w_hh = core.rnn.weight_hh_l0
    with torch.no_grad():
        for change in (lambda: w_hh.data.mul_(1.5), lambda: w_hh.add_(0.1), lambda: None):
            core(x, state)  # fills the cache with the current weights
            change()
            out, new_state = core(x, state)
            expected, expected_state = cell.module_steps(core.rnn, x, state, torch.zeros(1, 4))
            torch.testing.assert_close(out, expected, **F32)
            torch.testing.assert_close(new_state, expected_state, **F32)


def test_pair_matches_two_separate_calls_with_grads(cell: Cell) -> None:
    """Actor and critic cores in one call (``forward_beside``): the outputs, states and gradients of two calls,
    also with one shared input, resets and two layers."""
    torch.manual_seed(5)
    actor, critic = cell.core(6, 12, 2), cell.core(6, 12, 2)
    x = torch.randn(9, 5, 6, requires_grad=True)
    states = (torch.randn(2, 5, cell.n_states * 12), torch.randn(2, 5, cell.n_states * 12))
    starts = (torch.rand(9, 5) < 0.2).float()
    (out_a, s_a), (out_b, s_b) = actor.forward_beside(critic, (x, x), states, starts)
    (ref_a, ref_sa), (ref_b, ref_sb) = actor(x, states[0], starts), critic(x, states[1], starts)
    params = [x, *actor.parameters(), *critic.parameters()]
    check_against((out_a, s_a, out_b, s_b), (ref_a, ref_sa, ref_b, ref_sb), params)


def test_pair_reports_an_error_from_either_side_without_hanging(cell: Cell) -> None:
    """Big enough for the second cell to be offered to another thread: a bad input on either side is an error."""
    torch.manual_seed(6)
    core = cell.core(4, 8, 1)
    good = [torch.randn(16, 8, 4), torch.zeros(8, 8), *([torch.zeros(8, 8)] if cell.n_states == 2 else [None])]
    weights = list(core.layers()[0])
    bad = [*weights[:1], torch.zeros(3, 3), *weights[2:]]
    with torch.no_grad():
        for a, b in ((bad, weights), (weights, bad)):
            with pytest.raises(RuntimeError, match=f"fused {cell.name.upper()}"):
                cell.module.KERNEL.ops.forward_pair([*good, *a], [*good, *b], None, False, 0)


def test_float64_core_and_non_contiguous_inputs(cell: Cell) -> None:
    torch.manual_seed(4)
    core = cell.core(3, 10, 2).double()
    x = torch.randn(4, 7, 3, dtype=torch.float64).transpose(0, 1)  # [T=7, B=4, I=3] view
    assert not x.is_contiguous()
    state = torch.randn(2, 4, cell.n_states * 10, dtype=torch.float64)
    out, new_state = core(x, state)
    expected, expected_state = cell.run_module(core.rnn, x, state)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(new_state, expected_state)


def test_layer_weights_shortcut_follows_the_parameters(any_cell: Cell) -> None:
    core = any_cell.core(3, 5, 2)
    assert all(
        a is b for layer in range(2) for a, b in zip(core.layers()[layer], core.layer_weights(layer), strict=True)
    )
    core = core.double()
    assert all(
        a is b for layer in range(2) for a, b in zip(core.layers()[layer], core.layer_weights(layer), strict=True)
    )


# ---------------------------------------------------------------------------------------------- fallbacks
def test_disable_env_forces_the_pytorch_fallback(any_cell: Cell, monkeypatch: pytest.MonkeyPatch) -> None:
    cell = any_cell
    monkeypatch.setenv(cell.module.DISABLE_ENV, "1")
    assert not cell.module.available()
    torch.manual_seed(6)
    core = cell.core(3, 6, 2)
    assert not core.resets_natively("cpu")
    x = torch.randn(5, 4, 3)
    starts = torch.zeros(5, 4)
    starts[2, 1] = 1
    out, _ = core(x, None, starts)
    expected, _ = cell.module_steps(core.rnn, x, torch.zeros(2, 4, cell.n_states * 6), starts)
    torch.testing.assert_close(out, expected, **F32)
    # the layer function's own fallback agrees with the step-by-step reference too
    w = weights(core.rnn)
    ones = tuple(torch.ones(4, 6) for _ in range(cell.n_states))
    for got, want in zip(cell.layer(x, ones, w, resets=starts), cell.cell_reference(x, ones, w, starts), strict=True):
        torch.testing.assert_close(got, want, **F32)


def test_build_failure_warns_once_and_falls_back(any_cell: Cell, monkeypatch: pytest.MonkeyPatch) -> None:
    cell = any_cell

    def broken(verbose: bool) -> None:
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(cell.module.KERNEL, "build_and_load", broken)
    for key, value in {"done": False, "ok": False, "error": None}.items():
        monkeypatch.setitem(cell.module.KERNEL.state, key, value)
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler"):
        assert not cell.module.available()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not cell.module.available()
        core = cell.core(2, 4)
        assert not core.resets_natively("cpu")
        x = torch.randn(3, 2, 2)
        torch.testing.assert_close(core(x)[0], core.rnn(x)[0])
        with pytest.raises(RuntimeError, match="unavailable"):
            cell.layer(x, tuple(torch.zeros(2, 4) for _ in range(cell.n_states)), weights(core.rnn),
                       implementation="fused")


def test_extension_name_follows_torch_sources_and_python_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two virtualenvs sharing torch's extension cache must not rebuild each other's kernels at every switch."""
    from rlgru.cores import _kernel_build

    source = _kernel_build.CSRC / "fused_gru.cpp"
    here = _kernel_build.extension_name("rlgru_fused_gru", source)
    assert here == _kernel_build.extension_name("rlgru_fused_gru", source)
    assert here != _kernel_build.extension_name("rlgru_fused_gru", _kernel_build.CSRC / "fused_lstm.cpp")
    monkeypatch.setattr("sys.prefix", "/elsewhere/.venv")
    assert _kernel_build.extension_name("rlgru_fused_gru", source) != here
