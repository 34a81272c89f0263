"""Train from a config into a run directory, or resume a run from its last checkpoint.

The flow is one-way: config -> envs -> agent -> run directory (config.yaml, checkpoints, TensorBoard, model.zip)
-> evaluation (eval.json). A resumed run reloads weights, optimizer state and VecNormalize statistics from the
checkpoint and continues the step counter and the same TensorBoard event directory.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv

from rlgru import RecurrentPPO
from rlgru.harness.agent import build_agent, load_agent
from rlgru.harness.callbacks import PeriodicEvalCallback, UpdateCheckpointCallback, save_checkpoint, save_model
from rlgru.harness.checkpoints import Skipped, model_file_problem, readable_checkpoints, saved_timesteps
from rlgru.harness.config import (
    RunConfig,
    config_to_dict,
    differing_keys,
    dump_config,
    read_yaml_mapping,
    validate_config,
)
from rlgru.harness.env_factory import (
    EVAL_SEED_OFFSET,
    copy_normalization,
    load_normalization,
    make_env,
    normalize_env,
)
from rlgru.harness.errors import HarnessError, RunDivergedError, UntrustedFileError
from rlgru.harness.evaluate import EvalResult, run_episodes
from rlgru.harness.progress import TrainingProgressBar, steps_to_run
from rlgru.harness.references import task_reference
from rlgru.harness.run_dir import CHECKPOINT_PREFIX, TB_LOG_NAME, RunDir
from rlgru.harness.run_lock import LOCK_FILE, claim_run
from rlgru.harness.run_logs import tensorboard_logger, truncate_rows
from rlgru.harness.training_time import TrainingClock
from rlgru.runtime.divergence import DivergenceError, DivergenceGuard, VecCheckFinite
from rlgru.runtime.files import atomic_write_text, remove_stale_temporaries

#: keys a resumed run may change: extending the budget is the point of resuming a finished run
#: what a resumed run may change: a longer budget, and whether fast paths run (the same training either way)
RESUMABLE_CHANGES = ("training.total_timesteps", "algorithm.fast_paths")

Report = Callable[[str], None]
#: called with (timesteps, mean return) after each periodic evaluation; may raise to stop the run
EvaluationHook = Callable[[int, float], None]


@dataclass
class TrainOutcome:
    run: RunDir
    timesteps: int
    wall_seconds: float
    evaluation: EvalResult | None
    reference: dict[str, Any] | None
    #: time spent in periodic evaluations inside ``wall_seconds`` (training throughput leaves it out)
    eval_seconds: float = 0.0
    #: the step this process started from (0 for a new run)
    resumed_from: int = 0
    #: seconds spent training (evaluation left out) over every process that trained the run, and the steps they cover
    total_train_seconds: float | None = None
    timed_steps: int = 0


def prepare_resume(run: RunDir, requested: RunConfig) -> RunConfig:
    """The run's own config; refuse a requested config that differs except in ``RESUMABLE_CHANGES``."""
    if not run.config.is_file():
        raise HarnessError("no config.yaml: not a run directory to resume", where=run.path)
    saved = validate_config(read_yaml_mapping(run.config), where=run.config)
    changed = [
        key for key in differing_keys(config_to_dict(saved), config_to_dict(requested)) if key not in RESUMABLE_CHANGES
    ]
    if changed:
        raise HarnessError(
            f"the config differs from the run's config.yaml at {', '.join(changed)}; "
            "resume with the run's own config or start a new run",
            where=run.path,
        )
    return requested


def resume_or_start_over(run: RunDir, config: RunConfig) -> bool:
    """For a worker that (re)starts a run it holds: ``True`` (resume) if the run has a saved state, else clear what
    a start killed before its first checkpoint left behind (all but the lock, which the caller holds) and ``False``.
    """
    saved = [c.model for c in run.list_checkpoints()] + ([run.model] if run.model.is_file() else [])
    if run.config.is_file() and saved:
        prepare_resume(run, config)
        return True
    for child in run.path.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
        elif child.name != LOCK_FILE:
            child.unlink()
    return False


