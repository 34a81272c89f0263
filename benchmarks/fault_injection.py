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

Every finished run is checked by ``tests.fault_tools.check_run``: each checkpoint, evaluation, training-time row and
TensorBoard step present exactly once, every saved file readable. It prints the counts and writes
``results/fault_injection.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import random
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from machine import cpu_name  # noqa: E402

from tests.fault_tools import (  # noqa: E402
    DAMAGE_KINDS,
    FAULT_CONFIG,
    Payload,
    alive,
    check_run,
    children,
    craft_model,
    damage,
    finish,
    kill_after,
    launch,
    write_config,
)

#: (file pattern[#n], config changes): every kind of file a run writes, killed just before it lands
WRITE_KILLS: list[tuple[str, dict[str, Any]]] = [
    ("model_96_steps.zip", {}),
    ("model_32_steps.zip", {}),
    ("model_vecnormalize_128_steps.pkl", {"env": {"normalize": True}}),
    ("evaluations.csv#2", {}),
    ("training_time.csv#3", {}),
    ("config.yaml", {}),
    ("model.zip", {}),
    ("vecnormalize.pkl", {"env": {"normalize": True}}),
    ("eval.json", {}),
]


class Tally:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, kind: str, detail: str, resumed: bool, lost: list[str], seconds: float) -> None:
        self.rows.append(
            {"kind": kind, "detail": detail, "resumed": resumed, "lost": lost, "seconds": round(seconds, 1)}
        )
        status = "LOST: " + "; ".join(lost) if lost else "nothing lost"
        print(f"[{len(self.rows):3d}] {kind:<16} {detail:<44} {'resumed' if resumed else '':<8} {status}", flush=True)


