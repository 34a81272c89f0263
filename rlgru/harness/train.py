"""Train from a config into a run directory, or resume a run from its last checkpoint.

The flow is one-way: config -> envs -> agent -> run directory (config.yaml, checkpoints, TensorBoard, model.zip)
-> evaluation (eval.json). A resumed run reloads weights, optimizer state and VecNormalize statistics from the
checkpoint and continues the step counter and the same TensorBoard event directory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, sync_envs_normalization

from rlgru import RecurrentPPO
from rlgru.harness.agent import build_agent, load_agent
from rlgru.harness.callbacks import PeriodicEvalCallback, UpdateCheckpointCallback, save_checkpoint
from rlgru.harness.config import (
    RunConfig,
    config_to_dict,
    differing_keys,
    dump_config,
    read_yaml_mapping,
    validate_config,
)
from rlgru.harness.env_factory import EVAL_SEED_OFFSET, load_normalization, make_env, normalize_env
from rlgru.harness.errors import HarnessError
from rlgru.harness.evaluate import EvalResult, run_episodes
from rlgru.harness.references import task_reference
from rlgru.harness.run_dir import CHECKPOINT_PREFIX, TB_LOG_NAME, Checkpoint, RunDir

#: keys a resumed run may change: extending the budget is the point of resuming a finished run
RESUMABLE_CHANGES = ("training.total_timesteps",)

Report = Callable[[str], None]


@dataclass
class TrainOutcome:
    run: RunDir
    timesteps: int
    wall_seconds: float
    evaluation: EvalResult | None
    reference: dict[str, Any] | None
    #: time spent in periodic evaluations inside ``wall_seconds`` (training throughput leaves it out)
    eval_seconds: float = 0.0


def prepare_resume(run: RunDir, requested: RunConfig) -> RunConfig:
    """The run's own config; refuse a requested config that differs except in ``RESUMABLE_CHANGES``."""
    if not run.config.is_file():
        raise HarnessError("no config.yaml: not a run directory to resume", where=run.path)
    saved = validate_config(read_yaml_mapping(run.config), where=run.config)
    changed = [key for key in differing_keys(config_to_dict(saved), config_to_dict(requested))
               if key not in RESUMABLE_CHANGES]
    if changed:
        raise HarnessError(f"the config differs from the run's config.yaml at {', '.join(changed)}; "
                           "resume with the run's own config or start a new run", where=run.path)
    return requested


def train(
    config: RunConfig,
    run: RunDir,
    *,
    resume: bool = False,
    progress: bool = False,
    source: str | Path = "config",
    report: Report = print,
) -> TrainOutcome:
    """Train (or resume) ``config`` in ``run``, save ``model.zip``, evaluate into ``eval.json``."""
    if config.training.torch_threads is not None:
        torch.set_num_threads(config.training.torch_threads)
    checkpoint = run.latest_checkpoint() if resume else None
    if resume and checkpoint is None and not run.model.is_file():
        raise HarnessError(f"nothing to resume: no checkpoint in {run.checkpoints} and no model.zip", where=run.path)

    try:
        env = make_env(config.env, seed=config.seed)
    except HarnessError as error:
        raise error.within(source) from None
    try:
        model = _resumed_agent(config, run, env, checkpoint) if resume else _new_agent(config, run, env, source)
        remaining = config.training.total_timesteps - model.num_timesteps
        report(f"run directory: {run.path}")
        started = time.perf_counter()
        callbacks: list[BaseCallback] = []
        if remaining > 0:
            _describe_start(config, model, remaining, report)
            callbacks = _callbacks(config, run, model)
            model.learn(
                remaining,
                callback=callbacks,
                log_interval=config.training.log_interval,
                tb_log_name=TB_LOG_NAME,
                reset_num_timesteps=not resume,
                progress_bar=progress,
            )
        else:
            report(f"already trained for {model.num_timesteps} of {config.training.total_timesteps} timesteps")
        wall = time.perf_counter() - started
        eval_seconds = sum(getattr(callback, "seconds", 0.0) for callback in callbacks)
        if remaining > 0 and config.training.checkpoint_freq > 0:
            save_checkpoint(model, run.checkpoints, CHECKPOINT_PREFIX)  # so --resume always finds the newest state
        model.save(run.model)
        vec_normalize = model.get_vec_normalize_env()
        if vec_normalize is not None:
            vec_normalize.save(str(run.vecnormalize))
        if remaining > 0:
            done = model.num_timesteps - (config.training.total_timesteps - remaining)
            report(f"trained {done} timesteps in {wall:.2f} s ({done / max(wall, 1e-9):.0f} steps/s); "
                   f"total {model.num_timesteps}")
        evaluation, reference = final_evaluation(config, model, run)
        report(describe_result(evaluation, reference))
        report(f"saved {run.model.name} and {run.eval_json.name} in {run.path}")
        return TrainOutcome(run, model.num_timesteps, wall, evaluation, reference, eval_seconds)
    finally:
        env.close()


