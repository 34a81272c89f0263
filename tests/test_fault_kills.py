"""Processes that die at the worst moment: SIGKILL during a write or at a random time, two writers, an orphaned
sweep worker. Each case is run for real, in subprocesses; ``benchmarks/fault_injection.py`` runs many more trials."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from rlgru.cli import main
from tests.fault_scenarios import WRITE_KILLS, kills_then_resume, orphaned_worker, two_writers, write_kill
from tests.fault_tools import in_this_process, kill_during_training, lock_held_elsewhere, train_args, write_config

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="SIGKILL and /proc: Linux")


@pytest.mark.parametrize(("pattern", "changes"), WRITE_KILLS[:1])  # the benchmark kills during every other write
def test_a_kill_during_a_checkpoint_write_loses_nothing(tmp_path: Path, pattern: str, changes: dict) -> None:
    assert write_kill(tmp_path, pattern, changes, in_this_process) == (True, [])


def test_kills_at_random_moments_lose_nothing(tmp_path: Path) -> None:
    """Two kills in one run (the second in the resumed process), each 1-3 checkpoints and a random fraction of a
    second into its process's training: moments that do not depend on how fast this machine is."""
    rng = random.Random(15)

    def kill(process: subprocess.Popen, run_dir: Path) -> bool:
        done = len(list((run_dir / "checkpoints").glob("model_*_steps.zip")))
        return kill_during_training(process, run_dir, done + rng.randint(1, 3), rng.uniform(0.0, 0.1))

    budget = {"training": {"total_timesteps": 384}}
    assert kills_then_resume(tmp_path, budget, [kill, kill], in_this_process) == (True, [], 2)


def test_a_second_writer_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, training={"total_timesteps": 64})
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with lock_held_elsewhere(run_dir / "run.lock") as holder:  # another process holds the run
        assert main(train_args(config, run_dir)) == 2
        err = capsys.readouterr().err
        assert f"{run_dir}: another rlgru process is writing this run directory (pid {holder.pid})" in err
        assert not (run_dir / "config.yaml").exists()
    assert main(train_args(config, run_dir)) == 0, "free once it is gone"


def test_two_runs_started_together_leave_one_clean_run(tmp_path: Path) -> None:
    assert two_writers(tmp_path, vec_env="dummy") == (False, [])


def test_sweep_workers_die_with_the_sweep(tmp_path: Path) -> None:
    assert orphaned_worker(tmp_path) == (False, [])
