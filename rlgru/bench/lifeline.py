"""Worker processes that die with the process that started them.

A sweep's pool workers train for minutes. If the sweep itself is killed (``kill -9``, an OOM kill, a closed
terminal), Python gets no chance to stop them, and they would go on training as orphans, writing into run
directories that the next sweep then finds busy. On Linux the kernel delivers ``SIGKILL`` to a worker the moment its
parent dies (``PR_SET_PDEATHSIG``); elsewhere a watchdog thread notices the parent is gone within a second.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1


def die_with_parent(poll_seconds: float = 1.0) -> None:
    """Make this process end when its parent does (a ``multiprocessing`` pool initializer)."""
    parent = os.getppid()
    if sys.platform.startswith("linux") and _set_parent_death_signal():
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)
        return
    threading.Thread(target=_watch, args=(parent, poll_seconds), name="rlgru-lifeline", daemon=True).start()


def _set_parent_death_signal() -> bool:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):  # pragma: no cover - no libc prctl: fall back to the watchdog
        return False


def _watch(parent: int, poll_seconds: float) -> None:  # pragma: no cover - the non-Linux path
    while os.getppid() == parent:
        time.sleep(poll_seconds)
    os.kill(os.getpid(), signal.SIGKILL)


__all__ = ["die_with_parent"]
