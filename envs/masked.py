"""Classic control with the velocities hidden: the agent has to infer them from successive positions.

Built from ``envs.wrappers`` on Gymnasium's own CartPole and Pendulum. The knob, ``flicker``, also blanks
whole observations at random, so the velocity estimate has to bridge gaps; ``noise`` adds Gaussian noise.
Unlike the symbolic tasks, neither the optimum nor the memoryless ceiling is known in closed form: the figures
below are measured with scripted controllers (``tests/test_envs_masked.py`` re-measures them).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control import CartPoleEnv, PendulumEnv

from envs._common import check_float, check_probability
from envs.wrappers import FlickerObservation, MaskObservation, NoisyObservation

CARTPOLE_STEPS = 500  # as CartPole-v1
PENDULUM_STEPS = 200  # as Pendulum-v1


def _partially_observed(env: gym.Env, keep: list[int], flicker: float, noise: float) -> gym.Env:
    flicker = check_probability("flicker", flicker)
    noise = check_float("noise", noise, 0.0)
    env = MaskObservation(env, keep)
    if noise > 0.0:
        env = NoisyObservation(env, noise)
    if flicker > 0.0:
        env = FlickerObservation(env, flicker)
    return env


def make_cartpole_novel(flicker: float = 0.0, noise: float = 0.0, render_mode: str | None = None) -> gym.Env:
    """CartPole with observation ``[cart position, pole angle]``: both velocities removed.

    Registered with a 500-step limit (as CartPole-v1), reward 1 per step.

    * Memory: the last two or three positions, i.e. a few steps (longer under flicker), all episode long.
    * Optimal return: 500 (a full-state linear controller balances every episode).
    * Memoryless ceiling: not known exactly; we use 50. The best memoryless controllers we found (random and
      cross-entropy search over linear, polynomial and logistic policies of position and angle) reach 45-49;
      ``cartpole_memoryless_action`` scores 45 over 200 episodes, a random policy 22. Flicker and noise only
      lower the ceiling (a memoryless policy could blank its own input).
    """
    return _partially_observed(CartPoleEnv(render_mode=render_mode), [0, 2], flicker, noise)


def make_pendulum_novel(flicker: float = 0.0, noise: float = 0.0, render_mode: str | None = None) -> gym.Env:
    """Pendulum with observation ``[cos theta, sin theta]``: the angular velocity removed.

    Registered with a 200-step limit (as Pendulum-v1); reward ``-(theta^2 + 0.1 theta_dot^2 + 0.001 u^2)``.

    * Memory: the previous angle or two, to tell which way the pendulum swings (energy pumping needs it).
    * Optimal return: about -150, an estimate: the full-state energy-pumping swing-up with a PD catch
      (``pendulum_oracle_action``) scores -160 +- 13 over 50 random starts, and well-trained full-state agents
      reach -140 to -150.
    * Memoryless ceiling: not known exactly; we use -1100. The best controller of the angle alone we found
      (``pendulum_memoryless_action``) scores -1135 +- 45 over 50 episodes; no torque scores -1285 and a random
      policy -1275. Flicker and noise only lower the ceiling.
    """
    return _partially_observed(PendulumEnv(render_mode=render_mode), [0, 1], flicker, noise)


# Scripted controllers: the full-state oracles that set the optimum, and memoryless ones for the ceiling.


def cartpole_oracle_action(env: gym.Env) -> int:
    """Push toward the side the pole falls to, reading the hidden velocities from the unwrapped env."""
    x, x_dot, theta, theta_dot = env.unwrapped.state  # type: ignore[attr-defined]
    return int(10.0 * theta + 2.0 * theta_dot + 0.5 * x_dot + 0.1 * x > 0.0)


def cartpole_memoryless_action(obs: np.ndarray) -> int:
    """The best linear memoryless rule found for ``[x, theta]``."""
    return int(-0.75 * obs[0] + 1.69 * obs[1] > 0.0)


def pendulum_oracle_action(env: gym.Env) -> np.ndarray:
    """Energy pumping to the upright energy, then a PD catch; reads the hidden angular velocity."""
    theta, theta_dot = env.unwrapped.state  # type: ignore[attr-defined]
    theta = (theta + np.pi) % (2.0 * np.pi) - np.pi
    if abs(theta) < 0.5:
        torque = -10.0 * theta - 2.5 * theta_dot
    else:  # d/dt (theta_dot^2 / 2 + 15 cos theta) = 3 u theta_dot, and the upright energy is 15
        torque = 2.0 * (15.0 - 0.5 * theta_dot**2 - 15.0 * np.cos(theta)) * theta_dot
    return np.array([np.clip(torque, -2.0, 2.0)], dtype=np.float32)


def pendulum_memoryless_action(obs: np.ndarray) -> np.ndarray:
    """The best memoryless rule of the angle found (a fixed torque field over cos and sin)."""
    cos, sin = float(obs[0]), float(obs[1])
    torque = -2.77 * sin + 1.55 * cos - 0.31 * cos * sin + 0.12
    return np.array([np.clip(torque, -2.0, 2.0)], dtype=np.float32)


def cartpole_optimal(**_: Any) -> float:
    return float(CARTPOLE_STEPS)


def cartpole_memoryless(**_: Any) -> float:
    return 50.0


def pendulum_optimal(**_: Any) -> float:
    return -150.0


def pendulum_memoryless(**_: Any) -> float:
    return -1100.0
