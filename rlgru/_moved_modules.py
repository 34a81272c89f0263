"""Old module paths of rlgru, before the package was arranged in wings, kept importable as aliases.

Models and run directories saved by earlier releases name classes and functions by the module that defined them
then (``rlgru.policies.RecurrentActorCriticPolicy`` in a pickled zip, ``rlgru.popgym_wrappers:POPGymWrappers`` in a
config); users' code may import them too. An old name imports the module at its new place (the same module object,
so classes are identical), which keeps all of it loading, evaluating and resuming.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

#: old module -> its new place (packages cover their submodules: rlgru.harness.commands.train -> rlgru.cli...)
MOVED: dict[str, str] = {
    "rlgru.ppo": "rlgru.algorithm.ppo",
    "rlgru.policies": "rlgru.algorithm.policies",
    "rlgru.buffers": "rlgru.algorithm.buffers",
    "rlgru.hidden_reset": "rlgru.algorithm.hidden_reset",
    "rlgru.action_heads": "rlgru.algorithm.action_heads",
    "rlgru.extractors": "rlgru.algorithm.extractors",
    "rlgru.extractor_choice": "rlgru.algorithm.extractor_choice",
    "rlgru.fused_heads": "rlgru.fast.heads",
    "rlgru.fused_act": "rlgru.fast.act",
    "rlgru.fused_update": "rlgru.fast.update",
    "rlgru.flat_grads": "rlgru.fast.flat_grads",
    "rlgru.optim_step": "rlgru.fast.optim_step",
    "rlgru.files": "rlgru.runtime.files",
    "rlgru.safe_load": "rlgru.runtime.safe_load",
    "rlgru.divergence": "rlgru.runtime.divergence",
    "rlgru.object_paths": "rlgru.runtime.object_paths",
    "rlgru.vec_env": "rlgru.env_plumbing.vec_env",
    "rlgru.wrappers": "rlgru.env_plumbing.wrappers",
    "rlgru.popgym_wrappers": "rlgru.env_plumbing.popgym_wrappers",
    "rlgru.suite_wrappers": "rlgru.env_plumbing.suite_wrappers",
    "rlgru.harness.commands": "rlgru.cli.commands",
    "rlgru.harness.cli_arguments": "rlgru.cli.arguments",
    "rlgru.bench.lifeline": "rlgru.harness.lifeline",
    "rlgru.bench.html_page": "rlgru.harness.html_page",
}


def new_name(name: str) -> str | None:
    """Where the module once called ``name`` lives now; None when it did not move."""
    for old, new in MOVED.items():
        if name == old or name.startswith(old + "."):
            return new + name[len(old):]
    return None


def current_object_path(path: str) -> str:
    """``module:Name`` with an old module replaced by its new place (as configs saved before the move name them)."""
    module, colon, name = path.partition(":")
    moved = new_name(module) if colon else None
    return f"{moved}:{name}" if moved else path


class _OldNameFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers an old name with the module at its new place (``sys.modules`` then holds it under both names)."""

    def __init__(self) -> None:
        self._own_specs: dict[str, importlib.machinery.ModuleSpec | None] = {}

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        return importlib.util.spec_from_loader(fullname, self) if new_name(fullname) else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(new_name(spec.name) or spec.name)
        self._own_specs[spec.name] = module.__spec__  # the import system is about to set the alias's instead
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = self._own_specs.pop(module.__spec__.name, module.__spec__)


def install() -> None:
    """Make the old names importable (idempotent)."""
    if not any(isinstance(finder, _OldNameFinder) for finder in sys.meta_path):
        sys.meta_path.append(_OldNameFinder())


__all__ = ["MOVED", "current_object_path", "install", "new_name"]
