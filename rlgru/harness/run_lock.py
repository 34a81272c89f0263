"""One writer per run directory: an exclusive lock held from the first moment a process touches a run to its end.

The lock is an ``flock`` on ``<run>/run.lock``, so the kernel releases it when the holder dies, ``kill -9``
included: a killed run never blocks its own ``--resume``, and no stale-lock guessing is needed. The file records
who holds it, for the message a second writer gets.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from rlgru.harness.errors import HarnessError

LOCK_FILE = "run.lock"

#: lock files this process holds -> (descriptor, depth): a run claimed twice by one process (the bench runner, then
#: training inside it) is the same claim, not a conflict
_held: dict[Path, tuple[int, int]] = {}


class RunInUseError(HarnessError):
    """Another process is writing this run directory."""


@contextlib.contextmanager
def claim_run(path: str | Path, what: str = "run directory", hint: str = "choose another --run-dir") -> Iterator[Path]:
    """Hold ``path`` (created if missing) for this process; ``RunInUseError`` naming the holder if another has it.

    ``what`` and ``hint`` word that error: "another rlgru process is writing this <what> (...); wait for it to end
    or <hint>".
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    lock_path = (path / LOCK_FILE).resolve()
    if lock_path in _held:
        descriptor, depth = _held[lock_path]
        _held[lock_path] = (descriptor, depth + 1)
    else:
        descriptor = _acquire(lock_path, path, what, hint)
        _held[lock_path] = (descriptor, 1)
    try:
        yield path
    finally:
        descriptor, depth = _held[lock_path]
        if depth > 1:
            _held[lock_path] = (descriptor, depth - 1)
        else:
            del _held[lock_path]
            os.close(descriptor)  # releases the flock; the file stays, so no second file can ever be locked instead


def _acquire(lock_path: Path, run_path: Path, what: str, hint: str) -> int:
    descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no flock; one writer is then the user's business
        return descriptor
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        holder = os.pread(descriptor, 512, 0).decode(errors="replace").strip()
        os.close(descriptor)
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise RunInUseError(
                f"another rlgru process is writing this {what} ({holder or 'holder unknown'}); "
                f"wait for it to end or {hint}",
                where=run_path,
            ) from None
        print(
            f"warning: cannot lock {lock_path} ({error.strerror}); not guarding against a second writer",
            file=sys.stderr,
        )
        return os.open(lock_path, os.O_RDONLY)
    os.ftruncate(descriptor, 0)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    os.pwrite(descriptor, f"pid {os.getpid()} on {socket.gethostname()}, since {started}\n".encode(), 0)
    return descriptor


__all__ = ["LOCK_FILE", "RunInUseError", "claim_run"]
