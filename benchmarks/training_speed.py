"""Training throughput and learning quality of rlgru's RecurrentPPO against sb3-contrib and SB3 PPO.

Task: velocity-masked CartPole with rl-zoo3's ``ppo_lstm`` settings for CartPoleNoVel. Every algorithm runs in
one process, one torch thread, alternating chunks so machine noise hits all of them alike; we report medians.
With ``--cores 2`` (default) rlgru runs a PPO minibatch's actor and critic sides on two cores where the machine has
them (``rlgru/cores/csrc/pair_threads.h``); ``--cores 1`` keeps everything on one (``RLGRU_SERIAL_PAIR=1``, one
inter-op thread): the one-core figure.

    python benchmarks/training_speed.py --mode speed --repeats 5 --out results/training_speed.md
    python benchmarks/training_speed.py --mode speed --cores 1 --repeats 5 --out results/training_speed_1core.md
    python benchmarks/training_speed.py --mode speed --threads 2 --repeats 5 --out results/training_speed_2threads.md
    python benchmarks/training_speed.py --mode scaling --repeats 3 --out results/training_speed_scaling.md
    python benchmarks/training_speed.py --mode learn --seeds 0 1 2 3 4 5 6 7 8 9 --timesteps 100000 \
        --eval-episodes 100 --workers 2 --algorithms rlgru-gru rlgru-lstm sb3-contrib-lstm \
        --log results/learning_cartpole_novel.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from job_log import run_logged
from machine import cpu_name
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.utils import LinearSchedule

ENV_ID = "rlgru/CartPoleNoVel-v1"
N_ENVS = 8
ALGORITHMS = (
    "rlgru-gru",
    "rlgru-lstm",
    "sb3-contrib-lstm",
    "sb3-ppo-mlp",
    "rlgru-mingru",
    "rlgru-lru",
    "rlgru-gru-batched",
    "sb3-ppo-mlp-batched",
)
#: a "-batched" algorithm steps rlgru's natively batched CartPoleNoVel (``env.vec_env: batched``; the same
#: episodes as SB3's DummyVecEnv of single envs, replay-tested in tests/test_vector_envs.py) instead of a DummyVecEnv
BATCHED_SUFFIX = "-batched"
#: the comparison README's table is about; the other rlgru cores on request (--algorithms)
DEFAULT_ALGORITHMS = ALGORITHMS[:4]


def hyperparameters() -> dict[str, Any]:
    """rl-zoo3's ppo_lstm CartPoleNoVel-v1 hyper-parameters (shared by every algorithm here)."""
    return {
        "n_steps": 32,
        "batch_size": 256,
        "n_epochs": 20,
        "gae_lambda": 0.8,
        "gamma": 0.98,
        "learning_rate": LinearSchedule(1e-3, 0.0, 1.0),
        "clip_range": LinearSchedule(0.2, 0.0, 1.0),
        "ent_coef": 0.0,
    }


def make_algorithm(name: str, seed: int, n_envs: int = N_ENVS, hidden_size: int = 64) -> BaseAlgorithm:
    """One of ALGORITHMS with rl-zoo3's settings; ``n_envs`` and the recurrent ``hidden_size`` can be scaled (the
    feed-forward PPO keeps rl-zoo3's 64-unit heads: it has no memory to size)."""
    import envs  # noqa: F401  (registers rlgru/ ids)

    if name.endswith(BATCHED_SUFFIX):
        from rlgru.env_plumbing.vec_env import make_batched_vec_env

        name = name.removesuffix(BATCHED_SUFFIX)
        env = make_batched_vec_env(ENV_ID, n_envs=n_envs, seed=seed)
    else:
        env = make_vec_env(ENV_ID, n_envs=n_envs, seed=seed)
    base_policy = {"net_arch": {"pi": [64], "vf": [64]}, "activation_fn": th.nn.ReLU, "ortho_init": False}
    recurrent_policy = {**base_policy, "lstm_hidden_size": hidden_size, "enable_critic_lstm": True}
    if name.startswith("rlgru-"):
        from rlgru import RecurrentPPO

        core = name.removeprefix("rlgru-")
        return RecurrentPPO("MlpPolicy", env, seed=seed, policy_kwargs={**recurrent_policy, "core": core},
                            **hyperparameters())
    if name == "sb3-contrib-lstm":
        from sb3_contrib import RecurrentPPO as ContribRecurrentPPO

        return ContribRecurrentPPO("MlpLstmPolicy", env, seed=seed, policy_kwargs=recurrent_policy,
                                   **hyperparameters())
    if name == "sb3-ppo-mlp":
        return PPO("MlpPolicy", env, seed=seed, policy_kwargs=base_policy, **hyperparameters())
    raise ValueError(f"unknown algorithm {name!r}; choose from {ALGORITHMS}")


