"""Evaluation loop and memory probe: when the state is zeroed, how the horizon is read, what gets plotted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rlgru import RecurrentPPO
from rlgru.cores import core_names
from rlgru.harness.config import EnvConfig
from rlgru.harness.env_factory import make_env
from rlgru.harness.evaluate import EvalResult, run_episodes
from rlgru.harness.memory_probe import MemoryHorizon, default_k_values, hidden_trajectory, memory_horizon
from rlgru.harness.plots import plot_hidden_trajectory, plot_memory_horizon


def agent(
    env_id: str, hidden_reset: str = "episode", n_envs: int = 2, core: str = "gru"
) -> tuple[RecurrentPPO, object]:
    env = make_env(EnvConfig(id=env_id, n_envs=n_envs), seed=0)
    model = RecurrentPPO("MlpPolicy", env, n_steps=8, batch_size=16, policy_kwargs={"core": core, "hidden_size": 4},
                         hidden_reset=hidden_reset, seed=0, device="cpu")
    return model, env


class PredictSpy:
    """Wraps ``model.predict`` to record the resets it is asked for and the dones that follow."""

    def __init__(self, model: RecurrentPPO, env: object) -> None:
        self.resets: list[np.ndarray] = []
        self.dones: list[np.ndarray] = []
        predict, step = model.predict, env.step

        def spy_predict(observation, state=None, episode_start=None, deterministic=False):  # noqa: ANN001, ANN202
            self.resets.append(np.asarray(episode_start, dtype=bool).copy())
            return predict(observation, state=state, episode_start=episode_start, deterministic=deterministic)

        def spy_step(actions):  # noqa: ANN001, ANN202
            result = step(actions)
            self.dones.append(result[2].copy())
            return result

        model.predict = spy_predict  # type: ignore[method-assign]
        env.step = spy_step  # type: ignore[attr-defined]


@pytest.mark.parametrize("k", [None, 1, 3])
def test_state_zeroed_at_episode_starts_and_every_k_steps(k: int | None) -> None:
    model, env = agent("rlgru/RepeatFirst-Easy-v0")  # 8-step episodes
    spy = PredictSpy(model, env)
    result = run_episodes(model, env, 4, reset_every=k)
    resets = np.stack(spy.resets)
    assert resets.shape == (16, 2)  # 2 episodes of 8 steps per env
    step_in_episode = np.arange(16) % 8
    expected = step_in_episode == 0 if k is None else step_in_episode % k == 0
    assert (resets == expected[:, None]).all()
    assert result.longest_memory == 8 and result.lengths == [8] * 4 and result.reset_every == k


def test_trial_mode_keeps_the_state_across_episodes() -> None:
    model, env = agent("rlgru/MetaBandit-Easy-v0", hidden_reset="trial", n_envs=1)  # trials of 10 x 2 pulls
    spy = PredictSpy(model, env)
    result = run_episodes(model, env, 20)
    resets = np.concatenate(spy.resets)
    assert len(resets) == 40 and np.flatnonzero(resets).tolist() == [0, 20]
    assert np.flatnonzero(np.concatenate(spy.dones)).size == 20
    assert result.hidden_reset == "trial" and result.longest_memory == 20


def test_episodes_are_shared_evenly_between_envs() -> None:
    model, env = agent("rlgru/TMaze-Easy-v0", n_envs=3)
    assert len(run_episodes(model, env, 7).returns) == 7


def fake(mean: float) -> EvalResult:
    return EvalResult([mean, mean], [5, 5], True, "episode", longest_memory=64)


def test_horizon_is_where_most_of_the_gap_is_recovered() -> None:
    curve = {1: fake(0.25), 4: fake(0.4), 8: fake(0.9), 16: fake(0.95), 64: fake(1.0)}
    horizon = MemoryHorizon(fake(1.0), curve, seed=0)
    assert horizon.horizon == 16  # 0.9 recovers 87% of the gap, 0.95 93%
    assert horizon.as_dict()["curve"][0] == {"k": 1, "mean_return": 0.25, "std_return": 0.0, "episodes": 2}
    assert MemoryHorizon(fake(0.5), {1: fake(0.5), 2: fake(0.5)}, seed=0).horizon is None  # memory unused


def test_default_k_values_span_one_to_the_longest_memory() -> None:
    assert default_k_values(1) == [1]
    assert default_k_values(5) == [1, 2, 3, 4, 5]
    assert default_k_values(21) == [1, 2, 3, 4, 6, 8, 12, 16, 21]
    many = default_k_values(1000)
    assert many[0] == 1 and many[-1] == 1000 and len(many) <= 12 and many == sorted(set(many))


@pytest.mark.parametrize("core", core_names())
def test_probe_and_plots(core: str, tmp_path: Path) -> None:
    model, env = agent("rlgru/RepeatFirst-Easy-v0", core=core)
    horizon = memory_horizon(model, env, 4, seed=3, k_values=[1, 2, 8])
    curve = horizon.as_dict()
    assert [p["k"] for p in curve["curve"]] == [1, 2, 8] and curve["longest_memory"] == 8
    # k = 8 never interrupts an 8-step episode, and every point replays the same seeded episodes
    assert curve["curve"][-1]["mean_return"] == curve["carried"]["mean_return"]
    single = make_env(EnvConfig(id="rlgru/RepeatFirst-Easy-v0", n_envs=1), seed=0)
    trajectory = hidden_trajectory(model, single, seed=3, fit_episodes=5)
    assert trajectory.components.shape == (8, 3) and trajectory.rewards.shape == (8,)
    assert 0 < trajectory.explained.sum() <= 1 + 1e-9
    for path in (plot_memory_horizon({**curve, "optimal_return": 1.0, "memoryless_return": 0.25},
                                     tmp_path / "curve.png", "title"),
                 plot_hidden_trajectory(trajectory, tmp_path / "pca.png", "title")):
        assert path.read_bytes()[:4] == b"\x89PNG"
