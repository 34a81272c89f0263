"""Steps per second of every task's raw env class (no wrappers from gym.make), single env, random actions.

Resets are counted in the time: a task with short episodes pays for its resets. Actions are drawn in advance
so the sampler is not timed. Each figure is the median of several repeats.

    python benchmarks/env_speed.py [--steps 20000] [--repeats 5] [--out results/env_speed.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from machine import cpu_name

try:
    import envs
except ModuleNotFoundError:  # a checkout whose editable install predates envs/: use the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import envs

LEVELS = envs.LEVELS


def steps_per_second(spec: envs.TaskSpec, level: str, steps: int, repeats: int, seed: int = 0) -> float:
    env = spec.entry_point(**spec.kwargs(level))
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(steps)]
    rates = []
    for repeat in range(repeats):
        env.reset(seed=seed + repeat)
        step, reset = env.step, env.reset
        start = time.perf_counter()
        for action in actions:
            _, _, terminated, truncated, _ = step(action)
            if terminated or truncated:
                reset()
        rates.append(steps / (time.perf_counter() - start))
    env.close()
    return statistics.median(rates)


def markdown_table(rows: dict[str, dict[str, float]], steps: int, repeats: int) -> str:
    lines = [
        "# Env speed",
        "",
        f"Steps per second of each task's raw env class, one env, random actions, resets included; median of "
        f"{repeats} repeats of {steps:,} steps. `python benchmarks/env_speed.py` on {cpu_name()} "
        f"({os.cpu_count()} cores visible), Python {platform.python_version()}, NumPy {np.__version__}.",
        "",
        "| task | category | " + " | ".join(LEVELS) + " |",
        "|---|---|" + "---:|" * len(LEVELS),
    ]
    for name, rates in rows.items():
        cells = " | ".join(f"{rates[level]:,.0f}" for level in LEVELS)
        lines.append(f"| {name} | {envs.TASKS[name].category} | {cells} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tasks", nargs="*", default=list(envs.TASKS), help="task names (default: all)")
    parser.add_argument("--out", type=Path, default=Path("results/env_speed.md"))
    args = parser.parse_args(argv)
    rows: dict[str, dict[str, float]] = {}
    for name in args.tasks:
        spec = envs.TASKS[name]
        rows[name] = {level: steps_per_second(spec, level, args.steps, args.repeats) for level in LEVELS}
        print(name, "  ".join(f"{level}: {rate:,.0f}/s" for level, rate in rows[name].items()), flush=True)
    table = markdown_table(rows, args.steps, args.repeats)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
