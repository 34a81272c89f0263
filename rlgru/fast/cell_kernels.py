"""PPO's operators on a fused memory cell (``csrc/ppo_<cell>.cpp``): the whole minibatch and the rollout step.

They live here rather than in the cell's own kernel so that the cores know nothing of PPO: each extension compiles
the cell's code from ``rlgru/cores/csrc`` again beside the PPO code (one compile, no dispatcher between them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlgru.cores import _kernel_build

CSRC = Path(__file__).resolve().parent / "csrc"
#: no switch of its own: the plan uses these only with the one-call paths, which have theirs (act, update)
DISABLE_ENV = _kernel_build.NO_FAST_PATHS_ENV

_KERNELS: dict[str, _kernel_build.CompiledKernel] = {}


def ppo_kernel(cell: Any) -> _kernel_build.CompiledKernel:
    """The PPO kernel of a ``rlgru.cores.fused.FusedCell`` (built at most once per process, on first use)."""
    name = cell.name.lower()
    if name not in _KERNELS:
        _KERNELS[name] = _kernel_build.CompiledKernel(
            f"rlgru_ppo_{name}",
            CSRC / f"ppo_{name}.cpp",
            DISABLE_ENV,
            f"PPO kernel of the fused {cell.name} cell",
            "rollout steps and PPO updates take the autograd path instead",
            check_op="ppo_minibatch",
        )
    return _KERNELS[name]


def release_cached_memory() -> None:
    """Free the PPO kernels' pooled buffers (each extension keeps its own pool)."""
    for kernel in _KERNELS.values():
        kernel.release_cached_memory()


__all__ = ["ppo_kernel", "release_cached_memory"]
