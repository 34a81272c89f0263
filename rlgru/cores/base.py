"""The memory-core contract: ``forward(x[T,B,I], state, episode_starts[T,B]) -> (out[T,B,H], state)``.

A core is a pure function of its inputs and a state that is plain data (one tensor ``[n_layers, B, state_size]``),
so buffers can store it per step and policies can concatenate the actor's and the critic's. Nothing here assumes an
RNN module: cells with PyTorch RNN weights get ``TorchRNNWeights`` (``rnn_weights.py``) on top.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from rlgru.runtime.safe_load import allow_user_subclasses_of

Segment = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class MemoryCore(nn.Module):
    """Base class of every memory core, built-in or a user's own.

    A subclass implements one of two hooks:

    - ``recur(x, state, keep)`` when it can zero the state of some envs in the middle of a sequence itself
      (``keep [T, B]`` is 0 where the state is zeroed *before* step ``t``, or ``None``). Training then replays whole
      rollout lanes with their resets inside, and nothing is cut or padded (unless ``resets_natively`` says that
      resets are not free on the device: then the buffer cuts sequences at them, and ``recur`` still runs them).
    - ``run_segment(x, state)`` for a stretch with no reset inside; the base class splits sequences at resets and
      calls it once per stretch (and the rollout buffer cuts training sequences at resets for such cores).

    Settings of its own are keyword-only constructor arguments with type hints and defaults (``dropout: float =
    0.0``): the registry turns them into a validated schema for configs and ``policy_kwargs["core_kwargs"]``.
    """

    #: the name used when ``register_core`` got none: how reports and policy classes (``Mlp<policy_name>Policy``)
    #: call this core
    policy_name: str = ""
    #: whether the core may run a compiled kernel of its own; ``False`` keeps it to PyTorch (a model's
    #: ``fast_paths=False`` sets it on the instance; the PyTorch code stays the definition either way)
    compiled_kernels: bool = True
    #: whether anything from one step reaches the next (``False`` only for the memoryless baseline)
    remembers: bool = True

    def __init__(self, input_size: int, hidden_size: int, n_layers: int = 1) -> None:
        super().__init__()
        input_size, hidden_size, n_layers = int(input_size), int(hidden_size), int(n_layers)
        if input_size < 1 or hidden_size < 1 or n_layers < 1:
            raise ValueError(
                f"input_size, hidden_size and n_layers must be positive, got {input_size}, {hidden_size}, {n_layers}"
            )
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.n_layers = n_layers

    # ------------------------------------------------------------------------------------------------ state
    @property
    def state_size(self) -> int:
        """Width of one layer's state; ``hidden_size`` unless the core keeps more (an LSTM's c, a complex state)."""
        return self.hidden_size

    def initial_state(
        self, batch_size: int, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        return torch.zeros(self.n_layers, batch_size, self.state_size, device=device, dtype=dtype)

    def readout(self, layer_state: torch.Tensor) -> torch.Tensor:
        """The part of one layer's state ``[..., state_size]`` worth looking at (memory probe, PCA plots).

        The whole state by default; an LSTM shows ``h``, not ``c``.
        """
        return layer_state

    def resets_natively(self, device: torch.device | str) -> bool:
        """Whether resets inside a sequence cost nothing on ``device`` (then training replays uncut lanes): by default
        whenever the core implements ``recur``."""
        return type(self).recur is not MemoryCore.recur

    def engine(self, device: torch.device | str) -> str:
        """What runs the recurrence on ``device`` (for ``rlgru cores`` and reports): "PyTorch" unless a core
        brings its own kernel."""
        return "PyTorch"

    def kernel_reasons(self, device: torch.device | str) -> list[str] | None:
        """Why the core's compiled kernel does not run on ``device`` (empty: it does), or None when the core has none.

        Read by the fast-path plan (``rlgru.fast.plan``), which reports it; the core itself decides per call.
        """
        return None

    # ------------------------------------------------------------------------------------------- recurrence
    def forward(
        self,
        x: torch.Tensor,
        state: torch.Tensor | None = None,
        episode_starts: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [T, B, input_size]``, ``state [n_layers, B, state_size]`` or ``None`` (zeros), ``episode_starts
        [T, B]`` in {0, 1} or ``None``: a 1 at ``[t, b]`` zeroes env ``b``'s state before step ``t``.
        Returns ``out [T, B, hidden_size]`` and the state after the last step."""
        if x.dim() != 3 or x.shape[-1] != self.input_size:
            raise ValueError(f"expected inputs of shape [T, B, {self.input_size}], got {tuple(x.shape)}")
        if state is None:
            state = self.initial_state(x.shape[1], x.device, x.dtype)
        keep = None if episode_starts is None else 1 - episode_starts.to(x.dtype)
        if type(self).recur is not MemoryCore.recur:
            return self.recur(x, state, keep)
        return split_at_resets(self.run_segment, x, state, keep)

    def forward_beside(
        self,
        twin: MemoryCore,
        inputs: tuple[torch.Tensor, torch.Tensor],
        states: tuple[torch.Tensor, torch.Tensor],
        episode_starts: torch.Tensor | None = None,
    ) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """This core and ``twin`` (a core of the same class and sizes: the critic's beside the actor's) over the same
        steps, each from its own input and state: ``(self's (out, state), twin's (out, state))``, as two ``forward``
        calls give them. A core with a kernel can run both in one call (and on two threads)."""
        return self(inputs[0], states[0], episode_starts), twin(inputs[1], states[1], episode_starts)

    def recur(
        self, x: torch.Tensor, state: torch.Tensor, keep: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole sequence, zeroing ``state[:, b]`` before step ``t`` where ``keep[t, b] == 0``."""
        raise NotImplementedError

    def run_segment(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A stretch of steps with no reset inside."""
        raise NotImplementedError(f"{type(self).__name__} must implement recur() or run_segment()")

    # ------------------------------------------------------------------------------------------ diagnostics
    @torch.no_grad()
    def diagnose(
        self,
        x: torch.Tensor,
        state: torch.Tensor,
        mask: torch.Tensor | None = None,
        episode_starts: torch.Tensor | None = None,
    ) -> dict[str, float]:
        """Scalars about the memory over a sequence batch, logged as ``memory/*``: the output norm and whatever
        ``trace`` adds (gate activations), averaged over the real steps.

        ``mask`` ``[T, B]`` marks valid (non-padding) steps; ``episode_starts`` as in ``forward``.
        """
        keep = None if episode_starts is None else 1 - episode_starts.to(x.dtype)
        out, quantities = self.trace(x, state, keep)
        stats = {name: masked_mean(value, mask if value.dim() >= 2 else None) for name, value in quantities.items()}
        stats["hidden_norm"] = masked_mean(out.norm(dim=-1), mask)
        return stats

    def trace(
        self, x: torch.Tensor, state: torch.Tensor, keep: torch.Tensor | None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The output ``[T, B, hidden_size]`` and named quantities worth watching, for ``diagnose``: ``[T, B, ...]``
        tensors are averaged over real steps, anything else over all its elements. Runs without gradients."""
        return self(x, state, None if keep is None else 1 - keep)[0], {}

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}, n_layers={self.n_layers}"


allow_user_subclasses_of(MemoryCore)  # a model may name a user's own core once its module is imported


def split_at_resets(
    run: Segment, x: torch.Tensor, state: torch.Tensor, keep: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``run`` once per stretch of steps with no reset inside, zeroing states where a stretch starts.

    ``state`` is ``[..., B, size]`` (any leading layer axes); ``keep`` ``[T, B]`` as in ``MemoryCore.recur``. The
    one fallback for every core (and kernel) that cannot reset mid-sequence.
    """
    if keep is None:
        return run(x, state)
    batch_size = x.shape[1]
    if x.shape[0] == 1 or bool((keep[1:] >= 1).all()):
        return run(x, state * keep[0].view(batch_size, 1))
    reset_steps = (keep[1:] < 1).any(dim=1).nonzero().flatten().add(1).tolist()
    bounds = [0, *reset_steps, x.shape[0]]
    outputs = []
    for start, end in zip(bounds[:-1], bounds[1:], strict=True):
        out, state = run(x[start:end], state * keep[start].view(batch_size, 1))
        outputs.append(out)
    return torch.cat(outputs, dim=0), state


def dropout_between_layers(output: torch.Tensor, rate: float, last: bool = False) -> torch.Tensor:
    """A stacked layer's output as the next layer sees it: dropped out at ``rate`` (nn.GRU/nn.LSTM's ``dropout``),
    untouched for the last layer or at rate 0. Callers pass rate 0 in eval mode."""
    return output if last or rate <= 0.0 else nn.functional.dropout(output, rate, training=True)


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> float:
    if mask is None:
        return float(values.mean())
    mask = mask.to(values.dtype)
    while mask.dim() < values.dim():
        mask = mask.unsqueeze(-1)
    mask = mask.expand_as(values)
    return float((values * mask).sum() / mask.sum().clamp_min(1.0))
