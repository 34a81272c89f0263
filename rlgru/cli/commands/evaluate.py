"""Evaluate a trained agent (run directory or model.zip); --memory-probe also measures its memory horizon.

--video PATH also writes episodes of it as a GIF or MP4 (``rlgru.harness.video``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from stable_baselines3.common.vec_env import VecEnv

from rlgru import RecurrentPPO
from rlgru.harness.agent import check_model_fits, load_agent
from rlgru.harness.config import EnvConfig
from rlgru.harness.env_factory import EVAL_SEED_OFFSET, load_normalization, make_env
from rlgru.harness.errors import HarnessError
from rlgru.harness.eval_target import EvalTarget, resolve_target
from rlgru.harness.evaluate import run_episodes
from rlgru.harness.memory_probe import hidden_trajectory, memory_horizon
from rlgru.harness.plots import plot_hidden_trajectory, plot_memory_horizon
from rlgru.harness.references import task_reference
from rlgru.harness.train import describe_result
from rlgru.harness.video import (
    VIDEO_INSTALL,
    check_video_path,
    env_fps,
    record_episodes,
    render_env_config,
    write_video,
)
from rlgru.runtime.files import atomic_write_text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", type=Path, metavar="RUN_DIR_OR_MODEL", help="a run directory or a model zip")
    parser.add_argument(
        "--episodes", type=_positive, help="episodes to play (default: the run's evaluation.episodes, else 100)"
    )
    parser.add_argument("--deterministic", action="store_true", help="greedy actions (default: sample)")
    parser.add_argument(
        "--memory-probe",
        action="store_true",
        help="also evaluate with the state zeroed every k steps and write the memory horizon "
        "curve (JSON, PNG) and a hidden-state PCA plot",
    )
    parser.add_argument(
        "--probe-k",
        type=_k_list,
        metavar="K,K,...",
        help="reset intervals for the probe (default: 1, 2, 3, 4, 6, 8, ... below the longest episode)",
    )
    parser.add_argument(
        "--env",
        dest="env_id",
        metavar="ID",
        help="env to play (required for a model zip with no config.yaml beside it)",
    )
    parser.add_argument("--n-envs", type=_positive, help="parallel envs (default: the run's evaluation setting)")
    parser.add_argument(
        "--seed",
        type=int,
        help=f"env seed (default: the run's seed + {EVAL_SEED_OFFSET}, as the final evaluation in training)",
    )
    parser.add_argument("--out", type=Path, help="where the probe writes (default: RUN_DIR/memory_probe)")
    parser.add_argument(
        "--video",
        type=Path,
        metavar="PATH",
        help="also play episodes with one env drawing rgb_array frames and write them to PATH (.gif, or .mp4 with "
        f"{VIDEO_INSTALL})",
    )
    parser.add_argument("--video-episodes", type=_positive, default=1, help="episodes in the video (default: 1)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no memory-probe progress lines on stderr")
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help="also load pickled objects outside rlgru's allow-list from the model and statistics "
        "files (can run code from them: only for files you made or trust)",
    )


def run(args: argparse.Namespace) -> int:
    target = resolve_target(args.target, args.env_id)
    for skip in target.skipped:
        print(f"rlgru eval: {skip}; using {target.model}", file=sys.stderr)
    seed = args.seed if args.seed is not None else (target.config.seed if target.config else 0) + EVAL_SEED_OFFSET
    n_envs = args.n_envs or _default_n_envs(target)
    if args.episodes is None:
        args.episodes = target.config.evaluation.episodes if target.config is not None else 100
    video_env = None
    if args.video is not None:  # refused before anything is played: an unknown format, a missing writer, no frames
        check_video_path(args.video)
        video_env = render_env_config(target.env)
    env = _eval_env(target, seed, n_envs, args.trust_pickle)
    try:
        model = _load(target, env, args.trust_pickle)
        result = run_episodes(model, env, args.episodes, deterministic=args.deterministic)
        reference = task_reference(target.env.id, target.env.env_kwargs) if not target.env.wrappers else None
        result.extra.update(model=str(target.model), env_id=target.env.id, seed=seed, timesteps=model.num_timesteps)
        summary = result.summary()
        if args.memory_probe:
            if not isinstance(model, RecurrentPPO):
                raise HarnessError(
                    "the memory probe reads rlgru's recurrent state; this is an sb3-contrib model", where=target.model
                )
            summary["memory_probe"] = _probe(args, target, model, env, seed, reference)
        if video_env is not None:
            summary["video"] = _video(args, target, model, video_env, seed)
    finally:
        env.close()
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        hidden_reset = getattr(model, "hidden_reset", "episode")
        print(f"{target.model} ({model.num_timesteps} timesteps) on {target.env.id}, hidden_reset={hidden_reset}")
        print(describe_result(result, reference))
        if args.memory_probe:
            probe = summary["memory_probe"]
            curve = ", ".join(f"k={p['k']}: {p['mean_return']:.3f}" for p in probe["curve"])
            print(f"memory horizon curve: {curve}; carried: {probe['carried']['mean_return']:.3f}")
            print(
                f"memory horizon (k recovering {probe['horizon_recovery']:.0%} of the gap): {probe['memory_horizon']}"
            )
            print(f"wrote {', '.join(probe['files'])} in {probe['out_dir']}")
        if video_env is not None:
            video = summary["video"]
            frames = f"{video['episodes']} episode(s), {video['frames']} frames at {video['fps']:g} fps"
            print(f"wrote {video['path']} ({frames})")
    return 0


def _video(args: argparse.Namespace, target: EvalTarget, model: RecurrentPPO, env_config: EnvConfig, seed: int) -> dict:
    """Play ``--video-episodes`` episodes on one rendering env (the run's statistics applied) and write them."""
    venv = make_env(env_config, seed=seed, n_envs=1, vec_env="dummy")
    if target.vecnormalize is not None:
        venv = load_normalization(venv, target.vecnormalize, training=False, trust_pickle=args.trust_pickle)
    try:
        frames = record_episodes(
            model.predict,
            venv,
            args.video_episodes,
            deterministic=args.deterministic,
            hidden_reset=getattr(model, "hidden_reset", "episode"),
        )
        fps = env_fps(venv)
    finally:
        venv.close()
    write_video(frames, args.video, fps)
    return {"path": str(args.video), "episodes": args.video_episodes, "frames": len(frames), "fps": fps}


def _probe(
    args: argparse.Namespace, target: EvalTarget, model: RecurrentPPO, env: VecEnv, seed: int, reference: dict | None
) -> dict:
    out_dir = args.out or target.default_output
    out_dir.mkdir(parents=True, exist_ok=True)
    horizon = memory_horizon(
        model,
        env,
        args.episodes,
        seed=seed,
        deterministic=args.deterministic,
        k_values=args.probe_k,
        report=_no_line if args.no_progress else _stderr_line,
    )
    curve = horizon.as_dict()
    curve.update(env_id=target.env.id, model=str(target.model), timesteps=model.num_timesteps)
    if reference is not None:
        curve.update(optimal_return=reference["optimal_return"], memoryless_return=reference["memoryless_return"])
    title = f"{target.env.id}: {model.policy.core} {model.policy.hidden_size}, {model.num_timesteps} steps"
    plot_memory_horizon(curve, out_dir / "memory_horizon.png", title)
    single = _eval_env(target, seed, 1, args.trust_pickle)
    try:
        trajectory = hidden_trajectory(model, single, seed=seed, deterministic=args.deterministic)
    finally:
        single.close()
    plot_hidden_trajectory(trajectory, out_dir / "hidden_state_pca.png", f"{title}: hidden state, one episode")
    files = ["memory_horizon.json", "memory_horizon.png", "hidden_state_pca.png"]
    curve.update(
        files=files,
        out_dir=str(out_dir),
        hidden_state_pca={
            "explained_variance": trajectory.explained.tolist(),
            "episode_length": int(len(trajectory.components)),
        },
    )
    atomic_write_text(out_dir / "memory_horizon.json", json.dumps(curve, indent=2) + "\n")
    return curve


def _eval_env(target: EvalTarget, seed: int, n_envs: int, trust_pickle: bool) -> VecEnv:
    env = make_env(target.env, seed=seed, n_envs=n_envs, vec_env="dummy")
    if target.vecnormalize is not None:
        env = load_normalization(env, target.vecnormalize, training=False, trust_pickle=trust_pickle)
    return env


def _load(target: EvalTarget, env: VecEnv, trust_pickle: bool) -> RecurrentPPO:
    device = target.config.training.device if target.config else "cpu"
    implementation = target.config.algorithm.implementation if target.config else "rlgru"
    model = load_agent(target.model, env=None, device=device, implementation=implementation, trust_pickle=trust_pickle)
    check_model_fits(model, env, target.env.id, target.model)
    return model


def _default_n_envs(target: EvalTarget) -> int:
    if target.config is not None and target.env is target.config.env:
        return target.config.evaluation.n_envs or target.config.env.n_envs
    return 1


def _stderr_line(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _no_line(line: str) -> None:
    pass


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _k_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return values
