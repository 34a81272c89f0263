"""rlgru's own features extractor: ``GridCNN``, for images too small for SB3's ``NatureCNN`` (MiniGrid's 7x7 views).

``NatureCNN`` opens with an 8x8 stride-4 convolution and needs at least 36x36 pixels; grid worlds observe a few cells
per side, often as symbolic indices rather than colours. ``GridCNN`` takes any image size and encodes the values
per its ``encoding`` before a stack of small convolutions.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space_channels_first
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

#: the smallest image side ``NatureCNN`` takes: 8x8 stride 4, then 4x4 stride 2, then 3x3 stride 1 must leave 1 pixel
NATURE_CNN_MIN_SIDE = 36
Encoding = Literal["auto", "embedding", "one_hot", "scaled", "none"]
ENCODINGS: tuple[str, ...] = ("auto", "embedding", "one_hot", "scaled", "none")
#: the feature map is max-pooled down to at most this many cells per side before the linear layer
POOLED_SIDE = 4


def image_layout(space: spaces.Box) -> tuple[int, int, int, bool]:
    """``(channels, height, width, channels_first)`` of a 2-D (one channel) or 3-D image Box, judged as SB3 judges
    it (the smallest dimension of three is the channel one)."""
    shape = tuple(int(n) for n in space.shape)
    if len(shape) == 2:
        return 1, shape[0], shape[1], True
    if len(shape) != 3:
        raise ValueError(f"GridCNN takes images (a Box of 2 or 3 dimensions), got shape {shape}")
    if is_image_space_channels_first(space):
        return shape[0], shape[1], shape[2], True
    return shape[2], shape[0], shape[1], False


def resolved_encoding(space: spaces.Box, encoding: str) -> str:
    """``GridCNN``'s ``encoding``, with ``"auto"`` made ``"embedding"`` for integer dtypes, ``"none"`` for floats."""
    if encoding != "auto":
        return encoding
    return "embedding" if np.issubdtype(space.dtype, np.integer) else "none"


