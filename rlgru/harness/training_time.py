"""How long a run has spent training, summed over every process that trained it, so throughput survives resumes.

``training_time.csv`` gets a row at each checkpoint and at the end: cumulative seconds spent training (evaluation
left out) and evaluating. Resuming cuts it back to the checkpoint's step and continues its sums, so a run killed and
resumed reports the time of the steps it kept, and a run whose model was saved just before a kill still has its
throughput on record.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlgru.harness.run_logs import append_row, read_rows, truncate_rows

COLUMNS = ("timesteps", "train_seconds", "eval_seconds", "timed_from")


@dataclass(frozen=True)
class Timing:
    train_seconds: float | None
    eval_seconds: float | None
    #: steps the seconds cover: all of the run's, unless it was resumed from a state saved without timing
    timed_steps: int


class TrainingClock:
    """Cumulative training time of a run; ``evaluation`` (a callback with ``seconds``) is left out of it."""

    def __init__(self, path: Path, resume_step: int | None = None) -> None:
        self.path = path
        self.evaluation: Any = None
        self._started = time.perf_counter()
        self._train, self._eval, self._timed_from, self._steps = 0.0, 0.0, resume_step or 0, resume_step or 0
        if resume_step is not None:
            truncate_rows(path, resume_step)
            rows = [row for row in read_rows(path) if int(row["timesteps"]) == resume_step]
            if rows:
                row = rows[-1]
                self._train, self._eval = float(row["train_seconds"]), float(row["eval_seconds"])
                self._timed_from = int(row["timed_from"])

    def start(self) -> None:
        """Training starts now (loading and env creation are not training time)."""
        self._started = time.perf_counter()

    def record(self, steps: int) -> None:
        """Append the sums at ``steps`` (called right before a checkpoint is saved, and at the end)."""
        self._steps = steps
        timing = self.totals()
        append_row(
            self.path, COLUMNS, [steps, f"{timing.train_seconds:.3f}", f"{timing.eval_seconds:.3f}", self._timed_from]
        )

    def totals(self) -> Timing:
        evaluating = getattr(self.evaluation, "seconds", 0.0)
        training = time.perf_counter() - self._started - evaluating
        return Timing(self._train + training, self._eval + evaluating, self._steps - self._timed_from)


def recorded_timing(path: Path) -> Timing | None:
    """The sums at the newest row of a run's ``training_time.csv``; None if it has none."""
    rows = read_rows(path)
    if not rows:
        return None
    row = rows[-1]
    return Timing(
        float(row["train_seconds"]), float(row["eval_seconds"]), int(row["timesteps"]) - int(row["timed_from"])
    )


__all__ = ["COLUMNS", "Timing", "TrainingClock", "recorded_timing"]
