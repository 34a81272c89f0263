"""Every registered task: Gymnasium and SB3 env checkers, seeding, episode ends, metadata, argument checks."""

from __future__ import annotations

import importlib
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.env_util import make_vec_env

import envs
from envs.registry import LEVELS, TaskSpec

ALL_IDS = [env_id for spec in envs.list_tasks() for env_id in spec.ids]
SPEC_OF = {env_id: spec for spec in envs.list_tasks() for env_id in spec.ids}

# Warnings about the wrapped classic-control tasks that are not bugs: the checkers prefer raw envs, and
# Pendulum's own action space is [-2, 2].
EXPECTED_WARNINGS = ("different from the unwrapped", "symmetric and normalized", "Not able to test alternative")


def checked_env(env_id: str) -> gym.Env:
    """What the checkers see: the raw env class, or the wrapper stack for the wrapped control tasks."""
    spec = SPEC_OF[env_id]
    env = gym.make(env_id)
    if spec.category == "control":
        return spec.entry_point(**spec.kwargs(None, **env.spec.kwargs))
    return env.unwrapped


def unexpected(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if not any(text in str(w.message) for text in EXPECTED_WARNINGS)]


def test_at_least_eight_tasks_with_three_presets() -> None:
    assert len(envs.TASKS) >= 8
    for spec in envs.list_tasks():
        assert tuple(spec.presets) == LEVELS
        assert all(spec.knob in preset for preset in spec.presets.values()), spec.name
        assert spec.env_id.startswith("rlgru/") and spec.name in spec.env_id
        assert spec.knob in spec.defaults()


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_gymnasium_and_sb3_checkers(env_id: str) -> None:
    control = SPEC_OF[env_id].category == "control"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # rendering classic control needs pygame, which is optional
        gym_check_env(checked_env(env_id), skip_render_check=control)
        sb3_check_env(checked_env(env_id), warn=True)
    assert not unexpected(caught)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_seeded_reproducibility(env_id: str) -> None:
    def rollout(seed: int) -> list[Any]:
        env = gym.make(env_id)
        env.action_space.seed(7)
        obs, info = env.reset(seed=seed)
        trace: list[Any] = [obs, info]
        for _ in range(300):
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            trace += [obs, reward, terminated, truncated, info]
            if terminated or truncated:
                trace += list(env.reset())
        return trace

    first, again, other = rollout(3), rollout(3), rollout(4)
    for a, b in zip(first, again, strict=True):
        assert gym.utils.env_checker.data_equivalence(a, b, exact=True)
    assert not all(
        gym.utils.env_checker.data_equivalence(a, b, exact=True) for a, b in zip(first, other, strict=False)
    )


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_every_episode_ends_and_stays_in_its_spaces(env_id: str) -> None:
    """Random actions and each constant action (a policy that never moves, say) all reach episode ends."""
    env = gym.make(env_id)
    space = env.action_space
    constant = [space.low.copy(), space.high.copy()] if isinstance(space, gym.spaces.Box) else list(range(space.n))
    policies = [None, *constant]
    env.action_space.seed(0)
    for i, action in enumerate(policies):
        obs, _ = env.reset(seed=i)
        assert env.observation_space.contains(obs)
        for _ in range(1_000):
            obs, reward, terminated, truncated, _ = env.step(space.sample() if action is None else action)
            assert env.observation_space.contains(obs)
            assert np.isfinite(reward)
            if terminated or truncated:
                break
        else:
            pytest.fail(f"{env_id}: no episode end in 1000 steps with action {action}")


def test_registration_is_idempotent() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        envs.register_all()
        importlib.reload(importlib.import_module("envs"))
        envs.register_all()
    assert all(env_id in gym.registry for env_id in ALL_IDS)


def test_base_id_takes_the_knob() -> None:
    env = gym.make("rlgru/TMaze-v0", length=20)
    assert env.unwrapped.length == 20
    assert gym.make("rlgru/TMaze-Easy-v0").unwrapped.length == envs.TASKS["TMaze"].presets["Easy"]["length"]
    assert gym.make("rlgru/RepeatPrevious-v0", k=3).unwrapped.k == 3
    assert gym.make("rlgru/CartPoleNoVel-v1").observation_space.shape == (2,)
    assert gym.make("rlgru/PendulumNoVel-v1").observation_space.shape == (2,)


@pytest.mark.parametrize("spec", envs.list_tasks(), ids=lambda s: s.name)
def test_returns_metadata(spec: TaskSpec) -> None:
    for level in (None, *LEVELS):
        kwargs = spec.kwargs(level)
        optimal, memoryless = spec.optimal_return(**kwargs), spec.memoryless_return(**kwargs)
        assert np.isfinite(optimal) and np.isfinite(memoryless)
        assert memoryless < optimal, (spec.name, level)
    assert spec.summary and spec.memory_horizon
    with pytest.raises(TypeError, match="no_such_argument"):
        spec.kwargs(no_such_argument=1)
    with pytest.raises(ValueError, match="level"):
        spec.preset_id("Impossible")


