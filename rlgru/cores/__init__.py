"""Memory cores: ``(x[T,B,I], state, episode_starts[T,B]) -> (out[T,B,H], state)``, found by name in the registry.

Built in: GRU, LSTM and plain RNN (PyTorch's cells, fused CPU kernels for GRU and LSTM), minGRU and LRU (linear
recurrences trained with a reset-aware scan). A user's own core is a ``MemoryCore`` subclass (see ``base.py``);
``rlgru.cores.registry`` has the rest of the registry's API (settings schemas, specs, labels).
"""

from __future__ import annotations

from rlgru.cores.base import MemoryCore
from rlgru.cores.registry import core_names, describe_core, make_core, register_core, resolve_core

__all__ = ["MemoryCore", "core_names", "describe_core", "make_core", "register_core", "resolve_core"]
