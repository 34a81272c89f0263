"""Export a trained recurrent policy, memory included, to ONNX or TorchScript: ``export_policy`` / ``rlgru export``.

The file computes ``(obs, state, episode_start) -> (action, next_state[, value])`` for any batch size, with the
env's ``VecNormalize`` statistics and image handling inside, and carries its metadata (spaces, state shape, core,
versions). Modules: ``core_steps`` (one exportable step per core), ``observations`` (baked preprocessing),
``actions`` (action heads), ``graph`` (the module and its trace), ``metadata``, the two writers, ``runtime`` (run a
file from numpy), ``verify`` (compare a file with its policy on episodes). Needs ``pip install 'rlgru[export]'``
for ONNX.
"""

from __future__ import annotations

from rlgru.export.core_steps import CoreStep, register_step
from rlgru.export.errors import ExportError
from rlgru.export.exporter import FORMATS, ExportResult, export_policy
from rlgru.export.runtime import ExportedRunner, load_exported
from rlgru.export.verify import Comparison, compare_with_policy

__all__ = [
    "FORMATS",
    "Comparison",
    "CoreStep",
    "ExportError",
    "ExportResult",
    "ExportedRunner",
    "compare_with_policy",
    "export_policy",
    "load_exported",
    "register_step",
]
