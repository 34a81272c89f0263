"""Memory cores: the reset contract, the single-step fast paths, and the diagnostics."""

from __future__ import annotations

import pytest
import torch

from rlgru.cores import core_names, make_core, resolve_core

CORES = core_names()


def reference_run(core, x: torch.Tensor, state: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
    """Step by step, zeroing each env's state before the steps where it starts an episode."""
    outputs = []
    for t in range(x.shape[0]):
        state = state * (1 - starts[t]).view(1, -1, 1)
        out, state = core(x[t : t + 1], state)
        outputs.append(out)
    return torch.cat(outputs)


@pytest.mark.parametrize("kind", sorted(CORES))
@pytest.mark.parametrize("n_layers", [1, 2])
def test_episode_starts_reset_state_before_the_step(kind: str, n_layers: int) -> None:
    torch.manual_seed(0)
    core = make_core(kind, 5, 7, n_layers)
    x = torch.randn(9, 4, 5)
    state = torch.randn(n_layers, 4, core.state_size)
    starts = (torch.rand(9, 4) < 0.3).float()
    out, _ = core(x, state, starts)
    torch.testing.assert_close(out, reference_run(core, x, state, starts), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", sorted(CORES))
def test_single_step_inference_matches_sequence_call(kind: str) -> None:
    torch.manual_seed(1)
    core = make_core(kind, 3, 6, 2)
    x = torch.randn(1, 5, 3)
    state = torch.randn(2, 5, core.state_size)
    with torch.enable_grad():
        expected_out, expected_state = core(x, state)
    with torch.no_grad():
        out, new_state = core(x, state)
    torch.testing.assert_close(out, expected_out.detach())
    torch.testing.assert_close(new_state, expected_state.detach())


@pytest.mark.parametrize("kind", sorted(CORES))
def test_none_state_means_zeros_and_shapes_follow_the_contract(kind: str) -> None:
    core = make_core(kind, 3, 6, 2)
    x = torch.randn(4, 2, 3)
    out, state = core(x)
    assert out.shape == (4, 2, 6) and state.shape == (2, 2, core.state_size)
    torch.testing.assert_close(out, core(x, torch.zeros(2, 2, core.state_size))[0])


@pytest.mark.parametrize("kind", sorted(CORES))
def test_diagnostics_report_gate_means_in_range(kind: str) -> None:
    core = make_core(kind, 3, 6, 1)
    stats = core.diagnose(torch.randn(5, 2, 3), torch.zeros(1, 2, core.state_size))
    assert stats["hidden_norm"] > 0
    gates = {k: v for k, v in stats.items() if k.endswith("_gate")}
    expected = {"gru": 2, "lstm": 3, "rnn": 0}
    if kind in expected:
        assert len(gates) == expected[kind]
    assert all(0 < v < 1 for v in gates.values())


def test_bad_core_arguments_fail_clearly() -> None:
    with pytest.raises(ValueError, match="unknown core"):
        make_core("transformer", 3, 4)
    with pytest.raises(ValueError, match="positive"):
        make_core("gru", 3, 0)
    with pytest.raises(ValueError, match=r"\[T, B, 3\]"):
        make_core("gru", 3, 4)(torch.randn(2, 3))


@pytest.mark.parametrize("kind", sorted(name for name in CORES if resolve_core(name).remembers))
def test_diagnostics_zero_the_state_where_episodes_start(kind: str) -> None:
    """Training replays lanes with resets inside; the logged hidden norm must be that of the replayed states."""
    core = make_core(kind, 3, 6, 2)
    x, state = torch.randn(6, 3, 3), torch.randn(2, 3, core.state_size)
    starts = torch.zeros(6, 3)
    starts[2, 0] = starts[4, 1] = 1
    with torch.no_grad():
        out, _ = core(x, state, starts)
    stats = core.diagnose(x, state, None, starts)
    assert stats["hidden_norm"] == pytest.approx(float(out.norm(dim=-1).mean()), rel=1e-5)
    assert stats["hidden_norm"] != pytest.approx(core.diagnose(x, state)["hidden_norm"], rel=1e-3)


def test_docs_core_table_lists_every_core_with_its_measured_size() -> None:
    """docs/cores.md's table of cores is the registry's: every core, with the parameter count and state it has."""
    from pathlib import Path

    from rlgru.cores import describe_core

    page = (Path(__file__).resolve().parents[1] / "docs" / "cores.md").read_text()
    rows = {line.split("|")[1].strip(" `"): [cell.strip() for cell in line.split("|")[1:-1]]
            for line in page.splitlines() if line.startswith("| `")}
    for name in CORES:
        info = describe_core(name, 64, 64)
        assert name in rows, f"docs/cores.md's core table misses {name}"
        assert rows[name][2] == f"{info.params:,}" and rows[name][3].split()[0] == str(info.state_size), name
