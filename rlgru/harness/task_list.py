"""What tasks are registered: ``envs.TASKS`` first, then any other ``rlgru/`` id in Gymnasium's registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

NAMESPACE_PREFIX = "rlgru/"


@dataclass(frozen=True)
class TaskRow:
    name: str
    env_id: str
    knob: str | None
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    category: str = ""
    summary: str = ""
    references: dict[str, tuple[float, float]] = field(default_factory=dict)  # level -> (optimal, memoryless)
    exact: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "env_id": self.env_id,
            "knob": self.knob,
            "presets": self.presets,
            "category": self.category,
            "summary": self.summary,
            "references": {
                level: {"optimal_return": opt, "memoryless_return": mem}
                for level, (opt, mem) in self.references.items()
            },
            "returns_exact": self.exact,
        }


def registered_tasks() -> list[TaskRow]:
    """Every task with its knob and presets; ids registered outside ``envs.TASKS`` appear with what is known."""
    rows: list[TaskRow] = []
    covered: set[str] = set()
    try:
        import envs
    except ModuleNotFoundError:  # pragma: no cover - rlgru without its task suite
        envs = None
    for spec in getattr(envs, "TASKS", {}).values():
        references = {}
        for level in spec.presets:
            kwargs = spec.kwargs(level)
            references[level] = (spec.optimal_return(**kwargs), spec.memoryless_return(**kwargs))
        rows.append(
            TaskRow(
                spec.name,
                spec.env_id,
                spec.knob,
                dict(spec.presets),
                spec.category,
                spec.summary,
                references,
                spec.returns_exact,
            )
        )
        covered.update(spec.ids)
    for env_id, env_spec in sorted(gym.registry.items()):
        if env_id.startswith(NAMESPACE_PREFIX) and env_id not in covered:
            name = env_id.removeprefix(NAMESPACE_PREFIX)
            rows.append(TaskRow(name, env_id, None, {"registered": dict(env_spec.kwargs)} if env_spec.kwargs else {}))
    return rows


__all__ = ["TaskRow", "registered_tasks"]
