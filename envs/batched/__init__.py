"""Natively batched versions of the tasks: Gymnasium ``VectorEnv``s that step every env with array operations.

``gym.make_vec("rlgru/TMaze-Easy-v0", num_envs=64)`` builds one (the registry names them as each task's
``vector_entry_point``); ``rlgru.env_plumbing.vec_env.BatchedVecEnv`` lets SB3 and rlgru train on them.
"""

from __future__ import annotations

from envs.batched._base import BatchedEnv
from envs.batched.bandit import MetaBanditVectorEnv
from envs.batched.control import CartPoleNoVelVectorEnv, PendulumNoVelVectorEnv
from envs.batched.count_recall import CountRecallVectorEnv
from envs.batched.key_door import KeyDoorVectorEnv
from envs.batched.recall import DelayedRecallVectorEnv
from envs.batched.repeat import RepeatFirstVectorEnv, RepeatPreviousVectorEnv
from envs.batched.tmaze import TMazeVectorEnv

__all__ = [
    "BatchedEnv",
    "CartPoleNoVelVectorEnv",
    "CountRecallVectorEnv",
    "DelayedRecallVectorEnv",
    "KeyDoorVectorEnv",
    "MetaBanditVectorEnv",
    "PendulumNoVelVectorEnv",
    "RepeatFirstVectorEnv",
    "RepeatPreviousVectorEnv",
    "TMazeVectorEnv",
]
