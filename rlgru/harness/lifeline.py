"""Worker processes that die with the process that started them.

A sweep's pool workers train for minutes. If the sweep itself is killed (``kill -9``, an OOM kill, a closed
terminal), Python gets no chance to stop them, and they would go on training as orphans, writing into run
directories that the next sweep then finds busy. A watchdog thread in each worker notices within a second that its
parent process is gone (it is re-parented) and kills the worker.

Not ``PR_SET_PDEATHSIG``: the kernel ties that to the parent *thread*, and a pool with ``maxtasksperchild`` starts
replacement workers from a helper thread whose exit (when the pool closes) would kill them mid-task, possibly
holding the pool's queue lock, which then deadlocks ``Pool.terminate``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator


def die_with_parent(poll_seconds: float = 0.5) -> None:
    """Make this process end when its parent process does (a ``multiprocessing`` pool initializer)."""
    parent = os.getppid()
    threading.Thread(target=_watch, args=(parent, poll_seconds), name="rlgru-lifeline", daemon=True).start()


def _watch(parent: int, poll_seconds: float) -> None:
    while os.getppid() == parent:
        time.sleep(poll_seconds)
    os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill``, a scheduler's stop) ends the sweep like Ctrl-C: workers stopped, wall time recorded.

    Only in the main thread, where Python runs signal handlers; elsewhere (a sweep run from a thread) nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


__all__ = ["die_with_parent", "terminate_as_interrupt"]
