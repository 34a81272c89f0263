"""Optimal and memoryless returns of our tasks, so a result can be read between its floor and its ceiling."""

from __future__ import annotations

from typing import Any


def task_reference(env_id: str, env_kwargs: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """``{"task", "optimal_return", "memoryless_return", "exact"}`` for an ``rlgru/`` id, else ``None``.

    ``env_id`` may carry a module prefix (``envs:rlgru/TMaze-v0``); presets are matched by their ids.
    """
    try:
        from envs import TASKS
    except ModuleNotFoundError:  # pragma: no cover - rlgru without its task suite
        return None
    bare_id = env_id.rpartition(":")[2]
    for spec in TASKS.values():
        for level, task_id in zip((None, *spec.presets), spec.ids, strict=True):
            if task_id != bare_id:
                continue
            try:
                kwargs = spec.kwargs(level, **(env_kwargs or {}))
                return {
                    "task": spec.name,
                    "level": level,
                    "optimal_return": spec.optimal_return(**kwargs),
                    "memoryless_return": spec.memoryless_return(**kwargs),
                    "exact": spec.returns_exact,
                }
            except (TypeError, ValueError):  # kwargs the spec cannot price (render_mode, say): no reference
                return None
    return None


__all__ = ["task_reference"]
