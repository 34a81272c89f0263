"""Observation wrappers: what they return, the spaces they declare, their seeding and argument checks."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.classic_control import CartPoleEnv, PendulumEnv
from gymnasium.utils.env_checker import check_env

from envs import FlickerObservation, KeyDoorEnv, MaskObservation, NoisyObservation, TMazeEnv


def test_mask_keeps_the_chosen_features() -> None:
    env = MaskObservation(CartPoleEnv(), [0, 2])
    obs, _ = env.reset(seed=0)
    full = env.unwrapped.state
    assert obs.shape == (2,) and env.observation_space.shape == (2,)
    np.testing.assert_allclose(obs, np.asarray(full, np.float32)[[0, 2]])
    assert env.observation_space.contains(obs)
    assert np.isfinite(env.observation_space.high).all()  # the velocities' infinite bounds are gone


def test_mask_accepts_negative_indices_and_images() -> None:
    env = MaskObservation(PendulumEnv(), [-3, -2])
    assert env.observation_space.shape == (2,)
    image = MaskObservation(KeyDoorEnv(), [0])  # the red channel of an image
    obs, _ = image.reset(seed=0)
    assert obs.shape == (40, 40, 1) and image.observation_space.contains(obs)


@pytest.mark.parametrize(
    ("indices", "match"), [([], "indices"), ([0, 4], "indices"), ([1, 1], "indices"), (["x"], "indices")]
)
def test_mask_rejects_bad_indices(indices: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MaskObservation(CartPoleEnv(), indices)


def test_wrappers_need_a_box() -> None:
    class DiscreteObs(gym.Env):
        observation_space = gym.spaces.Discrete(3)
        action_space = gym.spaces.Discrete(2)

    for wrap in (lambda e: MaskObservation(e, [0]), lambda e: FlickerObservation(e, 0.5),
                 lambda e: NoisyObservation(e, 1.0)):
        with pytest.raises(ValueError, match="Box"):
            wrap(DiscreteObs())


@pytest.mark.parametrize("p", [-0.1, 1.1, float("nan"), "half"])
def test_flicker_rejects_bad_probabilities(p: object) -> None:
    with pytest.raises(ValueError, match="p"):
        FlickerObservation(CartPoleEnv(), p)  # type: ignore[arg-type]


@pytest.mark.parametrize("sigma", [-1.0, float("inf")])
def test_noise_rejects_bad_sigma(sigma: float) -> None:
    with pytest.raises(ValueError, match="sigma"):
        NoisyObservation(CartPoleEnv(), sigma)


def test_flicker_rate_and_zeros() -> None:
    env = FlickerObservation(TMazeEnv(length=1000, max_steps=5000), 0.3)
    env.reset(seed=0)
    blank = 0
    for _ in range(4000):
        obs, *_ = env.step(0)
        blank += not obs.any()
    assert blank / 4000 == pytest.approx(0.3, abs=0.03)
    assert FlickerObservation(TMazeEnv(), 0.0).reset(seed=0)[0].any()
    assert not FlickerObservation(TMazeEnv(), 1.0).reset(seed=0)[0].any()


def test_flicker_widens_bounds_to_include_zero() -> None:
    class Positive(gym.Env):
        observation_space = gym.spaces.Box(1.0, 2.0, (2,), np.float32)
        action_space = gym.spaces.Discrete(2)

    space = FlickerObservation(Positive(), 0.5).observation_space
    assert space.contains(np.zeros(2, np.float32))


def test_noise_statistics_and_spaces() -> None:
    env = NoisyObservation(TMazeEnv(length=1000, max_steps=5000), 0.5)
    env.reset(seed=0)
    corridor = np.array([0, 0, 1, 0], np.float32)
    noise = np.array([env.step(TMazeEnv.UP)[0] - corridor for _ in range(4000)])  # "up" in the corridor: stay
    assert noise.mean() == pytest.approx(0.0, abs=0.02) and noise.std() == pytest.approx(0.5, rel=0.05)
    assert env.observation_space.dtype == np.float32 and np.isinf(env.observation_space.high).all()
    image = NoisyObservation(KeyDoorEnv(), 20.0)
    obs, _ = image.reset(seed=0)
    assert obs.dtype == np.uint8 and image.observation_space == KeyDoorEnv().observation_space


def test_wrapper_randomness_is_seeded_and_separate() -> None:
    def trace(seed: int) -> np.ndarray:
        env = NoisyObservation(FlickerObservation(MaskObservation(CartPoleEnv(), [0, 2]), 0.5), 0.1)
        obs = [env.reset(seed=seed)[0]]
        obs += [env.step(i % 2)[0] for i in range(20)]
        return np.array(obs)

    np.testing.assert_array_equal(trace(1), trace(1))
    assert not np.array_equal(trace(1), trace(2))
    # the wrapped env's own stream is untouched: same initial state as the bare env with the same seed
    wrapped = FlickerObservation(CartPoleEnv(), 0.5)
    wrapped.reset(seed=5)
    bare = CartPoleEnv()
    bare.reset(seed=5)
    np.testing.assert_array_equal(wrapped.unwrapped.state, bare.state)


def test_wrapped_envs_pass_the_checker() -> None:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(NoisyObservation(FlickerObservation(MaskObservation(TMazeEnv(), [0, 1, 3]), 0.2), 0.1),
                  skip_render_check=True)
    # expected, not bugs: the checker prefers raw envs, and Gaussian noise can leave any finite box
    expected = ("different from the unwrapped", "value is -infinity", "value is infinity")
    assert all(any(text in str(w.message) for text in expected) for w in caught)
