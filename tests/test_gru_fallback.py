"""The GRU's PyTorch fallback (``rlgru.cores.gru_fallback``) computes nn.GRU: outputs, final states and every
gradient, with episode starts inside the sequence handled as ``split_at_resets`` handles them for nn.GRU."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rlgru.cores import fused_gru, gru_fallback
from rlgru.cores.base import split_at_resets
from rlgru.cores.gru import GRUCore

F32 = {"atol": 2e-5, "rtol": 1e-4}
F64 = {"atol": 1e-10, "rtol": 1e-10}


def reference(gru: nn.GRU, x: torch.Tensor, state: torch.Tensor, keep: torch.Tensor | None):
    """nn.GRU once per stretch between resets: the fallback rlgru had before."""
    return split_at_resets(lambda xs, h: gru(xs, h.contiguous()), x, state, keep)


def random_keep(steps: int, batch: int, dtype: torch.dtype) -> torch.Tensor:
    """Resets at the first step and mid-sequence, several envs at once and some steps without any."""
    keep = (torch.rand(steps, batch) > 0.2).to(dtype)
    keep[0, 0] = 0
    keep[steps // 2, :] = 0
    return keep


def grads(loss: torch.Tensor, tensors: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    return torch.autograd.grad(loss, tensors, retain_graph=True)


def layers(gru: nn.GRU) -> list[tuple[torch.Tensor, ...]]:
    """Each layer's ``(weight_ih, weight_hh, bias_ih, bias_hh)``, as cores hand them over."""
    return [tuple(gru._flat_weights[4 * layer : 4 * layer + 4]) for layer in range(gru.num_layers)]


def assert_same_gradients(gru: nn.GRU, inputs: list[torch.Tensor], got: tuple, want: tuple, upstream: tuple,
                          tolerance: dict) -> None:
    """Gradients of ``sum(output * upstream)`` to ``inputs`` and every parameter of ``gru`` agree."""
    tensors = [*inputs, *gru.parameters()]
    names = [f"input {k}" for k in range(len(inputs))] + [name for name, _ in gru.named_parameters()]
    got_grads = grads(sum((o * u).sum() for o, u in zip(got, upstream, strict=True)), tensors)
    want_grads = grads(sum((o * u).sum() for o, u in zip(want, upstream, strict=True)), tensors)
    for name, g, w in zip(names, got_grads, want_grads, strict=True):
        torch.testing.assert_close(g, w, **tolerance, msg=lambda m, name=name: f"gradient of {name}: {m}")


@pytest.fixture
def without_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(fused_gru.DISABLE_ENV, "1")
    assert not fused_gru.available()


