"""The layout of a run directory, in one place, so training writes and evaluation reads the same paths.

::

    runs/<config>-s<seed>-<YYYYmmdd-HHMMSS>/
        run.lock                held (flock) by the one process writing the run; says which
        config.yaml             resolved config (defaults filled in, overrides applied)
        model.zip               final model (SB3 zip: weights, optimizer state, hyper-parameters)
        vecnormalize.pkl        final VecNormalize statistics, when the config normalises
        checkpoints/            model_<steps>_steps.zip (+ model_vecnormalize_<steps>_steps.pkl)
        tb/RecurrentPPO_1/      TensorBoard events (SB3 scalars and memory/*); --resume continues this one
        evaluations.csv         periodic evaluations (timesteps, mean, std), when evaluation.freq > 0
        training_time.csv       seconds spent training and evaluating up to each checkpoint, summed over resumes
        eval.json               final deterministic evaluation
        fast_paths.json         which fast paths the training took, and why not the others (rlgru.fast.plan)
        memory_probe/           written by `rlgru eval --memory-probe`
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

CHECKPOINT_PREFIX = "model"
TB_LOG_NAME = "RecurrentPPO"
_CHECKPOINT = re.compile(rf"^{CHECKPOINT_PREFIX}_(\d+)_steps\.zip$")


@dataclass(frozen=True)
class Checkpoint:
    steps: int
    model: Path
    vecnormalize: Path | None


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def model(self) -> Path:
        return self.path / "model.zip"

    @property
    def vecnormalize(self) -> Path:
        return self.path / "vecnormalize.pkl"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def tensorboard(self) -> Path:
        return self.path / "tb"

    @property
    def eval_json(self) -> Path:
        return self.path / "eval.json"

    @property
    def fast_paths_json(self) -> Path:
        return self.path / "fast_paths.json"

    @property
    def evaluations_csv(self) -> Path:
        return self.path / "evaluations.csv"

    @property
    def training_time_csv(self) -> Path:
        return self.path / "training_time.csv"

    @property
    def memory_probe(self) -> Path:
        return self.path / "memory_probe"

    def list_checkpoints(self) -> list[Checkpoint]:
        """Checkpoints, oldest first; the VecNormalize file is paired by step count."""
        found = []
        for path in self.checkpoints.glob(f"{CHECKPOINT_PREFIX}_*_steps.zip"):
            match = _CHECKPOINT.match(path.name)
            if match:
                steps = int(match.group(1))
                found.append(Checkpoint(steps, path, checkpoint_vecnormalize(path)))
        return sorted(found, key=lambda checkpoint: checkpoint.steps)

    def latest_checkpoint(self) -> Checkpoint | None:
        checkpoints = self.list_checkpoints()
        return checkpoints[-1] if checkpoints else None


def checkpoint_vecnormalize(model_path: Path) -> Path | None:
    """The statistics saved with a checkpoint (SB3 ``CheckpointCallback`` naming), if any."""
    match = _CHECKPOINT.match(model_path.name)
    if not match:
        return None
    path = model_path.with_name(f"{CHECKPOINT_PREFIX}_vecnormalize_{match.group(1)}_steps.pkl")
    return path if path.exists() else None


def new_run_dir(root: Path, config_name: str, seed: int) -> RunDir:
    """A fresh ``<root>/<config>-s<seed>-<timestamp>``, created here (suffixed if two runs start in the same second:
    ``mkdir`` either creates the directory or fails, so two processes never pick the same one)."""
    stem = f"{config_name}-s{seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    root.mkdir(parents=True, exist_ok=True)
    path, counter = root / stem, 2
    while True:
        try:
            path.mkdir()
            return RunDir(path)
        except FileExistsError:
            path = root / f"{stem}-{counter}"
            counter += 1


def latest_run_dir(root: Path, config_name: str, seed: int) -> RunDir | None:
    """The newest run of a config and seed, for ``--resume`` without ``--run-dir``."""
    candidates = [p for p in root.glob(f"{config_name}-s{seed}-*") if (p / "config.yaml").is_file()]
    if not candidates:
        return None
    return RunDir(max(candidates, key=lambda p: p.name))  # names end in a sortable timestamp


__all__ = [
    "CHECKPOINT_PREFIX",
    "TB_LOG_NAME",
    "Checkpoint",
    "RunDir",
    "checkpoint_vecnormalize",
    "latest_run_dir",
    "new_run_dir",
]
