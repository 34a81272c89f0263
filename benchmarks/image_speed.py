"""Training throughput on image observations: rlgru's CNN + GRU against sb3-contrib's CNN + LSTM and SB3's
feed-forward PPO with the same CNN, side by side in one process.

Task: MiniGrid-MemoryS7 (7x7x3 symbolic view, ``ImgObsWrapper``) with ``configs/minigrid/memory_s7.yaml``'s
settings, every algorithm with rlgru's ``GridCNN`` (embedding encoding, 128 features) as its features extractor, so
the only differences are the memory and the implementation. One torch thread; chunks alternate between algorithms
so machine noise hits all of them alike; medians are reported. Needs ``pip install 'rlgru[minigrid]'``.

    python benchmarks/image_speed.py --repeats 5 --out results/image_speed.md
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch as th
from machine import cpu_name
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_vec_env

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ENV_ID = "MiniGrid-MemoryS7-v0"
ALGORITHMS = ("rlgru-gru", "rlgru-lstm", "sb3-contrib-lstm", "sb3-ppo-cnn")
#: configs/minigrid/memory_s7.yaml's settings (the same for every algorithm)
HYPERPARAMETERS: dict[str, Any] = {"n_steps": 128, "batch_size": 512, "n_epochs": 4, "learning_rate": 5e-4,
                                   "gamma": 0.99, "gae_lambda": 0.95, "ent_coef": 0.01}


def make_env(n_envs: int, seed: int) -> Any:
    import minigrid  # noqa: F401  (registers MiniGrid ids)
    from minigrid.wrappers import ImgObsWrapper

    return make_vec_env(ENV_ID, n_envs=n_envs, seed=seed, wrapper_class=ImgObsWrapper)


def make_algorithm(name: str, n_envs: int, seed: int = 0) -> BaseAlgorithm:
    from rlgru import GridCNN

    env = make_env(n_envs, seed)
    extractor = {"features_extractor_class": GridCNN, "features_extractor_kwargs": {"features_dim": 128},
                 "normalize_images": False, "net_arch": [64]}
    if name.startswith("rlgru-"):
        from rlgru import RecurrentPPO

        core = name.removeprefix("rlgru-")
        return RecurrentPPO("CnnPolicy", env, seed=seed, policy_kwargs={**extractor, "core": core, "hidden_size": 128},
                            **HYPERPARAMETERS)
    if name == "sb3-contrib-lstm":
        from sb3_contrib import RecurrentPPO as ContribRecurrentPPO

        return ContribRecurrentPPO("CnnLstmPolicy", env, seed=seed, policy_kwargs={**extractor, "lstm_hidden_size": 128,
                                   "enable_critic_lstm": True}, **HYPERPARAMETERS)
    if name == "sb3-ppo-cnn":
        return PPO("CnnPolicy", env, seed=seed, policy_kwargs=extractor, **HYPERPARAMETERS)
    raise ValueError(f"unknown algorithm {name!r}; choose from {ALGORITHMS}")


def measure(names: list[str], n_envs: int, chunk_steps: int, repeats: int) -> dict[str, list[float]]:
    models = {name: make_algorithm(name, n_envs) for name in names}
    for model in models.values():  # warm-up: first rollouts, lazy kernel loads
        model.learn(n_envs * HYPERPARAMETERS["n_steps"])
    rates: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else list(reversed(names)):
            start = time.perf_counter()
            models[name].learn(chunk_steps, reset_num_timesteps=False)
            rates[name].append(chunk_steps / (time.perf_counter() - start))
            print(f"  {name}: {rates[name][-1]:.0f} steps/s", flush=True)
    return rates


def table(rates: dict[str, list[float]], n_envs: int, chunk_steps: int, repeats: int) -> str:
    medians = {name: statistics.median(values) for name, values in rates.items()}
    ppo, contrib = medians.get("sb3-ppo-cnn"), medians.get("sb3-contrib-lstm")
    lines = [
        f"Training throughput on {ENV_ID} (7x7x3 symbolic image, ImgObsWrapper), configs/minigrid/memory_s7.yaml's "
        f"settings ({n_envs} envs, n_steps {HYPERPARAMETERS['n_steps']}, batch {HYPERPARAMETERS['batch_size']}, "
        f"{HYPERPARAMETERS['n_epochs']} epochs, hidden 128, separate actor/critic cores), every algorithm with rlgru's "
        f"GridCNN (128 features), 1 torch thread, chunks of {chunk_steps} steps, {repeats} alternating repeats. "
        f"Machine: {platform.machine()}, torch {th.__version__}, {cpu_name()}.",
        "",
        "| algorithm | median steps/s | all repeats | vs SB3 PPO (CnnPolicy, no memory) "
        "| vs sb3-contrib CnnLstmPolicy |",
        "|---|---:|---|---:|---:|",
    ]
    for name, median in medians.items():
        runs = ", ".join(f"{v:.0f}" for v in rates[name])
        vs_ppo = f"{median / ppo:.2f}x" if ppo else "-"
        vs_contrib = f"{median / contrib:.2f}x" if contrib else "-"
        lines.append(f"| {name} | {median:.0f} | {runs} | {vs_ppo} | {vs_contrib} |")
    lines += ["", "Goals (issue 22): rlgru-gru at least 5x sb3-contrib and at least 1.0x SB3's feed-forward PPO."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS), choices=ALGORITHMS)
    parser.add_argument("--n-envs", type=int, default=16)
    parser.add_argument("--chunk-steps", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    th.set_num_threads(1)
    rates = measure(args.algorithms, args.n_envs, args.chunk_steps, args.repeats)
    text = table(rates, args.n_envs, args.chunk_steps, args.repeats)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