def measure_speed(
    names: list[str], chunk_steps: int, repeats: int, n_envs: int = N_ENVS, hidden_size: int = 64
) -> dict[str, list[float]]:
    """Steps/s of each algorithm, alternating chunks of ``chunk_steps`` so noise is shared."""
    models = {name: make_algorithm(name, 0, n_envs, hidden_size) for name in names}
    for model in models.values():  # warm-up: first rollouts, allocator, lazy kernel loads
        model.learn(2 * n_envs * 32)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else reversed(names):
            start = time.perf_counter()
            models[name].learn(chunk_steps, reset_num_timesteps=False)
            rates[name].append(chunk_steps / (time.perf_counter() - start))
    return rates


def train_and_evaluate(job: tuple[str, int, int, int]) -> dict[str, Any]:
    name, seed, timesteps, eval_episodes = job
    th.set_num_threads(1)
    start = time.perf_counter()
    model = make_algorithm(name, seed)
    model.learn(timesteps)
    wall = time.perf_counter() - start
    eval_env = make_vec_env(ENV_ID, n_envs=1, seed=10_000 + seed)
    mean, std = evaluate_policy(model, eval_env, n_eval_episodes=eval_episodes, deterministic=True)
    return {"algorithm": name, "seed": seed, "timesteps": timesteps, "eval_episodes": eval_episodes,
            "mean": float(mean), "std": float(std), "wall": wall}


def ratio(value: float, reference: float | None) -> str:
    return f"{value / reference:.2f}x" if reference else "-"


def setting(threads: int, cores: int) -> str:
    return (f"{threads} torch thread(s), rlgru's actor/critic sides "
            + ("on one core (RLGRU_SERIAL_PAIR=1, 1 inter-op thread)" if cores == 1 else "on two cores"))


