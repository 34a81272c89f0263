"""Machine-readable task metadata and the Gymnasium registrations built from it.

One ``TaskSpec`` per task: its ids, its difficulty knob and presets, what must be remembered, and the
optimal and memoryless returns for any arguments, so the CLI and the benchmarks can put a learning curve
between its floor and its ceiling.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from envs import bandit, batched, count_recall, key_door, masked, recall, repeat, tmaze

NAMESPACE = "rlgru"
LEVELS = ("Easy", "Medium", "Hard")


@dataclass(frozen=True, kw_only=True)
class TaskSpec:
    """A task: ``gym.make(spec.env_id, **kwargs)`` or ``gym.make(spec.preset_id("Easy"))``.

    ``optimal_return`` and ``memoryless_return`` are expected episode returns for the given constructor
    arguments (defaults filled in); ``returns_exact`` says whether both are exact (symbolic tasks) or documented
    estimates (the control tasks, see the entry point's docstring). ``vector_entry_point`` is the natively
    batched version (``envs.batched``), which ``gym.make_vec`` builds for every id of the task.
    """

    name: str
    env_id: str
    entry_point: Callable[..., gym.Env]
    knob: str
    presets: dict[str, dict[str, Any]] = field(hash=False)
    summary: str
    memory_horizon: str
    optimal: Callable[..., float] = field(repr=False)
    memoryless: Callable[..., float] = field(repr=False)
    category: str = "symbolic"  # symbolic | control | meta-RL | visual
    max_episode_steps: int | None = None  # a registered TimeLimit; the other tasks end episodes themselves
    returns_exact: bool = True
    vector_entry_point: Callable[..., gym.vector.VectorEnv] | None = None

    @property
    def ids(self) -> tuple[str, ...]:
        """The base id, then the preset ids from Easy to Hard."""
        return (self.env_id, *(self.preset_id(level) for level in self.presets))

    def preset_id(self, level: str) -> str:
        if level not in self.presets:
            raise ValueError(f"level must be one of {list(self.presets)}, got {level!r}")
        base, version = self.env_id.rsplit("-", 1)
        return f"{base}-{level}-{version}"

    def defaults(self) -> dict[str, Any]:
        """The entry point's keyword defaults (render_mode left out)."""
        parameters = inspect.signature(self.entry_point).parameters.values()
        return {p.name: p.default for p in parameters if p.name != "render_mode" and p.default is not p.empty}

    def kwargs(self, level: str | None = None, **overrides: Any) -> dict[str, Any]:
        """Full constructor arguments: defaults, then the preset ``level``'s, then ``overrides``."""
        merged = self.defaults()
        unknown = set(overrides) - set(merged)
        if unknown:
            raise TypeError(f"{self.name} takes no argument(s) {sorted(unknown)}; it takes {sorted(merged)}")
        if level is not None:
            self.preset_id(level)
            merged.update(self.presets[level])
        merged.update(overrides)
        return merged

    def optimal_return(self, **kwargs: Any) -> float:
        """Expected episode return of the best policy (an oracle for the bandit, see its docstring)."""
        return float(self.optimal(**self._checked(kwargs)))

    def memoryless_return(self, **kwargs: Any) -> float:
        """Best expected episode return of a policy that sees only the current observation."""
        return float(self.memoryless(**self._checked(kwargs)))

    def make(self, level: str | None = None, **kwargs: Any) -> gym.Env:
        return gym.make(self.env_id if level is None else self.preset_id(level), **kwargs)

    def _checked(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        merged = self.kwargs(**kwargs)
        self.entry_point(**merged).close()  # the constructor's ValueErrors, for bad values
        return merged


def _spec(name: str, entry_point: Callable[..., gym.Env], version: int = 0, **fields: Any) -> TaskSpec:
    return TaskSpec(name=name, env_id=f"{NAMESPACE}/{name}-v{version}", entry_point=entry_point, **fields)


_TASK_LIST: list[TaskSpec] = [
    _spec(
        "TMaze",
        tmaze.TMazeEnv,
        knob="length",
        presets={"Easy": {"length": 4}, "Medium": {"length": 20}, "Hard": {"length": 100}},
        summary="passive T-maze: a cue at step 0 says which arm pays at the end of a corridor",
        memory_horizon="1 bit for length + 1 steps",
        optimal=tmaze.optimal_return,
        memoryless=tmaze.memoryless_return,
        vector_entry_point=batched.TMazeVectorEnv,
    ),
    _spec(
        "RepeatPrevious",
        repeat.RepeatPreviousEnv,
        knob="k",
        presets={
            "Easy": {"k": 2, "length": 16},
            "Medium": {"k": 8, "length": 64},
            "Hard": {"k": 32, "length": 256},
        },
        summary="name the symbol shown k steps ago",
        memory_horizon="the last k symbols, each for k steps",
        optimal=repeat.optimal_return,
        memoryless=repeat.repeat_previous_memoryless,
        vector_entry_point=batched.RepeatPreviousVectorEnv,
    ),
    _spec(
        "RepeatFirst",
        repeat.RepeatFirstEnv,
        knob="length",
        presets={"Easy": {"length": 8}, "Medium": {"length": 64}, "Hard": {"length": 512}},
        summary="name the episode's first symbol at every step, among random distractors",
        memory_horizon="1 symbol for length - 1 steps",
        optimal=repeat.optimal_return,
        memoryless=repeat.repeat_first_memoryless,
        vector_entry_point=batched.RepeatFirstVectorEnv,
    ),
    _spec(
        "CountRecall",
        count_recall.CountRecallEnv,
        knob="length",
        presets={
            "Easy": {"length": 8, "n_symbols": 2, "max_count": 4},
            "Medium": {"length": 32, "n_symbols": 4, "max_count": 8},
            "Hard": {"length": 128, "n_symbols": 4, "max_count": 32},
        },
        summary="count how often the queried symbol has streamed by so far",
        memory_horizon="n_symbols counters for the whole episode (length steps)",
        optimal=count_recall.optimal_return,
        memoryless=count_recall.memoryless_return,
        vector_entry_point=batched.CountRecallVectorEnv,
    ),
    _spec(
        "DelayedRecall",
        recall.DelayedRecallEnv,
        knob="delay",
        presets={"Easy": {"delay": 5}, "Medium": {"delay": 50}, "Hard": {"delay": 300}},
        summary="copy task: see n_items symbols, wait delay blank steps, recite them in order",
        memory_horizon="n_items symbols for n_items + delay steps",
        optimal=recall.optimal_return,
        memoryless=recall.memoryless_return,
        vector_entry_point=batched.DelayedRecallVectorEnv,
    ),
    _spec(
        "MetaBandit",
        bandit.MetaBanditEnv,
        knob="n_arms",
        presets={
            "Easy": {"n_arms": 2, "pulls_per_episode": 2, "episodes_per_trial": 10},
            "Medium": {"n_arms": 5, "pulls_per_episode": 5, "episodes_per_trial": 10},
            "Hard": {"n_arms": 10, "pulls_per_episode": 10, "episodes_per_trial": 10},
        },
        summary="RL² bandit: one Bernoulli bandit per trial of several episodes; info['trial_start'] marks trials",
        memory_horizon="per-arm statistics across the episodes of a trial (episodes_per_trial * pulls_per_episode)",
        optimal=bandit.optimal_return,
        memoryless=bandit.memoryless_return,
        vector_entry_point=batched.MetaBanditVectorEnv,
        category="meta-RL",
    ),
    _spec(
        "KeyDoor",
        key_door.KeyDoorEnv,
        knob="length",
        presets={"Easy": {"length": 5}, "Medium": {"length": 15}, "Hard": {"length": 40}},
        summary="40x40 RGB view: see a key's colour, walk the corridor, open the door of that colour",
        memory_horizon="1 colour for about length - 2 steps, seen as pixels",
        optimal=key_door.optimal_return,
        memoryless=key_door.memoryless_return,
        vector_entry_point=batched.KeyDoorVectorEnv,
        category="visual",
    ),
    _spec(
        "CartPoleNoVel",
        masked.make_cartpole_novel,
        version=1,
        knob="flicker",
        presets={"Easy": {"flicker": 0.0}, "Medium": {"flicker": 0.1}, "Hard": {"flicker": 0.3}},
        summary="CartPole seeing cart position and pole angle only; flicker blanks observations at random",
        memory_horizon="the last few positions, to estimate velocities (longer under flicker)",
        optimal=masked.cartpole_optimal,
        memoryless=masked.cartpole_memoryless,
        vector_entry_point=batched.CartPoleNoVelVectorEnv,
        category="control",
        max_episode_steps=masked.CARTPOLE_STEPS,
        returns_exact=False,
    ),
    _spec(
        "PendulumNoVel",
        masked.make_pendulum_novel,
        version=1,
        knob="flicker",
        presets={"Easy": {"flicker": 0.0}, "Medium": {"flicker": 0.1}, "Hard": {"flicker": 0.3}},
        summary="Pendulum seeing cos and sin of the angle only; flicker blanks observations at random",
        memory_horizon="the last angle or two, to tell the swing direction",
        optimal=masked.pendulum_optimal,
        memoryless=masked.pendulum_memoryless,
        vector_entry_point=batched.PendulumNoVelVectorEnv,
        category="control",
        max_episode_steps=masked.PENDULUM_STEPS,
        returns_exact=False,
    ),
]

TASKS: dict[str, TaskSpec] = {spec.name: spec for spec in _TASK_LIST}


def list_tasks() -> list[TaskSpec]:
    """All tasks, in the order of the README."""
    return list(TASKS.values())


def _entry_point_string(entry_point: Callable[..., gym.Env]) -> str:
    return f"{entry_point.__module__}:{entry_point.__qualname__}"


def register_all() -> None:
    """Register every task's base id and preset ids; ids already registered are left alone (idempotent)."""
    for spec in _TASK_LIST:
        entry_point = _entry_point_string(spec.entry_point)
        vector_entry_point = _entry_point_string(spec.vector_entry_point) if spec.vector_entry_point else None
        for level, env_id in zip((None, *spec.presets), spec.ids, strict=True):
            if env_id in gym.registry:
                continue
            gym.register(
                id=env_id,
                entry_point=entry_point,
                kwargs=dict(spec.presets[level]) if level else {},
                max_episode_steps=spec.max_episode_steps,
                vector_entry_point=vector_entry_point,
            )
