"""Bad input exits with status 2 and one message naming the key path or file: never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

from rlgru.cli import main

GOOD = {
    "env": {"id": "rlgru/TMaze-Easy-v0", "n_envs": 2},
    "algorithm": {"n_steps": 16, "batch_size": 32, "n_epochs": 1},
    "policy": {"hidden_size": 8, "net_arch": [8]},
    "training": {"total_timesteps": 32, "checkpoint_freq": 32},
    "evaluation": {"episodes": 2},
}


def config_file(directory: Path, data: object = None, text: str | None = None) -> Path:
    path = directory / "case.yaml"
    path.write_text(text if text is not None else yaml.safe_dump(GOOD if data is None else data))
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def assert_one_clean_message(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    assert "Traceback" not in err
    assert err.count("error:") == 1 and err.strip(), err
    for fragment in fragments:
        assert fragment in err, err


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        ({"algorithm": {**GOOD["algorithm"], "n_steps": "many"}},
         ("case.yaml: algorithm.n_steps: Input should be a valid integer", "'many'")),
        ({"algorithm": {**GOOD["algorithm"], "n_step": 4}},
         ("algorithm.n_step: unknown key (did you mean 'n_steps'?)",)),
        ({"policy": {"hidden_size": 8.5}}, ("policy.hidden_size: Input should be a valid integer",)),
        ({"env": {"id": "rlgru/NoSuchTask-v0"}}, ("env.id: unknown environment 'rlgru/NoSuchTask-v0'",)),
        ({"env": {"id": "rlgru/TMaze-v0", "env_kwargs": {"length": "long"}}}, ("env.env_kwargs:",)),
        ({"env": {"id": "CartPole-v1", "wrappers": ["Nope"]}}, ("env.wrappers[0]: Nope: unknown wrapper",)),
    ],
)
def test_bad_config_values(tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict,
                           fragments: tuple[str, ...]) -> None:
    path = config_file(tmp_path, {**GOOD, **change})
    code, err = run_cli(capsys, "train", str(path), "--run-dir", str(tmp_path / "run"))
    assert_one_clean_message(code, err, *fragments)
    assert not (tmp_path / "run").exists(), "nothing is written for a config that cannot run"


def test_bad_override(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config_file(tmp_path)
    code, err = run_cli(capsys, "train", str(path), "--set", "algorithm.gamma=high", "--run-dir", str(tmp_path / "r"))
    assert_one_clean_message(code, err, "algorithm.gamma: Input should be a valid number")
    code, err = run_cli(capsys, "train", str(path), "--set", "algorithm.gamma", "--run-dir", str(tmp_path / "r"))
    assert_one_clean_message(code, err, "--set: expected key.path=value")


def test_missing_and_malformed_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(capsys, "train", str(tmp_path / "absent.yaml"))
    assert_one_clean_message(code, err, "absent.yaml: no such file")
    code, err = run_cli(capsys, "train", str(config_file(tmp_path, text="env: {id: [\n")))
    assert_one_clean_message(code, err, "case.yaml: invalid YAML at line")
    code, err = run_cli(capsys, "eval", str(tmp_path / "nowhere"))
    assert_one_clean_message(code, err, "nowhere: no such run directory or model file")


def test_unreadable_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    garbage = tmp_path / "model.zip"
    garbage.write_bytes(b"not a zip at all")
    code, err = run_cli(capsys, "eval", str(garbage), "--env", "rlgru/TMaze-Easy-v0")
    assert_one_clean_message(code, err, f"{garbage}: not a readable rlgru model")
    # a damaged checkpoint inside a run is skipped, not fatal: tests/test_fault_files.py



def test_resume_needs_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = config_file(tmp_path)
    code, err = run_cli(capsys, "train", str(path), "--resume")
    assert_one_clean_message(code, err, "--resume: no run of case with seed 0 under runs/")
    code, err = run_cli(capsys, "train", str(path), "--resume", "--run-dir", str(tmp_path))
    assert_one_clean_message(code, err, "no config.yaml: not a run directory to resume")


def test_argparse_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train"]) == 2
    assert main(["no-such-command"]) == 2
    assert main(["eval", "x", "--episodes", "0"]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert main(["--help"]) == 0


def console_script() -> str:
    script = Path(sysconfig.get_path("scripts")) / "rlgru"
    return str(script) if script.exists() else "rlgru"


def test_console_script_end_to_end(tmp_path: Path) -> None:
    """The installed ``rlgru`` script: a clean error, then a real run whose output has no progress bar."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    bad = config_file(tmp_path, {**GOOD, "training": {"total_timesteps": "soon"}})
    result = subprocess.run([console_script(), "train", str(bad)], capture_output=True, text=True, env=env,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert "training.total_timesteps: Input should be a valid integer" in result.stderr
    assert "Traceback" not in result.stderr

    good = config_file(tmp_path)
    result = subprocess.run([console_script(), "train", str(good)], capture_output=True, text=True, env=env,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert run_dir.name.startswith("case-s0-") and (run_dir / "model.zip").is_file()
    assert "eval (2 deterministic episodes)" in result.stdout
    assert "\r" not in result.stdout + result.stderr, "no progress bar when stdout is not a terminal"


def test_module_entry_point_runs() -> None:
    result = subprocess.run([sys.executable, "-m", "rlgru.cli", "envs", "--json"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and '"rlgru/TMaze-v0"' in result.stdout
