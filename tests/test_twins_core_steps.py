"""Each core's other forms of its recurrence compute what its ``forward`` defines, over sequences with resets.

The twins: ``trace`` (the step-by-step replay that ``diagnose`` logs gates from) and the export step
(``rlgru.export.core_steps.core_step``: the one-step function exported policies run, written in plain PyTorch ops
from the core's weights). The definition: the core's ``forward`` over a whole sequence with episode starts mid-way
(some at the first step, some twice in a row, one at the last step) from a non-zero state, run both ways a core can
run it: through its compiled kernel (fused GRU/LSTM cell, linear scan) and through its PyTorch fallback (the
kernel's opt-out variable set, which kernels read per call). For 1 and 2 layers, float32 and float64.
"""

from __future__ import annotations

import pytest
import torch

from rlgru.cores import fused_gru, fused_lstm, make_core, scan
from rlgru.cores.base import MemoryCore
from rlgru.cores.gru import GRUCore
from rlgru.cores.lstm import LSTMCore
from rlgru.cores.registry import BUILTIN_CORES
from rlgru.export.core_steps import ForwardStep, core_step

#: the compiled kernel each built-in core runs its sequences in (RNN has none: nn.RNN is its only engine)
KERNELS = {"gru": fused_gru.KERNEL, "lstm": fused_lstm.KERNEL, "mingru": scan.KERNEL, "lru": scan.KERNEL}
ALL_KERNELS = (fused_gru.KERNEL, fused_lstm.KERNEL, scan.KERNEL)
#: float32: rounding over 12 steps of a few layers stays ~1e-6 (the export parity tests' 1e-5 bound); float64
#: agrees to ~1e-14, so a float64 path that computes in float32 anywhere (errors ~1e-7) fails
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}
T, B, INPUT, HIDDEN = 12, 4, 5, 6


def cases() -> list:
    """(core, engine) for every built-in core and every engine it has here."""
    pytorch_only = {"rnn", "memoryless"}
    assert set(KERNELS) | pytorch_only == set(BUILTIN_CORES), "a new built-in core: say which kernel runs it"
    out = []
    for kind in BUILTIN_CORES:
        engines = ["kernel", "pytorch"] if kind in KERNELS else ["pytorch"]
        out += [pytest.param(kind, engine, id=f"{kind}-{engine}") for engine in engines]
    return out


def episode_starts() -> torch.Tensor:
    """``[T, B]``: env 0 starts at step 0 and 7, env 1 at 3, env 2 never, env 3 at 1 and 2 (twice in a row) and 11."""
    starts = torch.zeros(T, B)
    for t, b in ((0, 0), (7, 0), (3, 1), (1, 3), (2, 3), (11, 3)):
        starts[t, b] = 1
    return starts


def use_engine(kind: str, engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Switch the core's kernel on or off for the test, and check it took: the comparison must cover that engine."""
    for kernel in ALL_KERNELS:
        monkeypatch.setenv(kernel.disable_env, "1" if engine == "pytorch" else "0")
    if kind not in KERNELS:
        return
    if engine == "kernel" and not KERNELS[kind].available():
        pytest.skip(f"the {KERNELS[kind].what} could not be built")
    assert KERNELS[kind].available() == (engine == "kernel")


def setup(kind: str, n_layers: int, dtype: torch.dtype) -> tuple[MemoryCore, torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    core = make_core(kind, INPUT, HIDDEN, n_layers).to(dtype).eval()
    x = torch.randn(T, B, INPUT, dtype=dtype)
    state = torch.randn(n_layers, B, core.state_size, dtype=dtype)
    return core, x, state, episode_starts().to(dtype)


def definition(
    core: MemoryCore, x: torch.Tensor, state: torch.Tensor, starts: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        out, last = core(x, state, starts)
        ignoring_resets, _ = core(x, state)
    if core.remembers:
        assert not torch.allclose(out, ignoring_resets, atol=1e-3), "the resets must change the outputs"
    else:
        torch.testing.assert_close(out, ignoring_resets, msg="a memoryless core's outputs cannot depend on resets")
    return out, last


def step_through(
    step: torch.nn.Module, x: torch.Tensor, state: torch.Tensor, starts: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step at a time, as an exported policy runs: the state zeroed where an episode starts, then the step."""
    outputs = []
    with torch.no_grad():
        for t in range(x.shape[0]):
            state = state * (1 - starts[t]).view(1, -1, 1)
            out, state = step(x[t], state)
            outputs.append(out)
    return torch.stack(outputs), state


def assert_close(got: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype, what: str) -> None:
    torch.testing.assert_close(got, expected, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype], msg=what)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("n_layers", [1, 2])
@pytest.mark.parametrize("kind,engine", cases())
def test_export_step_equals_forward_over_a_sequence_with_resets(
    kind: str, engine: str, n_layers: int, dtype: torch.dtype, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_engine(kind, engine, monkeypatch)
    core, x, state, starts = setup(kind, n_layers, dtype)
    step = core_step(core)
    assert not isinstance(step, ForwardStep), "a built-in core exports through its own written-out step"
    out, last = definition(core, x, state, starts)
    step_out, step_last = step_through(step, x, state, starts)
    assert_close(step_out, out, dtype, "outputs")
    assert_close(step_last, last, dtype, "last state")


def has_own_trace(kind: str) -> bool:
    return type(make_core(kind, 2, 2)).trace is not MemoryCore.trace


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("n_layers", [1, 2])
@pytest.mark.parametrize("kind,engine", [case for case in cases() if has_own_trace(case.values[0])])
def test_trace_replays_forward_over_a_sequence_with_resets(
    kind: str, engine: str, n_layers: int, dtype: torch.dtype, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``trace`` takes ``keep = 1 - episode_starts``; its output is what ``forward`` outputs, and its gates are
    fractions (the quantities ``diagnose`` logs)."""
    use_engine(kind, engine, monkeypatch)
    core, x, state, starts = setup(kind, n_layers, dtype)
    out, _ = definition(core, x, state, starts)
    with torch.no_grad():
        traced, quantities = core.trace(x, state, 1 - starts)
    assert_close(traced, out, dtype, "outputs")
    for name, value in quantities.items():
        assert value.dtype == dtype and bool(((value > 0) & (value < 1)).all()), name


class SubclassedGRU(GRUCore):
    """A user's subclass of a kernel core: exported through its own ``forward`` with rlgru's kernels switched off."""


class SubclassedLSTM(LSTMCore):
    """As ``SubclassedGRU``, for the LSTM kernel."""


@pytest.mark.parametrize("core_class", [SubclassedGRU, SubclassedLSTM])
@pytest.mark.parametrize("n_layers", [1, 2])
def test_forward_step_with_kernels_off_equals_the_kernel_forward(core_class: type, n_layers: int) -> None:
    kernel = KERNELS["gru" if issubclass(core_class, GRUCore) else "lstm"]
    if not kernel.available():
        pytest.skip(f"the {kernel.what} could not be built")
    torch.manual_seed(0)
    core = core_class(INPUT, HIDDEN, n_layers).eval()
    x, state, starts = torch.randn(T, B, INPUT), torch.randn(n_layers, B, core.state_size), episode_starts()
    step = core_step(core)
    assert isinstance(step, ForwardStep)
    out, last = definition(core, x, state, starts)
    step_out, step_last = step_through(step, x, state, starts)
    assert kernel.available(), "the step must switch the kernels back on when it is done"
    assert_close(step_out, out, torch.float32, "outputs")
    assert_close(step_last, last, torch.float32, "last state")