def speed_report(rates: dict[str, list[float]], chunk_steps: int, threads: int, cores: int = 2) -> str:
    medians = {name: statistics.median(values) for name, values in rates.items()}
    contrib, ppo = medians.get("sb3-contrib-lstm"), medians.get("sb3-ppo-mlp")
    rlgru_lstm = medians.get("rlgru-lstm")
    lines = [
        f"Training throughput on {ENV_ID}, rl-zoo3 ppo_lstm settings ({N_ENVS} envs, n_steps 32, batch 256, "
        f"20 epochs, hidden 64, separate actor/critic cores), {setting(threads, cores)}, chunks of {chunk_steps} "
        f"steps, {len(next(iter(rates.values())))} alternating repeats. {machine()}",
        "",
        "| algorithm | median steps/s | all repeats | vs SB3 PPO (memoryless) | vs sb3-contrib LSTM | vs rlgru LSTM |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for name, median in medians.items():
        runs = ", ".join(f"{v:.0f}" for v in rates[name])
        lines.append(f"| {name} | {median:.0f} | {runs} | {ratio(median, ppo)} | {ratio(median, contrib)} | "
                     f"{ratio(median, rlgru_lstm)} |")
    return "\n".join(lines) + "\n"


SCALING_ENVS = (8, 64, 256)
SCALING_HIDDEN = (64, 256)
SCALING_ALGORITHMS = ("rlgru-gru", "rlgru-lstm", "sb3-contrib-lstm", "sb3-ppo-mlp", "rlgru-gru-batched",
                      "sb3-ppo-mlp-batched")


def measure_scaling(names: list[str], chunk_steps: int, repeats: int) -> list[dict[str, Any]]:
    """Median steps/s of each algorithm for every (n_envs, hidden_size) of the grid, each cell measured as
    ``measure_speed`` does (alternating chunks of at least two rollouts)."""
    rows = []
    for hidden_size in SCALING_HIDDEN:
        for n_envs in SCALING_ENVS:
            chunk = max(chunk_steps, 2 * 32 * n_envs)
            rates = measure_speed(names, chunk, repeats, n_envs, hidden_size)
            rows.append({"n_envs": n_envs, "hidden_size": hidden_size, "chunk_steps": chunk,
                         "steps_per_second": {n: statistics.median(v) for n, v in rates.items()}, "repeats": rates})
            print(f"n_envs {n_envs}, hidden {hidden_size}: "
                  + ", ".join(f"{n} {statistics.median(v):.0f}" for n, v in rates.items()), flush=True)
    return rows


def scaling_report(rows: list[dict[str, Any]], repeats: int, threads: int, plot: Path | None, cores: int = 2) -> str:
    names = list(rows[0]["steps_per_second"])
    lines = [
        f"Training throughput against n_envs and the recurrent hidden size on {ENV_ID} (rl-zoo3 ppo_lstm settings "
        f"otherwise: n_steps 32, batch 256, 20 epochs, 64-unit heads; SB3 PPO keeps its 64-unit MLP, having no "
        f"memory to size), {setting(threads, cores)}, median of {repeats} alternating repeats per cell. {machine()}",
        "",
        "| n_envs | hidden | " + " | ".join(f"{n} steps/s" for n in names)
        + " | rlgru-gru vs SB3 PPO | rlgru-gru vs sb3-contrib |",
        "|---:|---:|" + "---:|" * (len(names) + 2),
    ]
    for row in rows:
        rates = row["steps_per_second"]
        cells = " | ".join(f"{rates[n]:.0f}" for n in names)
        gru = rates.get("rlgru-gru")
        vs_ppo = ratio(gru, rates.get("sb3-ppo-mlp")) if gru else "-"
        vs_contrib = ratio(gru, rates.get("sb3-contrib-lstm")) if gru else "-"
        lines.append(f"| {row['n_envs']} | {row['hidden_size']} | {cells} | {vs_ppo} | {vs_contrib} |")
    if plot is not None:
        lines += ["", f"![steps/s against n_envs]({plot.name})"]
    return "\n".join(lines) + "\n"


def plot_scaling(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows[0]["steps_per_second"])
    fig, axes = plt.subplots(1, len(SCALING_HIDDEN), figsize=(5 * len(SCALING_HIDDEN), 4), sharey=True)
    for ax, hidden_size in zip(axes, SCALING_HIDDEN, strict=True):
        cells = [r for r in rows if r["hidden_size"] == hidden_size]
        for name in names:
            ax.plot([r["n_envs"] for r in cells], [r["steps_per_second"][name] for r in cells], marker="o", label=name)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(SCALING_ENVS, [str(n) for n in SCALING_ENVS])
        ax.set_xlabel("n_envs")
        ax.set_title(f"recurrent hidden size {hidden_size}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("training steps / s")
    axes[0].legend()
    fig.suptitle(f"{ENV_ID}: training throughput ({cpu_name()})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def learning_report(results: list[dict[str, Any]], timesteps: int, eval_episodes: int) -> str:
    lines = [
        f"Learning on {ENV_ID}: {timesteps} steps per run, deterministic evaluation over {eval_episodes} episodes "
        f"(max return 500), same seeds for every algorithm. {machine()}",
        "",
        "| algorithm | " + " | ".join(f"seed {s}" for s in sorted({r['seed'] for r in results}))
        + " | mean ± std over seeds | median wall s/run |",
        "|---|" + "---:|" * (len({r["seed"] for r in results}) + 2),
    ]
    for name in dict.fromkeys(r["algorithm"] for r in results):
        rows = sorted((r for r in results if r["algorithm"] == name), key=lambda r: r["seed"])
        means = [r["mean"] for r in rows]
        cells = " | ".join(f"{m:.0f}" for m in means)
        wall = statistics.median(r["wall"] for r in rows)
        lines.append(f"| {name} | {cells} | {np.mean(means):.0f} ± {np.std(means):.0f} | {wall:.0f} |")
    lines += paired_differences(results)
    return "\n".join(lines) + "\n"


def paired_differences(results: list[dict[str, Any]], reference: str = "sb3-contrib-lstm") -> list[str]:
    """Seed-paired differences from the reference, with a 95% bootstrap CI over seeds.

    With one seed, rlgru's LSTM policy starts from sb3-contrib's initial weights and sees the same first rollout,
    so pairing by seed removes the initialisation part of the seed-to-seed spread.
    """
    by_name: dict[str, dict[int, float]] = {}
    for r in results:
        by_name.setdefault(r["algorithm"], {})[r["seed"]] = r["mean"]
    if reference not in by_name or len(by_name) < 2:
        return []
    rng = np.random.default_rng(0)
    lines = ["", f"Seed-paired difference from {reference} (95% bootstrap CI over seeds, 10,000 resamples):", "",
             "| algorithm | seeds | mean difference | 95% CI | seeds ahead / behind |", "|---|---:|---:|---|---:|"]
    for name, scores in by_name.items():
        seeds = sorted(set(scores) & set(by_name[reference]))
        if name == reference or not seeds:
            continue
        diffs = np.array([scores[s] - by_name[reference][s] for s in seeds])
        boot = rng.choice(diffs, size=(10_000, len(diffs))).mean(axis=1)
        low, high = np.percentile(boot, [2.5, 97.5])
        lines.append(f"| {name} | {len(seeds)} | {diffs.mean():+.0f} | [{low:+.0f}, {high:+.0f}] | "
                     f"{int((diffs > 0).sum())} / {int((diffs < 0).sum())} |")
    return lines


def machine() -> str:
    return f"Machine: {platform.processor() or platform.machine()}, torch {th.__version__}, {cpu_name()}."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("speed", "scaling", "learn"), default="speed")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (speed and scaling modes)")
    parser.add_argument("--cores", type=int, choices=(1, 2), default=2,
                        help="1: rlgru's actor/critic sides and every inter-op task on the calling thread")
    parser.add_argument("--algorithms", nargs="+", default=list(DEFAULT_ALGORITHMS), choices=ALGORITHMS)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--chunk-steps", type=int, default=4096)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--timesteps", type=int, default=100_000)
    parser.add_argument("--eval-episodes", type=int, default=100)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="also write the markdown table here")
    parser.add_argument("--log", type=Path, default=None,
                        help="learn mode: JSON-lines file of finished runs; runs already in it are not repeated")
    args = parser.parse_args()
    th.set_num_threads(args.threads if args.mode != "learn" else 1)
    if args.cores == 1:  # before any kernel loads (the kernels read it once) and before any inter-op work
        os.environ["RLGRU_SERIAL_PAIR"] = "1"
        th.set_num_interop_threads(1)
    gym.logger.min_level = 40

    if args.mode == "speed":
        rates = measure_speed(args.algorithms, args.chunk_steps, args.repeats)
        report = speed_report(rates, args.chunk_steps, args.threads, args.cores)
    elif args.mode == "scaling":
        names = [n for n in args.algorithms if n in SCALING_ALGORITHMS] or list(SCALING_ALGORITHMS[:4])
        rows = measure_scaling(names, args.chunk_steps, args.repeats)
        plot = args.out.with_suffix(".png") if args.out else None
        if plot is not None:
            plot.parent.mkdir(parents=True, exist_ok=True)
            plot_scaling(rows, plot)
            args.out.with_suffix(".json").write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1))
        report = scaling_report(rows, args.repeats, args.threads, plot, args.cores)
    else:
        names = [n for n in args.algorithms if n != "sb3-ppo-mlp"]  # a memoryless agent is not a learning peer
        jobs = {f"{name}/s{seed}/{args.timesteps}/{args.eval_episodes}":
                (name, seed, args.timesteps, args.eval_episodes) for seed in args.seeds for name in names}
        results = run_logged(jobs, train_and_evaluate, args.workers, args.log)
        report = learning_report(results, args.timesteps, args.eval_episodes)
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)


if __name__ == "__main__":
    main()
