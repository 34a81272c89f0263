"""Features extractors of a user's own, named in configs as ``tests.extractor_helpers:Class``."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn


class TinyExtractor(BaseFeaturesExtractor):
    """Flatten, one linear layer, tanh: the smallest extractor with weights of its own (and a setting)."""

    def __init__(self, observation_space: spaces.Box, features_dim: int = 8, scale: float = 1.0) -> None:
        super().__init__(observation_space, features_dim)
        self.scale = scale
        self.linear = nn.Linear(int(np.prod(observation_space.shape)), features_dim)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return th.tanh(self.linear(observations.flatten(1) * self.scale))


class NumpyExtractor(TinyExtractor):
    """Goes through numpy in ``forward``: it trains and predicts, but a traced graph freezes its input as a constant,
    so it cannot be exported."""

    def forward(self, observations: th.Tensor) -> th.Tensor:
        detour = th.as_tensor(observations.detach().cpu().numpy())
        return super().forward(detour)


class NotAnExtractor(nn.Module):
    """An ``nn.Module`` that is no ``BaseFeaturesExtractor``: ``policy.extractor`` refuses it."""


class TinyImageEnv(gym.Env):
    """A ``side`` x ``side`` x 3 uint8 image of small symbols (0..5, as MiniGrid's indices), 4 steps, reward 1 for
    action 1: enough to run any image extractor through rollouts, updates, saving and export."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, side: int = 5, render_mode: str | None = None) -> None:
        self.observation_space = spaces.Box(0, 255, (side, side, 3), np.uint8)
        self.action_space = spaces.Discrete(2)
        self.render_mode = render_mode
        self.side = side

    def _observation(self) -> np.ndarray:
        return self.np_random.integers(0, 6, (self.side, self.side, 3), dtype=np.uint8)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.t = 0
        self.last = self._observation()
        return self.last, {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.t += 1
        self.last = self._observation()
        return self.last, float(action == 1), self.t >= 4, False, {}

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return np.repeat(np.repeat(self.last * 40, 8, axis=0), 8, axis=1).astype(np.uint8)
