"""End to end through ``rlgru.cli.main``: train -> eval -> memory probe -> kill -> resume, on a tiny budget."""

from __future__ import annotations

import copy
import json
import pickle
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rlgru import RecurrentPPO
from rlgru.cli import main
from rlgru.harness.run_dir import RunDir

# 2 envs x 16 steps = 32 timesteps a rollout; 4 rollouts; a checkpoint after every update.
TINY: dict[str, Any] = {
    "seed": 0,
    "env": {"id": "rlgru/TMaze-Easy-v0", "n_envs": 2},
    "algorithm": {"n_steps": 16, "batch_size": 32, "n_epochs": 2, "learning_rate": "lin_3e-3"},
    "policy": {"core": "gru", "hidden_size": 8, "net_arch": [8]},
    "training": {"total_timesteps": 128, "checkpoint_freq": 32},
    "evaluation": {"episodes": 6, "freq": 64},
}


def write_config(directory: Path, name: str = "tiny", **sections: dict) -> Path:
    data = copy.deepcopy(TINY)
    for section, values in sections.items():
        data[section] = {**data.get(section, {}), **values} if isinstance(values, dict) else values
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def train(config: Path, run_dir: Path, *extra: str) -> int:
    return main(["train", str(config), "--run-dir", str(run_dir), "--no-progress", *extra])


def scalars(run_dir: Path) -> EventAccumulator:
    event_dirs = sorted((run_dir / "tb").iterdir())
    assert [d.name for d in event_dirs] == ["RecurrentPPO_1"], "one TensorBoard run, continued on resume"
    accumulator = EventAccumulator(str(event_dirs[0]), size_guidance={"scalars": 0})
    accumulator.Reload()
    return accumulator


def num_timesteps(model_zip: Path) -> int:
    return RecurrentPPO.load(model_zip, device="cpu").num_timesteps


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("trained")
    assert train(write_config(directory), directory / "run") == 0
    return directory / "run"


def test_train_writes_the_run_directory(trained: Path) -> None:
    run = RunDir(trained)
    assert run.config.is_file() and run.model.is_file() and run.eval_json.is_file()
    assert [c.steps for c in run.list_checkpoints()] == [32, 64, 96, 128]
    assert yaml.safe_load(run.config.read_text())["algorithm"]["n_steps"] == 16
    assert yaml.safe_load(run.config.read_text())["policy"]["hidden_reset"] == "episode"  # defaults resolved
    evaluation = json.loads(run.eval_json.read_text())
    assert evaluation["episodes"] == 6 and evaluation["deterministic"] is True
    assert evaluation["timesteps"] == 128 and len(evaluation["returns"]) == 6
    assert evaluation["optimal_return"] == 1.0 and evaluation["memoryless_return"] == 0.5
    assert evaluation["mean_return"] == pytest.approx(np.mean(evaluation["returns"]))
    rows = run.evaluations_csv.read_text().splitlines()
    assert rows[0] == "timesteps,mean_return,std_return,episodes,train_seconds"
    assert [r.split(",")[0] for r in rows[1:]] == ["64"]


def test_tensorboard_has_sb3_and_memory_scalars(trained: Path) -> None:
    tags = set(scalars(trained).Tags()["scalars"])
    assert {"memory/update_gate", "memory/reset_gate", "memory/hidden_norm"} <= tags
    assert {"train/value_loss", "train/approx_kl", "rollout/ep_rew_mean", "eval/mean_reward"} <= tags


