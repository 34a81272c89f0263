"""Tuple observations of any nesting (and POPGym's tasks) train, through the Python API and through ``rlgru train``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from rlgru import RecurrentPPO
from rlgru.cli import main
from rlgru.env_plumbing.wrappers import needs_flattening
from tests.fault_tools import write_config

NESTED_SPACES: dict[str, spaces.Space] = {
    "tuple of tuple": spaces.Tuple(
        (spaces.Tuple((spaces.Box(-1, 1, (2,), np.float32), spaces.Discrete(3))), spaces.MultiBinary(2))
    ),
    "dict in tuple": spaces.Tuple(
        (spaces.Dict({"a": spaces.Discrete(2), "b": spaces.Box(0, 1, (1,), np.float32)}), spaces.Discrete(4))
    ),
    "three levels": spaces.Tuple((spaces.Tuple((spaces.Tuple((spaces.Discrete(2),)), spaces.MultiDiscrete([2, 3]))),)),
    "tuple in dict": spaces.Dict({"x": spaces.Tuple((spaces.Discrete(2), spaces.Box(-1, 1, (1,), np.float32)))}),
}


class CueInSpace(gym.Env):
    """Random observations from one of ``NESTED_SPACES``, reward 1 for action 1, 6 steps: all it takes to exercise
    the flattening in rollouts, updates, evaluation, save/load and predict."""

    def __init__(self, space: str = "tuple of tuple") -> None:
        self.observation_space = NESTED_SPACES[space]
        self.action_space = spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        self.observation_space.seed(int(self.np_random.integers(2**31)))
        self.t = 0
        return self.observation_space.sample(), {}

    def step(self, action: int) -> tuple[Any, float, bool, bool, dict]:
        self.t += 1
        return self.observation_space.sample(), float(action == 1), self.t >= 6, False, {}


@pytest.mark.parametrize("space", list(NESTED_SPACES))
def test_nested_spaces_train_save_and_predict_through_the_python_api(space: str, tmp_path: Path) -> None:
    assert needs_flattening(NESTED_SPACES[space])
    env = CueInSpace(space)
    model = RecurrentPPO("MlpGruPolicy", env, n_steps=16, batch_size=16, n_epochs=1, policy_kwargs={"hidden_size": 4})
    model.learn(32)
    flat = spaces.flatten_space(NESTED_SPACES[space])
    assert model.observation_space.shape == flat.shape
    model.save(tmp_path / "model.zip")
    loaded = RecurrentPPO.load(tmp_path / "model.zip", env=CueInSpace(space))
    observation = spaces.flatten(NESTED_SPACES[space], NESTED_SPACES[space].sample())
    actions, state = loaded.predict(observation[None], deterministic=True)
    assert actions.shape == (1,) and state.shape[1] == 1


@pytest.mark.parametrize("space", ["tuple of tuple", "dict in tuple"])
def test_nested_spaces_train_and_evaluate_through_rlgru_train(space: str, tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        env={"id": "tests.test_tuple_observations:CueInSpace", "env_kwargs": {"space": space}},
        training={"total_timesteps": 64},
        evaluation={"freq": 32, "episodes": 2},
    )
    run_dir = tmp_path / "run"
    assert main(["train", str(config), "--run-dir", str(run_dir), "--no-progress"]) == 0
    assert main(["eval", str(run_dir), "--episodes", "2"]) == 0
    model = RecurrentPPO.load(run_dir / "model.zip")  # the harness's envs keep the env's own space too
    assert model.nested_observation_space == NESTED_SPACES[space]
    model.predict(NESTED_SPACES[space].sample())


def test_popgym_tuple_task_trains_and_evaluates(tmp_path: Path) -> None:
    pytest.importorskip("popgym")
    assert isinstance(gym.make("popgym-AutoencodeEasy-v0").observation_space, spaces.Tuple)
    RecurrentPPO(
        "MlpGruPolicy",
        "popgym-AutoencodeEasy-v0",
        n_steps=16,
        batch_size=16,
        n_epochs=1,
        policy_kwargs={"hidden_size": 4},
    ).learn(32)
    config = write_config(
        tmp_path,
        env={"id": "popgym-AutoencodeEasy-v0"},
        training={"total_timesteps": 64},
        evaluation={"freq": 32, "episodes": 2},
    )
    assert main(["train", str(config), "--run-dir", str(tmp_path / "run"), "--no-progress"]) == 0


@pytest.mark.parametrize("space", list(NESTED_SPACES))
def test_predict_takes_the_envs_own_nested_observations_one_or_batched(space: str, tmp_path: Path) -> None:
    """``predict`` takes what the env returns (one observation, or a vec env's batch of them) as well as the
    flattened form, before and after save/load, with the same actions and state."""
    model = RecurrentPPO("MlpGruPolicy", CueInSpace(space), n_steps=8, batch_size=8, policy_kwargs={"hidden_size": 4})
    model.save(tmp_path / "model.zip")
    loaded = RecurrentPPO.load(tmp_path / "model.zip")
    assert loaded.policy.nested_observation_space == NESTED_SPACES[space]
    nested_space = NESTED_SPACES[space]
    nested_space.seed(0)
    samples = [nested_space.sample() for _ in range(3)]
    flat = np.stack([spaces.flatten(nested_space, sample) for sample in samples])
    batch = _stack(samples)  # what a vec env of the nested env would return: arrays with a leading env axis
    for agent in (model, loaded):
        want_actions, want_state = agent.predict(flat, deterministic=True)
        actions, state = agent.predict(batch, deterministic=True)
        assert np.array_equal(actions, want_actions) and np.allclose(state, want_state)
        one, one_state = agent.predict(samples[1], deterministic=True)
        assert np.shape(one) == () and one == want_actions[1] and one_state.shape[1] == 1


def _stack(samples: list[Any]) -> Any:
    first = samples[0]
    if isinstance(first, tuple):
        return tuple(_stack([sample[i] for sample in samples]) for i in range(len(first)))
    if isinstance(first, dict):
        return {key: _stack([sample[key] for sample in samples]) for key in first}
    return np.stack([np.asarray(sample) for sample in samples])


FLAT_TUPLE = spaces.Tuple((spaces.Box(-1, 1, (2,), np.float32), spaces.Discrete(3), spaces.MultiBinary(2)))


class CueInFlatTuple(CueInSpace):
    """``CueInSpace`` with a Tuple of plain spaces: one level, the nesting SB3's own vec envs accept."""

    def __init__(self) -> None:
        self.observation_space = FLAT_TUPLE
        self.action_space = spaces.Discrete(2)


def test_sb3_evaluate_policy_runs_on_the_envs_own_tuple_observations() -> None:
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    model = RecurrentPPO("MlpGruPolicy", CueInFlatTuple(), n_steps=8, batch_size=8, policy_kwargs={"hidden_size": 4})
    mean, _ = evaluate_policy(model, Monitor(CueInFlatTuple()), n_eval_episodes=3, deterministic=True)
    assert 0.0 <= mean <= 6.0


def test_sb3_evaluate_policy_runs_on_popgym() -> None:
    pytest.importorskip("popgym")
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    model = RecurrentPPO(
        "MlpGruPolicy", "popgym-AutoencodeEasy-v0", n_steps=16, batch_size=16, policy_kwargs={"hidden_size": 4}
    )
    model.learn(16)
    env = Monitor(gym.make("popgym-AutoencodeEasy-v0"))
    assert isinstance(env.observation_space, spaces.Tuple)
    mean, _ = evaluate_policy(model, env, n_eval_episodes=2)
    assert np.isfinite(mean)
