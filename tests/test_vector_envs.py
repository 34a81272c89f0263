"""The batched tasks (``envs.batched``) are the same tasks as the single envs, and train through ``BatchedVecEnv``.

The strongest check, ``test_batched_env_replays_the_single_env``, drives a batched env and one single env per
index through the same episodes: whenever the batched env begins an episode, its draws (symbols, cue, arms,
initial state, observation noise) are handed to that index's single env in place of its generator, and then
observations, rewards, terminations, truncations and infos must be equal, step by step, across autoresets and
partial resets. Any difference in dynamics, rewards, episode ends or observation layout fails it.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
import yaml
from gymnasium.utils.env_checker import check_env as gym_check_env
from gymnasium.vector import AutoresetMode
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

import envs
from envs import masked
from envs._common import features_image
from envs.batched import BatchedEnv
from envs.wrappers import FlickerObservation, NoisyObservation
from rlgru import RecurrentPPO
from rlgru.cli import main
from rlgru.env_plumbing.vec_env import BatchedVecEnv, make_batched_vec_env
from tests.test_envs_returns import memoryless_policy

BATCHED = [spec for spec in envs.list_tasks() if spec.vector_entry_point is not None]
SPEC_OF = {env_id: spec for spec in envs.list_tasks() for env_id in spec.ids}
ALL_IDS = [env_id for spec in BATCHED for env_id in spec.ids]
#: arguments beyond the presets, each reaching a branch the presets do not
VARIANTS = [
    ("rlgru/MetaBandit-v0", {"prior": "uniform", "n_arms": 3, "episodes_per_trial": 3}),
    ("rlgru/CartPoleNoVel-v1", {"flicker": 0.3, "noise": 0.05, "max_episode_steps": 40}),
    ("rlgru/PendulumNoVel-v1", {"flicker": 0.2, "noise": 0.1, "max_episode_steps": 30}),
    ("rlgru/KeyDoor-v0", {"n_colours": 6, "max_steps": 9}),
    ("rlgru/TMaze-v0", {"length": 2, "max_steps": 4}),
    ("rlgru/DelayedRecall-v0", {"delay": 0, "n_items": 5, "n_symbols": 7}),
    ("rlgru/RepeatPrevious-v0", {"k": 1, "length": 2}),
]


#: NumPy squares a float32 scalar and a float32 array differently, by one float32 unit in ~0.1% of cases: the
#: single Pendulum's torque cost 0.001 * u**2 (a scalar) and the batched one's (an array) can differ by < 5e-10
REWARD_TOLERANCE = {"rlgru/PendulumNoVel": 1e-9}


def make_batched(env_id: str, n: int, **kwargs: Any) -> BatchedEnv:
    venv = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", **kwargs)
    assert isinstance(venv, BatchedEnv)
    return venv


# ------------------------------------------------------------------------------------------------ replay
class Replay:
    """Stands in for a single env's generator: hands out the batched env's draws in order, checking each call."""

    def __init__(self, draws: list[tuple[str, Any]]) -> None:
        self.draws = list(draws)

    def _next(self, method: str, low: Any, high: Any, size: Any) -> Any:
        assert self.draws, f"the single env drew more than the batched env ({method})"
        name, value = self.draws.pop(0)
        assert name == method, f"the single env called {method}, the batched env drew with {name}"
        value = np.asarray(value)
        shape = np.broadcast_shapes(np.shape(low), np.shape(high)) if size is None else tuple(np.atleast_1d(size))
        assert value.shape == shape, (method, value.shape, shape)
        if method != "normal":
            assert np.all(value >= low) and np.all(value < high), (method, value, low, high)
        return value[()] if value.ndim == 0 else value

    def integers(self, low: Any, high: Any = None, size: Any = None) -> Any:
        low, high = (0, low) if high is None else (low, high)
        return self._next("integers", low, high, size)

    def random(self, size: Any = None) -> Any:
        return self._next("random", 0.0, 1.0, size)

    def uniform(self, low: Any = 0.0, high: Any = 1.0, size: Any = None) -> Any:
        return self._next("uniform", low, high, size)

    def normal(self, loc: Any = 0.0, scale: Any = 1.0, size: Any = None) -> Any:
        return self._next("normal", loc, loc, size)


def episode_draws(venv: BatchedEnv, i: int, trial_start: bool) -> list[tuple[str, Any]]:
    """What env ``i``'s single env draws from its generator to begin the episode the batched env just began."""
    name = type(venv).__name__.removesuffix("VectorEnv")
    if name in ("RepeatPrevious", "RepeatFirst"):
        return [("integers", venv.symbols[i, : venv.length])]
    if name == "CountRecall":
        return [("integers", venv.symbols[i]), ("integers", venv.queries[i])]
    if name == "DelayedRecall":
        return [("integers", venv.items[i])]
    if name == "TMaze":
        return [("integers", venv.goal[i])]
    if name == "KeyDoor":
        key, (upper, lower) = venv.key[i], venv.doors[i]
        other = lower if upper == key else upper
        return [("integers", key), ("integers", other - (other > key)), ("random", 0.25 if upper == key else 0.75)]
    if name == "MetaBandit":
        if not trial_start:
            return []
        probs = venv.arm_probs[i]
        first = ("random", probs) if venv.prior == "uniform" else ("integers", np.argmax(probs))
        return [first, ("random", venv.uniforms[i, :-1])]
    if name in ("CartPoleNoVel", "PendulumNoVel"):
        return [("uniform", venv.state[i].copy())]
    raise AssertionError(name)


