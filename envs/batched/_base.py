"""The base of the batched tasks: Gymnasium's vector API, next-step autoreset and seeding, once for all tasks.

A subclass holds every env's state in arrays and says how to begin episodes (``_begin``), advance them
(``_advance``) and observe them (``_observe``); this class turns those into ``reset`` and ``step``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs._common import check_int, check_render_mode, features_image

Outcome = tuple[np.ndarray, np.ndarray, np.ndarray]  # rewards (float64), terminations, truncations


class BatchedEnv(VectorEnv):
    """``num_envs`` copies of one task stepped together with array operations.

    Autoreset is Gymnasium's default, next-step: the step after an episode ends ignores that env's action and
    returns the first observation of its next episode with reward 0 and neither flag set.
    ``reset(options={"reset_mask": mask})`` resets only the masked envs (as Gymnasium's own vector envs do), the
    others keep their state and observation; that is how an SB3 adapter gets a finished env's next episode at
    once. All envs draw from one generator, seeded by ``reset(seed=int)``.

    The single env is built once, to validate the arguments the same way and to take its spaces.
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": ["rgb_array"]}

    def __init__(self, num_envs: int, single: gym.Env, render_mode: str | None = None) -> None:
        self.num_envs = check_int("num_envs", num_envs, 1)
        self.render_mode = check_render_mode(render_mode, self.metadata["render_modes"])
        self.single_observation_space = single.observation_space
        self.single_action_space = single.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        single.close()
        self._ended = np.zeros(self.num_envs, dtype=bool)  # ended last step: the next step begins a new episode
        self._obs: np.ndarray | None = None  # the last observation batch (partial resets keep the other rows)

    # ---------------------------------------------------------------------------------------------- subclasses
    def _begin(self, envs: np.ndarray, options: dict[str, Any], seeded: bool) -> dict[str, Any]:
        """Draw new episodes for the env indices ``envs``; return a vector info (``{}`` or arrays with masks)."""
        raise NotImplementedError

    def _advance(self, actions: np.ndarray, live: np.ndarray) -> Outcome:
        """Step the envs where ``live``; the others' outcomes are ignored and their state must stay put."""
        raise NotImplementedError

    def _observe(self, envs: np.ndarray | None) -> np.ndarray:
        """The current observations of ``envs`` (all envs for ``None``), as a new array."""
        raise NotImplementedError

    def _step_info(self) -> dict[str, Any]:
        """The info of a step (the bandit's ``trial_start``); most tasks have none."""
        return {}

    # ---------------------------------------------------------------------------------------------- the API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
            raise TypeError(f"seed must be an int or None (one generator serves all envs), got {seed!r}")
        super().reset(seed=seed)
        options = dict(options or {})
        mask = _reset_mask(options.pop("reset_mask", None), self.num_envs)
        envs = np.flatnonzero(mask)
        info = self._begin(envs, options, seed is not None)
        self._ended[envs] = False
        if self._obs is None or len(envs) == self.num_envs:
            self._obs = self._observe(None)
        else:
            self._obs = self._obs.copy()
            self._obs[envs] = self._observe(envs)
        return self._obs, info

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        actions = self._checked_actions(actions)
        restart = self._ended
        reward, terminated, truncated = self._advance(actions, ~restart)
        info = self._step_info()
        if restart.any():
            envs = np.flatnonzero(restart)
            reward[envs], terminated[envs], truncated[envs] = 0.0, False, False
            info = _merge_infos(info, self._begin(envs, {}, False))
        self._ended = terminated | truncated
        self._obs = self._observe(None)
        return self._obs, reward, terminated, truncated, info

    def render(self) -> tuple[np.ndarray, ...] | None:
        """One frame per env, drawn from its current observation (as the single envs' ``rgb_array`` mode)."""
        if self.render_mode != "rgb_array" or self._obs is None:
            return None
        return tuple(features_image(row) for row in self._obs)

    def _checked_actions(self, actions: Any) -> np.ndarray:
        """The actions as an array of the batched shape; out-of-range discrete ones raise, as in the single env."""
        actions = np.asarray(actions)
        space = self.single_action_space
        if actions.shape != self.action_space.shape:
            raise ValueError(f"actions must have shape {self.action_space.shape}, got {actions.shape}")
        if isinstance(space, gym.spaces.Discrete):
            if not np.issubdtype(actions.dtype, np.integer):
                actions = actions.astype(np.int64)
            if actions.min() < 0 or actions.max() >= space.n:
                raise ValueError(f"actions must be in [0, {space.n}), got {actions}")
        return actions


def _reset_mask(mask: Any, num_envs: int) -> np.ndarray:
    if mask is None:
        return np.ones(num_envs, dtype=bool)
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.shape != (num_envs,):
        raise ValueError(f"options['reset_mask'] must be a bool array of shape ({num_envs},), got {mask!r}")
    if not mask.any():
        raise ValueError("options['reset_mask'] must select at least one env")
    return mask


def _merge_infos(step_info: dict[str, Any], reset_info: dict[str, Any]) -> dict[str, Any]:
    """Where both infos have a key, the reset's values win for the envs its mask selects."""
    merged = dict(step_info)
    for key, value in reset_info.items():
        if key.startswith("_"):
            continue
        mask = reset_info[f"_{key}"]
        if key in merged:
            merged[key] = np.where(mask, value, merged[key])
            merged[f"_{key}"] = merged[f"_{key}"] | mask
        else:
            merged[key], merged[f"_{key}"] = value, mask
    return merged


class AnswerTableEnv(BatchedEnv):
    """A task whose episode is drawn up front as a table: ``_codes[env, t]`` indexes the observation row shown at
    step ``t`` (in ``_table``) and ``answers[env, t]`` is the action that pays ``_pay`` then; episodes last
    ``length`` steps. Subclasses fill both tables in ``_begin``."""

    answers: np.ndarray
    length: int
    _codes: np.ndarray
    _table: np.ndarray
    _pay: float

    def _advance(self, actions: np.ndarray, live: np.ndarray) -> Outcome:
        reward = np.where(live & (actions == self.answers[self._rows, self.t]), self._pay, 0.0)
        self.t += live
        return reward, self.t >= self.length, np.zeros(self.num_envs, dtype=bool)

    def _observe(self, envs: np.ndarray | None) -> np.ndarray:
        if envs is None:
            return self._table[self._codes[self._rows, self.t]]
        return self._table[self._codes[envs, self.t[envs]]]
