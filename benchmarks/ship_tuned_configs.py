"""Write ``configs/tuned/<task>_<core>.yaml`` from a finished tuned benchmark (``configs/bench/tuned.yaml``).

Each file is the config a tuned run trained with (its ``config.yaml``, seed 0), headed, as rl-zoo3's hyperparams files
are, by where it comes from: the study, its budget and trials, what tuning cost, and what the setting scored on the
fresh evaluation seeds next to the shared setting's score on the same seeds.

    python benchmarks/ship_tuned_configs.py results/tuned --out configs/tuned
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rlgru._moved_modules import new_name
from rlgru.bench.report import load_results
from rlgru.bench.stats import iqm, stratified_bootstrap_ci
from rlgru.bench.tuned import TUNING_DIR
from rlgru.bench.tuned_report import TUNED, setting_of


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench_dir", type=Path, help="a finished tuned benchmark's out directory")
    parser.add_argument("--out", type=Path, default=Path("configs/tuned"))
    args = parser.parse_args()
    results = [r for r in load_results(args.bench_dir) if r.get("status") == "ok"]
    args.out.mkdir(parents=True, exist_ok=True)
    seeds = yaml.safe_load((args.bench_dir / "suite.yaml").read_text()).get("seeds", [])
    for task, core in sorted({(r["task"], r["core"]) for r in results if setting_of(r) == TUNED}):
        done = {r["seed"] for r in results if (r["task"], r["core"]) == (task, core) and setting_of(r) == TUNED}
        if not set(seeds) <= done:
            print(f"skipped {task} x {core}: tuned runs on {len(done)} of the suite's {len(seeds)} seeds so far")
            continue
        path = args.out / f"{_file_name(task)}_{core}.yaml"
        path.write_text(_shipped(args.bench_dir, results, task, core))
        print(f"wrote {path}")


def _file_name(task: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", re.sub(r"(?<=[a-z])(?=[A-Z])", "_", task).lower()).strip("_")


def _shipped(bench_dir: Path, results: list[dict[str, Any]], task: str, core: str) -> str:
    runs = {
        setting: [r for r in results if r["task"] == task and r["core"] == core and setting_of(r) == setting]
        for setting in ("shared", TUNED)
    }
    first = min(runs[TUNED], key=lambda r: r["seed"])
    config = yaml.safe_load((bench_dir / "runs" / first["run_id"] / "config.yaml").read_text())
    config["seed"] = 0
    for wrapper in config["env"].get("wrappers") or []:  # runs made before the package's wings name old modules
        module, _, name = wrapper["name"].partition(":")
        wrapper["name"] = f"{new_name(module) or module}:{name}" if name else wrapper["name"]
    study = bench_dir / TUNING_DIR / f"{task}-{core}"
    meta = json.loads((study / "study.json").read_text())
    objective = "raw return" if meta["objective"] == "return" else f"{meta['objective']} return"
    with (study / "trials.csv").open() as handle:
        trials = [row for row in csv.DictReader(handle) if row["counted"] == "yes"]
    counts = {state: sum(row["state"] == state for row in trials) for state in ("complete", "pruned", "failed")}
    budget = yaml.safe_load((study / "config.yaml").read_text())["training"]["total_timesteps"]
    best = json.loads((study / "best_params.json").read_text())
    lines = [
        f"# {task}, {core} core: tuned by `rlgru tune` (study {meta['study']!r}, results/{bench_dir.name}/"
        f"{TUNING_DIR}/{task}-{core}/)",
        f"# Budget: {len(trials)} trials ({counts['complete']} complete, {counts['pruned']} pruned, "
        f"{counts['failed']} failed) of {budget} steps, {meta['sampler']} sampler, {meta['pruner']} pruner, tuning "
        f"seed(s) from {yaml.safe_load((study / 'config.yaml').read_text())['seed']}; "
        f"{meta['wall_seconds'] / 60:.0f} min on {meta['machine']}.",
        f"# Best trial {best['number']}: objective {best['value']:.3f} ({objective}).",
        f"# On {len(runs[TUNED])} fresh seeds at {config['training']['total_timesteps']} steps: {_score(runs[TUNED])}"
        f" (final return, IQM [95% CI]); the shared setting on the same seeds: {_score(runs['shared'])}.",
        f"#   rlgru train configs/tuned/{_file_name(task)}_{core}.yaml",
    ]
    return "\n".join(lines) + "\n" + yaml.safe_dump(config, sort_keys=False)


def _score(runs: list[dict[str, Any]]) -> str:
    if not runs:
        return "-"
    values = np.array([r["final_return"] for r in runs], dtype=float)
    point, low, high = stratified_bootstrap_ci(lambda s: iqm(s["t"]), {"t": values}, n_resamples=2000)
    return f"{point:.3g} [{low:.3g}, {high:.3g}] (n={len(values)})"


if __name__ == "__main__":
    main()
