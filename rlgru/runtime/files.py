"""Crash-safe file writes: a file either keeps its old contents or has all of its new ones, never half.

Every file a run writes goes through here: the bytes go to a temporary file beside the target, are flushed and
fsync'ed, and only then renamed over the target (``os.replace`` is atomic on POSIX and Windows). A process killed at
any moment leaves at worst a stray ``.<name>.tmp-*`` file, which readers never match and ``remove_stale_temporaries``
clears.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

TEMPORARY_MARK = ".tmp-"


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """A handle on a temporary file that replaces ``path`` when the block ends without an error.

    On an error the temporary file is removed and ``path`` is untouched.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open writes whole files: mode 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # os.open with 0o666 (not mkstemp's 0o600) so the file gets the permissions the umask gives any new file
    temporary = path.parent / f".{path.name}{TEMPORARY_MARK}{os.getpid()}-{secrets.token_hex(4)}"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, mode, **({"newline": ""} if mode == "w" else {})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(path.parent)  # the rename itself survives a power cut only once the directory is synced


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_open(path, "w") as handle:
        handle.write(text)


def atomic_pickle(path: str | Path, obj: Any) -> None:
    """``pickle.dump`` to ``path`` atomically (what ``VecNormalize.save`` does, minus the torn file)."""
    with atomic_open(path, "wb") as handle:
        pickle.dump(obj, handle)


def atomic_save(path: str | Path, save: Callable[[IO[bytes]], Any]) -> None:
    """Call ``save(handle)`` (e.g. an SB3 ``model.save``, which takes a binary file object) atomically."""
    with atomic_open(path, "wb") as handle:
        save(handle)


def remove_stale_temporaries(directory: str | Path) -> list[Path]:
    """Delete the temporary files a killed writer left in ``directory``; returns what was removed."""
    directory = Path(directory)
    removed = []
    if directory.is_dir():
        for path in directory.glob(f".*{TEMPORARY_MARK}*"):
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    return removed


def _fsync_directory(directory: Path) -> None:
    if os.name != "posix":  # pragma: no cover - Windows cannot open a directory; its rename is already durable
        return
    with contextlib.suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


__all__ = [
    "TEMPORARY_MARK",
    "atomic_open",
    "atomic_pickle",
    "atomic_save",
    "atomic_write_bytes",
    "atomic_write_text",
    "remove_stale_temporaries",
]