def test_eval_reproduces_eval_json(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(trained), "--episodes", "6", "--deterministic", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((trained / "eval.json").read_text())
    assert printed["returns"] == saved["returns"] and printed["timesteps"] == 128


def test_eval_memory_probe_writes_curve_and_plots(trained: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "probe"
    code = main(["eval", str(trained), "--episodes", "4", "--deterministic", "--memory-probe", "--probe-k", "1,2,4",
                 "--out", str(out)])
    assert code == 0
    assert "memory horizon curve: k=1:" in capsys.readouterr().out
    curve = json.loads((out / "memory_horizon.json").read_text())
    assert [point["k"] for point in curve["curve"]] == [1, 2, 4]
    assert curve["carried"]["episodes"] == 4 and curve["optimal_return"] == 1.0
    for name in ("memory_horizon.png", "hidden_state_pca.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_bare_model_finds_config_or_needs_env(trained: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(trained / "checkpoints" / "model_64_steps.zip"), "--episodes", "2"]) == 0
    assert "(64 timesteps)" in capsys.readouterr().out
    lonely = tmp_path / "model.zip"
    shutil.copy(trained / "model.zip", lonely)
    assert main(["eval", str(lonely), "--episodes", "2"]) == 2
    assert "pass --env ID" in capsys.readouterr().err
    assert main(["eval", str(lonely), "--episodes", "2", "--env", "rlgru/TMaze-Easy-v0"]) == 0
    assert main(["eval", str(lonely), "--episodes", "2", "--env", "CartPole-v1"]) == 2
    assert "the model does not fit 'CartPole-v1'" in capsys.readouterr().err


class LearnSpy:
    """Snapshots what ``learn`` starts from: step counter, optimizer state, VecNormalize statistics."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, interrupt_at_update: int | None = None) -> None:
        self.starts: list[dict[str, Any]] = []
        original_learn, original_train = RecurrentPPO.learn, RecurrentPPO.train
        updates = [0]

        def learn(model: RecurrentPPO, *args: Any, **kwargs: Any) -> RecurrentPPO:
            normalizer = model.get_vec_normalize_env()
            self.starts.append({
                "num_timesteps": model.num_timesteps,
                "optimizer": copy.deepcopy(model.policy.optimizer.state_dict()),
                "obs_count": None if normalizer is None else float(normalizer.obs_rms.count),
                "reset_num_timesteps": kwargs.get("reset_num_timesteps"),
            })
            return original_learn(model, *args, **kwargs)

        def train(model: RecurrentPPO) -> None:
            updates[0] += 1
            if updates[0] == interrupt_at_update:
                raise KeyboardInterrupt  # as if the process were killed during this update
            original_train(model)

        monkeypatch.setattr(RecurrentPPO, "learn", learn)
        monkeypatch.setattr(RecurrentPPO, "train", train)


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_config(tmp_path, env={"normalize": True})
    run_dir = tmp_path / "run"
    with monkeypatch.context() as patch:
        LearnSpy(patch, interrupt_at_update=3)
        assert train(config, run_dir) == 130
    run = RunDir(run_dir)
    assert not run.model.exists()
    assert [c.steps for c in run.list_checkpoints()] == [32, 64]
    checkpoint = run.latest_checkpoint()
    assert checkpoint is not None and checkpoint.vecnormalize is not None
    steps_before = scalars(run_dir).Scalars("time/fps")

    spy = LearnSpy(monkeypatch)
    assert train(config, run_dir, "--resume") == 0
    (start,) = spy.starts
    assert start["num_timesteps"] == 64 and start["reset_num_timesteps"] is False
    saved = RecurrentPPO.load(checkpoint.model, device="cpu").policy.optimizer.state_dict()
    assert saved["state"], "the checkpoint holds Adam moments"
    for key, moments in saved["state"].items():
        for name, tensor in moments.items():
            assert torch.equal(start["optimizer"]["state"][key][name], tensor), f"optimizer {key}.{name} restored"
    with checkpoint.vecnormalize.open("rb") as handle:
        saved_count = float(pickle.load(handle).obs_rms.count)
    assert saved_count > 64 and start["obs_count"] == pytest.approx(saved_count)

    assert num_timesteps(run.model) == 128
    assert [c.steps for c in run.list_checkpoints()] == [32, 64, 96, 128]
    steps_after = [event.step for event in scalars(run_dir).Scalars("time/fps")]
    assert [event.step for event in steps_before] == [32, 64, 96]
    assert max(steps_after) == 128 and set(steps_after) >= {32, 64, 96, 128}
    assert json.loads(run.eval_json.read_text())["timesteps"] == 128


def test_resume_extends_the_budget_but_refuses_other_changes(trained: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    config = write_config(tmp_path)
    assert train(config, run_dir, "--resume", "--set", "algorithm.n_epochs=3") == 2
    assert "differs from the run's config.yaml at algorithm.n_epochs" in capsys.readouterr().err
    assert train(config, run_dir, "--resume", "--set", "training.total_timesteps=192") == 0
    assert num_timesteps(run_dir / "model.zip") == 192
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["training"]["total_timesteps"] == 192


def test_same_config_and_seed_give_the_same_run(trained: Path, tmp_path: Path) -> None:
    assert train(write_config(tmp_path), tmp_path / "again") == 0
    first = RecurrentPPO.load(trained / "model.zip", device="cpu").policy.state_dict()
    second = RecurrentPPO.load(tmp_path / "again" / "model.zip", device="cpu").policy.state_dict()
    assert all(torch.equal(first[key], second[key]) for key in first)
    returns = [json.loads((d / "eval.json").read_text())["returns"] for d in (trained, tmp_path / "again")]
    assert returns[0] == returns[1]


def test_subprocess_envs_give_the_same_run_as_dummy(trained: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, training={"total_timesteps": 64, "checkpoint_freq": 0},
                          evaluation={"episodes": 4, "freq": 0})
    assert train(config, tmp_path / "dummy") == 0
    assert train(config, tmp_path / "subprocess", "--set", "env.vec_env=subprocess") == 0
    first = RecurrentPPO.load(tmp_path / "dummy" / "model.zip", device="cpu").policy.state_dict()
    second = RecurrentPPO.load(tmp_path / "subprocess" / "model.zip", device="cpu").policy.state_dict()
    assert all(torch.equal(first[key], second[key]) for key in first)


@pytest.mark.parametrize("normalize", [False, {"norm_obs": False, "norm_reward": True}], ids=["plain", "normalized"])
def test_image_task_evaluates_during_training(tmp_path: Path, normalize: bool | dict) -> None:
    # SB3 wraps image envs in VecTransposeImage for training only; periodic evaluation must still find (and sync)
    # the normalisation statistics under it.
    config = write_config(tmp_path, env={"id": "rlgru/KeyDoor-Easy-v0", "normalize": normalize},
                          policy={"features_extractor_kwargs": {"features_dim": 16}},
                          training={"total_timesteps": 96, "checkpoint_freq": 0},
                          evaluation={"episodes": 2, "freq": 32})
    assert train(config, tmp_path / "run") == 0
    rows = (tmp_path / "run" / "evaluations.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["32", "64"]


def test_lstm_logs_its_gates(tmp_path: Path) -> None:
    config = write_config(tmp_path, policy={"core": "lstm"}, training={"total_timesteps": 96, "checkpoint_freq": 0},
                          evaluation={"episodes": 2, "freq": 0})
    assert train(config, tmp_path / "run") == 0
    tags = set(scalars(tmp_path / "run").Tags()["scalars"])
    assert {"memory/input_gate", "memory/forget_gate", "memory/output_gate", "memory/hidden_norm"} <= tags


def test_meta_rl_run_keeps_memory_across_episodes(tmp_path: Path) -> None:
    config = write_config(tmp_path, env={"id": "rlgru/MetaBandit-Easy-v0"}, policy={"hidden_reset": "trial"},
                          training={"total_timesteps": 64, "checkpoint_freq": 0},
                          evaluation={"episodes": 20, "freq": 0})
    assert train(config, tmp_path / "run") == 0
    evaluation = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert evaluation["hidden_reset"] == "trial" and evaluation["episodes"] == 20
    assert evaluation["longest_memory"] > 2, "the state is carried over the 2-pull episodes of a trial"