def merged(config: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    return {
        key: {**value, **changes.get(key, {})} if isinstance(value, dict) else value for key, value in config.items()
    }


def write_kill(work: Path, pattern: str, changes: dict[str, Any]) -> tuple[bool, list[str]]:
    config = write_config(work, **changes)
    run_dir = work / "run"
    process = launch(["train", str(config), "--run-dir", str(run_dir), "--no-progress"], kill_on=pattern)
    process.communicate(timeout=600)
    if process.returncode != -9:
        return False, [f"the kill hook never fired (exit {process.returncode})"]
    resumes, outputs = finish(config, run_dir)
    if not (run_dir / "model.zip").is_file():
        return False, [f"did not finish: {outputs[-1][-300:]}"]
    return True, check_run(run_dir, merged(FAULT_CONFIG, changes))


#: budgets of the random-kill runs, long enough that most of a run's time is training, not starting up (a checkpoint
#: every 32 steps, an evaluation every 64)
RANDOM_BUDGETS = (4096, 8192, 12288)


def clean_durations() -> dict[int, float]:
    """Seconds a clean run of each budget takes here, start to exit: random kills are drawn within it."""
    durations = {}
    for budget in RANDOM_BUDGETS:
        work = Path(tempfile.mkdtemp(prefix="rlgru-fault-"))
        config = write_config(work, training={"total_timesteps": budget})
        started = time.perf_counter()
        finish(config, work / "run")
        durations[budget] = time.perf_counter() - started
        shutil.rmtree(work, ignore_errors=True)
    return durations


def random_kill(work: Path, rng: random.Random, durations: dict[int, float]) -> tuple[bool, list[str], str]:
    """1 or 2 kills at uniform moments of a run of a random budget (normalised 30% of the time), within the time a
    clean run takes; ``(resumed, lost, what was drawn)``."""
    budget = rng.choice(RANDOM_BUDGETS)
    changes: dict[str, Any] = {"training": {"total_timesteps": budget}}
    if rng.random() < 0.3:
        changes["env"] = {"normalize": True}
    config = write_config(work, **changes)
    run_dir = work / "run"
    delays, killed = [], False
    for _ in range(rng.choice([1, 1, 2])):
        args = ["train", str(config), "--run-dir", str(run_dir), "--no-progress"]
        process = launch(args + (["--resume"] if (run_dir / "config.yaml").is_file() else []))
        delay = rng.uniform(0.05, 0.95) * durations[budget]
        landed = kill_after(process, delay)
        killed |= landed
        delays.append(f"{delay:.1f}s ({_progress(run_dir)})" if landed else f"{delay:.1f}s (ended first)")
    finish(config, run_dir)
    detail = f"{budget} steps, kill after {', '.join(delays)}" + (", normalized" if "env" in changes else "")
    if not (run_dir / "model.zip").is_file():
        return False, ["did not finish"], detail
    return killed, check_run(run_dir, merged(FAULT_CONFIG, changes)), detail


def _progress(run_dir: Path) -> str:
    """Where a killed run was: its newest checkpoint, or that it had not trained yet."""
    steps = [int(path.name.split("_")[1]) for path in (run_dir / "checkpoints").glob("model_*_steps.zip")]
    if steps:
        return f"after checkpoint {max(steps)}"
    return "while training" if (run_dir / "config.yaml").is_file() else "while starting"


def damaged_files(work: Path, kind: str) -> tuple[bool, list[str]]:
    config = write_config(work, training={"total_timesteps": 160})
    run_dir = work / "run"
    assert finish(config, run_dir)[0] == 1
    for path in [
        run_dir / "model.zip",
        run_dir / "checkpoints" / "model_160_steps.zip",
        run_dir / "checkpoints" / "model_128_steps.zip",
    ]:
        damage(path, kind)
    process = launch(
        [
            "train",
            str(config),
            "--run-dir",
            str(run_dir),
            "--resume",
            "--no-progress",
            "--set",
            "training.total_timesteps=256",
        ]
    )
    out, err = process.communicate(timeout=600)
    if process.returncode != 0:
        return False, [f"resume failed: {err.strip()[-300:]}"]
    lost = check_run(run_dir, FAULT_CONFIG)
    if "resuming from" not in out or "(96 timesteps)" not in out:
        lost.append("did not resume from the newest readable checkpoint (96)")
    return True, lost


def two_writers(work: Path) -> tuple[bool, list[str]]:
    config = write_config(work, env={"vec_env": "subprocess"}, training={"total_timesteps": 128})
    args = ["train", str(config), "--run-dir", str(work / "run"), "--no-progress"]
    processes = [launch(args), launch(args)]
    for process in processes:
        process.communicate(timeout=600)
    codes = sorted(process.returncode for process in processes)
    lost = [] if codes == [0, 2] else [f"exit codes {codes}, expected [0, 2]"]
    expected = merged(FAULT_CONFIG, {"training": {"total_timesteps": 128}})
    return False, lost + check_run(work / "run", expected)


def crafted_files(work: Path) -> tuple[bool, list[str]]:
    config = write_config(work, env={"normalize": True}, training={"total_timesteps": 32})
    run_dir = work / "run"
    finish(config, run_dir)
    marker = work / "payload-ran"
    craft_model(run_dir / "model.zip", work / "crafted.zip", "lr_schedule", Payload(marker))
    (run_dir / "vecnormalize.pkl").write_bytes(pickle.dumps(Payload(marker)))
    lost = []
    for args in (
        ["eval", str(work / "crafted.zip"), "--env", "rlgru/TMaze-Easy-v0", "--episodes", "1"],
        ["eval", str(run_dir), "--episodes", "1"],
    ):
        process = launch(args)
        _, err = process.communicate(timeout=600)
        if process.returncode != 2 or "refusing the pickled global" not in err:
            lost.append(f"{args[1]} not refused (exit {process.returncode})")
    if marker.exists():
        lost.append("a payload ran")
    return False, lost


def nan_rewards(work: Path) -> tuple[bool, list[str]]:
    from rlgru.harness.checkpoints import model_file_problem
    from rlgru.harness.run_dir import RunDir

    config = write_config(work, env={"id": "tests.fault_envs:BadValueEnv"})
    process = launch(["train", str(config), "--run-dir", str(work / "run"), "--no-progress"])
    _, err = process.communicate(timeout=600)
    run = RunDir(work / "run")
    lost = [] if process.returncode == 3 and "reward is nan" in err else [f"exit {process.returncode}: {err[-200:]}"]
    checkpoints = run.list_checkpoints()
    if not checkpoints or any(model_file_problem(c.model) for c in checkpoints):
        lost.append("no readable checkpoint kept")
    return False, lost


def orphaned_worker(work: Path) -> tuple[bool, list[str]]:
    import yaml

    suite = work / "suite.yaml"
    base = {key: FAULT_CONFIG[key] for key in ("env", "algorithm", "policy", "evaluation")}
    suite.write_text(
        yaml.safe_dump(
            {
                "name": "orphans",
                "base": {**base, "training": {"total_timesteps": 100_000, "checkpoint_freq": 32}},
                "tasks": [{"name": "tmaze", "env": {"id": "rlgru/TMaze-Easy-v0"}}],
                "cores": ["gru"],
                "seeds": [0],
            }
        )
    )
    sweep = launch(["bench", str(suite), "--out", str(work / "out"), "--workers", "1", "--no-progress"])
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not list((work / "out" / "runs").glob("*/checkpoints/*.zip")):
        time.sleep(0.2)
    workers = [pid for pid in children(sweep.pid) if alive(pid)]
    sweep.kill()
    sweep.wait()
    time.sleep(5)
    left = [pid for pid in workers if alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    return False, ([] if workers and not left else [f"workers {workers}, still alive {left}"])


def lost_ray_node(work: Path) -> tuple[bool, list[str]] | None:
    try:
        import ray  # noqa: F401
    except ImportError:
        return None
    import pytest

    from tests.test_fault_bench import test_ray_cluster_losing_a_node_mid_sweep_loses_no_run as lose_a_node

    try:
        lose_a_node(work)
    except (AssertionError, pytest.fail.Exception) as error:
        return True, [str(error).splitlines()[0]]
    return True, []


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
    for pattern, changes in WRITE_KILLS:
        run_case(tally, "kill mid-write", pattern, lambda work, p=pattern, c=changes: write_kill(work, p, c))
    durations = clean_durations()
    print("clean run durations (s): " + ", ".join(f"{b} steps {d:.1f}" for b, d in durations.items()), flush=True)
    for trial in range(args.trials):
        trial_rng = random.Random(rng.random())
        run_case(tally, "kill at random", f"trial {trial}", lambda work, r=trial_rng: random_kill(work, r, durations))
    for kind in DAMAGE_KINDS:
        run_case(tally, "damaged files", f"3 newest files {kind}", lambda work, k=kind: damaged_files(work, k))
    run_case(tally, "two writers", "started together, subprocess envs", two_writers)
    run_case(tally, "crafted pickle", "model zip and VecNormalize pickle", crafted_files)
    run_case(tally, "NaN rewards", "env returns NaN from step 80", nan_rewards)
    run_case(tally, "sweep killed", "its pool worker must die too", orphaned_worker)
    run_case(tally, "Ray node lost", "1 of 2 worker nodes, mid-sweep", lost_ray_node)
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
