"""Where trials run: worker processes on this machine, or Ray tasks on a cluster. Both answer the driver the same
way: which trials ended, with their result, or with no result and why (the worker died).

Local workers are spawned one per trial (fresh memory, nothing carried between trials) and die with the driver
(``rlgru.bench.lifeline``). A Ray task whose node is lost is rerun by Ray (``RAY_MAX_RETRIES``) and resumes its
trial's runs from their checkpoints where the file system is shared.
"""

from __future__ import annotations

import multiprocessing
import signal
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol

from rlgru.bench.lifeline import die_with_parent
from rlgru.harness.errors import HarnessError
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


def _worker_main(spec_data: dict[str, Any], connection: Connection) -> None:
    die_with_parent()
    connection.send(execute_trial(spec_data))
    connection.close()


class LocalLauncher:
    """One spawned process per trial, at most ``workers`` at once."""

    def __init__(self, workers: int) -> None:
        self.capacity = workers
        self._context = multiprocessing.get_context("spawn")
        self._workers: dict[int, tuple[multiprocessing.process.BaseProcess, Connection]] = {}

    def start(self, spec: TrialSpec) -> None:
        receiver, sender = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=_worker_main, args=(spec.as_dict(), sender), name=f"rlgru-trial-{spec.number}", daemon=True
        )
        process.start()
        sender.close()  # the child holds the only writer: its death shows here as end-of-file
        self._workers[spec.number] = (process, receiver)

    def wait(self) -> list[Finished]:
        if not self._workers:
            return []
        wait([receiver for _, receiver in self._workers.values()], timeout=POLL_SECONDS)
        finished = []
        for number, (process, receiver) in list(self._workers.items()):
            result = None
            try:
                if not receiver.poll():
                    continue
                result = receiver.recv()
            except (EOFError, OSError):
                pass  # the worker died before it answered
            process.join()
            receiver.close()
            del self._workers[number]
            finished.append(Finished(number, result, "" if result is not None else _death_cause(process.exitcode)))
        return finished

    def stop(self) -> None:
        for process, _ in self._workers.values():
            process.terminate()
        for process, _ in self._workers.values():
            process.join(timeout=10)

    def close(self) -> None:
        self.stop()
        for _, receiver in self._workers.values():
            receiver.close()
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
                ray.init(address=address, **options)
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
