"""Steps per second of the batched tasks against SB3's ``DummyVecEnv`` of the single env, at several ``n_envs``.

Three ways to step ``n_envs`` envs of a task's Medium preset, random actions drawn in advance, resets included:

* ``DummyVecEnv``: SB3's ``make_vec_env(id, n_envs)``, one single env with a ``Monitor`` per index (the default
  of ``rlgru train``);
* ``BatchedVecEnv``: ``rlgru.env_plumbing.vec_env.make_batched_vec_env(id, n_envs)``, the batched env behind SB3's
  API with episode statistics (what ``env.vec_env: batched`` trains on);
* ``VectorEnv``: the batched env alone, through Gymnasium's API.

Steps are env steps (vector steps times ``n_envs``); each figure is the median of several timed runs of about
``--seconds`` each, the three measured side by side so their ratios hold on a busy machine.

    python benchmarks/vector_env_speed.py [--n-envs 8 64 256] [--repeats 3] [--out results/vector_env_speed.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
from machine import cpu_name
from stable_baselines3.common.env_util import make_vec_env

try:
    import envs
except ModuleNotFoundError:  # a checkout whose editable install predates envs/: use the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import envs
from rlgru.env_plumbing.vec_env import make_batched_vec_env

LEVEL = "Medium"
KINDS = ("DummyVecEnv", "BatchedVecEnv", "VectorEnv")


def stepper(kind: str, env_id: str, n_envs: int) -> tuple[Callable[[np.ndarray], object], gym.Space]:
    """A function stepping ``n_envs`` envs with one batch of actions, and the single action space."""
    if kind == "VectorEnv":
        venv = gym.make_vec(env_id, num_envs=n_envs, vectorization_mode="vector_entry_point")
        venv.reset(seed=0)
        return venv.step, venv.single_action_space
    env = (
        make_vec_env(env_id, n_envs=n_envs, seed=0)
        if kind == "DummyVecEnv"
        else make_batched_vec_env(env_id, n_envs, seed=0)
    )
    env.reset()
    return env.step, env.action_space


def rate(step: Callable[[np.ndarray], object], actions: np.ndarray, seconds: float, repeats: int) -> float:
    """Median env steps per second over ``repeats`` runs of about ``seconds`` each (cycling through ``actions``)."""
    start = time.perf_counter()
    for batch in actions[:5]:
        step(batch)
    per_step = (time.perf_counter() - start) / 5
    count = max(5, int(seconds / per_step))
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for k in range(count):
            step(actions[k % len(actions)])
        rates.append(count * actions.shape[1] / (time.perf_counter() - start))
    return statistics.median(rates)


def measure(env_id: str, n_envs: int, seconds: float, repeats: int) -> dict[str, float]:
    rates = {}
    for kind in KINDS:
        step, space = stepper(kind, env_id, n_envs)
        space.seed(0)
        actions = np.stack([np.stack([space.sample() for _ in range(n_envs)]) for _ in range(64)])
        rates[kind] = rate(step, actions, seconds, repeats)
    return rates


def markdown(rows: list[tuple[str, int, dict[str, float]]], seconds: float, repeats: int) -> str:
    lines = [
        "# Batched env speed",
        "",
        f"Env steps per second of each task's {LEVEL} preset, random actions, resets included: SB3's `DummyVecEnv` "
        "of the single env with a `Monitor` each (`make_vec_env`), the batched env behind SB3's API "
        "(`make_batched_vec_env`, what `env.vec_env: batched` trains on), and the batched env alone (Gymnasium's "
        f"`VectorEnv` API). Median of {repeats} runs of about {seconds:g} s each, the three side by side. "
        f"`python benchmarks/vector_env_speed.py` on {cpu_name()} ({os.cpu_count()} cores visible, shared with "
        f"other work), Python {platform.python_version()}, NumPy {np.__version__}.",
        "",
        "| task | n_envs | DummyVecEnv + Monitor | BatchedVecEnv (SB3 API) | speedup | VectorEnv (Gymnasium API) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, n_envs, r in rows:
        speedup = r["BatchedVecEnv"] / r["DummyVecEnv"]
        lines.append(
            f"| {name} | {n_envs} | {r['DummyVecEnv']:,.0f} | {r['BatchedVecEnv']:,.0f} | {speedup:.1f}x "
            f"| {r['VectorEnv']:,.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    batched = [spec.name for spec in envs.list_tasks() if spec.vector_entry_point is not None]
    parser.add_argument("--tasks", nargs="*", default=batched, help="task names (default: every batched task)")
    parser.add_argument("--n-envs", nargs="*", type=int, default=[8, 64, 256])
    parser.add_argument("--seconds", type=float, default=0.25, help="length of one timed run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("results/vector_env_speed.md"))
    args = parser.parse_args(argv)
    rows = []
    for name in args.tasks:
        for n_envs in args.n_envs:
            rates = measure(envs.TASKS[name].preset_id(LEVEL), n_envs, args.seconds, args.repeats)
            rows.append((name, n_envs, rates))
            print(name, n_envs, "  ".join(f"{kind}: {value:,.0f}/s" for kind, value in rates.items()), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown(rows, args.seconds, args.repeats))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
