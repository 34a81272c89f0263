"""Execute one run of a sweep in a worker process: train through the harness, measure its cost, return a result.

A worker holds one run at a time and one torch thread, so runs on the same machine do not slow each other down
through oversubscription, and process-wide figures (peak memory) belong to a single run. Whatever happens, the
worker returns a result: a failed run is data (its error is recorded), not a reason to stop the sweep.
"""

from __future__ import annotations

import csv
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlgru.bench.results import REQUIRED_FIELDS, write_result
from rlgru.bench.suite import RunSpec
from rlgru.harness.agent import load_agent
from rlgru.harness.config import config_to_dict, differing_keys, read_yaml_mapping
from rlgru.harness.env_factory import EVAL_SEED_OFFSET, load_normalization, make_env
from rlgru.harness.references import task_reference
from rlgru.harness.run_dir import RunDir
from rlgru.harness.run_lock import RunInUseError, claim_run
from rlgru.harness.train import resume_or_start_over, train
from rlgru.harness.training_time import recorded_timing
from rlgru.runtime.files import atomic_write_text

LOG_FILE = "train.log"
#: rollout steps timed for the inference-latency figure (after as many warm-up steps)
LATENCY_STEPS = 200


def run_dir_of(out_dir: Path, run_id: str) -> RunDir:
    return RunDir(Path(out_dir) / "runs" / run_id)


