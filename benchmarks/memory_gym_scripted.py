"""Returns of scripted policies on Memory Gym's Mortar Mayhem grid task: the levels a trained agent is read against.

A trained agent at the level of standing still has learned nothing that needs memory (or anything else): standing
still carries out every "stay" command and nothing more. Uniform random actions are the floor. Episodes use the
same reset options as configs/memory_gym/mortar_mayhem_grid.yaml (3 commands), episode ``i`` seeded ``i``.

    python benchmarks/memory_gym_scripted.py [--episodes 400] [--out results/memory_gym/scripted_levels.md]
"""

from __future__ import annotations

import argparse
import os
import platform
from collections.abc import Callable
from pathlib import Path

import numpy as np
from machine import cpu_name

#: the grid agent's actions: 0 = do nothing, 1 = rotate left, 2 = rotate right, 3 = move forward
STAND_STILL = 0


def episode_returns(policy: Callable[[], int], episodes: int, command_count: int) -> np.ndarray:
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    import gymnasium as gym
    import memory_gym  # noqa: F401 - registers the ids

    env = gym.make("MortarMayhem-Grid-v0")
    returns = []
    for episode in range(episodes):
        env.reset(seed=episode, options={"command_count": [command_count]})
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(policy())
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return np.array(returns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=400)
    parser.add_argument("--commands", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    policies: dict[str, Callable[[], int]] = {
        "stand still": lambda: STAND_STILL,
        "uniform random": lambda: int(rng.integers(4)),
    }
    lines = [
        f"Scripted policies on MortarMayhem-Grid-v0 with {args.commands} commands (optimal return "
        f"{0.1 * args.commands:.1f}), {args.episodes} episodes each (episode i seeded i). Machine: "
        f"{platform.machine()}, {cpu_name()}. Made by `python benchmarks/memory_gym_scripted.py`.",
        "",
        "| policy | mean return | standard error |",
        "|---|---:|---:|",
    ]
    for name, policy in policies.items():
        returns = episode_returns(policy, args.episodes, args.commands)
        lines.append(f"| {name} | {returns.mean():.3f} | {returns.std(ddof=1) / np.sqrt(len(returns)):.3f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
