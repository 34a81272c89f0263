"""Wrappers that reach the knobs of third-party suites from a config: ``ResetOptions`` for Memory Gym's.

Memory Gym's envs take their difficulty (command count, path length, rewards) as ``reset(options=...)``, not as
constructor arguments, and SB3's vec envs reset with no options; a wrapper listed in ``env.wrappers`` supplies them.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym


class ResetOptions(gym.Wrapper):
    """Every ``reset`` gets ``options`` (merged under any the caller passes), e.g. Memory Gym's reset parameters:
    ``{rlgru.env_plumbing.suite_wrappers:ResetOptions: {options: {command_count: [3]}}}`` in ``env.wrappers``.

    The options are checked by one reset when the wrapper is made, so a misspelt knob fails when the config is
    loaded, not in a subprocess worker.
    """

    def __init__(self, env: gym.Env, options: dict[str, Any]) -> None:
        if not isinstance(options, dict):
            raise TypeError(f"options must be a mapping of reset options, got {type(options).__name__}")
        super().__init__(env)
        self.options = dict(options)
        try:
            env.reset(options=dict(self.options))
        except AssertionError as error:  # Memory Gym asserts on unknown or out-of-range parameters
            raise ValueError(f"the env refuses reset options {self.options}: {error}") from None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        return self.env.reset(seed=seed, options={**self.options, **(options or {})})


__all__ = ["ResetOptions"]
