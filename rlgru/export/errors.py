"""Why an export cannot be done, in one line, and the check that an optional dependency is installed.

Exporting is for people shipping a policy to another runtime: a refusal must say what is unsupported and why, and a
missing package must be named with the command that installs it, not surface as an ImportError deep in torch.
"""

from __future__ import annotations

import importlib
from types import ModuleType

INSTALL_HINT = "pip install 'rlgru[export]'"


class ExportError(ValueError):
    """A policy, option or environment that cannot be exported; ``str(error)`` is the whole message."""


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or fail naming it: ``purpose`` says what needed it (``"writing ONNX files"``)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExportError(f"{purpose} needs the '{module}' package, which is not installed: {INSTALL_HINT}") from None


__all__ = ["INSTALL_HINT", "ExportError", "require"]
