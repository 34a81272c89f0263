"""How much, and how far back, does a policy use its memory?

The *memory horizon curve* is the evaluation return when the recurrent state is zeroed every ``k`` steps, for a
range of ``k``: ``k = 1`` is the policy with no memory at all, large ``k`` approaches the policy as trained. The
``k`` at which the curve climbs back to the carried-state return is how far back the policy looks. Every point
replays the same seeded episodes, so differences between points come from the resets, not from luck.

The hidden-state trajectory (principal components over time, via numpy's SVD) shows *what* the memory holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.vec_env import VecEnv

from rlgru import RecurrentPPO
from rlgru.harness.evaluate import EvalResult, run_episodes

#: fraction of the gap between no memory (k=1) and carried memory that defines the horizon
HORIZON_RECOVERY = 0.9
_NICE_STEPS = (1, 1.5, 2, 3)  # 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, ... : even on a log axis, integers


def default_k_values(longest_memory: int, max_points: int = 12) -> list[int]:
    """Reset intervals from 1 up to the longest carried stretch seen, evenly on a log scale.

    ``k = longest_memory`` never interrupts an episode, so the curve ends where the carried return is.
    """
    limit = max(int(longest_memory), 1)
    values = {limit}
    scale = 1
    while scale <= limit:
        values.update(int(scale * step) for step in _NICE_STEPS if scale * step <= limit and (scale * step) % 1 == 0)
        scale *= 4
    ordered = sorted(values)
    if len(ordered) > max_points:  # thin evenly on a log scale, keeping both ends
        logs = np.log(ordered)
        targets = np.linspace(0.0, logs[-1], max_points)
        ordered = sorted({ordered[int(np.argmin(np.abs(logs - target)))] for target in targets})
    return ordered


@dataclass
class MemoryHorizon:
    """The curve, the carried-state return it is read against, and the horizon read from it."""

    carried: EvalResult
    points: dict[int, EvalResult]
    seed: int

    @property
    def horizon(self) -> int | None:
        """Smallest ``k`` recovering ``HORIZON_RECOVERY`` of the carried-vs-memoryless gap (None: no gap)."""
        if 1 not in self.points:
            return None
        floor, ceiling = self.points[1].mean, self.carried.mean
        gap = ceiling - floor
        if not np.isfinite(gap) or abs(gap) < 1e-6 * max(1.0, abs(ceiling)) or gap < 0:
            return None
        for k in sorted(self.points):
            if self.points[k].mean - floor >= HORIZON_RECOVERY * gap:
                return k
        return None  # only the carried state recovers it: the horizon is beyond the largest k probed

    def as_dict(self) -> dict[str, Any]:
        def point(result: EvalResult) -> dict[str, Any]:
            return {"mean_return": result.mean, "std_return": result.std, "episodes": len(result.returns)}

        return {
            "seed": self.seed,
            "deterministic": self.carried.deterministic,
            "hidden_reset": self.carried.hidden_reset,
            "longest_memory": self.carried.longest_memory,
            "carried": point(self.carried),
            "curve": [{"k": k, **point(result)} for k, result in sorted(self.points.items())],
            "horizon_recovery": HORIZON_RECOVERY,
            "memory_horizon": self.horizon,
        }


def memory_horizon(
    model: RecurrentPPO,
    env: VecEnv,
    n_episodes: int,
    *,
    seed: int,
    deterministic: bool = True,
    k_values: Iterable[int] | None = None,
    report: Callable[[str], None] = lambda line: None,
) -> MemoryHorizon:
    """Evaluate with the state carried, then zeroed every ``k`` steps for each ``k``; same seeded episodes each.

    ``report`` gets a line after every point (the probe plays ``n_episodes`` once per ``k``: minutes, on long tasks).
    """
    started = time.perf_counter()
    env.seed(seed)
    carried = run_episodes(model, env, n_episodes, deterministic=deterministic)
    ks = sorted(set(k_values)) if k_values is not None else default_k_values(carried.longest_memory)
    report(
        f"memory probe: carried state {carried.mean:.3f} ({n_episodes} episodes, "
        f"{time.perf_counter() - started:.0f} s); next k = {', '.join(map(str, ks))}"
    )
    points: dict[int, EvalResult] = {}
    for index, k in enumerate(ks, start=1):
        env.seed(seed)
        points[k] = run_episodes(model, env, n_episodes, deterministic=deterministic, reset_every=k)
        report(f"memory probe: k={k}: {points[k].mean:.3f} ({index}/{len(ks)}, {time.perf_counter() - started:.0f} s)")
    return MemoryHorizon(carried, points, seed)


@dataclass
class HiddenTrajectory:
    """Principal components of the actor core's hidden state along one episode."""

    components: np.ndarray  # [T, n] projections of the episode's states
    explained: np.ndarray  # [n] fraction of variance (over all recorded episodes) each component explains
    rewards: np.ndarray  # [T]


def hidden_trajectory(
    model: RecurrentPPO,
    env: VecEnv,
    *,
    seed: int,
    deterministic: bool = True,
    n_components: int = 3,
    fit_episodes: int = 20,
) -> HiddenTrajectory:
    """Record the actor core's last layer as its ``readout`` shows it (an LSTM's ``h``, a GRU's whole state) at
    every step of ``fit_episodes`` episodes on the first env, fit principal components on all of them (a steadier
    basis than one episode gives), and project the first episode."""
    policy = model.policy
    states: list[np.ndarray] = []
    rewards: list[float] = []
    first_episode_length: list[int] = []

    def record(state: np.ndarray, step_rewards: np.ndarray, dones: np.ndarray) -> None:
        first_env = torch.as_tensor(state[:, :1], device=policy.device)
        states.append(policy.readout(first_env)[0].cpu().numpy().astype(np.float64))
        rewards.append(float(step_rewards[0]))
        if dones[0] and not first_episode_length:
            first_episode_length.append(len(states))

    env.seed(seed)
    run_episodes(model, env, fit_episodes * env.num_envs, deterministic=deterministic, observer=record)
    matrix = np.stack(states)
    centred = matrix - matrix.mean(axis=0)
    _, singular_values, basis = np.linalg.svd(centred, full_matrices=False)
    n = min(n_components, basis.shape[0])
    variance = singular_values**2
    explained = variance[:n] / variance.sum() if variance.sum() > 0 else np.zeros(n)
    length = first_episode_length[0] if first_episode_length else len(states)
    return HiddenTrajectory(centred[:length] @ basis[:n].T, explained, np.asarray(rewards[:length]))


__all__ = [
    "HORIZON_RECOVERY",
    "HiddenTrajectory",
    "MemoryHorizon",
    "default_k_values",
    "hidden_trajectory",
    "memory_horizon",
]
