"""When the recurrent state is zeroed: at episodes, at trials (meta-RL), or never.

The rule is applied in exactly one place, after each env step, so the rollout and the training replay can
never disagree about where a memory starts.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

HiddenResetMode = Literal["episode", "trial", "never"]
HIDDEN_RESET_MODES: tuple[str, ...] = ("episode", "trial", "never")


def hidden_resets_after_step(
    mode: HiddenResetMode, env: VecEnv, dones: np.ndarray, infos: list[dict[str, Any]]
) -> np.ndarray:
    """Which envs start the next step from a zero state.

    ``"trial"`` reads ``trial_start`` from the info that comes with the next observation: the reset info of an
    env that just finished an episode (SB3 vec envs keep it in ``reset_infos``), otherwise the step info.
    """
    if mode == "episode":
        return np.asarray(dones, dtype=bool).copy()
    if mode == "never":
        return np.zeros(len(dones), dtype=bool)
    if mode == "trial":
        reset_infos = base_vec_env(env).reset_infos
        return np.array(
            [bool((reset_infos[i] if done else infos[i]).get("trial_start", False)) for i, done in enumerate(dones)]
        )
    raise ValueError(f"hidden_reset must be one of {HIDDEN_RESET_MODES}, got {mode!r}")


def base_vec_env(env: VecEnv) -> VecEnv:
    """The innermost vec env: wrappers such as VecNormalize keep an empty ``reset_infos`` of their own."""
    while isinstance(env, VecEnvWrapper):
        env = env.venv
    return env
