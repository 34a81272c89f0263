"""CartPoleNoVel and PendulumNoVel, batched: Gymnasium's physics on arrays of states, velocities hidden.

The float operations follow Gymnasium's ``CartPoleEnv`` and ``PendulumEnv`` in the same order, with their own
constants read from a single env, so a batched trajectory (states, observations, CartPole's rewards) is the
single env's bit for bit. One exception: Pendulum's torque cost ``0.001 * u**2`` can differ by one float32 unit
(under 5e-10), because NumPy squares a float32 scalar (the single env) and a float32 array differently.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.pendulum import DEFAULT_X, DEFAULT_Y, angle_normalize

from envs._common import check_int
from envs.batched._base import BatchedEnv
from envs.masked import CARTPOLE_STEPS, PENDULUM_STEPS, make_cartpole_novel, make_pendulum_novel


class _MaskedControl(BatchedEnv):
    """Shared by both: the visible features, observation noise and flicker, and the time limit.

    Noise and flicker draw from a generator of their own (seeded by a seeded reset, as the single env's
    wrappers), so they never change the physics' random stream. ``noise[i]`` and ``blanked[i]`` are the draws
    behind env ``i``'s last observation.
    """

    metadata: dict[str, Any] = {**BatchedEnv.metadata, "render_modes": []}
    _SALT = 0x6D61736B

    def __init__(
        self,
        num_envs: int,
        single: gym.Env,
        visible: list[int],
        flicker: float,
        noise: float,
        max_episode_steps: int,
        render_mode: str | None,
    ) -> None:
        self.physics = single.unwrapped  # the constants; the single env is never stepped
        super().__init__(num_envs, single, render_mode)
        self.flicker, self.sigma = float(flicker), float(noise)  # validated by the single env's wrappers
        self.max_episode_steps = check_int("max_episode_steps", max_episode_steps, 1)
        self._visible = visible
        self._observation_rng = np.random.default_rng()
        self.state = np.zeros((self.num_envs, 0))  # the subclass's physical state, one row per env
        self.elapsed = np.zeros(self.num_envs, dtype=np.int64)
        self.noise = np.zeros((self.num_envs, len(visible)))
        self.blanked = np.zeros(self.num_envs, dtype=bool)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None:
            self._observation_rng = np.random.default_rng([int(seed), self._SALT])
        return super().reset(seed=seed, options=options)

    def _features(self, rows: np.ndarray | slice) -> np.ndarray:
        """The visible features of the state (float32, as the single env observes them)."""
        raise NotImplementedError

    def _observe(self, envs: np.ndarray | None) -> np.ndarray:
        rows: np.ndarray | slice = slice(None) if envs is None else envs
        obs = self._features(rows)
        if self.sigma > 0.0:
            noise = self._observation_rng.normal(0.0, self.sigma, obs.shape)
            obs = (obs + noise).astype(np.float32)
            self.noise[rows] = noise
        if self.flicker > 0.0:
            blanked = self._observation_rng.random(len(obs)) < self.flicker
            obs[blanked] = 0.0
            self.blanked[rows] = blanked
        return obs

    def _tick(self, live: np.ndarray) -> np.ndarray:
        """Count the live envs' steps; the truncations of the time limit (set even where an env terminated)."""
        self.elapsed += live
        return self.elapsed >= self.max_episode_steps


