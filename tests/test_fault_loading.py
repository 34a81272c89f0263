"""Files from strangers: a crafted model zip or statistics pickle runs nothing unless the user says to trust it."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import pytest
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

from rlgru import RecurrentPPO
from rlgru.cli import main
from rlgru.safe_load import UntrustedPickleError, load_vecnormalize, restricted_loads
from tests.fault_tools import Payload, craft_model, write_config

ENV_ID = "rlgru/TMaze-Easy-v0"


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.zip"
    env = make_vec_env(ENV_ID, n_envs=2, seed=0)
    RecurrentPPO("MlpGruPolicy", env, n_steps=8, batch_size=16, policy_kwargs={"hidden_size": 4}).save(path)
    return path


@pytest.mark.parametrize("key", ["lr_schedule", "observation_space", "policy_class"])
def test_a_crafted_model_is_refused_and_runs_nothing(
    saved_model: Path, tmp_path: Path, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "pwned"
    crafted = craft_model(saved_model, tmp_path / "model.zip", key, Payload(marker))
    assert main(["eval", str(crafted), "--env", ENV_ID, "--episodes", "1"]) == 2
    err = capsys.readouterr().err
    assert f"data['{key}']: refusing the pickled global posix.system" in err and "--trust-pickle" in err
    assert len(err.strip().splitlines()) == 1
    with pytest.raises(UntrustedPickleError):
        RecurrentPPO.load(crafted)
    assert not marker.exists(), "the payload never ran"


def test_trust_pickle_is_the_explicit_way_to_load_anything(saved_model: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    crafted = craft_model(saved_model, tmp_path / "model.zip", "lr_schedule", Payload(marker))
    main(["eval", str(crafted), "--env", ENV_ID, "--episodes", "1", "--trust-pickle"])
    assert marker.exists(), "with --trust-pickle the file is unpickled as SB3 would (and its code runs)"


def test_user_objects_need_trust_or_custom_objects(tmp_path: Path) -> None:
    env = make_vec_env(ENV_ID, n_envs=2, seed=0)
    model = RecurrentPPO(
        "MlpGruPolicy",
        env,
        n_steps=8,
        batch_size=16,
        learning_rate=lambda progress: 1e-3 * progress,
        policy_kwargs={"hidden_size": 4},
    )
    model.save(tmp_path / "model.zip")
    with pytest.raises(UntrustedPickleError, match="learning_rate.*cloudpickle"):
        RecurrentPPO.load(tmp_path / "model.zip")
    trusted = RecurrentPPO.load(tmp_path / "model.zip", trust_pickle=True)
    assert trusted.lr_schedule(0.5) == pytest.approx(5e-4)
    replaced = RecurrentPPO.load(
        tmp_path / "model.zip", custom_objects={"lr_schedule": lambda _: 0.0, "learning_rate": 0.0}
    )
    assert replaced.lr_schedule(0.5) == 0.0


def test_statistics_load_safely_unless_crafted(tmp_path: Path) -> None:
    env = VecNormalize(make_vec_env(ENV_ID, n_envs=2, seed=0))
    env.reset()
    env.save(str(tmp_path / "vecnormalize.pkl"))
    loaded = load_vecnormalize(tmp_path / "vecnormalize.pkl", make_vec_env(ENV_ID, n_envs=2, seed=1))
    assert (loaded.obs_rms.mean == env.obs_rms.mean).all()
    marker = tmp_path / "pwned"
    (tmp_path / "crafted.pkl").write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(UntrustedPickleError):
        load_vecnormalize(tmp_path / "crafted.pkl", make_vec_env(ENV_ID, n_envs=2, seed=1))
    assert not marker.exists()


def test_a_crafted_statistics_file_in_a_run_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, env={"normalize": True}, training={"total_timesteps": 32})
    run_dir = tmp_path / "run"
    assert main(["train", str(config), "--run-dir", str(run_dir), "--no-progress"]) == 0
    marker = tmp_path / "pwned"
    (run_dir / "vecnormalize.pkl").write_bytes(pickle.dumps(Payload(marker)))
    capsys.readouterr()
    assert main(["eval", str(run_dir), "--episodes", "1"]) == 2
    assert "vecnormalize.pkl: refusing the pickled global posix.system" in capsys.readouterr().err
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload",
    [
        (eval, ("1 + 1",)),  # a builtin that runs code
        (getattr, (os, "getcwd")),  # reaching a function through an allowed object
    ],
)
def test_the_unpickler_refuses_calls_outside_its_allow_list(payload: tuple[Any, tuple[Any, ...]]) -> None:
    function, args = payload

    class Reduce:
        def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
            return function, args

    with pytest.raises((UntrustedPickleError, pickle.PicklingError, TypeError)):
        restricted_loads(pickle.dumps(Reduce()))
