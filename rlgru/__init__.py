"""rlgru: recurrent PPO with GRU/LSTM/RNN memory cores for Stable-Baselines3, plus memory tasks.

``from rlgru import RecurrentPPO`` is a drop-in for ``sb3_contrib.RecurrentPPO``. Importing rlgru also registers
the ``rlgru/`` memory tasks with Gymnasium.
"""

from __future__ import annotations

from rlgru.cores import MemoryCore, register_core
from rlgru.cores.gru import GRUCore
from rlgru.cores.lstm import LSTMCore
from rlgru.cores.rnn import RNNCore
from rlgru.policies import POLICY_ALIASES, RecurrentActorCriticPolicy
from rlgru.ppo import RecurrentPPO

globals().update(POLICY_ALIASES)  # MlpGruPolicy, CnnLstmPolicy, ...: every built-in core's named policies

try:  # the task suite ships beside the library; registering it is a convenience, not a requirement
    import envs as _envs  # noqa: F401
except ModuleNotFoundError as error:  # pragma: no cover - only when rlgru is vendored without envs/
    if error.name != "envs":
        raise

__version__ = "0.1.0"

__all__ = [  # noqa: PLE0604 - the policy names are generated from the core registry
    "GRUCore",
    "LSTMCore",
    "MemoryCore",
    "RNNCore",
    "RecurrentActorCriticPolicy",
    "RecurrentPPO",
    "register_core",
    *POLICY_ALIASES,
]