def script(single: gym.Env, venv: BatchedEnv, i: int, draws: list[tuple[str, Any]]) -> list[Replay]:
    """Give the single env the batched env's draws: the episode's, and the observation's noise and flicker."""
    replays = [Replay(draws)]
    single.unwrapped.np_random = replays[0]
    layer = single
    while isinstance(layer, gym.Wrapper):
        if isinstance(layer, NoisyObservation):
            layer.rng = Replay([("normal", venv.noise[i].copy())])
            replays.append(layer.rng)
        if isinstance(layer, FlickerObservation):
            layer.rng = Replay([("random", 0.0 if venv.blanked[i] else 0.999)])
            replays.append(layer.rng)
        layer = layer.env
    return replays


def env_info(info: dict[str, Any], i: int) -> dict[str, Any]:
    return {key: info[key][i].item() for key in info if not key.startswith("_") and info[f"_{key}"][i]}


def oracle_actions(venv: BatchedEnv) -> np.ndarray:
    if hasattr(venv, "oracle_action"):
        return venv.oracle_action()
    controller = (
        masked.cartpole_oracle_action if hasattr(venv.physics, "x_threshold") else masked.pendulum_oracle_action
    )
    return np.stack([controller(SimpleNamespace(unwrapped=SimpleNamespace(state=s))) for s in venv.state])


