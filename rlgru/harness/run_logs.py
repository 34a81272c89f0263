"""A run's step-indexed logs (``evaluations.csv``, ``training_time.csv``, TensorBoard) and their rewind on resume.

A killed run has logged some steps after its last checkpoint; the resumed run trains those steps again. So resuming
first cuts every log back to the checkpoint's step: CSV rows after it are dropped (the file rewritten atomically)
and TensorBoard is reopened with ``purge_step``, which tells it to discard the old events from that step on. Every
logged step then appears exactly once.
"""

from __future__ import annotations

import csv
import io
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from stable_baselines3.common.logger import HumanOutputFormat, KVWriter, Logger, TensorBoardOutputFormat

from rlgru.runtime.files import atomic_write_text

STEP_COLUMN = "timesteps"


def read_rows(path: Path) -> list[dict[str, str]]:
    """Rows of a step-indexed CSV; rows without a whole step number (a torn line) are left out."""
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return [row for row in csv.DictReader(handle) if _step(row) is not None]


def append_row(path: Path, header: Sequence[str], row: Sequence[object]) -> None:
    """Add a row by rewriting the whole file atomically (these logs get a row per evaluation or checkpoint)."""
    rows = [[existing.get(column, "") for column in header] for existing in read_rows(path)]
    _write(path, header, [*rows, list(row)])


def truncate_rows(path: Path, steps: int) -> int:
    """Drop rows logged after ``steps``; returns how many were dropped."""
    if not path.is_file():
        return 0
    with path.open(newline="") as handle:
        header = next(csv.reader(handle), None)
    if not header:
        return 0
    rows = read_rows(path)
    kept = [row for row in rows if (_step(row) or 0) <= steps]
    _write(path, header, [[row.get(column, "") for column in header] for row in kept])
    return len(rows) - len(kept)


def _write(path: Path, header: Sequence[str], rows: list[list[object]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def _step(row: dict[str, str]) -> int | None:
    try:
        return int(row.get(STEP_COLUMN) or "")
    except ValueError:
        return None


class _PurgingTensorBoardOutput(TensorBoardOutputFormat):
    """SB3's TensorBoard writer, opened with ``purge_step`` (SB3 has no argument for it)."""

    def __init__(self, folder: str, purge_step: int | None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=folder, purge_step=purge_step)
        self._is_closed = False


def _wait_for_a_later_second(folder: Path) -> None:
    """TensorBoard reads event files in name order, and names start with the second they were created in (then
    host and pid). A resumed run's file must sort after the killed run's, or its purge is read first and the old
    events after it (out of order, which purges the new ones): so it is created in a later second than any file
    there."""
    seconds = [
        int(part) for path in folder.glob("events.out.tfevents.*") if (part := path.name.split(".")[3]).isdigit()
    ]
    latest = max(seconds, default=0)
    while int(time.time()) <= latest:
        time.sleep(latest + 1 - time.time() + 0.01)


def tensorboard_logger(root: Path, name: str, *, resume_step: int | None, verbose: int = 0) -> Logger:
    """The logger SB3 would configure (``<root>/<name>_<n>``, stdout too when verbose), continuing the newest event
    directory on resume with everything after ``resume_step`` purged."""
    numbers = [int(p.name.rsplit("_", 1)[1]) for p in root.glob(f"{name}_*") if p.name.rsplit("_", 1)[1].isdigit()]
    latest = max(numbers, default=0)
    resumed = resume_step is not None and latest > 0
    folder = root / f"{name}_{latest if resumed else latest + 1}"
    folder.mkdir(parents=True, exist_ok=True)
    if resumed:
        _wait_for_a_later_second(folder)
    outputs: list[KVWriter] = [_PurgingTensorBoardOutput(str(folder), resume_step + 1 if resumed else None)]
    if verbose >= 1:
        outputs.insert(0, HumanOutputFormat(sys.stdout))
    return Logger(folder=str(folder), output_formats=outputs)


__all__ = ["STEP_COLUMN", "append_row", "read_rows", "tensorboard_logger", "truncate_rows"]
