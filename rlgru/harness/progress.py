"""Progress bars: whether to draw them (only for a person watching a terminal) and the training bar itself."""

from __future__ import annotations

import sys
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback


def show_progress(disabled: bool = False) -> bool:
    """Bars garble logs and captured output, so they are drawn only when stdout is a TTY (and not disabled)."""
    return not disabled and sys.stdout.isatty()


def steps_to_run(remaining: int, rollout: int) -> int:
    """What ``learn(remaining)`` really trains: whole rollouts of ``n_envs x n_steps``, so rounded up."""
    return -(-remaining // rollout) * rollout


class TrainingProgressBar(BaseCallback):
    """SB3's progress bar, except that its total is the steps that will really run (whole rollouts: SB3's shows
    100,096/100,000) and its rate is the average since the start (SB3's is smoothed over the last few updates and
    disagrees with the steps/s printed at the end)."""

    def __init__(self, total: int) -> None:
        super().__init__()
        self.total = total
        self.bar: Any = None

    def _on_training_start(self) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=self.total, unit="step", smoothing=0, dynamic_ncols=True)

    def _on_step(self) -> bool:
        self.bar.update(self.training_env.num_envs)
        return True

    def _on_training_end(self) -> None:
        self.close()

    def close(self) -> None:
        """Also called when training stops on an error, so the terminal is left clean."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


__all__ = ["TrainingProgressBar", "show_progress", "steps_to_run"]
