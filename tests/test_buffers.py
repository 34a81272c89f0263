"""Sequence layout and minibatching of the recurrent rollout buffer, on hand-computed cases."""

from __future__ import annotations

import numpy as np

from rlgru.algorithm.buffers import minibatch_groups, sequence_layout


def test_sequences_start_at_resets_rollout_start_and_every_max_len() -> None:
    resets = np.zeros((7, 2), dtype=bool)  # [n_steps, n_envs]
    resets[3, 0] = True
    layout = sequence_layout(resets, max_seq_len=3)
    # env 0: t=0..2 | reset at 3: t=3..5 | t=6 ; env 1 (flat offset 7): t=0..2 | 3..5 | 6
    assert layout.starts.tolist() == [0, 3, 6, 7, 10, 13]
    assert layout.lengths.tolist() == [3, 3, 1, 3, 3, 1]


def test_a_reset_restarts_the_max_len_count() -> None:
    resets = np.zeros((6, 1), dtype=bool)
    resets[2, 0] = True
    layout = sequence_layout(resets, max_seq_len=3)
    assert layout.starts.tolist() == [0, 2, 5]
    assert layout.lengths.tolist() == [2, 3, 1]


def test_lanes_ignore_resets() -> None:
    resets = np.zeros((6, 1), dtype=bool)
    resets[2, 0] = True
    layout = sequence_layout(resets, max_seq_len=4, cut_at_resets=False)
    assert layout.starts.tolist() == [0, 4]
    assert layout.lengths.tolist() == [4, 2]


def test_minibatches_cover_every_sequence_once_with_balanced_sizes() -> None:
    lengths = np.array([5, 1, 3, 7, 2, 2, 4, 8])
    groups = minibatch_groups(lengths, batch_size=8, rng=np.random.default_rng(0))
    assert len(groups) == 4  # round(32 / 8)
    assert sorted(np.concatenate(groups).tolist()) == list(range(8))
    assert all(len(g) > 0 for g in groups)
    assert sum(int(lengths[g].sum()) for g in groups) == 32
