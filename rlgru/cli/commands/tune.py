"""Tune a config's hyper-parameters with Optuna: resumable, parallel, on this machine or a Ray cluster."""

from __future__ import annotations

import argparse
from pathlib import Path

from rlgru.cli.arguments import add_overrides_argument
from rlgru.tune.driver import TuneOptions, run_study
from rlgru.tune.search import PRUNERS, SAMPLERS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", type=Path, help="YAML run config; its tune: section is the search space")
    parser.add_argument("--trials", type=int, required=True, help="trials the study should hold in all (resumes)")
    parser.add_argument("--workers", type=int, default=1, help="trials run at once (processes, or Ray tasks)")
    parser.add_argument("--out", type=Path, required=True, help="the study's directory (state, trials, report)")
    add_overrides_argument(parser)
    parser.add_argument(
        "--storage", help="Optuna storage URL (sqlite:///..., postgresql://...); default: a journal file in --out"
    )
    parser.add_argument("--study", help="study name (default: the config's file name)")
    parser.add_argument("--sampler", choices=SAMPLERS, default="tpe")
    parser.add_argument("--pruner", choices=PRUNERS, default="median")
    parser.add_argument("--timeout", type=float, help="seconds after which no new trial starts (running ones finish)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per trial; the objective is their mean")
    parser.add_argument("--backend", choices=("local", "ray"), default="local")
    parser.add_argument("--address", help="Ray cluster address (with --backend ray); default: start Ray here")


def run(args: argparse.Namespace) -> int:
    options = TuneOptions(
        config=args.config,
        out_dir=args.out,
        trials=args.trials,
        workers=args.workers,
        overrides=args.overrides,
        storage=args.storage,
        study=args.study,
        sampler=args.sampler,
        pruner=args.pruner,
        timeout=args.timeout,
        seeds=args.seeds,
        backend=args.backend,
        address=args.address,
    )
    outcome = run_study(options, report=lambda line: print(line, flush=True))
    print(
        f"study {outcome.study!r}: {outcome.counted} of {args.trials} trials done ({outcome.ran} run now), "
        f"{outcome.wall_seconds:.0f} s in all; {args.out / 'trials.csv'}, {args.out / 'report.html'}"
    )
    return 0
