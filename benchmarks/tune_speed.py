"""How long a tuning study takes: ``rlgru tune`` on ``configs/quickstart.yaml`` (the default search space) at 20k
steps per trial, 50 trials, 2 workers, median pruner: the issue's speed goal is 10 minutes on 2 cores.

    python benchmarks/tune_speed.py --out results/tune_speed.md

Prints and writes the wall time, the trials' states and seconds, the share of a trial spent outside training
(worker start-up, evaluations), and the CPU it ran on.
"""

from __future__ import annotations

import argparse
import csv
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import cpu_name

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "quickstart.yaml")
    parser.add_argument("--out", type=Path, help="write the figures as Markdown here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rlgru-tune-speed-") as directory:
        study = Path(directory) / "study"
        command = [
            sys.executable, "-m", "rlgru.cli", "tune", str(args.config), "--trials", str(args.trials),
            "--workers", str(args.workers), "--out", str(study), "--set", f"training.total_timesteps={args.steps}",
        ]  # fmt: skip
        started = time.perf_counter()
        subprocess.run(command, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        with (study / "trials.csv").open() as handle:
            rows = list(csv.DictReader(handle))
    states = {state: sum(row["state"] == state for row in rows) for state in ("complete", "pruned", "failed")}
    seconds = {state: [float(r["seconds"]) for r in rows if r["state"] == state] for state in ("complete", "pruned")}
    best = max(float(r["value"]) for r in rows if r["state"] == "complete")
    lines = [
        "# Tuning speed: `rlgru tune` on configs/quickstart.yaml",
        "",
        f"Machine: {cpu_name()}, {args.workers} workers; Python {platform.python_version()}.",
        f"Command: `rlgru tune configs/quickstart.yaml --trials {args.trials} --workers {args.workers} --out DIR "
        f"--set training.total_timesteps={args.steps}` (default search space, TPE sampler, median pruner, 5 "
        "evaluations of 100 episodes per trial).",
        "",
        "| figure | value |",
        "|---|---:|",
        f"| wall time, {args.trials} trials | {wall:.0f} s ({wall / 60:.1f} min) |",
        f"| trials complete / pruned / failed | {states['complete']} / {states['pruned']} / {states['failed']} |",
        f"| median seconds per complete trial (in its worker) | {_median(seconds['complete'])} |",
        f"| median seconds per pruned trial | {_median(seconds['pruned'])} |",
        f"| best objective (normalised return: 0 memoryless, 1 optimal) | {best:.3f} |",
        "",
        f"Goal: 10 minutes on 2 cores; {'met' if wall <= 600 else 'not met'} ({wall / 600:.2f}x the goal).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


def _median(values: list[float]) -> str:
    return f"{np.median(values):.1f} s" if values else "-"


if __name__ == "__main__":
    main()
