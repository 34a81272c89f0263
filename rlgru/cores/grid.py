"""Per-sample rows and the padded time-major grid ``[T, n_seq, F]`` the cores run over, both ways.

A sequence minibatch keeps only real steps as rows; ``mask [T, n_seq]`` marks them in the grid and ``index`` holds
their flat positions. The definition (the policy) and the fast paths both move data across this boundary.
"""

from __future__ import annotations

import torch as th

#: ``(mask [T, n_seq], index [N])``: where each of the N real steps sits in the grid
Grid = tuple[th.Tensor, th.Tensor]


def to_grid(rows: th.Tensor, mask: th.Tensor, index: th.Tensor) -> th.Tensor:
    """Rows ``[N, F]`` scattered into the padded grid ``[T, n_seq, F]`` of ``mask`` (zeros where it is padding)."""
    padded = rows.new_zeros((mask.numel(), rows.shape[-1])).index_copy(0, index, rows)
    return padded.view(*mask.shape, -1)


def core_input(rows: th.Tensor, grid: Grid | None) -> th.Tensor:
    """Rows ``[N, F]`` as a core takes them: one step ``[1, N, F]`` (no grid), or the padded grid."""
    if grid is None:
        return rows.unsqueeze(0)
    mask, index = grid
    if index.numel() == mask.numel():  # no padding (uncut lanes): the samples already are the grid
        return rows.view(*mask.shape, -1)
    return to_grid(rows, mask, index)


def per_sample(out: th.Tensor, grid: Grid | None) -> th.Tensor:
    """A core's output back as rows ``[N, H]`` (``core_input``'s inverse)."""
    if grid is None:
        return out.squeeze(0)
    mask, index = grid
    flat = out.reshape(mask.numel(), -1)
    return flat if index.numel() == mask.numel() else flat.index_select(0, index)


__all__ = ["Grid", "core_input", "per_sample", "to_grid"]
