"""The experiment harness behind the ``rlgru`` command: configs, envs, training runs, evaluation, memory probes.

Data flows one way: ``config`` -> ``env_factory`` -> ``agent`` -> ``train`` (a run directory) -> ``evaluate`` /
``memory_probe`` -> ``plots``. The algorithm (``rlgru.ppo``) never imports the harness.
"""

from __future__ import annotations

from rlgru.harness.config import RunConfig, load_config
from rlgru.harness.errors import HarnessError

__all__ = ["HarnessError", "RunConfig", "load_config"]
