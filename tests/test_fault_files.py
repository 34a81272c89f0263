"""Files that are damaged, torn or half-written: atomic writes, and resume/eval falling back to what reads back."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rlgru.cli import main
from rlgru.harness.checkpoints import model_file_problem
from rlgru.harness.run_dir import RunDir
from rlgru.harness.run_logs import read_rows
from rlgru.runtime.files import atomic_open, atomic_write_text, remove_stale_temporaries
from tests.fault_scenarios import EACH_KIND_ONCE, a_finished_run, damage_files, resume_past_damage
from tests.fault_tools import check_run, fault_config, in_this_process, train_args, write_config


def test_an_interrupted_atomic_write_leaves_the_old_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "model.zip"
    atomic_write_text(target, "old contents")
    with pytest.raises(RuntimeError), atomic_open(target, "w") as handle:
        handle.write("half of the new")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["model.zip"], "the temporary file is removed"
    stray = tmp_path / f".model.zip.tmp-{123}-abcd"  # what a SIGKILL leaves instead
    stray.write_text("partial")
    assert remove_stale_temporaries(tmp_path) == [stray] and target.read_text() == "old contents"


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return a_finished_run(tmp_path_factory.mktemp("finished"), in_this_process)


def test_resume_and_eval_skip_damaged_files_and_lose_nothing(finished_run: tuple[Path, Path], tmp_path: Path) -> None:
    config, trained = finished_run
    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    run = RunDir(run_dir)
    assert [c.steps for c in run.list_checkpoints()] == [32, 64, 96, 128, 160]
    damage_files(run_dir, EACH_KIND_ONCE)
    assert all(model_file_problem(run_dir / name) is not None for name in EACH_KIND_ONCE)

    code, out, err = in_this_process(["eval", str(run_dir), "--episodes", "2"])
    assert code == 0, err
    assert f"skipped {run.model}: not a whole zip archive" in err
    assert f"using {run.checkpoints / 'model_64_steps.zip'}" in err and "(64 timesteps)" in out
    # the budget grows to 256: resume from step 64, the newest readable state, and finish
    assert resume_past_damage(config, run_dir, EACH_KIND_ONCE, in_this_process) == (True, [])


def test_resume_rewinds_every_log_to_the_checkpoint(finished_run: tuple[Path, Path], tmp_path: Path) -> None:
    """A kill between step 128's logs and its checkpoint: those logs are dropped and written once more."""
    config, trained = finished_run
    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    run = RunDir(run_dir)
    for checkpoint in run.list_checkpoints():
        if checkpoint.steps > 96:
            checkpoint.model.unlink()
    run.model.unlink()
    assert [int(r["timesteps"]) for r in read_rows(run.evaluations_csv)] == [64, 128]
    assert main(train_args(config, run_dir, "--set", "training.total_timesteps=256", resume=True)) == 0
    assert check_run(run_dir, fault_config(training={"total_timesteps": 256})) == []
    times = [float(r["train_seconds"]) for r in read_rows(run.training_time_csv)]
    assert times == sorted(times) and times[0] > 0, "training time adds up over the resume"


def test_a_run_killed_before_its_first_checkpoint_restarts_in_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, training={"total_timesteps": 64})
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    shutil.copy(config, run_dir / "config.yaml")  # the kill came after config.yaml, before any checkpoint
    (run_dir / "checkpoints" / ".model_32_steps.zip.tmp-1-ab").write_bytes(b"half")
    assert main(train_args(config, run_dir, resume=True)) == 0
    assert "training from step 0" in capsys.readouterr().out
    assert not list((run_dir / "checkpoints").glob(".*")), "the dead writer's temporary file is cleared"
    assert check_run(run_dir, fault_config(training={"total_timesteps": 64})) == []
