"""Training throughput with every compiled fast path off (a machine without a C++ compiler): the GRU's PyTorch
fallback (``rlgru.cores.gru_fallback``) against the old one (nn.GRU split at resets), the LSTM's (oneDNN's nn.LSTM)
and SB3's feed-forward PPO.

Every variant runs in this one process on one torch thread, alternating chunks of whole rollouts (A B C D, then
D C B A, ...) so machine noise hits all alike; we report medians over repeats and their ratios.

    python benchmarks/fallback_speed.py --repeats 5 --out results/fallback_speed.md
"""

from __future__ import annotations

import os

# Before rlgru is imported: each kernel reads its switch when it first loads.
FAST_PATH_SWITCHES = (
    "RLGRU_DISABLE_FUSED_GRU",
    "RLGRU_DISABLE_FUSED_LSTM",
    "RLGRU_DISABLE_FUSED_HEADS",
    "RLGRU_DISABLE_FUSED_ACT",
    "RLGRU_DISABLE_FUSED_UPDATE",
    "RLGRU_NO_FAST_PATHS",
)
os.environ.update(dict.fromkeys(FAST_PATH_SWITCHES, "1"))

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gymnasium as gym  # noqa: E402
import torch as th  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.base_class import BaseAlgorithm  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402
from training_speed import ENV_ID, hyperparameters, machine, ratio  # noqa: E402

from rlgru import RecurrentPPO  # noqa: E402
from rlgru.cores.base import MemoryCore, split_at_resets  # noqa: E402
from rlgru.cores.gru import GRUCore  # noqa: E402

VARIANTS = ("rlgru-gru", "rlgru-gru-nn", "rlgru-lstm", "sb3-ppo-mlp")
#: (n_envs, n_steps, hidden_size); batch 256 and 10 epochs throughout
SETTINGS = ((8, 128, 64), (16, 64, 32), (16, 128, 128))
BATCH_SIZE, N_EPOCHS = 256, 10
CLOCKS = ("wall", "cpu")


class NNGRUCore(GRUCore):
    """The GRU fallback before ``gru_fallback``: ``nn.GRU`` once per stretch between resets, actor and critic apart."""

    def recur(
        self, x: th.Tensor, state: th.Tensor, keep: th.Tensor | None
    ) -> tuple[th.Tensor, th.Tensor]:
        return split_at_resets(self.run_segment, x, state, keep)

    def forward_beside(self, *args: Any, **kwargs: Any) -> Any:
        return MemoryCore.forward_beside(self, *args, **kwargs)

    def engine(self, device: th.device | str) -> str:
        return "PyTorch GRU, split at resets"


def make_model(variant: str, n_envs: int, n_steps: int, hidden_size: int, seed: int = 0) -> BaseAlgorithm:
    import envs  # noqa: F401  (registers rlgru/ ids)

    env = make_vec_env(ENV_ID, n_envs=n_envs, seed=seed)
    settings = {**hyperparameters(), "n_steps": n_steps, "batch_size": BATCH_SIZE, "n_epochs": N_EPOCHS}
    base_policy = {"net_arch": {"pi": [64], "vf": [64]}, "activation_fn": th.nn.ReLU, "ortho_init": False}
    if variant == "sb3-ppo-mlp":
        return PPO("MlpPolicy", env, seed=seed, policy_kwargs=base_policy, **settings)
    core = {"rlgru-gru": "gru", "rlgru-gru-nn": NNGRUCore, "rlgru-lstm": "lstm"}[variant]
    policy = {**base_policy, "lstm_hidden_size": hidden_size, "enable_critic_lstm": True, "core": core}
    return RecurrentPPO("MlpPolicy", env, seed=seed, policy_kwargs=policy, **settings)


def engine(model: BaseAlgorithm) -> str:
    core = getattr(model.policy, "actor_core", None)
    return "-" if core is None else core.engine("cpu")


def measure(
    n_envs: int, n_steps: int, hidden_size: int, repeats: int, rollouts: int
) -> tuple[dict[str, dict[str, list[float]]], dict[str, str]]:
    """Steps per second of every variant over ``repeats`` alternating chunks of ``rollouts`` rollouts each, by the
    wall clock and by the process's CPU time (which a busy machine disturbs less: it does not count the time this
    process waits for a core)."""
    models = {name: make_model(name, n_envs, n_steps, hidden_size) for name in VARIANTS}
    engines = {name: engine(model) for name, model in models.items()}
    chunk = rollouts * n_envs * n_steps
    for model in models.values():  # warm-up: first rollouts, allocator
        model.learn(n_envs * n_steps)
    rates: dict[str, dict[str, list[float]]] = {clock: {name: [] for name in VARIANTS} for clock in CLOCKS}
    for repeat in range(repeats):
        for name in VARIANTS if repeat % 2 == 0 else reversed(VARIANTS):
            wall, cpu = time.perf_counter(), time.process_time()
            models[name].learn(chunk, reset_num_timesteps=False)
            rates["wall"][name].append(chunk / (time.perf_counter() - wall))
            rates["cpu"][name].append(chunk / (time.process_time() - cpu))
        print(f"  repeat {repeat + 1} (wall steps/s): "
              + ", ".join(f"{n} {v[-1]:.0f}" for n, v in rates["wall"].items()), flush=True)
    return rates, engines