def lockstep(env_id: str, n: int, steps: int, seed: int, partial_resets: bool = False, **kwargs: Any) -> dict:
    """Drive the batched env and ``n`` single envs through the same episodes; fail on the first difference."""
    venv = make_batched(env_id, n, **kwargs)
    singles = [gym.make(env_id, **kwargs) for _ in range(n)]
    rng = np.random.default_rng(seed)
    for single in singles:
        single.action_space.seed(int(rng.integers(2**31)))
    seen = {"episodes": 0, "terminated": 0, "truncated": 0, "reward": 0.0}

    def begin(i: int, obs: np.ndarray, info: dict[str, Any]) -> None:
        replays = script(singles[i], venv, i, episode_draws(venv, i, env_info(info, i).get("trial_start", False)))
        single_obs, single_info = singles[i].reset()
        assert all(not r.draws for r in replays), "the single env drew less than the batched env"
        np.testing.assert_array_equal(obs[i], single_obs, err_msg=f"{env_id} env {i}: first observation")
        assert env_info(info, i) == single_info
        seen["episodes"] += 1

    obs, info = venv.reset(seed=seed)
    for i in range(n):
        begin(i, obs, info)
    ended = np.zeros(n, dtype=bool)
    for step in range(steps):
        random_actions = np.stack([single.action_space.sample() for single in singles])
        use_oracle = rng.random(n) < 0.5
        actions = np.where(
            use_oracle.reshape(-1, *[1] * (random_actions.ndim - 1)), oracle_actions(venv), random_actions
        )
        actions = actions.astype(random_actions.dtype)
        obs, rewards, terminated, truncated, info = venv.step(actions)
        assert obs.dtype == venv.single_observation_space.dtype and rewards.dtype == np.float64
        for i in range(n):
            where = f"{env_id} env {i} step {step}"
            if ended[i]:  # next-step autoreset: this step began the env's next episode
                assert rewards[i] == 0.0 and not terminated[i] and not truncated[i], where
                begin(i, obs, info)
                continue
            replays = script(singles[i], venv, i, [])
            single_obs, reward, single_terminated, single_truncated, single_info = singles[i].step(actions[i])
            assert all(not r.draws for r in replays), where
            np.testing.assert_array_equal(obs[i], single_obs, err_msg=where)
            assert (terminated[i], truncated[i]) == (single_terminated, single_truncated), where
            assert rewards[i] == pytest.approx(reward, rel=0, abs=REWARD_TOLERANCE.get(env_id.split("-")[0], 0)), where
            assert env_info(info, i) == single_info, where
            seen["reward"] += reward
        ended = terminated | truncated
        seen["terminated"] += int(terminated.sum())
        seen["truncated"] += int(truncated.sum())
        if partial_resets and step % 5 == 4:
            mask = rng.random(n) < 0.3
            mask[rng.integers(n)] = True
            before = obs
            obs, info = venv.reset(options={"reset_mask": mask})
            np.testing.assert_array_equal(obs[~mask], before[~mask])
            for i in np.flatnonzero(mask):
                begin(i, obs, info)
            ended &= ~mask
    return seen


def episode_length(spec: envs.TaskSpec, kwargs: dict[str, Any]) -> int:
    venv = make_batched(spec.env_id, 1, **kwargs)
    for name in ("length", "max_steps", "max_episode_steps"):
        if name in vars(venv):
            longest = getattr(venv, name)
    if spec.name == "MetaBandit":
        longest = venv.pulls_per_episode * venv.episodes_per_trial
    return min(int(longest) + 2, 320)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_batched_env_replays_the_single_env(env_id: str) -> None:
    spec = SPEC_OF[env_id]
    kwargs = spec.kwargs(env_id.split("-")[-2] if env_id != spec.env_id else None)
    seen = lockstep(env_id, n=4, steps=2 * episode_length(spec, kwargs) + 10, seed=len(env_id))
    assert seen["episodes"] > 4 and seen["terminated"] + seen["truncated"] > 0 and seen["reward"] != 0.0, seen


@pytest.mark.parametrize(("env_id", "kwargs"), VARIANTS, ids=[f"{i}-{sorted(k)}" for i, k in VARIANTS])
def test_batched_env_replays_the_single_env_with_other_arguments_and_partial_resets(
    env_id: str, kwargs: dict[str, Any]
) -> None:
    seen = lockstep(env_id, n=5, steps=120, seed=7, partial_resets=True, **kwargs)
    assert seen["episodes"] > 5 and seen["terminated"] + seen["truncated"] > 0, seen


# ------------------------------------------------------------------------------------------------ the vector API
@pytest.mark.parametrize("env_id", ALL_IDS)
def test_make_vec_builds_the_batched_env_with_the_single_env_spaces(env_id: str) -> None:
    spec, single = SPEC_OF[env_id], gym.make(env_id)
    venv = gym.make_vec(env_id, num_envs=3)  # the vector entry point is the default mode
    assert isinstance(venv, spec.vector_entry_point) and venv.spec.id == env_id
    assert venv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert venv.single_observation_space == single.observation_space
    assert venv.single_action_space == single.action_space
    assert venv.observation_space == gym.vector.utils.batch_space(single.observation_space, 3)
    for name, value in single.spec.kwargs.items():  # the preset's arguments reached the batched env
        assert getattr(venv, "sigma" if name == "noise" else name) == value
    if spec.max_episode_steps:
        assert venv.max_episode_steps == single.spec.max_episode_steps
    obs, _ = venv.reset(seed=0)
    assert venv.observation_space.contains(obs)


