"""``rlgru export`` on a trained run, the torch-free ONNX example, the check that catches a wrong file, and errors.

The example runs in a subprocess whose import machinery refuses torch, SB3, sb3-contrib and rlgru, so passing
proves a deployment needs none of them; its actions are compared with ``predict`` on the same seeded episodes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import onnx
import pytest
import torch
import yaml
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from rlgru import RecurrentPPO
from rlgru.cli import main
from rlgru.export import compare_with_policy, export_policy, load_exported

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "onnx_policy.py"
ENV_ID = "rlgru/TMaze-Easy-v0"
CONFIG = {
    "seed": 0,
    "env": {"id": ENV_ID, "n_envs": 2, "normalize": True},
    "algorithm": {"n_steps": 16, "batch_size": 32, "n_epochs": 2},
    "policy": {"core": "gru", "hidden_size": 8, "net_arch": [8]},
    "training": {"total_timesteps": 64, "checkpoint_freq": 0},
    "evaluation": {"episodes": 2, "freq": 0},
}

#: the example runs under this: every import of a blocked package fails, and none may be loaded at the end
NO_TORCH = """
import importlib.abc, runpy, sys
BLOCKED = ("torch", "stable_baselines3", "sb3_contrib", "rlgru")

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{name} is blocked", name=name)
        return None

sys.meta_path.insert(0, Refuse())
for name in BLOCKED:
    try:
        __import__(name)
    except ModuleNotFoundError:
        continue
    raise SystemExit(f"the block let {name} through")
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
assert not loaded, loaded
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("export")
    config = directory / "tiny.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    assert main(["train", str(config), "--run-dir", str(directory / "run"), "--no-progress"]) == 0
    return directory / "run"


def test_export_writes_a_checked_onnx_file_with_its_metadata(run_dir: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["export", str(run_dir), "--json", "--check-steps", "50"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["path"] == str(run_dir / "model.onnx")
    assert "100/100 actions equal" in printed["check"]  # 50 steps of 2 envs
    sidecar = json.loads((run_dir / "model.onnx.json").read_text())
    inside = {p.key: p.value for p in onnx.load(str(run_dir / "model.onnx")).metadata_props}
    assert json.loads(inside["rlgru"]) == sidecar
    assert sidecar["env"]["id"] == ENV_ID and sidecar["core"]["name"] == "gru"
    assert sidecar["state"]["shape"] == [1, "batch", 16]  # actor GRU 8 + critic GRU 8
    assert sidecar["preprocessing"]["vecnormalize"] == {"keys": ["obs"], "clip_obs": 10.0}
    assert sidecar["timesteps"] == 64 and sidecar["rlgru_version"]


def test_export_torchscript_with_value_to_a_chosen_path(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "deploy" / "policy.pt"
    assert (
        main(
            [
                "export",
                str(run_dir / "model.zip"),
                "--format",
                "torchscript",
                "--value",
                "--out",
                str(out),
                "--check-steps",
                "50",
            ]
        )
        == 0
    )
    assert "max |value diff|" in capsys.readouterr().out
    runner = load_exported(out)
    assert runner.format == "torchscript" and runner.output_names == ["action", "next_state", "value"]


def test_example_plays_the_task_without_torch_sb3_or_rlgru(run_dir: Path) -> None:
    path = run_dir / "model.onnx"
    if not path.is_file():
        assert main(["export", str(run_dir), "--check-steps", "0"]) == 0
    done = subprocess.run(
        [sys.executable, "-c", NO_TORCH, str(EXAMPLE), str(path), "--episodes", "3", "--seed", "5", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    episodes = json.loads(done.stdout)

    model = RecurrentPPO.load(run_dir / "model.zip", device="cpu")
    stats = VecNormalize.load(str(run_dir / "vecnormalize.pkl"), DummyVecEnv([lambda: gym.make(ENV_ID)]))
    env = gym.make(ENV_ID)
    for index, played in enumerate(episodes):
        obs, _ = env.reset(seed=5 + index)
        state, start, actions, total, ended = None, True, [], 0.0, False
        while not ended:
            action, state = model.predict(stats.normalize_obs(obs[None]), state, np.array([start]), deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action[0])
            actions.append(int(action[0]))
            total += float(reward)
            start, ended = False, terminated or truncated
        assert played["actions"] == actions and played["return"] == total


def test_the_check_catches_a_file_that_disagrees_with_its_policy(run_dir: Path, tmp_path: Path) -> None:
    model = RecurrentPPO.load(run_dir / "model.zip", device="cpu")
    env = VecNormalize.load(str(run_dir / "vecnormalize.pkl"), DummyVecEnv([lambda: gym.make(ENV_ID)] * 2))
    env.training = False
    runner = load_exported(export_policy(model, tmp_path / "p.onnx", env=env).path)
    assert compare_with_policy(runner, model.policy, env, steps=30).ok
    with torch.no_grad():
        model.policy.actor_core.gru.weight_hh_l0.add_(0.05)
    changed = compare_with_policy(runner, model.policy, env, steps=30)
    assert not changed.ok and changed.max_state_error > 1e-3


@pytest.mark.parametrize("package", ["onnx", "onnxruntime"])
def test_a_missing_export_dependency_is_named_in_one_line(
    package: str, run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, package, None)  # importing it now raises ImportError
    assert main(["export", str(run_dir), "--out", str(tmp_path / "p.onnx")]) == 2
    error = capsys.readouterr().err.strip()
    assert f"'{package}'" in error and "pip install 'rlgru[export]'" in error and "\n" not in error
    assert not (tmp_path / "p.onnx").exists()


def test_a_model_without_its_env_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, run_dir: Path
) -> None:
    lonely = tmp_path / "model.zip"
    lonely.write_bytes((run_dir / "model.zip").read_bytes())
    assert main(["export", str(lonely)]) == 2
    error = capsys.readouterr().err.strip()
    assert "--env" in error and "\n" not in error
