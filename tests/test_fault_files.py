"""Files that are damaged, torn or half-written: atomic writes, and resume/eval falling back to what reads back."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rlgru.cli import main
from rlgru.files import atomic_open, atomic_write_text, remove_stale_temporaries
from rlgru.harness.checkpoints import model_file_problem
from rlgru.harness.run_dir import RunDir
from rlgru.harness.run_logs import read_rows
from tests.fault_tools import FAULT_CONFIG, check_run, damage, write_config


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
    directory = tmp_path_factory.mktemp("finished")
    config = write_config(directory, training={"total_timesteps": 160})
    assert main(["train", str(config), "--run-dir", str(directory / "run"), "--no-progress"]) == 0
    return config, directory / "run"


def test_resume_and_eval_skip_damaged_files_and_lose_nothing(
    finished_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, trained = finished_run
    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    run = RunDir(run_dir)
    checkpoints = {c.steps: c.model for c in run.list_checkpoints()}
    assert sorted(checkpoints) == [32, 64, 96, 128, 160]
    for steps, kind in ((160, "empty"), (128, "truncated"), (96, "bit flip")):
        damage(checkpoints[steps], kind)
        assert model_file_problem(checkpoints[steps]) is not None, kind
    damage(run.model, "garbage")
    capsys.readouterr()

    code = main(["eval", str(run_dir), "--episodes", "2"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"skipped {run.model}: not a whole zip archive" in captured.err
    assert f"using {checkpoints[64]}" in captured.err and "(64 timesteps)" in captured.out

    # the budget grows to 256: resume from step 64, the newest readable state, and finish
    code = main(
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
    out = capsys.readouterr().out
    assert code == 0
    assert f"skipped {checkpoints[160]}: empty (0 bytes)" in out
    assert f"skipped {checkpoints[128]}: " in out  # truncated: "not a whole zip" or "not an SB3 model"
    assert f"skipped {checkpoints[96]}: corrupted (member policy.pth fails its CRC check)" in out
    assert f"resuming from {checkpoints[64]} (64 timesteps)" in out
    assert (checkpoints[160].parent / "model_160_steps.zip.unreadable").is_file(), "set aside, not deleted"
    expected = {**FAULT_CONFIG, "training": {**FAULT_CONFIG["training"], "total_timesteps": 256}}
    assert check_run(run_dir, expected) == []


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
    assert (
        main(
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
        == 0
    )
    expected = {**FAULT_CONFIG, "training": {**FAULT_CONFIG["training"], "total_timesteps": 256}}
    assert check_run(run_dir, expected) == []
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
    assert main(["train", str(config), "--run-dir", str(run_dir), "--resume", "--no-progress"]) == 0
    assert "training from step 0" in capsys.readouterr().out
    assert not list((run_dir / "checkpoints").glob(".*")), "the dead writer's temporary file is cleared"
    expected = {**FAULT_CONFIG, "training": {**FAULT_CONFIG["training"], "total_timesteps": 64}}
    assert check_run(run_dir, expected) == []