def _new_agent(config: RunConfig, run: RunDir, env: VecEnv, source: str | Path) -> RecurrentPPO:
    run.path.mkdir(parents=True, exist_ok=True)
    dump_config(config, run.config)
    env = normalize_env(env, config.env, config.algorithm.gamma)
    return build_agent(config, env, run.tensorboard, where=source)


def _resumed_agent(config: RunConfig, run: RunDir, env: VecEnv, checkpoint: Checkpoint | None) -> RecurrentPPO:
    model_path = checkpoint.model if checkpoint is not None else run.model
    vecnormalize_path = checkpoint.vecnormalize if checkpoint is not None else run.vecnormalize
    if config.env.normalize is not None:
        if vecnormalize_path is None or not vecnormalize_path.is_file():
            raise HarnessError("the config normalises observations but the checkpoint has no VecNormalize "
                               "statistics beside it", where=model_path)
        env = load_normalization(env, vecnormalize_path, training=True)
    model = load_agent(model_path, env=env, device=config.training.device,
                       implementation=config.algorithm.implementation,
                       tensorboard_log=str(run.tensorboard), verbose=config.training.verbose)
    # SB3 does not save random generator states: reseed from the step count so a resumed run is reproducible.
    model.set_random_seed(config.seed + model.num_timesteps)
    dump_config(config, run.config)  # records an extended budget
    return model


def _callbacks(config: RunConfig, run: RunDir, model: RecurrentPPO) -> list[BaseCallback]:
    callbacks: list[BaseCallback] = []
    if config.training.checkpoint_freq > 0:
        callbacks.append(UpdateCheckpointCallback(config.training.checkpoint_freq, run.checkpoints,
                                                  name_prefix=CHECKPOINT_PREFIX))
    if config.evaluation.freq > 0:
        callbacks.append(PeriodicEvalCallback(
            make_eval_env(config, model), config.evaluation.freq, config.evaluation.episodes,
            config.evaluation.deterministic, run.evaluations_csv,
        ))
    return callbacks


def make_eval_env(config: RunConfig, model: RecurrentPPO) -> VecEnv:
    """Envs seeded apart from training; VecNormalize frozen, with the training statistics."""
    n_envs = config.evaluation.n_envs or config.env.n_envs
    env = make_env(config.env, seed=config.seed + EVAL_SEED_OFFSET, n_envs=n_envs, vec_env="dummy")
    env = normalize_env(env, config.env, config.algorithm.gamma, training=False)
    training = model.get_vec_normalize_env()
    if training is not None:
        sync_envs_normalization(training, env)
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
        result.extra.update(optimal_return=reference["optimal_return"],
                            memoryless_return=reference["memoryless_return"])
    result.write_json(run.eval_json)
    return result, reference


def describe_result(result: EvalResult, reference: dict | None) -> str:
    kind = "deterministic" if result.deterministic else "stochastic"
    text = f"eval ({len(result.returns)} {kind} episodes): mean return {result.mean:.3f} +- {result.std:.3f}"
    if reference is not None:
        approx = "" if reference["exact"] else "~"
        text += (f" (optimal {approx}{reference['optimal_return']:.4g}, "
                 f"memoryless ceiling {approx}{reference['memoryless_return']:.4g})")
    return text


def _describe_start(config: RunConfig, model: RecurrentPPO, remaining: int, report: Report) -> None:
    policy = config.policy
    start = f" from timestep {model.num_timesteps}" if model.num_timesteps else ""
    implementation = " (sb3-contrib)" if config.algorithm.implementation == "sb3-contrib" else ""
    report(f"training {type(model.policy).__name__}{implementation} ({policy.core} core "
           f"{policy.hidden_size}x{policy.n_layers}, hidden_reset={policy.hidden_reset}) on {config.env.id}{start} "
           f"for {remaining} timesteps with {config.env.n_envs} {config.env.vec_env} envs, seed {config.seed}")


__all__ = ["RESUMABLE_CHANGES", "TrainOutcome", "describe_result", "final_evaluation", "make_eval_env",
           "prepare_resume", "train"]
