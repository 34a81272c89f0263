"""What an exported file tells the program that loads it: inputs, spaces, state layout, core, versions.

The same JSON goes inside the file (ONNX ``metadata_props`` key ``rlgru``, TorchScript extra file ``rlgru.json``)
and beside it (``<file>.json``), so a runtime with no rlgru can size the state, cast observations and know when
to raise ``episode_start`` without guessing.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space

from rlgru.algorithm.policies import RecurrentActorCriticPolicy
from rlgru.export.graph import ExportedPolicy
from rlgru.export.observations import PLAIN, Standardize

#: the ONNX metadata key and the TorchScript extra file that hold the JSON
METADATA_KEY = "rlgru"
EXTRA_FILE = "rlgru.json"
SIGNATURE = "(obs, state, episode_start) -> (action, next_state[, value])"
#: what ``episode_start`` should be, per ``hidden_reset`` mode the model was trained with
EPISODE_START_RULE = {
    "episode": "1.0 at the first step of every episode (and at the very first call), else 0.0",
    "trial": "1.0 at the first step of every trial (the env's info says trial_start), else 0.0",
    "never": "1.0 at the very first call only, else 0.0",
}


def space_json(space: spaces.Space) -> dict[str, Any]:
    """A Gymnasium space as JSON: type, shape and dtype, and its bounds, sizes or parts."""
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {key: space_json(part) for key, part in space.spaces.items()}}
    described: dict[str, Any] = {
        "type": type(space).__name__,
        "shape": [int(n) for n in space.shape],
        "dtype": str(np.dtype(space.dtype)),
    }
    if isinstance(space, spaces.Box):
        described.update(low=_bounds(space.low), high=_bounds(space.high))
    elif isinstance(space, spaces.Discrete):
        described.update(n=int(space.n), start=int(space.start))
    elif isinstance(space, spaces.MultiDiscrete):
        described.update(nvec=np.asarray(space.nvec).tolist())
    elif isinstance(space, spaces.MultiBinary):
        described.update(n=np.asarray(space.n).tolist())
    return described


def build_metadata(
    exported: ExportedPolicy,
    policy: RecurrentActorCriticPolicy,
    *,
    format: str,
    hidden_reset: str = "episode",
    timesteps: int | None = None,
    env_info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from rlgru import __version__

    pipeline = exported.observations
    actor_size = policy.actor_core.state_size
    state_shape = [policy.n_layers, "batch", policy.state_size]
    model_space = policy.observation_space
    parts = {PLAIN: model_space} if not isinstance(model_space, spaces.Dict) else dict(model_space.spaces)
    inputs = [
        {"name": item.name, "shape": ["batch", *item.shape], "dtype": str(item.dtype)} for item in pipeline.inputs
    ]
    inputs += [
        {"name": "state", "shape": state_shape, "dtype": "float32"},
        {"name": "episode_start", "shape": ["batch"], "dtype": "float32"},
    ]
    action_space = policy.action_space
    outputs = [
        {
            "name": "action",
            "shape": ["batch", *(int(n) for n in action_space.shape)],
            "dtype": str(np.dtype(action_space.dtype)),
        },
        {"name": "next_state", "shape": state_shape, "dtype": "float32"},
    ]
    if exported.value_net is not None:
        outputs.append({"name": "value", "shape": ["batch"], "dtype": "float32"})
    critic = (
        "own core"
        if policy.critic_core is not None
        else ("linear projection of the features" if policy.critic_projection is not None else "the actor's core")
    )
    return {
        "format": format,
        "signature": SIGNATURE,
        "rlgru_version": __version__,
        "torch_version": torch.__version__.split("+")[0],
        "inputs": inputs,
        "outputs": outputs,
        "observation_space": space_json(
            pipeline.inputs[0].space
            if not pipeline.inputs[0].key
            else spaces.Dict({item.key: item.space for item in pipeline.inputs})
        ),
        "action_space": space_json(action_space),
        "actions": "sampled" if exported.actions.sample else "deterministic",
        "state": {
            "shape": state_shape,
            "dtype": "float32",
            "initial": "zeros",
            "actor": [0, actor_size],
            "critic": [actor_size, policy.state_size] if policy.critic_core is not None else None,
        },
        "episode_start": EPISODE_START_RULE.get(hidden_reset, EPISODE_START_RULE["episode"]),
        "hidden_reset": hidden_reset,
        "core": {
            "name": policy.core,
            "hidden_size": policy.hidden_size,
            "n_layers": policy.n_layers,
            "settings": dict(policy.core_kwargs),
            "critic": critic,
        },
        "preprocessing": {
            "vecnormalize": _vecnormalize(exported),
            "channels_first": [key or "obs" for key in pipeline.transposed],
            "divided_by_255": [
                key or "obs" for key, space in parts.items() if policy.normalize_images and is_image_space(space)
            ],
            "one_hot": [
                key or "obs"
                for key, space in parts.items()
                if isinstance(space, spaces.Discrete | spaces.MultiDiscrete)
            ],
        },
        "timesteps": timesteps,
        "env": env_info,
    }


def dumps(metadata: dict[str, Any]) -> str:
    return json.dumps(metadata, indent=2, sort_keys=False)


def _vecnormalize(exported: ExportedPolicy) -> dict[str, Any] | None:
    steps = [step for step in exported.observations.steps if isinstance(step, Standardize)]
    if not steps:
        return None
    return {"keys": [key or "obs" for step in steps for key in step.keys], "clip_obs": steps[-1].clip}


def _bounds(values: np.ndarray) -> Any:
    """One number when every entry is the same (image bounds), else the nested list; infinities as strings."""
    flat = np.asarray(values, dtype=np.float64)
    if flat.size and np.all(flat == flat.flat[0]):
        return _number(float(flat.flat[0]))
    return np.vectorize(_number, otypes=[object])(flat).tolist()


def _number(value: float) -> float | str:
    return value if math.isfinite(value) else ("inf" if value > 0 else "-inf")


__all__ = ["EPISODE_START_RULE", "EXTRA_FILE", "METADATA_KEY", "SIGNATURE", "build_metadata", "dumps", "space_json"]
