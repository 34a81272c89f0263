"""rlgru: recurrent PPO with GRU/LSTM/RNN memory cores for Stable-Baselines3, plus memory tasks.

``from rlgru import RecurrentPPO`` is a drop-in for ``sb3_contrib.RecurrentPPO``. Importing rlgru also registers
the ``rlgru/`` memory tasks with Gymnasium.
"""

from __future__ import annotations

from rlgru.cores import GRUCore, LSTMCore, RNNCore
from rlgru.policies import (
    CnnGruPolicy,
    CnnLstmPolicy,
    CnnRnnPolicy,
    MlpGruPolicy,
    MlpLstmPolicy,
    MlpRnnPolicy,
    MultiInputGruPolicy,
    MultiInputLstmPolicy,
    MultiInputRnnPolicy,
    RecurrentActorCriticPolicy,
)
from rlgru.ppo import RecurrentPPO

try:  # the task suite ships beside the library; registering it is a convenience, not a requirement
    import envs as _envs  # noqa: F401
except ModuleNotFoundError as error:  # pragma: no cover - only when rlgru is vendored without envs/
    if error.name != "envs":
        raise

__version__ = "0.1.0"

__all__ = [
    "CnnGruPolicy",
    "CnnLstmPolicy",
    "CnnRnnPolicy",
    "GRUCore",
    "LSTMCore",
    "MlpGruPolicy",
    "MlpLstmPolicy",
    "MlpRnnPolicy",
    "MultiInputGruPolicy",
    "MultiInputLstmPolicy",
    "MultiInputRnnPolicy",
    "RNNCore",
    "RecurrentActorCriticPolicy",
    "RecurrentPPO",
]
