"""``module:Class`` paths in configs (a memory core, a features extractor): import the object they name, or say in
one line why not."""

from __future__ import annotations

import importlib
from typing import Any


def import_object(path: str, label: str = "") -> Any:
    """The object at ``module:attribute.path``; ``ValueError`` (starting ``label: `` if given) when there is none."""
    prefix = f"{label}: " if label else ""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"{prefix}expected 'module:Class', got {path!r}")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"{prefix}cannot import module {module_name!r} ({error})") from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ValueError(f"{prefix}module {module_name!r} has no {attribute!r}")
        target = getattr(target, part)
    return target


__all__ = ["import_object"]
