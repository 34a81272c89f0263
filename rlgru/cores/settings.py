"""Typed setting annotations that built-in cores share; the registry validates configs against them.

A core's settings are its keyword-only constructor arguments. Plain hints (``float``, ``Literal[...]``) are enough;
these add the ranges, so a bad value in a config exits with the key's path instead of failing inside torch.
"""

from __future__ import annotations

from typing import Annotated

from annotated_types import Ge, Lt

#: dropout between stacked layers while training, as nn.GRU/nn.LSTM/nn.RNN take it
Dropout = Annotated[float, Ge(0.0), Lt(1.0)]
