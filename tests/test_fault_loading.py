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
from rlgru.runtime.safe_load import UntrustedPickleError, load_vecnormalize, restricted_loads
from tests.fault_scenarios import CRAFTED_KEYS, crafted_files, crafted_model_refused
from tests.fault_tools import Payload, craft_model, in_this_process

ENV_ID = "rlgru/TMaze-Easy-v0"


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.zip"
    env = make_vec_env(ENV_ID, n_envs=2, seed=0)
    RecurrentPPO("MlpGruPolicy", env, n_steps=8, batch_size=16, policy_kwargs={"hidden_size": 4}).save(path)
    return path


@pytest.mark.parametrize("key", CRAFTED_KEYS)
def test_a_crafted_model_is_refused_and_runs_nothing(saved_model: Path, tmp_path: Path, key: str) -> None:
    assert crafted_model_refused(saved_model, tmp_path, key, in_this_process) == []
    with pytest.raises(UntrustedPickleError):
        RecurrentPPO.load(tmp_path / "crafted.zip")
    assert not (tmp_path / "payload-ran").exists(), "the payload never ran"


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


def test_a_crafted_model_and_statistics_file_in_a_run_are_refused(tmp_path: Path) -> None:
    assert crafted_files(tmp_path, in_this_process) == (False, [])


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
