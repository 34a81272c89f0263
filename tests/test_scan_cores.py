"""minGRU and LRU: the shared reset-aware scan against plain loops, resets, state carrying, LRU stability."""

from __future__ import annotations

import math

import pytest
import torch

from rlgru.cores import make_core
from rlgru.cores import scan as scan_module
from rlgru.cores.scan import linear_scan

SCAN_CORES = ["mingru", "lru"]


@pytest.fixture(params=["kernel", "sequential", "chunked"])
def algorithm(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test once per scan algorithm (the compiled kernel, and both PyTorch ones), whatever the shapes and
    the machine would pick."""
    if request.param == "kernel":
        if not scan_module.KERNEL.available():
            pytest.skip(f"the linear-scan kernel is unavailable: {scan_module.KERNEL.state['error']}")
        return request.param
    monkeypatch.setattr(scan_module, "uses_kernel", lambda b: False)
    sequential = request.param == "sequential"
    monkeypatch.setattr(scan_module, "_sequential_is_faster", lambda b: sequential)
    return request.param


def loop_scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    h, outputs = h0, []
    for t in range(b.shape[0]):
        h = a[t] * h + b[t]
        outputs.append(h)
    return torch.stack(outputs)


def random_scan_inputs(steps: int, dtype: torch.dtype, seed: int = 0) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    a = torch.rand(steps, 3, 4, dtype=torch.float64, generator=generator)
    a = a * (torch.rand(steps, 3, 1, generator=generator) > 0.25)  # resets at random (t, b): a = 0
    if dtype.is_complex:
        a = torch.polar(a, torch.rand(steps, 3, 4, dtype=torch.float64, generator=generator))
    b = torch.randn(steps, 3, 4, dtype=dtype, generator=generator)
    h0 = torch.randn(3, 4, dtype=dtype, generator=generator)
    return tuple(v.to(dtype).requires_grad_() for v in (a, b, h0))


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
@pytest.mark.parametrize("steps", [1, 7, 37])
def test_scan_matches_a_loop_forward_and_backward(algorithm: str, dtype: torch.dtype, steps: int) -> None:
    a, b, h0 = random_scan_inputs(steps, dtype)
    out, expected = linear_scan(a, b, h0), loop_scan(a, b, h0)
    torch.testing.assert_close(out, expected)
    weights = torch.randn_like(expected)
    grads = torch.autograd.grad((out * weights.conj()).real.sum(), (a, b, h0))
    expected_grads = torch.autograd.grad((expected * weights.conj()).real.sum(), (a, b, h0))
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, expected_grad)


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_scan_gradcheck(algorithm: str, dtype: torch.dtype) -> None:
    assert torch.autograd.gradcheck(linear_scan, random_scan_inputs(19, dtype, seed=1))


def test_scan_takes_a_time_constant_a_without_materialising_it() -> None:
    a = torch.rand(4, dtype=torch.float64, requires_grad=True)
    b, h0 = torch.randn(6, 2, 4, dtype=torch.float64), torch.zeros(2, 4, dtype=torch.float64)
    out = linear_scan(a, b, h0)
    torch.testing.assert_close(out, loop_scan(a.expand_as(b), b, h0))
    (grad,) = torch.autograd.grad(out.sum(), a)
    (expected,) = torch.autograd.grad(loop_scan(a.expand_as(b), b, h0).sum(), a)
    torch.testing.assert_close(grad, expected)


# ------------------------------------------------------------------------------------------------------- cores
def step_by_step(core, x: torch.Tensor, state: torch.Tensor, starts: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The plain loop: one T = 1 call per step, zeroing each env's state where its episode starts."""
    outputs = []
    for t in range(x.shape[0]):
        state = state * (1 - starts[t]).view(1, -1, 1)
        out, state = core(x[t : t + 1], state)
        outputs.append(out)
    return torch.cat(outputs), state


def make_double(kind: str, n_layers: int, seed: int = 0):
    torch.manual_seed(seed)
    return make_core(kind, 5, 6, n_layers).double()


def core_inputs(core, steps: int = 37, batch: int = 4, seed: int = 0) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(steps, batch, core.input_size, dtype=torch.float64, generator=generator, requires_grad=True)
    state = torch.randn(core.n_layers, batch, core.state_size, dtype=torch.float64, generator=generator)
    starts = (torch.rand(steps, batch, generator=generator) < 0.15).double()
    return x, state.requires_grad_(), starts


@pytest.mark.parametrize("kind", SCAN_CORES)
@pytest.mark.parametrize("n_layers", [1, 2])
def test_core_scan_matches_the_step_loop_with_resets(algorithm: str, kind: str, n_layers: int) -> None:
    core = make_double(kind, n_layers)
    x, state, starts = core_inputs(core)
    out, last = core(x, state, starts)
    expected_out, expected_last = step_by_step(core, x, state, starts)
    torch.testing.assert_close(out, expected_out)
    torch.testing.assert_close(last, expected_last)
    weights = torch.randn_like(out)
    inputs = (x, state, *core.parameters())
    grads = torch.autograd.grad((out * weights).sum() + last.sum(), inputs)
    expected_grads = torch.autograd.grad((expected_out * weights).sum() + expected_last.sum(), inputs)
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, expected_grad)