@pytest.mark.parametrize("n_layers", [1, 2])
@pytest.mark.parametrize("stacks", [1, 2])
@pytest.mark.parametrize("steps", [1, 5])
def test_gradients_pass_gradcheck(n_layers: int, stacks: int, steps: int) -> None:
    """float64, tiny sizes: gradients to the inputs, the initial state and every weight of every stack."""
    torch.manual_seed(0)
    batch, inputs, hidden = 3, 4, 3
    grus = [nn.GRU(inputs, hidden, n_layers).double() for _ in range(stacks)]
    x = torch.randn(stacks, steps, batch, inputs, dtype=torch.float64, requires_grad=True)
    state = torch.randn(n_layers, stacks, batch, hidden, dtype=torch.float64, requires_grad=True)
    keep = torch.ones(steps, batch, dtype=torch.float64)
    keep[0, 0] = 0
    keep[steps // 2 :, 1] = 0  # env 1 starts an episode at every step from the middle on
    weights = [w for gru in grus for w in gru._flat_weights]

    def run(x: torch.Tensor, state: torch.Tensor, *flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        layers = [[tuple(flat[4 * (n_layers * s + layer) : 4 * (n_layers * s + layer) + 4])
                   for layer in range(n_layers)] for s in range(stacks)]
        return gru_fallback.run_layers(x, state, layers, keep, [0.0] * stacks)

    assert torch.autograd.gradcheck(run, (x, state, *weights))


@pytest.mark.parametrize("n_layers", [1, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("resets", [False, True])
def test_matches_nn_gru_split_at_resets(n_layers: int, dtype: torch.dtype, resets: bool) -> None:
    """RL sizes; an actor's and a critic's stack side by side, each against its own nn.GRU."""
    torch.manual_seed(1)
    steps, batch, inputs, hidden = 64, 16, 8, 64
    grus = [nn.GRU(inputs, hidden, n_layers).to(dtype) for _ in range(2)]
    xs = [torch.randn(steps, batch, inputs, dtype=dtype, requires_grad=True) for _ in range(2)]
    states = [torch.randn(n_layers, batch, hidden, dtype=dtype, requires_grad=True) for _ in range(2)]
    keep = random_keep(steps, batch, dtype) if resets else None
    out, final = gru_fallback.run_layers(torch.stack(xs), torch.stack(states, 1), [layers(gru) for gru in grus],
                                         keep, [0.0, 0.0])
    tolerance = F32 if dtype == torch.float32 else F64
    for s, gru in enumerate(grus):
        ref_out, ref_final = reference(gru, xs[s], states[s], keep)
        torch.testing.assert_close(out[s], ref_out, **tolerance)
        torch.testing.assert_close(final[:, s], ref_final, **tolerance)
        go, gf = torch.randn_like(ref_out), torch.randn_like(ref_final)
        assert_same_gradients(gru, [xs[s], states[s]], (out[s], final[:, s]), (ref_out, ref_final), (go, gf),
                              tolerance)


def test_padded_minibatch_gradients_match(without_kernel: None) -> None:
    """As in a padded sequence minibatch: no gradient reaches the steps past each sequence's end (the weight
    gradients then skip those rows)."""
    torch.manual_seed(6)
    steps, batch, hidden = 48, 14, 64
    grus = [nn.GRU(3, hidden) for _ in range(2)]
    x = torch.randn(steps, batch, 3)
    states = [torch.randn(1, batch, hidden) for _ in range(2)]
    lengths = torch.randint(1, steps + 1, (batch,))
    lengths[0] = steps
    valid = (torch.arange(steps)[:, None] < lengths[None, :]).float().unsqueeze(-1)
    keep = torch.ones(steps, batch)
    keep[0, ::2] = 0
    out, final = gru_fallback.run_layers(torch.stack((x, x)), torch.stack(states, 1), [layers(g) for g in grus],
                                         keep, [0.0, 0.0])
    for s, gru in enumerate(grus):
        ref_out, _ = reference(gru, x, states[s], keep)
        go = torch.randn_like(ref_out) * valid
        assert_same_gradients(gru, [], (out[s],), (ref_out,), (go,), F32)


@pytest.mark.parametrize("n_layers", [1, 2])
def test_core_runs_the_fallback_without_the_kernel(without_kernel: None, n_layers: int) -> None:
    """Through the core's API (``forward`` and ``forward_beside``, as the policy calls them): nn.GRU's numbers."""
    torch.manual_seed(2)
    actor, critic = GRUCore(6, 32, n_layers), GRUCore(6, 32, n_layers)
    assert not actor.resets_natively("cpu") and "gru_fallback" in actor.engine("cpu")
    x = torch.randn(40, 12, 6, requires_grad=True)
    x_critic = torch.randn(40, 12, 6, requires_grad=True)
    states = (torch.randn(n_layers, 12, 32), torch.randn(n_layers, 12, 32))
    starts = 1 - random_keep(40, 12, torch.float32)
    (out, final), (out_critic, final_critic) = actor.forward_beside(critic, (x, x_critic), states, starts)
    single_out, single_final = actor(x, states[0], starts)
    torch.testing.assert_close(single_out, out, **F32)
    torch.testing.assert_close(single_final, final, **F32)
    for core, inputs, state, got_out, got_final in ((actor, x, states[0], out, final),
                                                     (critic, x_critic, states[1], out_critic, final_critic)):
        ref_out, ref_final = reference(core.rnn, inputs, state, 1 - starts)
        torch.testing.assert_close(got_out, ref_out, **F32)
        torch.testing.assert_close(got_final, ref_final, **F32)
        tensors = [inputs, *core.parameters()]
        for got, want in zip(grads(got_out.square().sum(), tensors), grads(ref_out.square().sum(), tensors),
                             strict=True):
            torch.testing.assert_close(got, want, **F32)


def test_rollout_step_matches_nn_gru(without_kernel: None) -> None:
    """A single no-grad step (``torch.gru_cell``), with some envs starting an episode."""
    torch.manual_seed(3)
    core = GRUCore(5, 16, 2)
    x, state = torch.randn(1, 8, 5), torch.randn(2, 8, 16)
    starts = torch.zeros(1, 8)
    starts[0, :3] = 1
    with torch.no_grad():
        out, new_state = core(x, state, starts)
        ref_out, ref_state = core.rnn(x, state * (1 - starts).view(1, -1, 1))
    torch.testing.assert_close(out, ref_out, **F32)
    torch.testing.assert_close(new_state, ref_state, **F32)


def test_dropout_between_layers_as_nn_gru_draws_it(without_kernel: None) -> None:
    """Training mode drops out the first layer's output before the second reads it, as nn.GRU does (same draw
    from the same seed); evaluation mode does not."""
    torch.manual_seed(4)
    core = GRUCore(4, 16, 2, dropout=0.5)
    x, state = torch.randn(20, 6, 4), torch.randn(2, 6, 16)
    first, second = (nn.GRU(4 if k == 0 else 16, 16) for k in range(2))
    for layer, gru in enumerate((first, second)):
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(gru, f"{name}_l0").data.copy_(getattr(core.rnn, f"{name}_l{layer}"))
    torch.manual_seed(5)
    out, _ = core(x, state)
    torch.manual_seed(5)
    hidden, _ = first(x, state[:1])
    expected, _ = second(nn.functional.dropout(hidden, 0.5, training=True), state[1:])
    torch.testing.assert_close(out, expected, **F32)
    core.eval()
    with torch.no_grad():
        torch.testing.assert_close(core(x, state)[0], core.rnn(x, state)[0], **F32)


def test_inference_mode_and_no_resets(without_kernel: None) -> None:
    """Evaluation under torch.inference_mode, with no episode starts given."""
    torch.manual_seed(7)
    core = GRUCore(4, 24, 1)
    x, state = torch.randn(30, 5, 4), torch.randn(1, 5, 24)
    with torch.inference_mode():
        out, final = core(x, state)
        ref_out, ref_final = core.rnn(x, state)
    torch.testing.assert_close(out, ref_out, **F32)
    torch.testing.assert_close(final, ref_final, **F32)
