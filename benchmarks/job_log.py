"""Run benchmark jobs in a process pool, logging each finished run as a JSON line, so an hour-long benchmark
that is interrupted (or rerun to re-tabulate) repeats only the runs its log does not hold."""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, TypeVar

Job = TypeVar("Job")
Result = dict[str, Any]


def run_logged(
    jobs: dict[str, Job],
    fn: Callable[[Job], Result],
    workers: int,
    log: Path | None,
    on_result: Callable[[Result], None] | None = None,
) -> list[Result]:
    """``jobs`` maps a key (what identifies a run's inputs) to its job; returns one result per key, in ``jobs``
    order. Results with an ``"error"`` entry are returned but not logged, so a rerun tries them again."""
    logged = [json.loads(line) for line in log.read_text().splitlines() if line] if log and log.exists() else []
    results: dict[Hashable, Result] = {r["key"]: r for r in logged if r.get("key") in jobs}
    pending = [(key, job) for key, job in jobs.items() if key not in results]

    def record(key: str, result: Result) -> None:
        result = {"key": key, **result}
        results[key] = result
        if on_result:
            on_result(result)
        if log and "error" not in result:
            with log.open("a") as f:
                f.write(json.dumps(result) + "\n")

    if workers <= 1:
        for key, job in pending:
            record(key, fn(job))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(fn, job): key for key, job in pending}
            for future in as_completed(futures):
                record(futures[future], future.result())
    return [results[key] for key in jobs if key in results]
