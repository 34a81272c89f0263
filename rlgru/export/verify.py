"""Check an exported file against the policy it came from, on real episodes of its env, resets included.

The policy side is SB3's own path: the wrappers' numpy transforms (``VecNormalize.normalize_obs``,
``VecTransposeImage.transpose_observations``) and ``predict``; the file side gets the raw observations. Agreement
therefore covers the baked preprocessing as well as the cores and heads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from rlgru.algorithm.policies import RecurrentActorCriticPolicy
from rlgru.export.observations import baked_wrappers
from rlgru.export.runtime import ExportedRunner

#: largest absolute difference accepted in states, values and Box actions (float32 round-off, not a bug)
TOLERANCE = 1e-5


@dataclass(frozen=True)
class Comparison:
    steps: int
    episodes: int
    sampled: bool
    action_mismatches: int
    max_action_error: float
    max_state_error: float
    max_value_error: float | None

    @property
    def ok(self) -> bool:
        errors = [self.max_state_error, self.max_action_error, self.max_value_error or 0.0]
        return self.action_mismatches == 0 and max(errors) <= TOLERANCE

    def describe(self) -> str:
        actions = (
            "sampled actions inside the action space"
            if self.sampled
            else f"{self.steps - self.action_mismatches}/{self.steps} actions equal"
        )
        value = "" if self.max_value_error is None else f", max |value diff| {self.max_value_error:.2g}"
        return (
            f"{self.steps} steps, {self.episodes} episodes ended: {actions}, max |state diff| "
            f"{self.max_state_error:.2g}{value}"
        )


def compare_with_policy(
    runner: ExportedRunner, policy: RecurrentActorCriticPolicy, env: VecEnv, steps: int = 200
) -> Comparison:
    """Step ``env`` with the policy's deterministic actions; at every step compare the file's outputs with
    ``policy.predict`` (and ``predict_values``) from the same observations, states and episode starts.

    With a sampling file the actions cannot match; they are checked to lie in the action space, the states still
    have to match (they do not depend on the action taken).
    """
    source, wrappers = baked_wrappers(env)
    sampled = runner.metadata["actions"] == "sampled"
    raw = source.reset()
    n_envs = source.num_envs
    file_state = runner.initial_state(n_envs)
    policy_state = np.zeros_like(file_state)
    starts = np.ones(n_envs, dtype=bool)
    mismatches, episodes = 0, 0
    action_error = state_error = 0.0
    value_error: float | None = None
    for _ in range(steps):
        obs = raw
        for wrapper in wrappers:
            obs = (
                wrapper.normalize_obs(obs) if isinstance(wrapper, VecNormalize) else wrapper.transpose_observations(obs)
            )
        action, next_state = policy.predict(obs, policy_state, starts, deterministic=True)
        file_action, file_state, file_value = runner(raw, file_state, starts.astype(np.float32))
        if file_value is not None:
            with torch.no_grad():
                obs_tensor, _ = policy.obs_to_tensor(obs)
                value = policy.predict_values(obs_tensor, torch.as_tensor(policy_state), torch.as_tensor(starts))
            error = float(np.max(np.abs(value.numpy().reshape(-1) - file_value)))
            value_error = max(value_error or 0.0, error)
        state_error = max(state_error, float(np.max(np.abs(next_state - file_state))))
        if sampled:
            mismatches += sum(not policy.action_space.contains(a) for a in file_action)
        elif isinstance(policy.action_space, spaces.Box):
            action_error = max(action_error, float(np.max(np.abs(action - file_action))))
        else:
            mismatches += int(np.sum(np.any((action != file_action).reshape(n_envs, -1), axis=1)))
        policy_state = next_state
        raw, _, dones, _ = source.step(action)
        starts = np.asarray(dones, dtype=bool)
        episodes += int(starts.sum())
    return Comparison(steps * n_envs, episodes, sampled, mismatches, action_error, state_error, value_error)


__all__ = ["TOLERANCE", "Comparison", "compare_with_policy"]
