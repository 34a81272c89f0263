"""Processes that die at the worst moment: SIGKILL during a write or at a random time, two writers, an orphaned
sweep worker. Each case is run for real, in subprocesses; ``benchmarks/fault_injection.py`` runs many more trials."""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

import pytest
import yaml

from rlgru.cli import main
from tests.fault_tools import (
    FAULT_CONFIG,
    alive,
    check_run,
    children,
    kill_during_training,
    launch,
    lock_held_elsewhere,
    write_config,
)

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="SIGKILL and /proc: Linux")


def resume(config: Path, run_dir: Path) -> None:
    args = ["train", str(config), "--run-dir", str(run_dir), "--no-progress"]
    assert main(args + (["--resume"] if (run_dir / "config.yaml").is_file() else [])) == 0


def test_a_kill_during_a_checkpoint_write_loses_nothing(tmp_path: Path) -> None:
    kill_on = "model_96_steps.zip"  # the script kills during every other kind of write too
    config = write_config(tmp_path)
    run_dir = tmp_path / "run"
    process = launch(["train", str(config), "--run-dir", str(run_dir), "--no-progress"], kill_on=kill_on)
    process.communicate(timeout=300)
    assert process.returncode == -9, "killed by the hook, mid-write"
    assert list(run_dir.rglob(f".{kill_on}.tmp-*")), "the write was under way"
    resume(config, run_dir)
    assert check_run(run_dir, FAULT_CONFIG) == []


def test_kills_at_random_moments_lose_nothing(tmp_path: Path) -> None:
    rng = random.Random(15)
    config = write_config(tmp_path, training={"total_timesteps": 384})
    expected = {**FAULT_CONFIG, "training": {**FAULT_CONFIG["training"], "total_timesteps": 384}}
    run_dir = tmp_path / "run"
    killed = 0
    for _ in range(2):  # two kills in one run: the second lands in a resumed process
        args = ["train", str(config), "--run-dir", str(run_dir), "--no-progress"]
        process = launch(args + (["--resume"] if (run_dir / "config.yaml").is_file() else []))
        done = len(list((run_dir / "checkpoints").glob("model_*_steps.zip")))
        killed += kill_during_training(process, run_dir, done + rng.randint(1, 3), rng.uniform(0.0, 0.1))
    resume(config, run_dir)
    assert check_run(run_dir, expected) == []
    assert killed == 2


def test_a_second_writer_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, training={"total_timesteps": 64})
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with lock_held_elsewhere(run_dir / "run.lock") as holder:  # another process holds the run
        assert main(["train", str(config), "--run-dir", str(run_dir), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert f"{run_dir}: another rlgru process is writing this run directory (pid {holder.pid})" in err
        assert not (run_dir / "config.yaml").exists()
    assert main(["train", str(config), "--run-dir", str(run_dir), "--no-progress"]) == 0, "free once it is gone"


def test_two_runs_started_together_leave_one_clean_run(tmp_path: Path) -> None:
    config = write_config(tmp_path, training={"total_timesteps": 128})
    run_dir = tmp_path / "run"
    args = ["train", str(config), "--run-dir", str(run_dir), "--no-progress"]
    first, second = launch(args), launch(args)
    outputs = [process.communicate(timeout=300) for process in (first, second)]
    codes = sorted(process.returncode for process in (first, second))
    assert codes == [0, 2], outputs
    loser = outputs[[first.returncode, second.returncode].index(2)][1]
    assert "another rlgru process is writing this run directory" in loser or "already holds a run" in loser
    expected = {**FAULT_CONFIG, "training": {**FAULT_CONFIG["training"], "total_timesteps": 128}}
    assert check_run(run_dir, expected) == []


def test_sweep_workers_die_with_the_sweep(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
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
    out = tmp_path / "out"
    sweep = launch(["bench", str(suite), "--out", str(out), "--workers", "1", "--no-progress"])
    workers: list[int] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list((out / "runs").glob("*/checkpoints/*.zip")):
        time.sleep(0.2)
    workers = [pid for pid in children(sweep.pid) if alive(pid)]
    assert workers, "a pool worker is training"
    sweep.kill()
    sweep.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(pid) for pid in workers):
        time.sleep(0.1)
    assert not any(alive(pid) for pid in workers), "no orphan goes on training"
    for pid in workers:  # reap nothing of ours; just make sure nothing is left if the assertion above failed
        if alive(pid):
            os.kill(pid, 9)