def train(
    config: RunConfig,
    run: RunDir,
    *,
    resume: bool = False,
    progress: bool = False,
    source: str | Path = "config",
    report: Report = print,
    trust_pickle: bool = False,
    on_evaluation: EvaluationHook | None = None,
) -> TrainOutcome:
    """Train (or resume) ``config`` in ``run``, save ``model.zip``, evaluate into ``eval.json``.

    The run directory is claimed (``run_lock``) before anything else, and held until this returns; a resumed run
    starts from the newest checkpoint that reads back whole, with its logs cut back to that checkpoint's step.
    ``on_evaluation`` sees each periodic evaluation; an exception it raises ends the run there (files kept).
    """
    if config.training.torch_threads is not None:
        torch.set_num_threads(config.training.torch_threads)
    with claim_run(run.path):
        if not resume and run.config.exists():
            raise HarnessError(
                "already holds a run; pass --resume to continue it, or choose another --run-dir", where=run.path
            )
        try:
            env = make_env(config.env, seed=config.seed)
        except HarnessError as error:
            if all(child.name == LOCK_FILE for child in run.path.iterdir()):
                shutil.rmtree(run.path, ignore_errors=True)  # nothing of the run was written: leave no empty run
            raise error.within(source) from None
        if config.training.guard.finite:
            env = VecCheckFinite(env, config.env.id)
        try:
            return _train(
                config,
                run,
                env,
                resume=resume,
                progress=progress,
                source=source,
                report=report,
                trust_pickle=trust_pickle,
                on_evaluation=on_evaluation,
            )
        finally:
            env.close()


def _train(
    config: RunConfig,
    run: RunDir,
    env: VecEnv,
    *,
    resume: bool,
    progress: bool,
    source: str | Path,
    report: Report,
    trust_pickle: bool,
    on_evaluation: EvaluationHook | None = None,
) -> TrainOutcome:
    if resume:
        model, clock = _resumed_agent(config, run, env, source, report, trust_pickle)
    else:
        model, clock = _new_agent(config, run, env, source), TrainingClock(run.training_time_csv)
    resumed_from = model.num_timesteps
    remaining = config.training.total_timesteps - model.num_timesteps
    model.set_logger(
        tensorboard_logger(
            run.tensorboard,
            TB_LOG_NAME,
            verbose=config.training.verbose,
            resume_step=model.num_timesteps if resume else None,
        )
    )
    report(f"run directory: {run.path}")
    started = time.perf_counter()
    callbacks: list[BaseCallback] = []
    bar: TrainingProgressBar | None = None
    if remaining > 0:
        _describe_start(config, model, remaining, report)
        _record_fast_paths(model, run, report)
        callbacks = _callbacks(config, run, model, clock, on_evaluation)
        clock.start()
        if progress:
            bar = TrainingProgressBar(steps_to_run(remaining, model.n_envs * model.n_steps))
            callbacks.append(bar)
        try:
            model.learn(
                remaining,
                callback=callbacks,
                log_interval=config.training.log_interval,
                tb_log_name=TB_LOG_NAME,
                reset_num_timesteps=not resume,
                progress_bar=False,
            )
        except DivergenceError as error:
            raise RunDivergedError(f"{error}; {_kept(run)}") from None
        finally:
            if bar is not None:
                bar.close()
    else:
        report(f"already trained for {model.num_timesteps} of {config.training.total_timesteps} timesteps")
    wall = time.perf_counter() - started
    eval_seconds = sum(getattr(callback, "seconds", 0.0) for callback in callbacks)
    if remaining > 0:
        clock.record(model.num_timesteps)
        if config.training.checkpoint_freq > 0:
            save_checkpoint(model, run.checkpoints, CHECKPOINT_PREFIX)  # so --resume always finds the newest state
    save_model(model, run.model, run.vecnormalize)
    if remaining > 0:
        done = model.num_timesteps - resumed_from
        rounded = f" ({remaining} asked, rounded up to whole rollouts)" if done != remaining else ""
        report(
            f"trained {done} timesteps{rounded} in {wall:.2f} s ({done / max(wall, 1e-9):.0f} steps/s); "
            f"total {model.num_timesteps}"
        )
    evaluation, reference = final_evaluation(config, model, run)
    report(describe_result(evaluation, reference))
    report(f"saved {run.model.name} and {run.eval_json.name} in {run.path}")
    timing = clock.totals()
    return TrainOutcome(
        run,
        model.num_timesteps,
        wall,
        evaluation,
        reference,
        eval_seconds,
        resumed_from,
        timing.train_seconds,
        timing.timed_steps,
    )