def test_bad_arguments_actions_and_masks_raise() -> None:
    with pytest.raises(ValueError, match="length"):
        gym.make_vec("rlgru/TMaze-v0", num_envs=2, length=0)
    with pytest.raises(ValueError, match="num_envs"):
        gym.make_vec("rlgru/TMaze-v0", num_envs=0)
    with pytest.raises(ValueError, match="flicker"):
        gym.make_vec("rlgru/CartPoleNoVel-v1", num_envs=2, flicker=2.0)
    venv = gym.make_vec("rlgru/TMaze-v0", num_envs=2)
    with pytest.raises(RuntimeError, match="reset"):
        venv.step(np.zeros(2, dtype=np.int64))
    venv.reset(seed=0)
    for actions in (np.array([0, 4]), np.array([-1, 0]), np.zeros(3, dtype=np.int64)):
        with pytest.raises(ValueError, match="actions"):
            venv.step(actions)
    for mask in (np.zeros(2, dtype=bool), np.ones(3, dtype=bool), np.ones(2)):
        with pytest.raises(ValueError, match="reset_mask"):
            venv.reset(options={"reset_mask": mask})
    with pytest.raises(TypeError, match="seed"):
        venv.reset(seed=[1, 2])


def trace(venv: BatchedEnv, seed: int, steps: int = 60) -> list[Any]:
    obs, info = venv.reset(seed=seed)
    venv.action_space.seed(1)
    out: list[Any] = [obs, info]
    for _ in range(steps):
        out.extend(venv.step(venv.action_space.sample()))
    return out


@pytest.mark.parametrize("spec", BATCHED, ids=lambda s: s.name)
def test_seeded_resets_are_reproducible_and_arrays_are_not_reused(spec: envs.TaskSpec) -> None:
    venv = make_batched(spec.preset_id("Medium"), 4)
    first, again, other = trace(venv, 3), trace(venv, 3), trace(venv, 4)
    assert all(gym.utils.env_checker.data_equivalence(a, b, exact=True) for a, b in zip(first, again, strict=True))
    assert not all(gym.utils.env_checker.data_equivalence(a, b) for a, b in zip(first, other, strict=True))
    observations = [
        item for item in first if isinstance(item, np.ndarray) and item.shape == venv.observation_space.shape
    ]
    assert not any(np.shares_memory(a, b) for a, b in zip(observations, observations[1:], strict=False))


class OneEnvView(gym.Env):
    """Env 0 of a one-env batched env as a plain ``gym.Env``, for Gymnasium's env checker."""

    def __init__(self, venv: BatchedEnv) -> None:
        self.venv = venv
        self.observation_space, self.action_space = venv.single_observation_space, venv.single_action_space
        self.metadata = {"render_modes": []}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        obs, info = self.venv.reset(seed=seed, options=options)
        return obs[0], env_info(info, 0)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.venv.step(np.asarray(action)[None])
        return obs[0], float(reward[0]), bool(terminated[0]), bool(truncated[0]), env_info(info, 0)


@pytest.mark.parametrize("spec", BATCHED, ids=lambda s: s.name)
def test_gymnasium_env_checker_passes_on_a_one_env_view(spec: envs.TaskSpec) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(OneEnvView(make_batched(spec.preset_id("Hard"), 1)), skip_render_check=True)
    expected = ("symmetric and normalized",)  # Pendulum's own action space is [-2, 2]
    assert not [str(w.message) for w in caught if not any(text in str(w.message) for text in expected)]


# ------------------------------------------------------------------------------------------------ returns
def batched_returns(venv: BatchedEnv, policy: Any, episodes: int, seed: int = 0) -> np.ndarray:
    """Returns of the first ``episodes`` episodes to end, ``policy(obs, venv) -> actions`` for the whole batch."""
    obs, _ = venv.reset(seed=seed)
    venv.action_space.seed(seed)
    totals, returns = np.zeros(venv.num_envs), []
    while len(returns) < episodes:
        obs, reward, terminated, truncated, _ = venv.step(policy(obs, venv))
        totals += reward
        for i in np.flatnonzero(terminated | truncated):
            returns.append(totals[i])
            totals[i] = 0.0
    return np.array(returns[:episodes])


def single_returns(env_id: str, episodes: int, seed: int = 0) -> np.ndarray:
    env = gym.make(env_id)
    env.action_space.seed(seed)
    env.reset(seed=seed)
    returns = []
    for _ in range(episodes):
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total, done = total + float(reward), terminated or truncated
        returns.append(total)
        env.reset()
    return np.array(returns)


