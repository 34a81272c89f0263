"""Where trials run: worker processes on this machine, or Ray tasks on a cluster. Both answer the driver the same
way: which trials ended, with their result, or with no result and why (the worker died).

Local workers are spawned once and run one trial after another (a fresh process costs seconds of imports and
kernel loading); each dies with the driver (``rlgru.harness.lifeline``), and one that dies is replaced. A Ray task
whose node is lost is rerun by Ray (``RAY_MAX_RETRIES``) and resumes its trial's runs from their checkpoints where
the file system is shared.
"""

from __future__ import annotations

import multiprocessing
import signal
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol

from rlgru.harness.errors import HarnessError
from rlgru.harness.lifeline import die_with_parent
from rlgru.tune.trial_run import TrialSpec, execute_trial

#: seconds the driver waits for a worker at a time before it looks at the clock (--timeout) again
POLL_SECONDS = 1.0
RAY_MAX_RETRIES = 3


@dataclass
class Finished:
    number: int
    result: dict[str, Any] | None
    cause: str = ""


class Launcher(Protocol):
    capacity: int

    def start(self, spec: TrialSpec) -> None: ...

    def wait(self) -> list[Finished]: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...


def make_launcher(backend: str, workers: int, address: str | None) -> Launcher:
    if backend == "local":
        return LocalLauncher(workers)
    if backend == "ray":
        return RayLauncher(workers, address)
    raise HarnessError(f"unknown backend {backend!r}; choose local or ray", where="--backend")


def _worker_loop(connection: Connection) -> None:
    """A worker process: run the trials it is sent, one at a time, until its pipe closes."""
    die_with_parent()
    while True:
        try:
            spec_data = connection.recv()
        except (EOFError, OSError):
            return
        connection.send(execute_trial(spec_data))


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    connection: Connection
    trial: int | None = None


class LocalLauncher:
    """``workers`` spawned processes that each run one trial at a time and live for the whole study.

    A process is started once (importing torch and loading the kernels takes seconds, often more than a short trial
    trains), not once per trial. A worker that dies mid-trial is noticed at once (its pipe closes) and replaced.
    """

    def __init__(self, workers: int) -> None:
        self.capacity = workers
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []

    def start(self, spec: TrialSpec) -> None:
        worker = next((w for w in self._workers if w.trial is None), None) or self._spawn()
        worker.connection.send(spec.as_dict())
        worker.trial = spec.number

    def _spawn(self) -> _Worker:
        mine, theirs = self._context.Pipe(duplex=True)
        process = self._context.Process(target=_worker_loop, args=(theirs,), name="rlgru-tune-worker", daemon=True)
        process.start()
        theirs.close()  # the child holds the only other end: its death shows here as end-of-file
        worker = _Worker(process, mine)
        self._workers.append(worker)
        return worker

    def wait(self) -> list[Finished]:
        busy = [w for w in self._workers if w.trial is not None]
        if not busy:
            return []
        wait([w.connection for w in busy], timeout=POLL_SECONDS)
        finished = []
        for worker in busy:
            number = worker.trial
            assert number is not None
            try:
                if not worker.connection.poll():
                    continue
                result = worker.connection.recv()
            except (EOFError, OSError):  # the worker died before it answered
                worker.process.join(timeout=10)
                worker.connection.close()
                self._workers.remove(worker)
                finished.append(Finished(number, None, _death_cause(worker.process.exitcode)))
                continue
            worker.trial = None
            finished.append(Finished(number, result))
        return finished

    def stop(self) -> None:
        for worker in self._workers:
            worker.process.terminate()
        for worker in self._workers:
            worker.process.join(timeout=10)

    def close(self) -> None:
        for worker in self._workers:
            worker.connection.close()  # an idle worker's recv() ends, and it exits
        for worker in self._workers:
            worker.process.join(timeout=10)
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join(timeout=10)
        self._workers.clear()


def _death_cause(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"its worker was killed ({name})"
    return f"its worker exited with status {exitcode} without a result"


class RayLauncher:
    """A Ray task per trial, one CPU each; ``workers`` tasks at once (the cluster may hold more)."""

    def __init__(self, workers: int, address: str | None) -> None:
        try:
            import ray
        except ImportError:
            raise HarnessError("the ray backend needs Ray: pip install 'rlgru[ray]'", where="--backend") from None
        self._ray = ray
        self.capacity = workers
        self._started_here = not ray.is_initialized()
        if self._started_here:
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address is None:
                options["num_cpus"] = workers
            try:
                ray.init(address=address or "local", **options)  # local: a new instance, never a stale one
            except (ConnectionError, ValueError, RuntimeError) as error:
                raise HarnessError(f"cannot reach the Ray cluster: {error}", where="--address") from None
        self._remote = ray.remote(num_cpus=1, max_calls=1, max_retries=RAY_MAX_RETRIES)(execute_trial)
        self._tasks: dict[Any, int] = {}

    def start(self, spec: TrialSpec) -> None:
        self._tasks[self._remote.remote(spec.as_dict())] = spec.number

    def wait(self) -> list[Finished]:
        if not self._tasks:
            return []
        done, _ = self._ray.wait(list(self._tasks), num_returns=1, timeout=POLL_SECONDS)
        finished = []
        for reference in done:
            number = self._tasks.pop(reference)
            try:
                finished.append(Finished(number, self._ray.get(reference)))
            except self._ray.exceptions.RayError as error:
                detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                finished.append(Finished(number, None, f"its Ray task was lost ({type(error).__name__}: {detail})"))
        return finished

    def stop(self) -> None:
        for reference in self._tasks:
            self._ray.cancel(reference, force=True)

    def close(self) -> None:
        self._tasks.clear()
        if self._started_here:
            self._ray.shutdown()


__all__ = ["Finished", "Launcher", "LocalLauncher", "RayLauncher", "make_launcher"]