def table(rows: list[dict[str, Any]], clock: str) -> list[str]:
    lines = [
        "| n_envs | n_steps | hidden | " + " | ".join(f"{n} steps/s" for n in VARIANTS)
        + " | GRU / LSTM | GRU / SB3 PPO | GRU / old GRU | old GRU / LSTM |",
        "|---:|---:|---:|" + "---:|" * (len(VARIANTS) + 4),
    ]
    for row in rows:
        medians = {name: statistics.median(values) for name, values in row["rates"][clock].items()}
        gru, old, lstm, ppo = (medians[n] for n in VARIANTS)
        cells = " | ".join(f"{medians[n]:.0f}" for n in VARIANTS)
        lines.append(f"| {row['n_envs']} | {row['n_steps']} | {row['hidden_size']} | {cells} | "
                     f"**{ratio(gru, lstm)}** | {ratio(gru, ppo)} | {ratio(gru, old)} | {ratio(old, lstm)} |")
    return lines


def report(rows: list[dict[str, Any]], repeats: int, rollouts: int, loads: tuple[float, float]) -> str:
    lines = [
        "# Training speed with every compiled fast path off",
        "",
        f"RecurrentPPO.learn steps/s on {ENV_ID} with {', '.join(FAST_PATH_SWITCHES)} set (as on a machine without "
        f"a C++ compiler), against SB3 PPO (MlpPolicy, no memory) with the same hyperparameters: rl-zoo3's ppo_lstm "
        f"CartPoleNoVel settings with batch {BATCH_SIZE}, {N_EPOCHS} epochs and the n_steps below; 64-unit heads, "
        f"separate actor and critic cores, episodes ending mid-rollout. One process, 1 torch thread; each repeat "
        f"is a chunk of {rollouts} rollouts per variant, variants alternating (A B C D, D C B A, ...); medians over "
        f"{repeats} repeats. {machine()}",
        "",
        f"Load: {os.cpu_count()} cores; 1-minute load average {loads[0]:.1f} at the start, {loads[1]:.1f} at the end "
        "(other jobs share this machine, so absolute steps/s are noisy; the ratios, from interleaved chunks, are what "
        "to read). The second table divides by the process's CPU time instead of the wall clock, which leaves out "
        "time spent waiting for a core.",
        "",
        "Variants: `rlgru-gru` the GRU fallback (`rlgru.cores.gru_fallback`), `rlgru-gru-nn` the previous GRU "
        "fallback (nn.GRU once per stretch between resets, kept in this script), `rlgru-lstm` the LSTM fallback "
        "(nn.LSTM, oneDNN), `sb3-ppo-mlp` SB3's PPO.",
        "",
        "By the wall clock:",
        "",
        *table(rows, "wall"),
        "",
        "By CPU time:",
        "",
        *table(rows, "cpu"),
        "",
        "Every repeat (wall-clock steps/s):",
        "",
    ]
    for row in rows:
        lines.append(f"- n_envs {row['n_envs']}, n_steps {row['n_steps']}, hidden {row['hidden_size']}: "
                     + "; ".join(f"{n} " + ", ".join(f"{v:.0f}" for v in row["rates"]["wall"][n]) for n in VARIANTS))
    engines = rows[0]["engines"]
    lines += ["", "Recurrence engines (`core.engine('cpu')`): "
              + "; ".join(f"{n}: {engines[n]}" for n in VARIANTS if engines[n] != "-") + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rollouts", type=int, default=2, help="rollouts per timed chunk")
    parser.add_argument("--settings", type=int, nargs="+", default=list(range(len(SETTINGS))),
                        help=f"indices into {SETTINGS} (n_envs, n_steps, hidden_size)")
    parser.add_argument("--out", type=Path, default=None, help="also write the markdown report here")
    args = parser.parse_args()
    th.set_num_threads(1)
    gym.logger.min_level = 40
    rows, load_at_start = [], os.getloadavg()[0]
    for index in args.settings:
        n_envs, n_steps, hidden_size = SETTINGS[index]
        print(f"n_envs {n_envs}, n_steps {n_steps}, hidden {hidden_size}", flush=True)
        rates, engines = measure(n_envs, n_steps, hidden_size, args.repeats, args.rollouts)
        rows.append({"n_envs": n_envs, "n_steps": n_steps, "hidden_size": hidden_size, "rates": rates,
                     "engines": engines})
    text = report(rows, args.repeats, args.rollouts, (load_at_start, os.getloadavg()[0]))
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