def _new_agent(config: RunConfig, run: RunDir, env: VecEnv, source: str | Path) -> RecurrentPPO:
    dump_config(config, run.config)
    env = normalize_env(env, config.env, config.algorithm.gamma)
    return build_agent(config, env, run.tensorboard, where=source)


def _resumed_agent(
    config: RunConfig, run: RunDir, env: VecEnv, source: str | Path, report: Report, trust_pickle: bool
) -> tuple[RecurrentPPO, TrainingClock]:
    """The newest state that loads; unreadable newer files are reported and set aside as ``*.unreadable``.

    A run with no readable state (killed before its first checkpoint) starts again from step 0, in place.
    """
    for directory in (run.path, run.checkpoints):
        remove_stale_temporaries(directory)
    normalizes = config.env.normalize is not None
    checkpoints, skipped = readable_checkpoints(run, with_statistics=normalizes)
    candidates = [(c.steps, c.model, c.vecnormalize) for c in checkpoints]
    if run.model.is_file():
        problem = model_file_problem(run.model)
        if problem is None:
            candidates.append((saved_timesteps(run.model), run.model, run.vecnormalize))
        else:
            skipped.append(Skipped(run.model, problem))
    candidates.sort(key=lambda candidate: candidate[0], reverse=True)  # newest first; a tie keeps the checkpoint
    model = None
    for _, model_path, statistics_path in candidates:
        try:
            model = _load_state(config, run, env, model_path, statistics_path, trust_pickle)
            break
        except UntrustedFileError:
            raise
        except HarnessError as error:
            skipped.append(Skipped(model_path, error.message))
    for skip in skipped:
        report(f"{skip}")
        os.replace(skip.path, skip.path.with_name(skip.path.name + ".unreadable"))
    if model is None:
        report(f"no readable checkpoint in {run.checkpoints} and no readable model.zip: training from step 0")
        model = build_agent(
            config, normalize_env(env, config.env, config.algorithm.gamma), run.tensorboard, where=source
        )
    else:
        report(f"resuming from {model_path} ({model.num_timesteps} timesteps)")
    steps = model.num_timesteps
    dropped = truncate_rows(run.evaluations_csv, steps)
    if dropped:
        report(f"dropped {dropped} row(s) of {run.evaluations_csv.name} logged after step {steps}")
    # SB3 does not save random generator states: reseed from the step count so a resumed run is reproducible.
    model.set_random_seed(config.seed + steps)
    dump_config(config, run.config)  # records an extended budget
    return model, TrainingClock(run.training_time_csv, resume_step=steps)


def _load_state(
    config: RunConfig, run: RunDir, env: VecEnv, model_path: Path, statistics_path: Path | None, trust_pickle: bool
) -> RecurrentPPO:
    if config.env.normalize is not None:
        if statistics_path is None or not statistics_path.is_file():
            raise HarnessError(
                "the config normalises observations but no VecNormalize statistics were saved with it", where=model_path
            )
        env = load_normalization(env, statistics_path, training=True, trust_pickle=trust_pickle)
    return load_agent(
        model_path,
        env=env,
        device=config.training.device,
        implementation=config.algorithm.implementation,
        trust_pickle=trust_pickle,
        tensorboard_log=str(run.tensorboard),
        verbose=config.training.verbose,
        **({} if config.algorithm.implementation == "sb3-contrib" else {"fast_paths": config.algorithm.fast_paths}),
    )


def _kept(run: RunDir) -> str:
    checkpoints = run.list_checkpoints()
    if checkpoints:
        return f"the last good checkpoint is {checkpoints[-1].model}"
    return "no checkpoint had been written yet"


