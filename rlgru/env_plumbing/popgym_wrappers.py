"""POPGym's own observation wrappers (previous action, first-step flag) under rlgru's env factory.

POPGym's baselines wrap every env in ``Antialias(PreviousAction(env))``; to train with the same observations, list
``rlgru.env_plumbing.popgym_wrappers:POPGymWrappers`` in a config's ``env.wrappers``. POPGym's wrappers insist on
wrapping a ``POPGymEnv`` itself, but the factory hands wrappers the env inside a ``Monitor`` (and ``gym.make``'s
checkers), so a thin view that passes for a POPGymEnv sits in between. popgym is imported only when a wrapper is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym

from rlgru.env_plumbing.wrapper_lookup import resolve_wrapper

#: the wrappers POPGym's baselines put on every env (``popgym/baselines/ppo.py``: ``Antialias(PreviousAction(env))``)
PAPER_WRAPPERS: tuple[str, ...] = ("popgym.wrappers:PreviousAction", "popgym.wrappers:Antialias")


class POPGymWrappers(gym.Wrapper):
    """POPGym's own wrappers (by default the paper's: previous action, then the is-first-step flag) under rlgru's
    env factory, for ``env.wrappers``: ``{rlgru.env_plumbing.popgym_wrappers:POPGymWrappers: {wrappers: [...]}}``.

    POPGym's wrappers insist on wrapping a ``POPGymEnv`` itself, but the factory hands wrappers the env inside a
    ``Monitor`` (and ``gym.make``'s checkers); a thin view that passes for a POPGymEnv sits in between.
    """

    def __init__(self, env: gym.Env, wrappers: Sequence[str] = PAPER_WRAPPERS) -> None:
        inner: gym.Env = _popgym_view(env)
        for name in wrappers:
            inner = resolve_wrapper(name)(inner)
        super().__init__(inner)


def _popgym_view(env: gym.Env) -> gym.Env:
    """``env`` as a ``POPGymEnv`` whose hidden state is the innermost env's (popgym is imported only here, so this
    module, which the report imports, works without it)."""
    from popgym.core.env import POPGymEnv

    if not isinstance(env.unwrapped, POPGymEnv):
        raise TypeError(f"POPGym's wrappers need a POPGym env, got {type(env.unwrapped).__name__}")

    class POPGymView(gym.Wrapper, POPGymEnv):
        @property
        def state_space(self) -> gym.Space:
            return self.env.unwrapped.state_space

        def get_state(self) -> Any:
            return self.env.unwrapped.get_state()

    return POPGymView(env)


__all__ = ["PAPER_WRAPPERS", "POPGymWrappers"]
