"""The memory-core contract shared by GRU, LSTM and plain-RNN cores.

A core is a pure function of ``(inputs, state, episode_starts) -> (outputs, state)``: the state is plain data
(one tensor ``[n_layers, batch, state_size]``) so buffers can store it and policies can concatenate it.
"""

from __future__ import annotations

import torch
from torch import nn

Weights = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class MemoryCore(nn.Module):
    """Base class: handles zero initial states and episode-start resets; subclasses run the recurrence.

    ``forward(x, state, episode_starts)``: ``x`` is ``[T, B, input_size]``, ``state`` is ``[n_layers, B,
    state_size]`` or ``None`` (zeros), ``episode_starts`` is ``[T, B]`` in {0, 1} or ``None``. A 1 at ``[t, b]``
    zeroes env ``b``'s state *before* step ``t``. Returns ``out [T, B, hidden_size]`` and the final state.
    """

    #: short name used by configs and reports ("gru", "lstm", "rnn")
    kind: str = ""
    #: how many hidden_size-wide vectors make up the state of one layer (2 for LSTM's h and c)
    state_multiplier: int = 1
    #: True when resets inside a sequence cost nothing extra: training then replays whole rollout lanes with
    #: their resets instead of cutting (and padding) sequences at every reset.
    native_resets: bool = False
    #: the PyTorch RNN module holding the weights (nn.GRU / nn.LSTM / nn.RNN), set by subclasses
    rnn: nn.RNNBase

    def __init__(self, input_size: int, hidden_size: int, n_layers: int = 1) -> None:
        super().__init__()
        if input_size < 1 or hidden_size < 1 or n_layers < 1:
            raise ValueError(
                f"input_size, hidden_size and n_layers must be positive, got {input_size}, {hidden_size}, {n_layers}"
            )
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.n_layers = n_layers

    @property
    def state_size(self) -> int:
        return self.hidden_size * self.state_multiplier

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> torch.Tensor:
        return torch.zeros(self.n_layers, batch_size, self.state_size, device=device)

    def forward(
        self,
        x: torch.Tensor,
        state: torch.Tensor | None = None,
        episode_starts: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 3:
            raise ValueError(f"expected inputs of shape [T, B, {self.input_size}], got {tuple(x.shape)}")
        seq_len, batch_size = x.shape[:2]
        if state is None:
            state = self.initial_state(batch_size, x.device).to(x.dtype)
        if episode_starts is None:
            return self._run(x, state)
        keep = 1.0 - episode_starts.to(x.dtype)
        # Training sequences are cut at resets, so resets inside a sequence only happen in multi-step predict():
        # the common case is one recurrent call over the whole sequence.
        if seq_len == 1 or not bool(episode_starts[1:].any()):
            return self._run(x, state * keep[0].view(1, batch_size, 1))
        return self._run_with_resets(x, state, keep)

    def _run_with_resets(
        self, x: torch.Tensor, state: torch.Tensor, keep: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Split time at steps where any env resets and run each segment in one call."""
        batch_size = x.shape[1]
        reset_steps = (keep[1:] < 1).any(dim=1).nonzero().flatten().add(1).tolist()
        bounds = [0, *reset_steps, x.shape[0]]
        outputs = []
        for start, end in zip(bounds[:-1], bounds[1:], strict=True):
            state = state * keep[start].view(1, batch_size, 1)
            out, state = self._run(x[start:end], state)
            outputs.append(out)
        return torch.cat(outputs, dim=0), state

    def _run(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the recurrence over ``x`` with no resets."""
        raise NotImplementedError

    def layers(self) -> list[Weights]:
        """Every layer's ``(weight_ih, weight_hh, bias_ih, bias_hh)`` of the PyTorch module ``self.rnn``."""
        # PyTorch's RNN modules keep their parameters in this list, in layer_weights' order; reading it is ~10x
        # cheaper than four nn.Module attribute lookups per layer, which shows in single-step rollouts.
        flat = getattr(self.rnn, "_flat_weights", None)
        if flat is None or len(flat) != 4 * self.n_layers or any(w is None for w in flat):
            return [self.layer_weights(layer) for layer in range(self.n_layers)]
        return [tuple(flat[4 * layer : 4 * layer + 4]) for layer in range(self.n_layers)]

    def layer_weights(self, layer: int) -> Weights:
        """``(weight_ih, weight_hh, bias_ih, bias_hh)`` of one layer, in PyTorch's gate order."""
        return tuple(getattr(self.rnn, f"{n}_l{layer}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    @torch.no_grad()
    def diagnose(
        self,
        x: torch.Tensor,
        state: torch.Tensor,
        mask: torch.Tensor | None = None,
        episode_starts: torch.Tensor | None = None,
    ) -> dict[str, float]:
        """Mean gate activations and hidden-state norm over a sequence batch (for TensorBoard).

        ``mask`` ``[T, B]`` marks valid (non-padding) steps; ``episode_starts`` as in ``forward``.
        """
        out, _ = self(x, state, episode_starts)
        return {"hidden_norm": masked_mean(out.norm(dim=-1), mask)}


def keep_mask(episode_starts: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    """``[T, B, 1]``: 0 where the state is zeroed before a step, for per-step loops that apply resets."""
    return None if episode_starts is None else (1 - episode_starts.to(like.dtype)).unsqueeze(-1)


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> float:
    if mask is None:
        return float(values.mean())
    mask = mask.to(values.dtype)
    while mask.dim() < values.dim():
        mask = mask.unsqueeze(-1)
    mask = mask.expand_as(values)
    return float((values * mask).sum() / mask.sum().clamp_min(1.0))