def execute(spec_data: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """Train one run (continuing its own checkpoints if a previous sweep was cut short); never raises.

    The run directory is claimed first (``run_lock``): a second sweep on the same out directory, or a task Ray
    retried while the first attempt still runs, records a failure instead of writing into the same files.
    """
    torch.set_num_threads(1)
    spec = RunSpec.from_dict(spec_data)
    run = run_dir_of(Path(out_dir), spec.run_id)
    result: dict[str, Any] = identity(spec)
    held_elsewhere = False
    try:
        with claim_run(run.path):
            result.update(_train_and_measure(spec, run))
    except RunInUseError as error:
        held_elsewhere = True  # that process records this run; writing here would overwrite its result
        result.update(status="failed", error=f"RunInUseError: {error}")
    except Exception as error:  # noqa: BLE001 - a failed run is recorded and the sweep goes on
        detail = str(error).splitlines()[0] if str(error) else ""
        result.update(status="failed", error=f"{type(error).__name__}: {detail}" if detail else type(error).__name__)
        if run.path.exists():
            atomic_write_text(run.path / "error.log", traceback.format_exc())
    result["peak_memory_mb"] = _peak_memory_mb()
    if not held_elsewhere:
        write_result(run.path, result)
    return result


def _train_and_measure(spec: RunSpec, run: RunDir) -> dict[str, Any]:
    resume = resume_or_start_over(run, spec.config)
    with (run.path / LOG_FILE).open("a") as log:
        outcome = train(
            spec.config, run, resume=resume, progress=False, report=lambda line: print(line, file=log, flush=True)
        )
    timing = recorded_timing(run.training_time_csv)
    model = load_agent(run.model, device="cpu", implementation=spec.config.algorithm.implementation)
    final = outcome.evaluation.mean if outcome.evaluation else None
    measured = {
        "status": "ok",
        "error": None,
        "timesteps": outcome.timesteps,
        "final_return": final,
        "final_return_std": outcome.evaluation.std if outcome.evaluation else None,
        "wall_seconds": outcome.wall_seconds,
        # over every process that trained the run (training_time.csv), evaluation left out
        "steps_per_second": (
            timing.timed_steps / timing.train_seconds
            if timing and timing.timed_steps > 0 and timing.train_seconds
            else None
        ),
        "resumed_from": outcome.resumed_from,
        "curve": _curve(run, outcome.timesteps, final, timing.train_seconds if timing else None),
        **_parameter_counts(model),
        "inference_latency_us": _inference_latency_us(model, spec, run),
    }
    measured["best_return"] = max(point[1] for point in measured["curve"]) if measured["curve"] else None
    missing = [key for key in REQUIRED_FIELDS if measured.get(key) is None]
    if missing:
        measured.update(status="failed", error=f"incomplete result: no {', '.join(missing)}")
    return measured


def config_mismatch(run: RunDir, spec: RunSpec) -> list[str]:
    """Key paths where a run directory's config differs from what the suite asks for now (empty: same run)."""
    if not run.config.is_file():
        return []
    return differing_keys(read_yaml_mapping(run.config), config_to_dict(spec.config))


def identity(spec: RunSpec) -> dict[str, Any]:
    """What every result holds about its run, with the measured figures still None and the status failed."""
    reference = task_reference(spec.config.env.id, spec.config.env.env_kwargs) or {}
    return {
        "run_id": spec.run_id,
        "task": spec.task,
        "core": spec.core,
        "seed": spec.seed,
        "budget": spec.budget,
        "env_id": spec.config.env.id,
        "env_kwargs": spec.config.env.env_kwargs,
        "hidden_size": spec.config.policy.hidden_size,
        "sizing": spec.sizing,
        "setting": spec.setting,
        "task_info": {
            "optimal_return": reference.get("optimal_return"),
            "memoryless_return": reference.get("memoryless_return"),
            "horizon": spec.horizon,
            "family": spec.family,
            "memory_length": spec.memory_length,
        },
        "timesteps": None,
        "final_return": None,
        "best_return": None,
        "wall_seconds": None,
        "steps_per_second": None,
        "params": None,
        "recurrent_params": None,
        "inference_latency_us": None,
        "status": "failed",
        "error": None,
        "curve": [],
        "python": sys.version.split()[0],
        "torch": torch.__version__,
    }


def _curve(run: RunDir, timesteps: int, final_mean: float | None, train_seconds: float | None) -> list[list[Any]]:
    """``[timesteps, mean return, training seconds]`` from the periodic evaluations, then the final evaluation.

    The seconds (training only, evaluation left out) let the report say how long each core took to reach a return;
    they are None for logs written before the column existed.
    """
    points: list[list[Any]] = []
    if run.evaluations_csv.is_file():
        with run.evaluations_csv.open() as handle:
            for row in csv.DictReader(handle):
                seconds = row.get("train_seconds") or None
                points.append([int(row["timesteps"]), float(row["mean_return"]), seconds and float(seconds)])
    if final_mean is not None and (not points or points[-1][0] < timesteps):
        points.append([timesteps, float(final_mean), train_seconds])
    return points


def _parameter_counts(model: Any) -> dict[str, int]:
    policy = model.policy
    cores = [getattr(policy, name, None) for name in ("actor_core", "critic_core", "lstm_actor", "lstm_critic")]
    return {
        "params": sum(p.numel() for p in policy.parameters()),
        "recurrent_params": sum(p.numel() for core in cores if core is not None for p in core.parameters()),
    }


def _inference_latency_us(model: Any, spec: RunSpec, run: RunDir) -> float:
    """Median wall time of one ``predict`` step for one env (carrying the state), in microseconds."""
    env = make_env(spec.config.env, seed=spec.seed + EVAL_SEED_OFFSET, n_envs=1, vec_env="dummy")
    if spec.config.env.normalize is not None:
        env = load_normalization(env, run.vecnormalize, training=False)
    try:
        observation = env.reset()
        state, start = None, np.ones(1, dtype=bool)
        times = []
        for step in range(2 * LATENCY_STEPS):
            began = time.perf_counter()
            action, state = model.predict(observation, state=state, episode_start=start, deterministic=True)
            if step >= LATENCY_STEPS:
                times.append(time.perf_counter() - began)
            observation, _, done, _ = env.step(action)
            start = done
        return float(np.median(times) * 1e6)
    finally:
        env.close()


def _peak_memory_mb() -> float:
    # ru_maxrss is in KiB on Linux: the worker's peak resident memory, torch included.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


__all__ = ["config_mismatch", "execute", "identity", "run_dir_of"]
