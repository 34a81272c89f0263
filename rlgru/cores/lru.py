"""LRU core (Orvieto et al. 2023, "Resurrecting Recurrent Neural Networks for Long Sequences").

A diagonal complex linear recurrence ``h_t = lambda * h_{t-1} + gamma * (B x_t)``, ``y_t = Re(C h_t) + D x_t``,
with ``lambda = exp(-exp(nu) + i exp(theta))``: ``|lambda| < 1`` for every parameter value, so it cannot blow up,
and the ring initialisation puts ``|lambda|`` in ``[r_min, r_max]`` (memories of chosen time scales from step one).
Training runs the same reset-aware scan as minGRU (``rlgru.cores.scan``), in complex numbers.

Why LRU as the linear-recurrence core next to minGRU, rather than FFM or S5:

- It is the smallest model of its family that is stable by construction and initialised for long memory:
  the exponential parameterisation and the ``[r_min, r_max]`` ring replace S4/S5's HiPPO and discretisation.
- A time-invariant ``lambda`` with per-step resets is exactly our scan's ``a_t = lambda * keep_t``: no
  discretisation step ``dt`` (S5), no per-step decay/phase kernels (FFM), nothing else to fit into the contract.
- Its state is one complex vector per layer (``[real | imag]`` in the state tensor): the memory probe reads
  it like any other core's, and its size is the policy's choice (``hidden_size``).
- It complements minGRU instead of repeating it: minGRU forgets by input-dependent gates, LRU by fixed per-channel
  decays and rotations (oscillations), so the pair shows whether RL memory needs input-dependent forgetting.
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
from annotated_types import Ge, Gt, Le
from torch import nn
from torch.nn import functional as F

from rlgru.cores import scan
from rlgru.cores.base import MemoryCore, dropout_between_layers
from rlgru.cores.scan import linear_scan
from rlgru.cores.settings import Dropout

#: added to ``exp(nu)``: keeps ``|lambda| <= exp(-1e-6) < 1`` in float32 whatever ``nu`` is
NU_FLOOR = 1e-6
#: ``exp(theta)`` is capped at ``exp(PHASE_LOG_MAX)`` so an extreme ``theta`` cannot make the angle inf (lambda NaN)
PHASE_LOG_MAX = 20.0
#: ring radii; ``r_max`` stops short of 1 so the initial ``nu`` stays well above ``NU_FLOOR``
Radius = Annotated[float, Ge(0.0), Le(0.9999)]
Phase = Annotated[float, Gt(0.0), Le(2 * math.pi)]


class LRUCore(MemoryCore):
    """LRU (Orvieto et al. 2023): a stable diagonal complex linear recurrence, trained with a parallel scan.

    ``x -> u = GELU(E x)`` (an input encoder, once), then per layer ``h_t = lambda h_{t-1} + gamma (B u_t)`` and
    ``u <- GELU(Re(C h_t) + D u_t + c)`` (``D`` diagonal, as in the paper); ``out`` is the last layer's ``u``.

    - The encoder's GELU is what lets one layer remember *selectively*: ``lambda`` does not depend on the input,
      so a linear ``B x`` writes every observation into every channel alike, and picking out, say, "the symbol
      shown at the first step" from a sum of decayed inputs is a hard decoding problem. With ``GELU(E x)`` the
      write itself can be a feature like "first step and symbol k", which slow channels then hold (without it,
      RepeatFirst-Easy reached 0.85 in 50k steps where GRU and minGRU reach 1.0; with it, 1.0).
    - The output GELU makes a stack more than one linear filter; layer ``l + 1`` reads layer ``l``'s ``u``
      (dropout in between while training), all ``hidden_size`` wide.
    - State: ``N = hidden_size`` complex numbers per layer, stored as ``[real | imag]`` (``state_size = 2 *
      hidden_size``); the memory probe reads all of it.
    - ``gamma`` is a parameter initialised to ``sqrt(1 - |lambda|^2)`` (as in the paper): unit-size inputs give
      unit-size states whatever the decay, and its gradient does not blow up as ``|lambda|`` nears 1, as that of
      a ``gamma`` recomputed from ``lambda`` would.

    :param r_min: smallest initial ``|lambda|`` (fastest forgetting channel).
    :param r_max: largest initial ``|lambda|``; ``1 / (1 - r_max)`` steps is roughly the longest initial memory.
    :param max_phase: initial rotation angles are drawn from ``[0, max_phase]``; small angles keep channels close to
        leaky integrators, which hold a value (the paper uses ``pi / 10`` on its longest task).
    :param dropout: dropout on each layer's output but the last, while training.
    """

    policy_name = "Lru"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        n_layers: int = 1,
        *,
        r_min: Radius = 0.5,
        r_max: Radius = 0.99,
        max_phase: Phase = math.pi / 10,
        dropout: Dropout = 0.0,
    ) -> None:
        super().__init__(input_size, hidden_size, n_layers)
        if r_min > r_max:
            raise ValueError(f"r_min must not exceed r_max, got r_min={r_min}, r_max={r_max}")
        self.r_min, self.r_max, self.max_phase, self.dropout = float(r_min), float(r_max), float(max_phase), dropout
        self.encoder = nn.Linear(self.input_size, self.hidden_size)
        self.layers = nn.ModuleList(
            _LRULayer(self.hidden_size, self.r_min, self.r_max, self.max_phase) for _ in range(self.n_layers)
        )

    @property
    def state_size(self) -> int:
        return 2 * self.hidden_size

    def engine(self, device: torch.device | str) -> str:
        return scan.engine(device, self.compiled_kernels)

    def kernel_reasons(self, device: torch.device | str) -> list[str] | None:
        return scan.kernel_reasons(device, self.compiled_kernels)

    def recur(
        self, x: torch.Tensor, state: torch.Tensor, keep: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        u, states = F.gelu(self.encoder(x)), []
        n = self.hidden_size
        for index, layer in enumerate(self.layers):
            h0 = torch.complex(state[index, :, :n], state[index, :, n:])
            u, h_last = layer(u, h0, keep, self.compiled_kernels)
            states.append(torch.cat([h_last.real, h_last.imag], dim=-1))
            u = dropout_between_layers(u, self.dropout if self.training else 0.0, last=index == self.n_layers - 1)
        return u, torch.stack(states)

    def trace(
        self, x: torch.Tensor, state: torch.Tensor, keep: torch.Tensor | None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The output, and ``|lambda|`` per channel (how slowly the memory decays: 1 would never forget)."""
        out, _ = self.recur(x, state, keep)
        return out, {"lambda_modulus": torch.cat([layer.modulus() for layer in self.layers])}

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, r_min={self.r_min}, r_max={self.r_max}, max_phase={self.max_phase:.4g}, "
            f"dropout={self.dropout}"
        )


