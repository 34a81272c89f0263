"""Divergence: a NaN from the env or an exploding update stops the run with one line and keeps a good checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

from rlgru import RecurrentPPO
from rlgru.cli import main
from rlgru.harness.errors import DIVERGED
from rlgru.harness.run_dir import RunDir
from rlgru.runtime.divergence import DivergenceError, DivergenceGuard, VecCheckFinite
from tests.fault_envs import BadValueEnv
from tests.fault_scenarios import BAD_VALUES, bad_env_value
from tests.fault_tools import in_this_process, train_args, write_config


def train_bad(tmp_path: Path, **sections: dict) -> tuple[int, str, RunDir]:
    code, _, err = in_this_process(train_args(write_config(tmp_path, **sections), tmp_path / "run"))
    return code, err, RunDir(tmp_path / "run")


@pytest.mark.parametrize(("what", "value", "quantity"), BAD_VALUES)
def test_a_bad_env_value_stops_the_run_naming_env_step_and_quantity(
    tmp_path: Path, what: str, value: float, quantity: str
) -> None:
    assert bad_env_value(tmp_path, what, value, quantity, in_this_process) == (False, [])


def test_an_exploding_learning_rate_stops_the_run(tmp_path: Path) -> None:
    code, err, run = train_bad(tmp_path, algorithm={"learning_rate": 1e3})
    assert code == DIVERGED and err.count("\n") == 1, err
    assert "rlgru/TMaze-Easy-v0: training diverged at step 32: the weights' norm grew" in err
    assert "the learning rate is likely too high" in err
    assert run.list_checkpoints() == [], "the exploded weights were never saved"


def test_the_guard_is_configurable(tmp_path: Path) -> None:
    guard = {"total_timesteps": 64, "guard": {"max_weight_growth": None}}
    code, err, run = train_bad(tmp_path, algorithm={"learning_rate": 1e3}, training=guard)
    assert code == 0, err
    assert run.model.is_file()


def test_guard_from_python() -> None:
    env = VecCheckFinite(DummyVecEnv([lambda: BadValueEnv(bad_from=12)]), env_id="bad-env")
    model = RecurrentPPO("MlpGruPolicy", env, n_steps=8, batch_size=8, policy_kwargs={"hidden_size": 4})
    with pytest.raises(DivergenceError, match="bad-env: training diverged at step 12: reward is nan") as caught:
        model.learn(64, callback=DivergenceGuard("bad-env"))
    assert (caught.value.env_id, caught.value.step, caught.value.quantity) == ("bad-env", 12, "reward")
    assert all(np.isfinite(p.detach().numpy()).all() for p in model.policy.parameters())


def test_a_batch_larger_than_a_rollout_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, algorithm={"batch_size": 64})
    assert main(["train", str(config), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"rlgru train: error: {config}: algorithm.batch_size 64 is larger than a rollout (env.n_envs 2 x "
        "algorithm.n_steps 16 = 32); lower it or collect longer rollouts\n"
    )
    assert not (tmp_path / "run").exists()
