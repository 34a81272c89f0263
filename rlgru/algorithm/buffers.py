"""Rollout buffer that replays the rollout as padded sequences, each starting from its stored state.

The rollout is cut into sequences at every hidden-state reset and every ``max_seq_len`` steps. Each sequence
keeps the recurrent state the rollout had before its first step, so one core call over a padded minibatch
recomputes exactly what the rollout computed: no per-timestep loop, no reset handling inside the batch.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import DictRolloutBuffer, RolloutBuffer
from stable_baselines3.common.type_aliases import PyTorchObs


class SequenceBatch(NamedTuple):
    """A minibatch of sequences. Per-sample fields hold only real steps, in time-major order of ``mask``.

    ``mask`` ``[seq_len, n_seq]`` marks which cells of the padded time-major grid are real steps: the policy
    scatters features into that grid for the core and gathers the core's outputs back, so padding never reaches
    the features extractor, the heads or the losses.
    """

    observations: PyTorchObs
    actions: th.Tensor
    old_values: th.Tensor
    old_log_prob: th.Tensor
    advantages: th.Tensor
    returns: th.Tensor
    initial_states: th.Tensor  # [n_layers, n_seq, state_size]
    mask: th.Tensor  # [seq_len, n_seq] bool
    resets: th.Tensor  # [seq_len, n_seq] float: 1 where the rollout zeroed the state before that step


class SequenceLayout(NamedTuple):
    """Where each sequence starts in the env-major flattened rollout, and how long it is."""

    starts: np.ndarray  # flat index of each sequence's first step
    lengths: np.ndarray


def sequence_layout(hidden_resets: np.ndarray, max_seq_len: int, cut_at_resets: bool = True) -> SequenceLayout:
    """Cut a ``[n_steps, n_envs]`` rollout into sequences of at most ``max_seq_len`` steps.

    With ``cut_at_resets`` every reset starts a sequence too (for cores that cannot reset mid-sequence);
    otherwise sequences are fixed lanes and carry their resets inside. Flat indices are env-major
    (``env * n_steps + t``) so a sequence is a contiguous run of indices.
    """
    n_steps = hidden_resets.shape[0]
    is_reset = hidden_resets.astype(bool) if cut_at_resets else np.zeros(hidden_resets.shape, dtype=bool)
    is_reset[0] = True
    time = np.arange(n_steps)[:, None]
    last_reset = np.maximum.accumulate(np.where(is_reset, time, 0), axis=0)
    # A sequence also starts every max_seq_len steps after the last reset.
    is_start = (time - last_reset) % max_seq_len == 0
    flat_starts = is_start.T.reshape(-1)
    starts = np.flatnonzero(flat_starts)
    lengths = np.diff(np.append(starts, flat_starts.size))
    return SequenceLayout(starts, lengths)


def minibatch_groups(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle sequences and group them into minibatches of about ``batch_size`` samples each."""
    total = int(lengths.sum())
    n_minibatches = max(1, round(total / batch_size))
    if n_minibatches == 1:  # the whole rollout: its order changes nothing, so no shuffle (and no draw) is needed
        return [np.arange(lengths.size)]
    order = rng.permutation(lengths.size)
    samples_before = np.cumsum(lengths[order]) - lengths[order]
    group_of = np.minimum(samples_before * n_minibatches // total, n_minibatches - 1)
    return [order[group_of == g] for g in range(n_minibatches) if np.any(group_of == g)]


class _SequenceReplay:
    """Mixin for SB3's rollout buffers: stores recurrent states and resets, yields ``SequenceBatch``es."""

    n_steps_cap: int

    def __init__(
        self, *args: Any, state_shape: tuple[int, int], max_seq_len: int, cut_at_resets: bool = True, **kwargs: Any
    ) -> None:
        if max_seq_len < 1:
            raise ValueError(f"max_seq_len must be >= 1, got {max_seq_len}")
        self.state_shape = state_shape  # (n_layers, state_size)
        self.max_seq_len = max_seq_len
        self.cut_at_resets = cut_at_resets
        self.rng = np.random.default_rng()
        super().__init__(*args, **kwargs)

    def reset(self) -> None:
        n_layers, state_size = self.state_shape
        self.states = np.zeros((self.buffer_size, self.n_envs, n_layers, state_size), dtype=np.float32)
        self.hidden_resets = np.zeros((self.buffer_size, self.n_envs), dtype=bool)
        self._replay: dict[str, Any] | None = None
        super().reset()

    def add_memory(self, state: th.Tensor, hidden_reset: np.ndarray) -> None:
        """Record the state the policy acted from at this step (already reset) and whether it was reset.

        Call before ``add()``, which advances the position.
        """
        self.states[self.pos] = state.permute(1, 0, 2).cpu().numpy()
        self.hidden_resets[self.pos] = hidden_reset

    def seed(self, seed: int | None) -> None:
        self.rng = np.random.default_rng(seed)

    def _prepare_replay(self) -> dict[str, Any]:
        """Flatten the rollout env-major into tensors once per rollout; epochs only reshuffle sequences."""
        layout = sequence_layout(self.hidden_resets, self.max_seq_len, self.cut_at_resets)

        def flat(array: np.ndarray) -> th.Tensor:
            return self.to_torch(self.swap_and_flatten(array))

        replay: dict[str, Any] = {
            "layout": layout,
            "actions": flat(self.actions.astype(np.float32, copy=False)),
            "values": flat(self.values).flatten(),
            "log_probs": flat(self.log_probs).flatten(),
            "advantages": flat(self.advantages).flatten(),
            "returns": flat(self.returns).flatten(),
            "resets": flat(self.hidden_resets.astype(np.float32)).flatten(),
            # states of each sequence's first step: [n_seq, n_layers, size] -> [n_layers, n_seq, size]
            "states": self.to_torch(self.swap_and_flatten(self.states)[layout.starts]).permute(1, 0, 2),
        }
        if isinstance(self.observations, dict):
            replay["observations"] = {key: flat(obs) for key, obs in self.observations.items()}
        else:
            replay["observations"] = flat(self.observations)
        return replay

    def get(self, batch_size: int | None = None) -> Generator[SequenceBatch, None, None]:  # type: ignore[override]
        assert self.full, "the rollout buffer must be full before replaying it"
        if self._replay is None:
            self._replay = self._prepare_replay()
        replay = self._replay
        layout: SequenceLayout = replay["layout"]
        batch_size = batch_size or self.buffer_size * self.n_envs
        groups = minibatch_groups(layout.lengths, batch_size, self.rng)
        if len(groups) == 1:
            # One minibatch holds the whole rollout: its order does not change the gradient, so every epoch can
            # replay the same padded batch instead of rebuilding it.
            if "whole" not in replay:
                replay["whole"] = self._padded_batch(replay, layout, np.sort(groups[0]))
            yield replay["whole"]
            return
        for sequences in groups:
            yield self._padded_batch(replay, layout, sequences)

    def _padded_batch(self, replay: dict[str, Any], layout: SequenceLayout, sequences: np.ndarray) -> SequenceBatch:
        lengths = layout.lengths[sequences]
        offsets = np.arange(int(lengths.max()))[:, None]  # [T, 1]
        mask = offsets < lengths[None, :]  # [T, n_seq]
        index = th.as_tensor((layout.starts[sequences][None, :] + offsets)[mask], device=self.device)
        mask_tensor = th.as_tensor(mask, device=self.device)
        resets = th.zeros(mask.shape, device=self.device)
        resets[mask_tensor] = replay["resets"][index]
        observations: PyTorchObs
        if isinstance(replay["observations"], dict):
            observations = {key: obs[index] for key, obs in replay["observations"].items()}
        else:
            observations = replay["observations"][index]
        return SequenceBatch(
            observations=observations,
            actions=replay["actions"][index],
            old_values=replay["values"][index],
            old_log_prob=replay["log_probs"][index],
            advantages=replay["advantages"][index],
            returns=replay["returns"][index],
            initial_states=replay["states"][:, th.as_tensor(sequences, device=self.device)],
            mask=mask_tensor,
            resets=resets,
        )


class RecurrentRolloutBuffer(_SequenceReplay, RolloutBuffer):
    """SB3's ``RolloutBuffer`` (GAE included) plus recurrent states and sequence replay."""


class RecurrentDictRolloutBuffer(_SequenceReplay, DictRolloutBuffer):
    """SB3's ``DictRolloutBuffer`` plus recurrent states and sequence replay, for ``Dict`` observations."""


def make_rollout_buffer(
    observation_space: spaces.Space, *args: Any, **kwargs: Any
) -> RecurrentRolloutBuffer | RecurrentDictRolloutBuffer:
    buffer_class = RecurrentDictRolloutBuffer if isinstance(observation_space, spaces.Dict) else RecurrentRolloutBuffer
    return buffer_class(*args, observation_space=observation_space, **kwargs)
