"""Equal-parameter budgets: the hidden size at which one core has as many recurrent weights as another.

Comparing cores at the same hidden size favours the ones with more weights per unit (an LSTM has four gates to the
GRU's three); comparing them at the same parameter count answers "which core uses a weight best". A benchmark suite
with ``equal_parameters`` runs both, and this module picks the second one's sizes.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from gymnasium import spaces

from rlgru.cores import make_core
from rlgru.harness.config import RunConfig

#: matched hidden sizes are searched up to this multiple of the matched core's size
_SEARCH_FACTOR = 32


def recurrent_parameters(
    core: str, input_size: int, hidden_size: int, n_layers: int = 1, settings: dict[str, Any] | None = None
) -> int:
    """Weights of one core (the policy holds one for the actor and, by default, one for the critic)."""
    return _count(core, input_size, hidden_size, n_layers, json.dumps(settings or {}, sort_keys=True))


@cache
def _count(core: str, input_size: int, hidden_size: int, n_layers: int, settings_json: str) -> int:
    module = make_core(core, input_size, hidden_size, n_layers, **json.loads(settings_json))
    return sum(parameter.numel() for parameter in module.parameters())


def matching_hidden_size(
    core: str,
    match: str,
    match_hidden_size: int,
    *,
    input_size: int,
    n_layers: int = 1,
    settings: dict[str, Any] | None = None,
) -> int:
    """The hidden size whose parameter count for ``core`` is closest to ``match``'s at ``match_hidden_size``.

    Ties go to the smaller size, so a matched core never gets more weights than needed to draw level.
    """
    target = recurrent_parameters(match, input_size, match_hidden_size, n_layers)
    best, best_gap = 1, None
    for hidden in range(1, _SEARCH_FACTOR * match_hidden_size + 1):
        count = recurrent_parameters(core, input_size, hidden, n_layers, settings)
        gap = abs(count - target)
        if best_gap is None or gap < best_gap:
            best, best_gap = hidden, gap
        if count > target:
            break  # counts grow with the hidden size: no larger size can come closer
    if best_gap is not None and best_gap > 0.1 * target:
        raise ValueError(f"no hidden size gives core {core!r} within 10% of {match!r}'s {target} recurrent parameters")
    return best


def core_input_size(config: RunConfig) -> int:
    """What the core reads: the flattened observation (the policies' default features extractor)."""
    return _flat_size(json.dumps(config.env.model_dump(mode="json"), sort_keys=True))


@cache
def _flat_size(env_json: str) -> int:
    from rlgru.harness.config import EnvConfig
    from rlgru.harness.env_factory import make_env

    env = make_env(EnvConfig.model_validate(json.loads(env_json)), seed=0, n_envs=1, vec_env="dummy")
    try:
        space = env.observation_space
    finally:
        env.close()
    if isinstance(space, spaces.Box) and len(space.shape) == 3:
        raise ValueError("image observations go through a CNN whose output size sets the core's input; size by hand")
    return int(spaces.flatdim(space))


__all__ = ["core_input_size", "matching_hidden_size", "recurrent_parameters"]