class CartPoleNoVelVectorEnv(_MaskedControl):
    """``rlgru/CartPoleNoVel-v1`` (``envs.masked.make_cartpole_novel``) for ``num_envs`` envs at once.

    Same arguments and spaces; ``max_episode_steps`` (500, as registered) truncates. ``state[i]`` is env
    ``i``'s full state (x, x_dot, theta, theta_dot).

    * Memory: the last few positions, to estimate velocities.
    * Optimal return: 500.
    * Memoryless ceiling: about 50 (an estimate, see ``make_cartpole_novel``).
    """

    def __init__(
        self,
        num_envs: int = 1,
        flicker: float = 0.0,
        noise: float = 0.0,
        max_episode_steps: int = CARTPOLE_STEPS,
        render_mode: str | None = None,
    ) -> None:
        single = make_cartpole_novel(flicker=flicker, noise=noise)
        super().__init__(num_envs, single, [0, 2], flicker, noise, max_episode_steps, render_mode)
        self.state = np.zeros((self.num_envs, 4))

    def _begin(self, envs: np.ndarray, options: dict[str, Any], seeded: bool) -> dict[str, Any]:
        self.state[envs] = self.np_random.uniform(low=-0.05, high=0.05, size=(len(envs), 4))
        self.elapsed[envs] = 0
        return {}

    def _advance(self, actions: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p = self.physics
        x, x_dot, theta, theta_dot = self.state.T
        force = np.where(actions == 1, p.force_mag, -p.force_mag)
        cos, sin = np.cos(theta), np.sin(theta)
        temp = (force + p.polemass_length * np.square(theta_dot) * sin) / p.total_mass
        theta_acc = (p.gravity * sin - cos * temp) / (
            p.length * (4.0 / 3.0 - p.masspole * np.square(cos) / p.total_mass)
        )
        x_acc = temp - p.polemass_length * theta_acc * cos / p.total_mass
        moved = np.stack(
            [x + p.tau * x_dot, x_dot + p.tau * x_acc, theta + p.tau * theta_dot, theta_dot + p.tau * theta_acc], 1
        )
        self.state = np.where(live[:, None], moved, self.state)
        x, theta = self.state[:, 0], self.state[:, 2]
        fallen = (x < -p.x_threshold) | (x > p.x_threshold)
        fallen |= (theta < -p.theta_threshold_radians) | (theta > p.theta_threshold_radians)
        return np.ones(self.num_envs), fallen, self._tick(live)

    def _features(self, rows: np.ndarray | slice) -> np.ndarray:
        return self.state[rows][:, [0, 2]].astype(np.float32)


class PendulumNoVelVectorEnv(_MaskedControl):
    """``rlgru/PendulumNoVel-v1`` (``envs.masked.make_pendulum_novel``) for ``num_envs`` envs at once.

    Same arguments and spaces; ``max_episode_steps`` (200, as registered) truncates. ``state[i]`` is env
    ``i``'s (theta, theta_dot).

    * Memory: the last angle or two, to tell the swing direction.
    * Optimal return: about -150 (an estimate, see ``make_pendulum_novel``).
    * Memoryless ceiling: about -1100 (an estimate).
    """

    def __init__(
        self,
        num_envs: int = 1,
        flicker: float = 0.0,
        noise: float = 0.0,
        max_episode_steps: int = PENDULUM_STEPS,
        render_mode: str | None = None,
    ) -> None:
        single = make_pendulum_novel(flicker=flicker, noise=noise)
        super().__init__(num_envs, single, [0, 1], flicker, noise, max_episode_steps, render_mode)
        self.state = np.zeros((self.num_envs, 2))
        self._high = np.array([DEFAULT_X, DEFAULT_Y])

    def _begin(self, envs: np.ndarray, options: dict[str, Any], seeded: bool) -> dict[str, Any]:
        self.state[envs] = self.np_random.uniform(low=-self._high, high=self._high, size=(len(envs), 2))
        self.elapsed[envs] = 0
        return {}

    def _advance(self, actions: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p = self.physics
        theta, theta_dot = self.state.T
        u = np.clip(actions, -p.max_torque, p.max_torque)[:, 0]
        costs = angle_normalize(theta) ** 2 + 0.1 * theta_dot**2 + 0.001 * (u**2)
        new_theta_dot = theta_dot + (3 * p.g / (2 * p.l) * np.sin(theta) + 3.0 / (p.m * p.l**2) * u) * p.dt
        new_theta_dot = np.clip(new_theta_dot, -p.max_speed, p.max_speed)
        moved = np.stack([theta + new_theta_dot * p.dt, new_theta_dot], 1)
        self.state = np.where(live[:, None], moved, self.state)
        return -costs, np.zeros(self.num_envs, dtype=bool), self._tick(live)

    def _features(self, rows: np.ndarray | slice) -> np.ndarray:
        theta = self.state[rows][:, 0]
        return np.stack([np.cos(theta), np.sin(theta)], 1).astype(np.float32)
