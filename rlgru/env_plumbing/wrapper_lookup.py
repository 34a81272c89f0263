"""Wrapper names in configs (``wrappers: [TimeLimit, my_pkg.wrappers:MyWrapper]``) to wrapper classes."""

from __future__ import annotations

import importlib
from collections.abc import Callable

import gymnasium as gym

#: where a bare class name is looked up, in order
WRAPPER_MODULES = ("envs.wrappers", "gymnasium.wrappers")


def resolve_wrapper(name: str) -> Callable[..., gym.Env]:
    """``module:Class``, or a class name from ``envs.wrappers`` / ``gymnasium.wrappers``."""
    if ":" in name:
        module_name, _, attribute = name.partition(":")
        return getattr(importlib.import_module(module_name), attribute)
    for module_name in WRAPPER_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        wrapper = getattr(module, name, None)
        if isinstance(wrapper, type) and issubclass(wrapper, gym.Wrapper):
            return wrapper
    raise LookupError(f"unknown wrapper {name!r}; use a class of {' or '.join(WRAPPER_MODULES)} or module:Class")


__all__ = ["WRAPPER_MODULES", "resolve_wrapper"]
