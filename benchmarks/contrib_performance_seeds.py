"""sb3-contrib's slow learning test for RecurrentPPO, over seeds, for rlgru and sb3-contrib side by side.

sb3-contrib's ``tests/test_lstm.py::test_ppo_lstm_performance`` trains an LSTM agent on velocity-masked CartPole
for 50k steps at ``seed=1`` and asserts a return above 450 (``evaluate_policy`` on the training VecNormalize env,
10 deterministic episodes). One seed of one run is a coin with unknown bias: this script reruns the same recipe (its
hyper-parameters, written out here in our words) on several seeds for both implementations and reports how often
each clears the bar, and with what returns. Every run is logged to ``results/contrib_performance_test.jsonl`` and
skipped when rerun.

    python benchmarks/contrib_performance_seeds.py --seeds 0 1 2 3 4 --algorithms rlgru
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium.wrappers import TimeLimit
from job_log import run_logged
from machine import cpu_name
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecNormalize

from envs.masked import make_cartpole_novel

RESULTS = Path(__file__).resolve().parents[1] / "results"
LOG = RESULTS / "contrib_performance_test.jsonl"
THRESHOLD = 450.0
BUDGET = 50_000


def run_once(job: tuple[str, int]) -> dict[str, Any]:
    """The test's recipe: 8 VecNormalize'd envs, n_steps 128, lr 7e-4, batch 256, 10 epochs, grad norm 1, GAE 0.98,
    LSTM 64 with its own critic LSTM, critic head [64], no actor head, no orthogonal init; an EvalCallback every
    5000 steps on 4 envs; the verdict is evaluate_policy on the training env."""
    algorithm, seed = job
    extra: dict[str, Any] = {}
    if algorithm.startswith("rlgru"):
        from rlgru import RecurrentPPO

        if algorithm == "rlgru-seq64":  # truncated backpropagation at 64 steps instead of whole 128-step lanes
            extra["max_seq_len"] = 64
    else:
        from sb3_contrib import RecurrentPPO
    torch.set_num_threads(1)

    def make_env() -> Any:
        return TimeLimit(make_cartpole_novel(), max_episode_steps=500)  # the test's limit: returns top out at 500

    env = VecNormalize(make_vec_env(make_env, n_envs=8))
    eval_env = VecNormalize(make_vec_env(make_env, n_envs=4), training=False, norm_reward=False)
    model = RecurrentPPO(
        "MlpLstmPolicy", env, n_steps=128, learning_rate=7e-4, batch_size=256, seed=seed, n_epochs=10,
        max_grad_norm=1, gae_lambda=0.98, **extra,
        policy_kwargs={"net_arch": {"vf": [64], "pi": []}, "lstm_hidden_size": 64, "ortho_init": False,
                       "enable_critic_lstm": True},
    )
    start = time.perf_counter()
    model.learn(BUDGET, callback=EvalCallback(eval_env, n_eval_episodes=20, eval_freq=5000 // env.num_envs,
                                              verbose=0))
    seconds = time.perf_counter() - start
    mean, std = evaluate_policy(model, env)
    return {"algorithm": algorithm, "seed": seed, "final_return": float(mean), "final_std": float(std),
            "passed": bool(mean > THRESHOLD), "wall_seconds": round(seconds, 1), "cpu": cpu_name(),
            "torch": torch.__version__}


def write_table(records: list[dict[str, Any]], path: Path) -> None:
    lines = [
        "# sb3-contrib's RecurrentPPO learning test, over seeds",
        "",
        f"`python benchmarks/contrib_performance_seeds.py`: the recipe of sb3-contrib's "
        f"`tests/test_lstm.py::test_ppo_lstm_performance` (CartPoleNoVel, {BUDGET} steps, pass: "
        f"`evaluate_policy` mean > {THRESHOLD:g}); the test itself runs `seed=1`. "
        f"CPU: {', '.join(sorted({r['cpu'] for r in records}))}; one torch thread per run.",
        "",
        "| algorithm | seed | final return | passed | wall s |",
        "|---|---:|---:|---|---:|",
    ]
    for r in sorted(records, key=lambda r: (r["algorithm"], r["seed"])):
        lines.append(f"| {r['algorithm']} | {r['seed']} | {r['final_return']:.1f} | {'yes' if r['passed'] else 'no'} | "
                     f"{r['wall_seconds']:.0f} |")
    lines += ["", "| algorithm | runs | passed | mean final return |", "|---|---:|---:|---:|"]
    for algorithm in sorted({r["algorithm"] for r in records}):
        rows = [r for r in records if r["algorithm"] == algorithm]
        lines.append(f"| {algorithm} | {len(rows)} | {sum(r['passed'] for r in rows)} | "
                     f"{np.mean([r['final_return'] for r in rows]):.1f} |")
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--algorithms", nargs="+", default=["rlgru", "sb3-contrib"],
                        choices=["rlgru", "sb3-contrib", "rlgru-seq64"])
    parser.add_argument("--workers", type=int, default=2, help="runs at a time, one torch thread each")
    args = parser.parse_args()
    jobs = {f"{algorithm}-s{seed}-{BUDGET}": (algorithm, seed) for algorithm in args.algorithms for seed in args.seeds}

    def show(record: dict[str, Any]) -> None:
        print(f"{record['algorithm']} seed {record['seed']}: {record['final_return']:.1f} "
              f"({'pass' if record['passed'] else 'fail'}, {record['wall_seconds']:.0f} s)", flush=True)

    run_logged(jobs, run_once, args.workers, LOG, on_result=show)
    logged = [json.loads(line) for line in LOG.read_text().splitlines() if line]
    write_table(logged, RESULTS / "contrib_performance_test.md")

if __name__ == "__main__":
    main()