def test_returns_follow_the_knob() -> None:
    count = envs.TASKS["CountRecall"]
    assert count.memoryless_return(length=64, n_symbols=4, max_count=32) < count.memoryless_return(length=8)
    bandit = envs.TASKS["MetaBandit"]
    assert bandit.memoryless_return(n_arms=10) < bandit.memoryless_return(n_arms=2)
    assert bandit.optimal_return(pulls_per_episode=7) == pytest.approx(7 * 0.8)
    assert bandit.optimal_return(n_arms=4, prior="uniform") == pytest.approx(2 * 4 / 5)


BAD_ARGUMENTS = [
    ("TMaze", {"length": -1}, "length"),
    ("TMaze", {"length": 5, "max_steps": 3}, "max_steps"),
    ("TMaze", {"length": 2.5}, "length"),
    ("RepeatPrevious", {"k": 16, "length": 16}, "k"),
    ("RepeatPrevious", {"k": 0}, "k"),
    ("RepeatPrevious", {"n_symbols": 1}, "n_symbols"),
    ("RepeatFirst", {"length": 1}, "length"),
    ("RepeatFirst", {"n_symbols": 0}, "n_symbols"),
    ("CountRecall", {"length": 0}, "length"),
    ("CountRecall", {"max_count": 0}, "max_count"),
    ("DelayedRecall", {"delay": -1}, "delay"),
    ("DelayedRecall", {"n_items": 0}, "n_items"),
    ("MetaBandit", {"n_arms": 1}, "n_arms"),
    ("MetaBandit", {"episodes_per_trial": 0}, "episodes_per_trial"),
    ("MetaBandit", {"pulls_per_episode": -2}, "pulls_per_episode"),
    ("MetaBandit", {"prior": "gaussian"}, "prior"),
    ("KeyDoor", {"length": 4}, "length"),
    ("KeyDoor", {"n_colours": 7}, "n_colours"),
    ("CartPoleNoVel", {"flicker": 1.5}, "flicker"),
    ("CartPoleNoVel", {"noise": -0.1}, "noise"),
    ("PendulumNoVel", {"flicker": -0.5}, "flicker"),
    ("TMaze", {"render_mode": "human"}, "render_mode"),
]


@pytest.mark.parametrize(("name", "kwargs", "argument"), BAD_ARGUMENTS)
def test_bad_arguments_raise_value_error_naming_them(name: str, kwargs: dict[str, Any], argument: str) -> None:
    spec = envs.TASKS[name]
    with pytest.raises(ValueError, match=argument):
        spec.entry_point(**kwargs)
    if argument != "render_mode":
        with pytest.raises(ValueError, match=argument):
            spec.optimal_return(**kwargs)


@pytest.mark.parametrize("spec", [s for s in envs.list_tasks() if s.category != "control"], ids=lambda s: s.name)
def test_bad_actions_raise(spec: TaskSpec) -> None:
    env = spec.entry_point()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(env.action_space.n)


@pytest.mark.parametrize("spec", [s for s in envs.list_tasks() if s.category != "control"], ids=lambda s: s.name)
def test_rendering(spec: TaskSpec) -> None:
    for mode in spec.entry_point.metadata["render_modes"]:
        env = spec.entry_point(render_mode=mode)
        env.reset(seed=0)
        env.step(0)
        frame = env.render()
        if mode == "ansi":
            assert isinstance(frame, str) and frame
        else:
            assert isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.ndim == 3
    assert spec.entry_point().render() is None


@pytest.mark.parametrize("env_id", [spec.preset_id("Easy") for spec in envs.list_tasks()])
def test_sb3_make_vec_env(env_id: str) -> None:
    """SB3 asks for render_mode="rgb_array" by default; every task must accept it."""
    vec_env = make_vec_env(env_id, n_envs=2, seed=0)
    obs = vec_env.reset()
    assert obs.shape == (2, *vec_env.observation_space.shape)
    for _ in range(20):
        obs, _, _, _ = vec_env.step(np.array([vec_env.action_space.sample() for _ in range(2)]))
    vec_env.close()


def test_visual_task_fits_nature_cnn() -> None:
    from stable_baselines3.common.preprocessing import is_image_space
    from stable_baselines3.common.torch_layers import NatureCNN

    space = gym.make("rlgru/KeyDoor-Easy-v0").observation_space
    assert is_image_space(space) and space.shape[0] >= 36 and space.shape[1] >= 36 and space.shape[2] == 3
    height, width, channels = space.shape  # SB3 feeds the CNN channel-first (VecTransposeImage)
    NatureCNN(gym.spaces.Box(0, 255, (channels, height, width), np.uint8))
