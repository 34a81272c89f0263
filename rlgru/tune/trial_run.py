"""Train one trial in a worker (a process of its own, or a Ray task): each seed an ordinary run directory,
each periodic evaluation reported to Optuna, which may prune the trial there.

The worker never raises: it returns what happened (complete, pruned or failed with its error) and the driver tells
Optuna. A worker started again on the same trial (a Ray retry after a lost node, or a retried trial after a kill)
resumes each seed from its checkpoints and reads back the seeds already finished.
"""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import optuna
import torch

from rlgru.harness.run_dir import RunDir
from rlgru.harness.run_lock import RunInUseError, claim_run
from rlgru.harness.train import resume_or_start_over, train
from rlgru.runtime.files import atomic_write_text
from rlgru.tune.search import make_pruner
from rlgru.tune.storage import open_storage, quiet_optuna
from rlgru.tune.trial_config import score, trial_run_config, trial_run_dir

LOG_FILE = "train.log"


@dataclass
class TrialSpec:
    """Everything a worker needs, as plain data (it crosses process and machine boundaries)."""

    number: int
    trial_id: int
    run_of: int
    params: dict[str, Any]
    base_config: dict[str, Any]
    seeds: int
    evaluations: int
    eval_episodes: int | None
    out_dir: str
    storage: str
    study: str
    pruner: str

    @property
    def budget(self) -> int:
        return int(self.base_config["training"]["total_timesteps"])

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrialResult:
    number: int
    state: str  # complete | pruned | failed
    value: float | None = None
    seed_values: list[float] = field(default_factory=list)
    run_dirs: list[str] = field(default_factory=list)
    seconds: float = 0.0
    pruned_at: int | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Pruned(Exception):
    """Raised from the evaluation hook to end a seed's training where the pruner said stop."""

    def __init__(self, step: int) -> None:
        super().__init__(f"pruned at step {step}")
        self.step = step


def execute_trial(spec_data: dict[str, Any]) -> dict[str, Any]:
    """Run every seed of a trial; returns a ``TrialResult`` as a dict. Never raises."""
    torch.set_num_threads(1)
    quiet_optuna()
    spec = TrialSpec(**spec_data)
    result = TrialResult(spec.number, state="complete")
    started = time.perf_counter()
    try:
        trial = _trial_handle(spec)
        for seed_index in range(spec.seeds):
            result.seed_values.append(_run_seed(spec, trial, seed_index, result))
        result.value = sum(result.seed_values) / len(result.seed_values)
    except _Pruned as pruned:
        result.state, result.pruned_at = "pruned", pruned.step
    except Exception as error:  # noqa: BLE001 - a failed trial is recorded with its error; the study goes on
        result.state = "failed"
        detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
        result.error = f"{type(error).__name__}: {detail}" if detail else type(error).__name__
        held_elsewhere = isinstance(error, RunInUseError)  # that process's run: write nothing into it
        if result.run_dirs and Path(result.run_dirs[-1]).is_dir() and not held_elsewhere:
            atomic_write_text(Path(result.run_dirs[-1]) / "error.log", traceback.format_exc())
    result.seconds = time.perf_counter() - started
    return result.as_dict()


def _trial_handle(spec: TrialSpec) -> optuna.Trial:
    """This trial, opened from the shared storage with the study's pruner, for ``report`` and ``should_prune``."""
    last_step = spec.seeds * spec.budget
    pruner = make_pruner(spec.pruner, first_step=max(spec.budget // spec.evaluations, 1), last_step=last_step)
    study = optuna.load_study(study_name=spec.study, storage=open_storage(spec.storage), pruner=pruner)
    return optuna.trial.Trial(study, spec.trial_id)


def _run_seed(spec: TrialSpec, trial: optuna.Trial, seed_index: int, result: TrialResult) -> float:
    run = trial_run_dir(Path(spec.out_dir), spec.run_of, seed_index)
    result.run_dirs.append(str(run.path))
    config = trial_run_config(
        spec.base_config, spec.params, seed_index, spec.evaluations, spec.eval_episodes, where=run.config
    )
    finished = _finished_value(run)
    if finished is not None:
        return score(config, finished)
    offset = seed_index * spec.budget

    def report(timesteps: int, mean_return: float) -> None:
        step = offset + timesteps
        trial.report(score(config, mean_return), step)
        if trial.should_prune():
            raise _Pruned(step)

    with claim_run(run.path):  # a second worker on this trial is refused here, never writing the same files
        resume = resume_or_start_over(run, config)
        with (run.path / LOG_FILE).open("a") as log:
            outcome = train(
                config,
                run,
                resume=resume,
                progress=False,
                report=lambda line: print(line, file=log, flush=True),
                on_evaluation=report,
            )
    assert outcome.evaluation is not None
    return score(config, outcome.evaluation.mean)


def _finished_value(run: RunDir) -> float | None:
    """The final mean return of a seed that already finished (its ``eval.json``), else ``None``."""
    try:
        return float(json.loads(run.eval_json.read_text())["mean_return"]) if run.eval_json.is_file() else None
    except (OSError, ValueError, KeyError):
        return None


__all__ = ["TrialResult", "TrialSpec", "execute_trial"]