def stderr(values: np.ndarray) -> float:
    return float(np.std(values) / np.sqrt(len(values)))


@pytest.mark.parametrize("spec", BATCHED, ids=lambda s: s.name)
@pytest.mark.parametrize("level", envs.LEVELS)
def test_oracle_reaches_the_optimum(spec: envs.TaskSpec, level: str) -> None:
    """Exactly for the deterministic tasks; the bandit's and the control tasks' oracles as for the single env."""
    kwargs, n = spec.kwargs(level), 16 if spec.category == "control" else 64
    returns = batched_returns(make_batched(spec.preset_id(level), n), lambda obs, venv: oracle_actions(venv), n)
    optimum = spec.optimal_return(**kwargs)
    if spec.category == "control":  # the bar of test_envs_returns.test_control_tasks_reference_controllers
        assert returns.mean() >= optimum - 0.1 * abs(optimum - spec.memoryless_return(**kwargs)), returns.mean()
    else:
        assert returns.mean() == pytest.approx(optimum, abs=4 * stderr(returns) + 1e-9)


@pytest.mark.parametrize("spec", [s for s in BATCHED if s.category != "control"], ids=lambda s: s.name)
def test_best_memoryless_policy_sits_at_the_ceiling(spec: envs.TaskSpec) -> None:
    kwargs = spec.kwargs("Easy")
    act = memoryless_policy(spec, kwargs)
    returns = batched_returns(
        make_batched(spec.preset_id("Easy"), 200),
        lambda obs, venv: np.array([act(row, venv) for row in obs]),
        {"TMaze": 2000, "KeyDoor": 2000, "MetaBandit": 1000}.get(spec.name, 400),
    )
    ceiling = spec.memoryless_return(**kwargs)
    assert abs(returns.mean() - ceiling) < 4 * stderr(returns) + 1e-3, (returns.mean(), ceiling)


@pytest.mark.parametrize("spec", BATCHED, ids=lambda s: s.name)
def test_random_policy_returns_match_the_single_env(spec: envs.TaskSpec) -> None:
    env_id = spec.preset_id("Medium")
    episodes = 100 if spec.category == "control" else 300
    batched = batched_returns(make_batched(env_id, 50), lambda obs, venv: venv.action_space.sample(), episodes)
    single = single_returns(env_id, episodes)
    tolerance = 4 * np.hypot(stderr(batched), stderr(single)) + 1e-9
    assert abs(batched.mean() - single.mean()) < tolerance, (batched.mean(), single.mean())


# ------------------------------------------------------------------------------------------------ SB3 adapter
def strip(info: dict[str, Any]) -> dict[str, Any]:
    """An SB3 step info without its wall-clock time (``episode["t"]``), and ``"TimeLimit.truncated"`` only where an
    episode ended (``DummyVecEnv`` writes False into every other info too; SB3 reads it only at episode ends)."""
    ended = "terminal_observation" in info
    drop = ("terminal_observation",) if ended else ("terminal_observation", "TimeLimit.truncated")
    return {k: ({**v, "t": None} if k == "episode" else v) for k, v in info.items() if k not in drop}


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
@pytest.mark.parametrize("env_id", ["rlgru/TMaze-Easy-v0", "rlgru/MetaBandit-Easy-v0", "rlgru/CartPoleNoVel-Medium-v1"])
def test_adapter_over_gymnasiums_sync_vector_env_equals_dummy_vec_env_with_monitor(
    env_id: str, mode: AutoresetMode
) -> None:
    """Same envs, same seeds (env i gets seed + i): every obs, reward, done, info and reset info is equal."""
    dummy = make_vec_env(env_id, n_envs=3, seed=5)
    sync = gym.make_vec(env_id, num_envs=3, vectorization_mode="sync", vector_kwargs={"autoreset_mode": mode})
    adapted = BatchedVecEnv(sync)
    adapted.seed(5)
    np.testing.assert_array_equal(dummy.reset(), adapted.reset())
    assert dummy.reset_infos == adapted.reset_infos
    rng, episodes = np.random.default_rng(0), 0
    for _ in range(300):
        actions = rng.integers(dummy.action_space.n, size=3)
        expected, got = dummy.step(actions), adapted.step(actions)
        for a, b in zip(expected[:3], got[:3], strict=True):
            np.testing.assert_array_equal(a, b)
        assert [strip(i) for i in expected[3]] == [strip(i) for i in got[3]]
        for a, b in zip(expected[3], got[3], strict=True):
            if "terminal_observation" in a:
                np.testing.assert_array_equal(a["terminal_observation"], b["terminal_observation"])
                episodes += 1
        assert dummy.reset_infos == adapted.reset_infos
    assert episodes > 10


