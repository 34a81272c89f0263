"""Run a suite: expand it, skip what is done, farm the rest out to a process pool or Ray, then write the report.

The out directory is the sweep's whole state: ``runs/<run_id>/`` (a run directory plus ``result.json``),
``suite.yaml`` (the suite as given) and ``sweep.json`` (machine, backend, wall time). Running the same command
again skips runs with a complete result, resumes interrupted ones from their checkpoints and retries failed ones.
One sweep at a time holds the out directory (``run.lock``); its local workers die with it, and Ray reruns the
tasks of a lost node elsewhere (each resumes from its own checkpoints where the file system is shared).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from rlgru import __version__ as rlgru_version
from rlgru.bench.results import is_complete, read_result, write_result
from rlgru.bench.runner import config_mismatch, execute, identity, run_dir_of
from rlgru.bench.suite import RunSpec, expand, load_suite
from rlgru.bench.tuned import tuned_params
from rlgru.harness.errors import HarnessError
from rlgru.harness.lifeline import die_with_parent, terminate_as_interrupt
from rlgru.harness.machine import machine_description
from rlgru.harness.run_lock import claim_run
from rlgru.runtime.files import atomic_write_bytes, atomic_write_text

Backend = Literal["local", "ray"]
OnResult = Callable[[dict[str, Any]], None]


@dataclass
class SweepOutcome:
    out_dir: Path
    total: int
    skipped: int
    completed: list[dict[str, Any]] = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.completed if r.get("status") != "ok"]


def plan(suite_path: Path, out_dir: Path) -> tuple[list[RunSpec], list[RunSpec]]:
    """``(all runs, runs still to do)``; refuses an out directory that holds other runs under the same ids."""
    suite = load_suite(suite_path)
    runs = expand(suite, where=suite_path, tuned=tuned_params(suite, out_dir))
    pending = []
    for spec in runs:
        run = run_dir_of(out_dir, spec.run_id)
        changed = config_mismatch(run, spec)
        if changed:
            raise HarnessError(
                f"holds run {spec.run_id} trained with a different config ({', '.join(changed[:5])}); "
                "choose another --out or delete that run",
                where=out_dir,
            )
        if not is_complete(read_result(run.path)):
            pending.append(spec)
    return runs, pending


def run_sweep(
    suite_path: Path,
    out_dir: Path,
    *,
    backend: Backend = "local",
    workers: int | None = None,
    address: str | None = None,
    on_result: OnResult | None = None,
) -> SweepOutcome:
    """Run every pending run of the suite; results land in ``out_dir/runs/*/result.json`` as they finish."""
    suite_path, out_dir = Path(suite_path), Path(out_dir)
    with claim_run(out_dir, what="sweep's out directory", hint="choose another --out"):
        return _run_sweep(suite_path, out_dir, backend, workers, address, on_result)


def _run_sweep(
    suite_path: Path,
    out_dir: Path,
    backend: Backend,
    workers: int | None,
    address: str | None,
    on_result: OnResult | None,
) -> SweepOutcome:
    runs, pending = plan(suite_path, out_dir)
    if suite_path.resolve() != (out_dir / "suite.yaml").resolve():
        atomic_write_bytes(out_dir / "suite.yaml", suite_path.read_bytes())
    workers = workers or os.cpu_count() or 1
    outcome = SweepOutcome(out_dir, total=len(runs), skipped=len(runs) - len(pending))
    started = time.perf_counter()
    previous = _previous_wall(out_dir)
    results = (
        _ray_results(pending, out_dir, workers, address)
        if backend == "ray"
        else _local_results(pending, out_dir, workers)
    )
    try:
        with terminate_as_interrupt():
            for result in results:
                outcome.completed.append(result)
                if on_result is not None:
                    on_result(result)
                # after every run, so a sweep killed outright (SIGKILL, a lost machine) still counts its time
                _write_meta(out_dir, suite_path, backend, workers, previous + time.perf_counter() - started, len(runs))
    finally:
        outcome.wall_seconds = time.perf_counter() - started
        _write_meta(out_dir, suite_path, backend, workers, previous + outcome.wall_seconds, len(runs))
    return outcome


def _local_results(pending: list[RunSpec], out_dir: Path, workers: int) -> Iterator[dict[str, Any]]:
    """A spawn pool, one run per process (``maxtasksperchild=1``): fresh memory figures, no state leaking."""
    if not pending:
        return
    context = multiprocessing.get_context("spawn")
    jobs = [(spec.as_dict(), str(out_dir)) for spec in pending]
    with context.Pool(min(workers, len(jobs)), initializer=die_with_parent, maxtasksperchild=1) as pool:
        yield from pool.imap_unordered(_execute_job, jobs)


def _execute_job(job: tuple[dict[str, Any], str]) -> dict[str, Any]:
    return execute(*job)


#: times Ray reruns a run whose worker or node died (its run then resumes from its checkpoints)
RAY_MAX_RETRIES = 3


def _ray_results(pending: list[RunSpec], out_dir: Path, workers: int, address: str | None) -> Iterator[dict[str, Any]]:
    """Ray tasks, one CPU each and one run per worker process. The driver rewrites each ``result.json``, so
    results reach ``out_dir`` even when the nodes share no file system (their run directories stay on them).

    A task whose node is lost is rerun by Ray (``RAY_MAX_RETRIES``); one that still cannot finish is recorded as a
    failed run, like any other failure, and the sweep goes on.
    """
    try:
        import ray
    except ImportError:
        raise HarnessError("the ray backend needs Ray: pip install 'rlgru[ray]'", where="--backend") from None
    if not pending:
        return
    started_here = not ray.is_initialized()
    if started_here:
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address is None:
            options["num_cpus"] = workers
        ray.init(address=address or "local", **options)  # local: a new instance, never a stale one
    try:
        remote_execute = ray.remote(num_cpus=1, max_calls=1, max_retries=RAY_MAX_RETRIES)(execute)
        specs = {remote_execute.remote(spec.as_dict(), str(out_dir)): spec for spec in pending}
        waiting = list(specs)
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1)
            try:
                result = ray.get(done[0])
            except ray.exceptions.RayError as error:
                result = _lost_run(specs[done[0]], error)
            write_result(run_dir_of(out_dir, result["run_id"]).path, result)
            yield result
    finally:
        if started_here:
            ray.shutdown()


def _lost_run(spec: RunSpec, error: Exception) -> dict[str, Any]:
    """The result of a run that Ray could not finish (its node or worker died more often than it retries)."""
    detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
    result = identity(spec)
    result.update(status="failed", error=f"{type(error).__name__}: {detail}"[:500])
    return result


def _previous_wall(out_dir: Path) -> float:
    path = out_dir / "sweep.json"
    try:
        return float(json.loads(path.read_text()).get("wall_seconds", 0.0)) if path.is_file() else 0.0
    except (OSError, ValueError):
        return 0.0


def _write_meta(out_dir: Path, suite_path: Path, backend: str, workers: int, wall: float, n_runs: int) -> None:
    meta = {
        "suite": suite_path.name,
        "runs": n_runs,
        "backend": backend,
        "workers": workers,
        "machine": machine_description(),
        "wall_seconds": round(wall, 1),
        "rlgru": rlgru_version,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    atomic_write_text(out_dir / "sweep.json", json.dumps(meta, indent=2) + "\n")


__all__ = ["RAY_MAX_RETRIES", "SweepOutcome", "machine_description", "plan", "run_sweep"]
