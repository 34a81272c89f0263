"""Memory cores: ``(x[T,B,I], state, episode_starts[T,B]) -> (out[T,B,H], state)``, found by name in the registry.

Built in: GRU, LSTM and plain RNN (PyTorch's cells, fused CPU kernels for GRU and LSTM), minGRU and LRU (linear
recurrences trained with a parallel scan). A user's own core is a ``MemoryCore`` subclass (see ``base.py``).
"""

from __future__ import annotations

from rlgru.cores.base import MemoryCore
from rlgru.cores.registry import (
    BUILTIN_CORES,
    CoreInfo,
    core_label,
    core_names,
    core_settings,
    core_spec,
    describe_core,
    make_core,
    register_core,
    resolve_core,
    validate_core_settings,
)

__all__ = [
    "BUILTIN_CORES",
    "CoreInfo",
    "MemoryCore",
    "core_label",
    "core_names",
    "core_settings",
    "core_spec",
    "describe_core",
    "make_core",
    "register_core",
    "resolve_core",
    "validate_core_settings",
]