@pytest.mark.parametrize("kind", SCAN_CORES)
def test_episode_start_zeroes_the_state_before_the_step(kind: str) -> None:
    core = make_double(kind, 2)
    x, state, _ = core_inputs(core, steps=5, batch=2)
    starts = torch.zeros(5, 2, dtype=torch.float64)
    starts[3, 0] = 1
    with torch.no_grad():
        out, _ = core(x, state, starts)
        fresh, _ = core(x[3:, :1], torch.zeros_like(state[:, :1]))
        undisturbed, _ = core(x[:, 1:], state[:, 1:])
    torch.testing.assert_close(out[3:, :1], fresh)
    torch.testing.assert_close(out[:, 1:], undisturbed)


@pytest.mark.parametrize("kind", SCAN_CORES)
@pytest.mark.parametrize("split", [1, 13, 30])
def test_state_carried_across_calls_equals_one_call(kind: str, split: int) -> None:
    core = make_double(kind, 2)
    x, state, starts = core_inputs(core, steps=31)
    with torch.no_grad():
        out, last = core(x, state, starts)
        first, middle = core(x[:split], state, starts[:split])
        second, end = core(x[split:], middle, starts[split:])
    torch.testing.assert_close(torch.cat([first, second]), out)
    torch.testing.assert_close(end, last)


@pytest.mark.parametrize("kind", SCAN_CORES)
def test_resets_are_native_and_rollout_steps_match_the_sequence(kind: str) -> None:
    core = make_core(kind, 5, 6, 2)
    assert core.resets_natively("cpu")
    x, state, starts = (v.float().detach() for v in core_inputs(core, steps=20))
    with torch.no_grad():
        out, last = core(x, state, starts)
        stepped, stepped_last = step_by_step(core, x, state, starts)
    torch.testing.assert_close(stepped, out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(stepped_last, last, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", SCAN_CORES)
def test_dropout_between_layers_only_while_training(kind: str) -> None:
    torch.manual_seed(0)
    core = make_core(kind, 3, 8, 2, dropout=0.5)
    x = torch.randn(6, 2, 3)
    core.eval()
    torch.testing.assert_close(core(x)[0], core(x)[0])
    core.train()
    assert not torch.allclose(core(x)[0], core(x)[0])


def test_mingru_diagnostics_report_the_update_gate() -> None:
    core = make_core("mingru", 3, 6, 2)
    stats = core.diagnose(torch.randn(5, 2, 3), torch.zeros(2, 2, 6))
    assert 0 < stats["update_gate"] < 1 and stats["hidden_norm"] > 0


# --------------------------------------------------------------------------------------------------------- LRU
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lru_eigenvalues_stay_inside_the_unit_circle_for_any_parameters(dtype: torch.dtype) -> None:
    core = make_core("lru", 3, 8, 2).to(dtype)
    extremes = torch.tensor([-1e4, -100.0, -30.0, -1.0, 0.0, 1.0, 5.0, 100.0], dtype=dtype)
    for layer in core.layers:
        with torch.no_grad():
            layer.nu_log.copy_(extremes)
            layer.theta_log.copy_(extremes.flip(0))
        modulus = layer.eigenvalues().abs()
        assert bool((modulus < 1).all()) and bool((modulus >= 0).all())
        assert bool((layer.modulus() < 1).all())


@pytest.mark.parametrize(("r_min", "r_max", "max_phase"), [(0.5, 0.99, math.pi / 10), (0.0, 0.9999, 2 * math.pi)])
def test_lru_ring_initialisation(r_min: float, r_max: float, max_phase: float) -> None:
    torch.manual_seed(0)
    core = make_core("lru", 3, 256, 2, r_min=r_min, r_max=r_max, max_phase=max_phase)
    for layer in core.layers:
        modulus, phase = layer.modulus(), layer.theta_log.exp()
        assert bool((modulus >= r_min - 1e-6).all()) and bool((modulus <= r_max + 1e-6).all())
        assert bool((phase >= 0).all()) and bool((phase <= max_phase + 1e-6).all())
        # gamma normalises: sqrt(1 - |lambda|^2) at init
        torch.testing.assert_close(layer.gamma_log.exp() ** 2, 1 - modulus.detach() ** 2, atol=1e-4, rtol=1e-4)


def test_lru_state_is_real_and_imaginary_halves() -> None:
    core = make_core("lru", 3, 4, 2)
    out, state = core(torch.randn(5, 2, 3))
    assert out.shape == (5, 2, 4) and state.shape == (2, 2, 8) and state.dtype == torch.float32


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="r_min"):
        make_core("lru", 3, 8, r_min=2.0)
    with pytest.raises(ValueError, match="r_max"):
        make_core("lru", 3, 8, r_max=1.0)
    with pytest.raises(ValueError, match="r_min must not exceed r_max"):
        make_core("lru", 3, 8, r_min=0.9, r_max=0.5)
    with pytest.raises(ValueError, match="max_phase"):
        make_core("lru", 3, 8, max_phase=0.0)
    with pytest.raises(ValueError, match="dropout"):
        make_core("mingru", 3, 8, dropout=1.0)
    with pytest.raises(ValueError, match="candidate"):
        make_core("mingru", 3, 8, candidate="tanh")
