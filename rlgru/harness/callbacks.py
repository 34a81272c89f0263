"""Training callbacks: checkpoints at update boundaries and periodic evaluation.

SB3's ``CheckpointCallback`` saves inside a rollout, when the weights lag the step counter by up to one
rollout; resuming from such a file would skip the unfinished rollout's update. Saving right after an update
(at the next rollout's start) makes a checkpoint a faithful "state after N timesteps". Every file is written
atomically (``rlgru.runtime.files``), statistics before the model, so a checkpoint that exists is whole and has its
statistics beside it. The evaluation callback runs before the checkpoint callback at the same step, so a checkpoint
at step N comes after everything logged at N.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback
from stable_baselines3.common.vec_env import VecEnv

from rlgru.harness.env_factory import copy_normalization
from rlgru.harness.evaluate import run_episodes
from rlgru.harness.run_logs import append_row
from rlgru.runtime.files import atomic_pickle, atomic_save


class UpdateCheckpointCallback(CheckpointCallback):
    """``CheckpointCallback`` (same file names, VecNormalize statistics included) fired after each update
    once ``save_freq`` more timesteps (summed over envs) have passed. ``before_save(steps)`` runs before each save:
    what it logs for step N is on disk before checkpoint N is, so resuming from N never lacks it."""

    def __init__(
        self,
        save_freq: int,
        save_path: Path,
        name_prefix: str = "model",
        verbose: int = 0,
        before_save: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(save_freq, str(save_path), name_prefix=name_prefix, save_vecnormalize=True, verbose=verbose)
        self._next_save: int | None = None
        self.before_save = before_save

    def _on_training_start(self) -> None:
        self._next_save = (self.num_timesteps // self.save_freq + 1) * self.save_freq

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        # Called after the previous rollout's update (and before the first rollout, when nothing is new).
        assert self._next_save is not None
        if self.num_timesteps >= self._next_save:
            self.save_now()
            self._next_save = (self.num_timesteps // self.save_freq + 1) * self.save_freq

    def save_now(self) -> None:
        if self.before_save is not None:
            self.before_save(self.num_timesteps)
        save_checkpoint(self.model, Path(self.save_path), self.name_prefix)


def save_checkpoint(model: BaseAlgorithm, directory: Path, name_prefix: str = "model") -> Path:
    """``<prefix>_<steps>_steps.zip`` and its VecNormalize statistics, named as SB3's ``CheckpointCallback`` does.

    Both atomically, the statistics first: a model file never exists without the statistics it was trained with.
    """
    path = directory / f"{name_prefix}_{model.num_timesteps}_steps.zip"
    save_model(model, path, directory / f"{name_prefix}_vecnormalize_{model.num_timesteps}_steps.pkl")
    return path


def save_model(model: BaseAlgorithm, path: Path, statistics_path: Path) -> None:
    """``model.save(path)`` and its VecNormalize statistics (if any), each written atomically, statistics first."""
    vec_normalize = model.get_vec_normalize_env()
    if vec_normalize is not None:
        atomic_pickle(statistics_path, vec_normalize)  # exactly what VecNormalize.save writes
    atomic_save(path, model.save)


EVALUATION_COLUMNS = ("timesteps", "mean_return", "std_return", "episodes", "train_seconds")


class PeriodicEvalCallback(BaseCallback):
    """Every ``eval_freq`` timesteps: evaluate with the state carried as in training, log ``eval/*``, append a
    row to ``evaluations.csv`` (a learning curve that survives ``--resume``)."""

    def __init__(
        self,
        eval_env: VecEnv,
        eval_freq: int,
        n_episodes: int,
        deterministic: bool,
        csv_path: Path,
        training_seconds: Callable[[], float | None] | None = None,
        on_evaluation: Callable[[int, float], None] | None = None,
    ) -> None:
        """:param training_seconds: the run's training time so far (evaluation left out), logged beside each
        evaluation so time-to-return can be read from the curve.
        :param on_evaluation: called with (timesteps, mean return) once each evaluation is logged; it may raise to
        stop training (``rlgru tune``'s pruner does)."""
        super().__init__()
        self.on_evaluation = on_evaluation
        self.training_seconds = training_seconds
        self.eval_env = eval_env
        self.eval_freq = eval_freq
        self.n_episodes = n_episodes
        self.deterministic = deterministic
        self.csv_path = csv_path
        self._next_eval = 0
        self.seconds = 0.0  # spent evaluating, so throughput figures can leave it out

    def _on_training_start(self) -> None:
        self._next_eval = (self.num_timesteps // self.eval_freq + 1) * self.eval_freq

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        if self.num_timesteps < self._next_eval:
            return
        self._next_eval = (self.num_timesteps // self.eval_freq + 1) * self.eval_freq
        started = time.perf_counter()
        trained_for = self.training_seconds() if self.training_seconds is not None else None
        # The VecNormalize itself, not the top of the training stack: SB3 may have put a VecTransposeImage over
        # it (image observations) that the evaluation envs do not need, since predict() transposes images itself.
        training_normalize = self.model.get_vec_normalize_env()
        if training_normalize is not None:
            copy_normalization(training_normalize, self.eval_env)
        result = run_episodes(self.model, self.eval_env, self.n_episodes, deterministic=self.deterministic)
        values = {
            "eval/mean_reward": result.mean,
            "eval/std_reward": result.std,
            "eval/mean_ep_length": sum(result.lengths) / max(len(result.lengths), 1),
        }
        # Written now, at the step it belongs to (SB3 would hold it until the next dump, a rollout later, and lose it
        # if the process died in between), and before this step's checkpoint.
        for output in self.logger.output_formats:
            output.write(values, dict.fromkeys(values), self.num_timesteps)
        append_row(
            self.csv_path,
            EVALUATION_COLUMNS,
            [
                self.num_timesteps,
                f"{result.mean:.6g}",
                f"{result.std:.6g}",
                len(result.returns),
                "" if trained_for is None else f"{trained_for:.3f}",
            ],
        )
        self.seconds += time.perf_counter() - started
        if self.on_evaluation is not None:
            self.on_evaluation(self.num_timesteps, result.mean)


__all__ = ["EVALUATION_COLUMNS", "PeriodicEvalCallback", "UpdateCheckpointCallback", "save_checkpoint", "save_model"]
