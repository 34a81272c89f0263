"""Memory cores: ``(x[T,B,I], state, episode_starts[T,B]) -> (out[T,B,H], state)`` for GRU, LSTM and RNN."""

from __future__ import annotations

from rlgru.cores.base import MemoryCore
from rlgru.cores.gru import GRUCore
from rlgru.cores.lstm import LSTMCore
from rlgru.cores.rnn import RNNCore

CORES: dict[str, type[MemoryCore]] = {"gru": GRUCore, "lstm": LSTMCore, "rnn": RNNCore}


def make_core(kind: str, input_size: int, hidden_size: int, n_layers: int = 1) -> MemoryCore:
    """Build a core by name; the names are the ones configs and reports use."""
    try:
        core_class = CORES[kind]
    except KeyError:
        raise ValueError(f"unknown core {kind!r}; choose one of {sorted(CORES)}") from None
    # Spaces report sizes as numpy integers, which torch's RNN modules refuse.
    return core_class(int(input_size), int(hidden_size), int(n_layers))


__all__ = ["CORES", "GRUCore", "LSTMCore", "MemoryCore", "RNNCore", "make_core"]