class _LRULayer(nn.Module):
    """One LRU layer: ``u [T, B, N]`` and a complex state ``[B, N]`` to ``[T, B, N]`` and the last state."""

    def __init__(self, size: int, r_min: float, r_max: float, max_phase: float) -> None:
        super().__init__()
        self.size = size
        # ring initialisation: |lambda|^2 uniform on [r_min^2, r_max^2], phase uniform on [0, max_phase]
        radius = torch.sqrt(torch.empty(size).uniform_(r_min**2, r_max**2))
        radius = radius.clamp(max(r_min, 1e-12), r_max)  # rounding of sqrt(r^2) must not leave the ring
        nu = -torch.log(radius)
        self.nu_log = nn.Parameter(torch.log((nu - NU_FLOOR).clamp_min(1e-30)))
        self.theta_log = nn.Parameter(torch.log(torch.empty(size).uniform_(0, max_phase).clamp_min(1e-6)))
        self.gamma_log = nn.Parameter(0.5 * torch.log1p(-(radius**2)))
        # B: complex [N, N] as one real map to interleaved (re, im) pairs, each part of variance 1 / (2 N)
        self.input_map = nn.Linear(size, 2 * size, bias=False)
        nn.init.normal_(self.input_map.weight, std=(2 * size) ** -0.5)
        # Re(C h) + c: a real map of the interleaved (re, im) pairs is Re(C h) for one complex C; variance 1 / N
        self.output_map = nn.Linear(2 * size, size)
        nn.init.normal_(self.output_map.weight, std=size**-0.5)
        self.skip = nn.Parameter(torch.randn(size))  # D, diagonal

    def modulus(self) -> torch.Tensor:
        """``|lambda|``, always below 1."""
        return torch.exp(-(self.nu_log.exp() + NU_FLOOR))

    def eigenvalues(self) -> torch.Tensor:
        """``lambda = exp(-exp(nu) + i exp(theta))``, complex ``[N]``."""
        return torch.polar(self.modulus(), self.theta_log.clamp_max(PHASE_LOG_MAX).exp())

    def forward(
        self, u: torch.Tensor, h0: torch.Tensor, keep: torch.Tensor | None, use_kernel: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        lam = self.eigenvalues().to(h0.dtype)
        # gamma scales B's rows (each complex channel's re and im row), cheaper than scaling every step's B u
        weight = self.input_map.weight * self.gamma_log.exp().repeat_interleave(2).unsqueeze(-1)
        b = torch.view_as_complex(F.linear(u, weight).view(*u.shape[:-1], self.size, 2))
        if u.shape[0] == 1:  # a rollout step: no scan machinery
            carried = h0 if keep is None else h0 * keep[0].unsqueeze(-1)
            h = torch.addcmul(b[0], lam, carried).unsqueeze(0)
        else:
            a = lam if keep is None else lam * keep.unsqueeze(-1)
            h = linear_scan(a, b, h0, use_kernel)
        y = torch.addcmul(self.output_map(torch.view_as_real(h).flatten(-2)), self.skip, u)
        return F.gelu(y), h[-1]


__all__ = ["LRUCore"]
