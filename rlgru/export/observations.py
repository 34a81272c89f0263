"""What happens to an observation between the env and the features extractor, baked into the exported graph.

A policy trained by SB3 never sees the env's raw observations: ``VecNormalize`` standardises and clips them,
``VecTransposeImage`` turns images channel-first, and the policy divides images by 255 and one-hot encodes discrete
parts. A deployed file must do all of it, so the robot or game engine feeds exactly what its env produces. The
wrappers are read off the vec env the model plays (outermost first) and replayed here in the order they ran.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.preprocessing import preprocess_obs
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, VecNormalize, VecTransposeImage
from torch import nn

from rlgru.export.errors import ExportError

#: the key of a plain (non-Dict) observation in the per-key dicts below
PLAIN = ""


@dataclass(frozen=True)
class ObservationInput:
    """One input of the exported graph: ``obs`` (plain spaces) or ``obs.<key>`` (Dict spaces)."""

    name: str
    key: str
    space: spaces.Space

    @property
    def shape(self) -> tuple[int, ...]:
        """Per-sample shape; the graph takes ``[batch, *shape]``."""
        return tuple(int(n) for n in self.space.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.space.dtype)


def baked_wrappers(env: VecEnv | None) -> tuple[VecEnv | None, list[VecEnvWrapper]]:
    """The vec env whose observations the exported graph takes, and the wrappers above it, innermost first.

    ``VecNormalize`` and ``VecTransposeImage`` are baked in; wrappers that leave the observation space alone
    (``VecMonitor``, ...) are looked through; any other wrapper (``VecFrameStack``) stops the walk, and the graph
    takes what it produces.
    """
    baked: list[VecEnvWrapper] = []
    while isinstance(env, VecEnvWrapper):
        if isinstance(env, VecNormalize | VecTransposeImage):
            baked.append(env)
        elif env.observation_space != env.venv.observation_space:
            break
        env = env.venv
    return env, baked[::-1]


class ObservationPipeline(nn.Module):
    """``forward(*inputs)`` (one tensor per ``inputs`` entry) -> what the features extractor reads."""

    def __init__(self, model_space: spaces.Space, env: VecEnv | None, normalize_images: bool) -> None:
        super().__init__()
        source, wrappers = baked_wrappers(env)
        input_space = model_space if source is None else source.observation_space
        self.inputs = _inputs(input_space, model_space)
        self.model_space = model_space
        self.normalize_images = normalize_images
        shapes = {item.key: item.shape for item in self.inputs}
        steps: list[nn.Module] = []
        for wrapper in wrappers:
            if isinstance(wrapper, VecNormalize):
                if wrapper.norm_obs:
                    steps.append(Standardize(wrapper))
            elif not wrapper.skip:
                keys = getattr(wrapper, "image_space_keys", [PLAIN])
                steps.append(ChannelsFirst(keys))
                shapes.update({key: _channels_first(shapes[key]) for key in keys})
        # what SB3 does when handed a channel-last image env (VecTransposeImage in ``_wrap_env``, ``predict``)
        late = [key for key, shape in shapes.items() if shape != _model_shape(model_space, key)]
        for key in late:
            if _channels_first(shapes[key]) != _model_shape(model_space, key):
                raise ExportError(
                    f"the env's observation{f' {key!r}' if key else ''} has shape {shapes[key]} but the model's has "
                    f"{_model_shape(model_space, key)}: this env does not feed this model"
                )
        if late:
            steps.append(ChannelsFirst(late))
        self.steps = nn.ModuleList(steps)
        self.transposed = [key for step in steps if isinstance(step, ChannelsFirst) for key in step.keys]

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        obs = {item.key: tensor for item, tensor in zip(self.inputs, inputs, strict=True)}
        for step in self.steps:
            obs = step(obs)
        return preprocess_obs(obs.get(PLAIN, obs), self.model_space, normalize_images=self.normalize_images)

    def example(self, batch_size: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
        """Observations drawn from the input spaces, ``batch_size`` of each, to trace the graph with."""
        tensors = []
        for index, item in enumerate(self.inputs):
            item.space.seed(seed + index)
            samples = np.stack([np.asarray(item.space.sample(), dtype=item.dtype) for _ in range(batch_size)])
            tensors.append(torch.from_numpy(samples))
        return tuple(tensors)


class Standardize(nn.Module):
    """``VecNormalize``'s ``clip((obs - mean) / sqrt(var + epsilon), -clip_obs, clip_obs)``, in float32."""

    def __init__(self, wrapper: VecNormalize) -> None:
        super().__init__()
        stats = wrapper.obs_rms if isinstance(wrapper.obs_rms, dict) else {PLAIN: wrapper.obs_rms}
        self.keys = list(stats)
        self.clip = float(wrapper.clip_obs)
        for index, key in enumerate(self.keys):
            rms = stats[key]
            self.register_buffer(f"mean_{index}", torch.as_tensor(rms.mean, dtype=torch.float32))
            std = np.sqrt(rms.var + wrapper.epsilon)
            self.register_buffer(f"std_{index}", torch.as_tensor(std, dtype=torch.float32))

    def forward(self, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        obs = dict(obs)
        for index, key in enumerate(self.keys):
            mean, std = getattr(self, f"mean_{index}"), getattr(self, f"std_{index}")
            obs[key] = ((obs[key].float() - mean) / std).clamp(-self.clip, self.clip)
        return obs


class ChannelsFirst(nn.Module):
    """``[batch, H, W, C] -> [batch, C, H, W]`` for the image keys, as ``VecTransposeImage``."""

    def __init__(self, keys: list[str]) -> None:
        super().__init__()
        self.keys = list(keys)

    def forward(self, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        obs = dict(obs)
        for key in self.keys:
            obs[key] = obs[key].permute(0, 3, 1, 2)
        return obs


def _inputs(input_space: spaces.Space, model_space: spaces.Space) -> list[ObservationInput]:
    if isinstance(model_space, spaces.Dict) != isinstance(input_space, spaces.Dict):
        raise ExportError(f"the env observes {input_space} but the model reads {model_space}")
    if not isinstance(input_space, spaces.Dict):
        return [ObservationInput("obs", PLAIN, _supported(input_space, "obs"))]
    if set(input_space.spaces) != set(model_space.spaces):
        raise ExportError(
            f"the env's observation keys {sorted(input_space.spaces)} are not the model's {sorted(model_space.spaces)}"
        )
    return [ObservationInput(f"obs.{key}", key, _supported(space, key)) for key, space in input_space.spaces.items()]


def _supported(space: spaces.Space, name: str) -> spaces.Space:
    if not isinstance(space, spaces.Box | spaces.Discrete | spaces.MultiDiscrete | spaces.MultiBinary):
        raise ExportError(
            f"observation {name!r} is a {type(space).__name__} space; export takes Box, Discrete, "
            "MultiDiscrete and MultiBinary parts (in a Dict or alone), as SB3 policies do"
        )
    return space


def _model_shape(model_space: spaces.Space, key: str) -> tuple[int, ...]:
    space = model_space[key] if key else model_space
    return tuple(int(n) for n in space.shape)


def _channels_first(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[2], shape[0], shape[1]) if len(shape) == 3 else shape


__all__ = ["PLAIN", "ChannelsFirst", "ObservationInput", "ObservationPipeline", "Standardize", "baked_wrappers"]
