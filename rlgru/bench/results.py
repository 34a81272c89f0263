"""A run's ``result.json``: written atomically, read defensively, and judged complete only with every figure.

A sweep killed at the wrong moment, an older rlgru, or a hand-edited file can leave a result that is missing,
torn, or ``ok`` but without a figure the report needs. Such a run is unfinished: the next sweep runs it again and
the report lists it apart instead of computing a median over ``null``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rlgru.runtime.files import atomic_write_text

RESULT_FILE = "result.json"
#: what identifies a run in the report's tables
IDENTITY_FIELDS = ("task", "core", "seed")
#: figures a finished run's result must have (the report's tables and verdicts read them)
REQUIRED_FIELDS = (
    "timesteps",
    "final_return",
    "wall_seconds",
    "steps_per_second",
    "params",
    "recurrent_params",
    "inference_latency_us",
)


def missing_fields(result: dict[str, Any] | None) -> list[str]:
    """Identity and required fields a result lacks (or holds as null); empty for a complete result."""
    if not result:
        return list(IDENTITY_FIELDS + REQUIRED_FIELDS)
    return [key for key in IDENTITY_FIELDS + REQUIRED_FIELDS if result.get(key) is None]


def is_complete(result: dict[str, Any] | None) -> bool:
    """A result the report can use as a finished run: status ok and every required figure present."""
    return bool(result) and result.get("status") == "ok" and not missing_fields(result)


def write_result(run_path: Path, result: dict[str, Any]) -> None:
    """Atomically, so a sweep killed mid-write never leaves a half result that reads as completed."""
    atomic_write_text(Path(run_path) / RESULT_FILE, json.dumps(result, indent=2) + "\n")


def read_result(run_path: Path) -> dict[str, Any] | None:
    """The result in a run directory; None if there is none or it does not parse as a JSON object."""
    path = Path(run_path) / RESULT_FILE
    if not path.is_file():
        return None
    try:
        result = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return result if isinstance(result, dict) else None


__all__ = [
    "IDENTITY_FIELDS",
    "REQUIRED_FIELDS",
    "RESULT_FILE",
    "is_complete",
    "missing_fields",
    "read_result",
    "write_result",
]
