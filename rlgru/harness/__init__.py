"""The experiment harness behind the ``rlgru`` command: configs, envs, training runs, evaluation, memory probes.

Data flows one way: ``config`` -> ``env_factory`` -> ``agent`` -> ``train`` (a run directory) -> ``evaluate`` /
``memory_probe`` -> ``plots``. The algorithm (``rlgru.algorithm.ppo``) never imports the harness. Names here are
imported on first use, so the ``rlgru`` command starts without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "HarnessError": "rlgru.harness.errors",
    "RunConfig": "rlgru.harness.config",
    "load_config": "rlgru.harness.config",
}

__all__ = ["HarnessError", "RunConfig", "load_config"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'rlgru.harness' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