class GridCNN(BaseFeaturesExtractor):
    """A CNN for images of any size, with an encoding of their values chosen for symbolic grids.

    Layers: the encoding below, three 2x2 convolutions (16, 32, 64 channels, ReLU; a side shorter than 2 keeps a
    1-wide kernel), a max-pool down to at most 4x4 cells, and a linear layer to ``features_dim`` (ReLU). The 2x2
    convolutions are what the MiniGrid baselines use (lcswillems' rl-starter-files for torch-ac, and the SB3 example
    in MiniGrid's documentation), which feed MiniGrid's integer indices to the convolutions unscaled.

    ``encoding`` says what a value means:

    - ``"embedding"``: a symbol. Each channel's value picks a learned vector of ``embedding_dim`` numbers (a table per
      channel) and a cell's vectors are summed: the "bag of words" embedding of BabyAI 1.1 (Hui et al., 2020,
      arXiv:2007.12770), which made its agents markedly more sample-efficient on MiniGrid/BabyAI's symbolic
      observations (object, colour and state indices) than the raw indices did.
    - ``"one_hot"``: a symbol, one-hot per channel (what MiniGrid's ``OneHotPartialObsWrapper`` produces).
    - ``"scaled"``: a pixel intensity, divided by 255 (SB3's convention for images).
    - ``"none"``: a number already on a sensible scale, used as it is.
    - ``"auto"`` (default): ``"embedding"`` for integer dtypes (MiniGrid's ``uint8`` indices), ``"none"`` for floats.

    Symbols take values ``0 .. n_values - 1`` per channel; ``n_values`` defaults to the space's ``high + 1`` (256 for
    MiniGrid's ``Box(0, 255)``), and larger values are clipped to the last one. ``takes_raw_images`` tells rlgru's
    policy not to divide images by 255 before this extractor sees them (the encoding decides).
    """

    takes_raw_images: ClassVar[bool] = True

    def __init__(
        self,
        observation_space: spaces.Box,
        features_dim: int = 128,
        encoding: Encoding = "auto",
        embedding_dim: int = 16,
        n_values: int | None = None,
    ) -> None:
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
        if features_dim < 1 or embedding_dim < 1 or (n_values is not None and n_values < 1):
            raise ValueError("features_dim, embedding_dim and n_values must be positive")
        super().__init__(observation_space, features_dim)
        channels, height, width, self.channels_first = image_layout(observation_space)
        self.two_dimensional = len(observation_space.shape) == 2
        self.encoding = resolved_encoding(observation_space, encoding)
        self.n_values = n_values if n_values is not None else _values_per_channel(observation_space)
        # channel c's symbols are rows c * n_values ... (c + 1) * n_values - 1 of one table
        self.register_buffer("offsets", th.arange(channels).view(1, channels, 1, 1) * self.n_values, persistent=False)
        if self.encoding == "embedding":
            self.embedding = nn.Embedding(channels * self.n_values, embedding_dim)
            encoded = embedding_dim
        elif self.encoding == "one_hot":
            self.register_buffer("symbols", th.arange(self.n_values).view(1, 1, -1, 1, 1), persistent=False)
            encoded = channels * self.n_values
        else:
            encoded = channels
        layers: list[nn.Module] = []
        sizes = (height, width)
        for in_channels, out_channels in ((encoded, 16), (16, 32), (32, 64)):
            kernel = (min(2, sizes[0]), min(2, sizes[1]))
            layers += [nn.Conv2d(in_channels, out_channels, kernel), nn.ReLU()]
            sizes = (sizes[0] - kernel[0] + 1, sizes[1] - kernel[1] + 1)
        pool = (max(1, -(-sizes[0] // POOLED_SIDE)), max(1, -(-sizes[1] // POOLED_SIDE)))
        if pool != (1, 1):  # a fixed pool (not an adaptive one) keeps the ONNX export plain
            layers.append(nn.MaxPool2d(pool, ceil_mode=True))
            sizes = (-(-sizes[0] // pool[0]), -(-sizes[1] // pool[1]))
        self.cnn = nn.Sequential(*layers, nn.Flatten())
        self.linear = nn.Sequential(nn.Linear(64 * sizes[0] * sizes[1], features_dim), nn.ReLU())

    def forward(self, observations: th.Tensor) -> th.Tensor:
        x = observations.unsqueeze(1) if self.two_dimensional else observations
        if not self.channels_first:
            x = x.permute(0, 3, 1, 2)
        return self.linear(self.cnn(self._encode(x)))

    def _encode(self, images: th.Tensor) -> th.Tensor:
        """``[B, C, H, W]`` raw values -> ``[B, C', H, W]`` floats."""
        if self.encoding == "scaled":
            return images.float() / 255.0
        if self.encoding == "none":
            return images.float()
        symbols = images.round().long().clamp(0, self.n_values - 1)
        if self.encoding == "embedding":
            # [B, C, H, W] table rows -> [B, C, H, W, E], summed over channels -> [B, E, H, W]
            return self.embedding(symbols + self.offsets).sum(dim=1).permute(0, 3, 1, 2)
        one_hot = (symbols.unsqueeze(2) == self.symbols).float()  # [B, C, n_values, H, W], plain ops for export
        return one_hot.flatten(1, 2)


def _values_per_channel(space: spaces.Box) -> int:
    high = np.asarray(space.high, dtype=np.float64)
    if not np.all(np.isfinite(high)):
        raise ValueError("a symbol encoding needs bounded values: give n_values, or use encoding 'scaled' or 'none'")
    return int(high.max()) + 1


__all__ = [
    "ENCODINGS",
    "NATURE_CNN_MIN_SIDE",
    "POOLED_SIDE",
    "Encoding",
    "GridCNN",
    "image_layout",
    "resolved_encoding",
]
