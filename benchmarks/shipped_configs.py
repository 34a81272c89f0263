"""Train every shipped config in ``configs/`` as it stands, a task's config with each core, and tabulate where each
ends up.

A config file is a promise to the user who runs it; this script checks the promise: the final deterministic
evaluation return of each config, between the task's memoryless ceiling and its optimum, with training time.

    python benchmarks/shipped_configs.py --workers 2 --seeds 0 1 2 --log results/shipped_configs.jsonl \
        --out results/shipped_configs.md
    python benchmarks/shipped_configs.py --configs configs/tmaze.yaml --seeds 0 1 2 --cores gru
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from job_log import run_logged
from machine import cpu_name

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


def core_runs(paths: list[Path], cores: list[str]) -> list[tuple[str, Path, list[str]]]:
    """``(name, config, overrides)``: each config as shipped, and a task's config (``<task>.yaml``, GRU) once more
    per other core, as ``rlgru train configs/<task>.yaml --set policy.core=lstm`` trains it. A file named for its core
    (``<task>_lstm.yaml``) holds settings of that core's own, and quickstart.yaml is the README's one GRU run."""
    runs = []
    for path in paths:
        runs.append((path.name, path, []))
        if path.name != "quickstart.yaml" and not path.stem.endswith(tuple(f"_{core}" for core in cores)):
            others = [core for core in cores if core != "gru"]
            runs += [(f"{path.name} --set policy.core={core}", path, [f"policy.core={core}"]) for core in others]
    return runs


def train_config(job: tuple[str, Path, int, Path, list[str]]) -> dict[str, Any]:
    """One training run of a config (one torch thread, no output) -> its evaluation summary, or its error."""
    try:
        return _train_config(*job)
    except Exception as error:  # noqa: BLE001 - a broken config is a result to report, not a reason to stop
        return {"config": job[0], "seed": job[2], "error": f"{type(error).__name__}: {error}"}


def run_overrides(seed: int, overrides: list[str]) -> list[str]:
    return [f"seed={seed}", "training.torch_threads=1", "training.checkpoint_freq=0", *overrides]


def config_digest(path: Path, seed: int, overrides: list[str]) -> str:
    """A digest of the resolved config, so a logged run is reused only while the config it trained is unchanged."""
    from rlgru.harness.config import config_to_dict, load_config

    resolved = config_to_dict(load_config(path, run_overrides(seed, overrides)))
    return hashlib.sha256(json.dumps(resolved, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _train_config(name: str, path: Path, seed: int, runs_root: Path, overrides: list[str]) -> dict[str, Any]:
    from rlgru.harness.config import load_config
    from rlgru.harness.run_dir import RunDir
    from rlgru.harness.train import train

    config = load_config(path, run_overrides(seed, overrides))
    run_dir = RunDir(runs_root / f"{path.stem}-{config.policy.core}-s{seed}")
    outcome = train(config, run_dir, source=path, report=lambda _: None)
    evaluation = outcome.evaluation
    reference = outcome.reference or {}
    return {
        "config": name,
        "env_id": config.env.id,
        "core": config.policy.core,
        "seed": seed,
        "timesteps": outcome.timesteps,
        "mean": evaluation.mean if evaluation else float("nan"),
        "optimal": reference.get("optimal_return"),
        "memoryless": reference.get("memoryless_return"),
        "exact": reference.get("exact"),
        "train_seconds": outcome.wall_seconds - outcome.eval_seconds,
    }


def solved_fraction(mean: float, memoryless: float | None, optimal: float | None) -> float | None:
    """Where the return sits between the memoryless ceiling (0) and the optimum (1)."""
    if memoryless is None or optimal is None or optimal == memoryless:
        return None
    return (mean - memoryless) / (optimal - memoryless)


def report(results: list[dict[str, Any]], command: str) -> str:
    lines = [
        "# Shipped configs: where each one ends up",
        "",
        f"`{command}`",
        "",
        "Each config trained as shipped (one torch thread, no checkpoints), then evaluated deterministically as its "
        "`evaluation:` section says. *gap closed*: (return - memoryless) / (optimal - memoryless); 1 is optimal, "
        "0 or less is no better than a policy without memory; ~ marks estimated references. "
        f"Machine: {platform.machine()}, {cpu_name()}.",
        "",
        "| config | task | steps | return per seed | mean | memoryless | optimal | gap closed | train s/run |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    failures = [r for r in results if "error" in r]
    results = [r for r in results if "error" not in r]
    for name in sorted({r["config"] for r in results}):
        rows = sorted((r for r in results if r["config"] == name), key=lambda r: r["seed"])
        first = rows[0]
        mean = float(np.mean([r["mean"] for r in rows]))
        approx = "" if first["exact"] else "~"
        gap = solved_fraction(mean, first["memoryless"], first["optimal"])
        fmt = _formatter(first["optimal"])
        lines.append(
            f"| `{name}` | {first['env_id']} | {first['timesteps']} | {', '.join(fmt(r['mean']) for r in rows)} | "
            f"{fmt(mean)} | {_ref(first['memoryless'], approx, fmt)} | {_ref(first['optimal'], approx, fmt)} | "
            f"{'-' if gap is None else f'{gap:.2f}'} | {np.median([r['train_seconds'] for r in rows]):.0f} |"
        )
    if failures:
        lines += ["", "Failed runs:", ""]
        lines += [f"- `{r['config']}` seed {r['seed']}: {r['error']}" for r in failures]
    return "\n".join(lines) + "\n"


def _formatter(scale: float | None) -> Any:
    big = scale is not None and abs(scale) >= 10
    return (lambda v: f"{v:.0f}") if big else (lambda v: f"{v:.3f}")


def _ref(value: float | None, approx: str, fmt: Any) -> str:
    return "-" if value is None else f"{approx}{fmt(value)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", type=Path, nargs="+", default=sorted(CONFIG_DIR.glob("*.yaml")))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--cores", nargs="+", default=["gru", "lstm"], help="the cores a task's config trains with")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override every config, as rlgru train --set does (e.g. for a quick smoke run)")
    parser.add_argument("--runs-root", type=Path, default=None, help="keep the runs here (default: a temp dir)")
    parser.add_argument("--log", type=Path, default=None,
                        help="JSON lines of finished runs; a rerun skips runs of unchanged configs")
    parser.add_argument("--out", type=Path, default=None, help="also write the markdown table here")
    args = parser.parse_args()

    def show(result: dict[str, Any]) -> None:
        outcome = result.get("error") or f"{result['mean']:.3f} ({result['train_seconds']:.0f} s)"
        print(f"{result['config']} seed {result['seed']}: {outcome}", flush=True)

    with tempfile.TemporaryDirectory() as scratch:
        root = args.runs_root or Path(scratch)
        jobs = {}
        for name, path, extra in core_runs(args.configs, args.cores):
            overrides = args.overrides + extra
            for seed in args.seeds:
                jobs[config_digest(path, seed, overrides)] = (name, path.resolve(), seed, root, overrides)
        results = run_logged(jobs, train_config, args.workers, args.log, on_result=show)
        for result in results:  # a run logged under an earlier file name is shown under today's
            result["config"] = jobs[result["key"]][0]
    command = shlex.join(["python", *sys.argv])
    text = report(results, command)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
