"""Partially observable memory tasks for recurrent agents, registered with Gymnasium under ``rlgru/``.

``import envs`` registers every task (again importing, or calling ``register_all()``, is harmless), so
``gym.make("rlgru/TMaze-v0", length=20)`` or ``gym.make("rlgru/TMaze-Easy-v0")`` works. ``TASKS`` maps
task names to their ``TaskSpec`` (knob, presets, memory horizon, optimal and memoryless returns).
"""

from __future__ import annotations

from envs.bandit import MetaBanditEnv
from envs.count_recall import CountRecallEnv
from envs.key_door import KeyDoorEnv
from envs.masked import make_cartpole_novel, make_pendulum_novel
from envs.recall import DelayedRecallEnv
from envs.registry import LEVELS, NAMESPACE, TASKS, TaskSpec, list_tasks, register_all
from envs.repeat import RepeatFirstEnv, RepeatPreviousEnv
from envs.tmaze import TMazeEnv
from envs.wrappers import FlickerObservation, MaskObservation, NoisyObservation

register_all()

__all__ = [
    "LEVELS",
    "NAMESPACE",
    "TASKS",
    "CountRecallEnv",
    "DelayedRecallEnv",
    "FlickerObservation",
    "KeyDoorEnv",
    "MaskObservation",
    "MetaBanditEnv",
    "NoisyObservation",
    "RepeatFirstEnv",
    "RepeatPreviousEnv",
    "TMazeEnv",
    "TaskSpec",
    "list_tasks",
    "make_cartpole_novel",
    "make_pendulum_novel",
    "register_all",
]