def test_adapter_reports_terminal_observations_truncations_and_episodes() -> None:
    """CartPoleNoVel with a 12-step limit under its oracle: every episode is truncated, never terminated."""
    env = make_batched_vec_env("rlgru/CartPoleNoVel-v1", 4, seed=0, env_kwargs={"max_episode_steps": 12})
    venv = env.venv
    obs = env.reset()
    for step in range(1, 40):
        actions = oracle_actions(venv)
        obs, rewards, dones, infos = env.step(actions)
        assert rewards.dtype == np.float32 and dones.dtype == bool and len(infos) == 4
        assert dones.all() == (step % 12 == 0) and dones.all() == dones.any()
        if dones.any():
            for info in infos:
                assert info["TimeLimit.truncated"] is True
                assert info["episode"]["r"] == 12.0 and info["episode"]["l"] == 12
                assert info["terminal_observation"].shape == (2,)
            assert (venv.elapsed == 0).all()  # obs already holds the next episodes' first observations
            np.testing.assert_array_equal(obs, venv.state[:, [0, 2]].astype(np.float32))

    tmaze = make_batched_vec_env("rlgru/TMaze-Easy-v0", 64, seed=0)
    tmaze.reset()
    rng, ends = np.random.default_rng(0), []
    for _ in range(30):  # forward to the junction, then a random arm: every episode ends by a turn (terminated)
        at_junction = tmaze.venv.position == tmaze.venv.length
        ends += [info for info in tmaze.step(np.where(at_junction, rng.integers(2, 4, 64), 0))[3] if "episode" in info]
    assert {info["TimeLimit.truncated"] for info in ends} == {False}
    assert {info["episode"]["r"] for info in ends} == {0.0, 1.0}


def test_adapter_seeding_reset_infos_and_attributes() -> None:
    first, second = (make_batched_vec_env("rlgru/MetaBandit-Easy-v0", 4, seed=9) for _ in range(2))
    np.testing.assert_array_equal(first.reset(), second.reset())
    assert [info["trial_start"] for info in first.reset_infos] == [True] * 4
    starts = []
    for _ in range(2 * 10):  # 10 episodes of 2 pulls: one trial
        _, _, dones, _ = first.step(np.zeros(4, dtype=np.int64))
        if dones.any():
            starts.append([info["trial_start"] for info in first.reset_infos])
    assert starts[:-1] == [[False] * 4] * 9 and starts[-1] == [True] * 4

    assert first.get_attr("n_arms") == [2, 2, 2, 2] and first.get_attr("render_mode", [1]) == [None]
    first.set_attr("prior", "uniform")
    assert first.venv.prior == "uniform"
    with pytest.raises(ValueError, match="all its envs"):
        first.set_attr("prior", "one_good", indices=[0])
    assert len(first.env_method("oracle_action", indices=[0, 1])) == 2
    assert first.env_is_wrapped(Monitor) == [True] * 4 and first.env_is_wrapped(gym.Wrapper) == [False] * 4
    with pytest.raises(ValueError, match="no batched version"):
        make_batched_vec_env("MountainCar-v0", 2)


