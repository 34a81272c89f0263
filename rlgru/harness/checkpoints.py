"""Which saved state of a run to trust: the newest model file that reads back whole, with its statistics.

A killed process, a full disk or a copy cut short can leave a model zip empty, truncated or corrupted. Rather than
fail on it (and on every retry), resume and evaluation fall back to the newest file that passes these checks and
say which ones they skipped and why. The checks read the zip's directory and CRCs, not the weights, so they take
milliseconds; a file that passes them and still fails to load is skipped the same way by the caller.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

from rlgru.harness.run_dir import Checkpoint, RunDir
from rlgru.runtime.safe_load import UntrustedPickleError, restricted_loads

#: members every SB3 model zip has
MODEL_MEMBERS = ("data", "policy.pth")


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str

    def __str__(self) -> str:
        return f"skipped {self.path}: {self.reason}"


def model_file_problem(path: Path) -> str | None:
    """Why ``path`` is not a whole SB3 model zip, or None if it is one."""
    try:
        size = path.stat().st_size
    except OSError as error:
        return f"cannot read it ({error.strerror})"
    if size == 0:
        return "empty (0 bytes): its write was cut short"
    try:
        with zipfile.ZipFile(path) as archive:
            missing = [name for name in MODEL_MEMBERS if name not in archive.namelist()]
            if missing:
                return f"not an SB3 model (no {', '.join(missing)} inside)"
            broken = archive.testzip()
    except zipfile.BadZipFile:
        return f"not a whole zip archive ({size} bytes; truncated or corrupted)"
    except Exception as error:  # noqa: BLE001 - zlib/EOF errors of a damaged member: the file is unusable
        return f"corrupted ({type(error).__name__}: {error})"
    if broken is not None:
        return f"corrupted (member {broken} fails its CRC check)"
    return None


def saved_timesteps(path: Path) -> int:
    """The step count a model zip was saved at, read from its ``data`` member (no pickle involved)."""
    with zipfile.ZipFile(path) as archive:
        return int(json.loads(archive.read("data")).get("num_timesteps", 0))


def statistics_problem(path: Path | None) -> str | None:
    """Why VecNormalize statistics at ``path`` cannot be used, or None. Untrusted content is the caller's to judge:
    a pickle refused by the safe loader is reported as such, not skipped as damage."""
    if path is None or not path.is_file():
        return "no VecNormalize statistics saved with it"
    try:
        restricted_loads(path.read_bytes(), str(path))
    except UntrustedPickleError:
        return None  # readable; whether to trust it is decided (and reported) when it is loaded
    except Exception as error:  # noqa: BLE001 - truncated or corrupted pickle
        return f"its statistics {path.name} are unreadable ({type(error).__name__})"
    return None


def readable_checkpoints(run: RunDir, with_statistics: bool) -> tuple[list[Checkpoint], list[Skipped]]:
    """Checkpoints newest first that pass the checks, and those that did not (with why)."""
    good: list[Checkpoint] = []
    skipped: list[Skipped] = []
    for checkpoint in reversed(run.list_checkpoints()):
        problem = model_file_problem(checkpoint.model)
        if problem is None and with_statistics:
            problem = statistics_problem(checkpoint.vecnormalize)
        if problem is None:
            good.append(checkpoint)
        else:
            skipped.append(Skipped(checkpoint.model, problem))
    return good, skipped


__all__ = [
    "MODEL_MEMBERS",
    "Skipped",
    "model_file_problem",
    "readable_checkpoints",
    "saved_timesteps",
    "statistics_problem",
]
