"""rlgru: recurrent PPO with GRU/LSTM/RNN memory cores for Stable-Baselines3, plus memory tasks.

``from rlgru import RecurrentPPO`` is a drop-in for ``sb3_contrib.RecurrentPPO``. Importing rlgru also registers
the ``rlgru/`` memory tasks with Gymnasium. The library's names are imported on first use (PEP 562), so that
``import rlgru.<module>`` (the ``rlgru`` command, a subprocess env worker) does not pay for torch and SB3 until
it needs them.
"""

from __future__ import annotations

import importlib
from typing import Any

from rlgru import _moved_modules

try:  # the task suite ships beside the library; registering it is a convenience, not a requirement
    import envs as _envs  # noqa: F401
except ModuleNotFoundError as error:  # pragma: no cover - only when rlgru is vendored without envs/
    if error.name != "envs":
        raise

__version__ = "0.1.0"

_moved_modules.install()  # old module paths (models saved before the wings) keep importing

#: public name -> the module that defines it
_LAZY = {
    "GRUCore": "rlgru.cores.gru",
    "LSTMCore": "rlgru.cores.lstm",
    "RNNCore": "rlgru.cores.rnn",
    "MemoryCore": "rlgru.cores",
    "register_core": "rlgru.cores",
    "RecurrentActorCriticPolicy": "rlgru.algorithm.policies",
    "RecurrentPPO": "rlgru.algorithm.ppo",
    "GridCNN": "rlgru.algorithm.extractors",
}


def _policy_aliases() -> dict[str, Any]:
    from rlgru.algorithm.policies import POLICY_ALIASES

    return POLICY_ALIASES


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name == "__all__":
        value = [*_LAZY, *_policy_aliases()]
    elif name.endswith("Policy") and name in _policy_aliases():  # MlpGruPolicy, CnnLstmPolicy, ...
        value = _policy_aliases()[name]
    else:  # also how ``from rlgru import <submodule>`` learns to import the submodule
        raise AttributeError(f"module 'rlgru' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_policy_aliases()})