def _callbacks(
    config: RunConfig,
    run: RunDir,
    model: RecurrentPPO,
    clock: TrainingClock,
    on_evaluation: EvaluationHook | None = None,
) -> list[BaseCallback]:
    """Guard first (nothing diverged is evaluated or saved), then evaluation, then checkpoints (see callbacks)."""
    callbacks: list[BaseCallback] = []
    guard = config.training.guard
    if guard.finite or guard.max_weight_growth is not None:
        callbacks.append(DivergenceGuard(config.env.id, guard.max_weight_growth, check_finite=guard.finite))
    if config.evaluation.freq > 0:
        evaluation = PeriodicEvalCallback(
            make_eval_env(config, model),
            config.evaluation.freq,
            config.evaluation.episodes,
            config.evaluation.deterministic,
            run.evaluations_csv,
            training_seconds=lambda: clock.totals().train_seconds,
            on_evaluation=on_evaluation,
        )
        clock.evaluation = evaluation
        callbacks.append(evaluation)
    if config.training.checkpoint_freq > 0:
        callbacks.append(
            UpdateCheckpointCallback(
                config.training.checkpoint_freq,
                run.checkpoints,
                name_prefix=CHECKPOINT_PREFIX,
                before_save=clock.record,
            )
        )
    return callbacks


def make_eval_env(config: RunConfig, model: RecurrentPPO) -> VecEnv:
    """Envs seeded apart from training; VecNormalize frozen, with the training statistics."""
    n_envs = config.evaluation.n_envs or config.env.n_envs
    # The batched version where training uses it (same episodes, no per-env loop); never subprocesses for this.
    kind = "batched" if config.env.vec_env == "batched" else "dummy"
    env = make_env(config.env, seed=config.seed + EVAL_SEED_OFFSET, n_envs=n_envs, vec_env=kind)
    env = normalize_env(env, config.env, config.algorithm.gamma, training=False)
    training = model.get_vec_normalize_env()
    if training is not None:
        copy_normalization(training, env)
    return env


def final_evaluation(config: RunConfig, model: RecurrentPPO, run: RunDir) -> tuple[EvalResult, dict | None]:
    env = make_eval_env(config, model)
    try:
        result = run_episodes(model, env, config.evaluation.episodes, deterministic=config.evaluation.deterministic)
    finally:
        env.close()
    reference = task_reference(config.env.id, config.env.env_kwargs) if not config.env.wrappers else None
    result.extra.update(timesteps=model.num_timesteps, env_id=config.env.id, seed=config.seed)
    if reference is not None:
        result.extra.update(
            optimal_return=reference["optimal_return"], memoryless_return=reference["memoryless_return"]
        )
    result.write_json(run.eval_json)
    return result, reference


def describe_result(result: EvalResult, reference: dict | None) -> str:
    kind = "deterministic" if result.deterministic else "stochastic"
    text = f"eval ({len(result.returns)} {kind} episodes): mean return {result.mean:.3f} +- {result.std:.3f}"
    if reference is not None:
        approx = "" if reference["exact"] else "~"
        text += (
            f" (optimal {approx}{reference['optimal_return']:.4g}, "
            f"memoryless ceiling {approx}{reference['memoryless_return']:.4g})"
        )
    return text


def _record_fast_paths(model: RecurrentPPO, run: RunDir, report: Report) -> None:
    """The fast-path plan, in one line of the log and in ``fast_paths.json`` (rlgru's implementation only)."""
    plan_of = getattr(model, "fast_path_plan", None)
    if plan_of is None:
        return
    plan = plan_of()
    report(plan.summary())
    atomic_write_text(run.fast_paths_json, json.dumps(plan.to_dict(), indent=2) + "\n")


def _describe_start(config: RunConfig, model: RecurrentPPO, remaining: int, report: Report) -> None:
    policy = config.policy
    start = f" from timestep {model.num_timesteps}" if model.num_timesteps else ""
    implementation = " (sb3-contrib)" if config.algorithm.implementation == "sb3-contrib" else ""
    report(
        f"training {type(model.policy).__name__}{implementation} ({policy.core} core "
        f"{policy.hidden_size}x{policy.n_layers}, hidden_reset={policy.hidden_reset}) on {config.env.id}{start} "
        f"for {remaining} timesteps with {config.env.n_envs} {config.env.vec_env} envs, seed {config.seed}"
    )


__all__ = [
    "RESUMABLE_CHANGES",
    "EvaluationHook",
    "TrainOutcome",
    "describe_result",
    "final_evaluation",
    "make_eval_env",
    "prepare_resume",
    "resume_or_start_over",
    "train",
]
