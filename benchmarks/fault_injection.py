"""Fault injection at scale: kill, corrupt, race and poison real runs, resume them, and count what was lost.

``python benchmarks/fault_injection.py [--trials N] [--seed S]`` (from the repository root) runs, each in fresh
processes as a user would:

- kills mid-write: SIGKILL at the worst moment of each kind of file a run writes (checkpoint, statistics, model,
  evaluations, training time, config, final evaluation), then ``--resume`` until done;
- kills at random moments (``--trials``, at least 20) within the time a clean run takes here, sometimes twice in
  one run, then ``--resume`` until done;
- damaged files: the newest checkpoint and ``model.zip`` emptied, truncated, bit-flipped or replaced, then resumed;
- two writers started together on one run directory;
- a crafted model zip and statistics pickle given to ``rlgru eval``;
- NaN rewards from the env (the run must stop with exit 3 and keep readable checkpoints);
- a sweep killed while its worker trains (the worker must die too);
- a Ray node lost mid-sweep, on a cluster simulated on this machine (when Ray is installed).

The scenarios are defined in ``tests/fault_scenarios.py`` (the tests run each once). Every finished run is checked by
``tests.fault_tools.check_run``: each checkpoint, evaluation, training-time row and TensorBoard step present exactly
once, every saved file readable. It prints the counts and writes ``results/fault_injection.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from machine import cpu_name  # noqa: E402

from tests import fault_scenarios as scenarios  # noqa: E402
from tests.fault_tools import DAMAGE_KINDS, finish, write_config  # noqa: E402


class Tally:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, kind: str, detail: str, resumed: bool, lost: list[str], seconds: float) -> None:
        self.rows.append(
            {"kind": kind, "detail": detail, "resumed": resumed, "lost": lost, "seconds": round(seconds, 1)}
        )
        status = "LOST: " + "; ".join(lost) if lost else "nothing lost"
        print(f"[{len(self.rows):3d}] {kind:<16} {detail:<44} {'resumed' if resumed else '':<8} {status}", flush=True)


def clean_durations() -> dict[int, float]:
    """Seconds a clean run of each budget takes here, start to exit: random kills are drawn within it."""
    durations = {}
    for budget in scenarios.RANDOM_BUDGETS:
        work = Path(tempfile.mkdtemp(prefix="rlgru-fault-"))
        config = write_config(work, training={"total_timesteps": budget})
        started = time.perf_counter()
        finish(config, work / "run")
        durations[budget] = time.perf_counter() - started
        shutil.rmtree(work, ignore_errors=True)
    return durations


def run_case(tally: Tally, kind: str, detail: str, case: Callable[[Path], Any]) -> None:
    work = Path(tempfile.mkdtemp(prefix="rlgru-fault-"))
    started = time.perf_counter()
    try:
        outcome = case(work)
    except Exception as error:  # noqa: BLE001 - an unexpected failure is data lost, reported, not a crash
        outcome = (False, [f"{type(error).__name__}: {error}"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if outcome is None:
        print(f"      {kind:<16} {detail:<44} skipped (not installed)")
        return
    resumed, lost, *more = outcome  # a case may name itself better once it has run (a random trial's draws)
    tally.add(kind, more[0] if more else detail, resumed, lost, time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="random-moment kills (at least 20 for the record)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "results" / "fault_injection")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    tally = Tally()
    started = time.perf_counter()
    for pattern, changes in scenarios.WRITE_KILLS:
        run_case(tally, "kill mid-write", pattern, partial(scenarios.write_kill, pattern=pattern, changes=changes))
    durations = clean_durations()
    print("clean run durations (s): " + ", ".join(f"{b} steps {d:.1f}" for b, d in durations.items()), flush=True)
    for i in range(args.trials):
        draws = random.Random(rng.random())
        run_case(tally, "kill at random", f"trial {i}", partial(scenarios.random_kill, rng=draws, durations=durations))
    for kind in DAMAGE_KINDS:
        run_case(tally, "damaged files", f"3 newest files {kind}", partial(scenarios.damaged_files, kind=kind))
    run_case(tally, "two writers", "started together, subprocess envs", scenarios.two_writers)
    run_case(tally, "crafted pickle", "model zip and VecNormalize pickle", scenarios.crafted_files)
    nan = scenarios.BAD_VALUES[0]
    run_case(tally, "NaN rewards", "env returns NaN from step 80", lambda work: scenarios.bad_env_value(work, *nan))
    run_case(tally, "sweep killed", "its pool worker must die too", scenarios.orphaned_worker)
    run_case(tally, "Ray node lost", "1 of 2 worker nodes, mid-sweep", scenarios.lost_ray_node)
    wall = time.perf_counter() - started
    write_results(args.out, tally, wall)
    faults = len(tally.rows)
    resumed = sum(row["resumed"] for row in tally.rows)
    lost = sum(bool(row["lost"]) for row in tally.rows)
    print(
        f"faults tried: {faults}; runs that resumed to completion: {resumed}; cases with data lost: {lost} "
        f"({wall:.0f} s on {cpu_name()})"
    )
    return 1 if lost else 0


def _kills(tally: Tally) -> int:
    landed = ("(after checkpoint", "(while")
    return sum(
        1 if row["kind"] == "kill mid-write" else sum(row["detail"].count(mark) for mark in landed)
        for row in tally.rows
        if row["kind"] in ("kill mid-write", "kill at random")
    )


def write_results(out: Path, tally: Tally, wall: float) -> None:
    faults, resumed = len(tally.rows), sum(row["resumed"] for row in tally.rows)
    lost = sum(bool(row["lost"]) for row in tally.rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(
        json.dumps(
            {
                "cpu": cpu_name(),
                "wall_seconds": round(wall),
                "faults": faults,
                "resumed": resumed,
                "lost": lost,
                "cases": tally.rows,
            },
            indent=2,
        )
        + "\n"
    )
    lines = [
        "# Fault injection",
        "",
        f"`python benchmarks/fault_injection.py` on {cpu_name()}, {wall / 60:.0f} minutes. Every case runs in fresh "
        "processes, as a user would; every run that finishes is checked for lost or doubled data (each checkpoint, "
        "evaluation row, training-time row and TensorBoard step exactly once; every saved file readable).",
        "",
        f"**Faults tried: {faults}. Runs that resumed to completion: {resumed}. Cases with data lost: {lost}.** "
        f"SIGKILLs that landed in a running `rlgru train`: {_kills(tally)} (one per mid-write case, one or two per "
        "random trial; a random kill that came after the run ended is marked so).",
        "",
        "| # | fault | case | resumed | data lost | s |",
        "|---:|---|---|---|---|---:|",
    ]
    for index, row in enumerate(tally.rows, 1):
        lines.append(
            f"| {index} | {row['kind']} | {row['detail']} | {'yes' if row['resumed'] else '-'} | "
            f"{'; '.join(row['lost']) or 'none'} | {row['seconds']} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