# ------------------------------------------------------------------------------------------------ training
def test_ppo_and_recurrent_ppo_train_on_batched_envs_with_episode_stats_and_truncations() -> None:
    """A few hundred steps each; SB3's PPO sees truncation infos (its value bootstrap) from the 16-step limit."""
    seen: list[dict[str, Any]] = []

    class Infos(BaseCallback):
        def _on_step(self) -> bool:
            seen.extend(info for info in self.locals["infos"] if "terminal_observation" in info)
            return True

    env = make_batched_vec_env("rlgru/CartPoleNoVel-v1", 8, seed=0, env_kwargs={"max_episode_steps": 16})
    model = PPO("MlpPolicy", env, n_steps=32, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(512, callback=Infos())
    assert len(model.ep_info_buffer) > 0 and all(ep["l"] <= 16 for ep in model.ep_info_buffer)
    assert any(info["TimeLimit.truncated"] for info in seen) and any(not i["TimeLimit.truncated"] for i in seen)

    env = make_batched_vec_env("rlgru/RepeatFirst-Easy-v0", 8, seed=0)
    policy_kwargs = {"hidden_size": 8, "net_arch": [8]}
    model = RecurrentPPO(
        "MlpGruPolicy", env, n_steps=32, batch_size=128, n_epochs=1, seed=0, policy_kwargs=policy_kwargs
    )
    model.learn(512)
    assert len(model.ep_info_buffer) == 512 // 8 and {ep["l"] for ep in model.ep_info_buffer} == {8}


@pytest.mark.slow
def test_recurrent_ppo_trained_on_batched_tmaze_solves_the_single_env() -> None:
    """Trained on the batched env, evaluated on single envs (DummyVecEnv): the memory carries over."""
    th.manual_seed(0)
    env = make_batched_vec_env("rlgru/TMaze-Easy-v0", 8, seed=0)
    hyperparameters = {"n_steps": 32, "batch_size": 128, "n_epochs": 8, "learning_rate": 3e-3, "gamma": 0.9}
    policy_kwargs = {"hidden_size": 32, "net_arch": [32]}
    model = RecurrentPPO("MlpGruPolicy", env, seed=0, ent_coef=0.01, policy_kwargs=policy_kwargs, **hyperparameters)
    model.learn(16_000)
    mean, _ = evaluate_policy(model, make_vec_env("rlgru/TMaze-Easy-v0", n_envs=8, seed=100), n_eval_episodes=100)
    assert mean > 0.9, mean


def test_rlgru_train_with_batched_envs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = {
        "seed": 0,
        "env": {"id": "rlgru/MetaBandit-Easy-v0", "n_envs": 4, "vec_env": "batched"},
        "algorithm": {"n_steps": 16, "batch_size": 32, "n_epochs": 1},
        "policy": {"hidden_size": 8, "net_arch": [8], "hidden_reset": "trial"},
        "training": {"total_timesteps": 128, "checkpoint_freq": 64},
        "evaluation": {"episodes": 4},
    }
    path = tmp_path / "batched.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["train", str(path), "--run-dir", str(tmp_path / "run"), "--no-progress"]) == 0
    assert "4 batched envs" in capsys.readouterr().out
    assert json.loads((tmp_path / "run" / "eval.json").read_text())["timesteps"] == 128

    config["env"] = {"id": "MountainCar-v0", "vec_env": "batched"}
    path.write_text(yaml.safe_dump(config))
    assert main(["train", str(path), "--run-dir", str(tmp_path / "other"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "env.vec_env: 'MountainCar-v0' has no batched version" in err, err


def test_rgb_array_frames_are_the_single_envs_drawings() -> None:
    """The symbolic tasks draw the current observation (``features_image``), KeyDoor shows its view."""
    venv = gym.make_vec("rlgru/TMaze-Easy-v0", num_envs=2, render_mode="rgb_array")
    obs, _ = venv.reset(seed=0)
    single = gym.make("rlgru/TMaze-Easy-v0", render_mode="rgb_array")
    single_obs, _ = single.reset(seed=0)
    np.testing.assert_array_equal(single.render(), features_image(single_obs))
    for frame, row in zip(venv.render(), obs, strict=True):
        np.testing.assert_array_equal(frame, features_image(row))
    keydoor = gym.make_vec("rlgru/KeyDoor-Easy-v0", num_envs=2, render_mode="rgb_array")
    obs, _ = keydoor.reset(seed=0)
    np.testing.assert_array_equal(np.stack(keydoor.render()), obs)
    with pytest.raises(ValueError, match="render_mode"):
        gym.make_vec("rlgru/CartPoleNoVel-v1", num_envs=2, render_mode="rgb_array")
