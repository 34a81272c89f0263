"""Train an agent from a YAML config into a run directory (or resume one)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rlgru.cli.arguments import add_overrides_argument
from rlgru.harness.agent import extractor_choice
from rlgru.harness.config import RunConfig, load_config
from rlgru.harness.env_factory import EnvSpec, check_env_spec
from rlgru.harness.errors import HarnessError
from rlgru.harness.progress import show_progress
from rlgru.harness.run_dir import RunDir, latest_run_dir, new_run_dir
from rlgru.harness.train import prepare_resume, train

DEFAULT_RUNS_ROOT = Path("runs")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", type=Path, help="YAML config (see configs/)")
    add_overrides_argument(parser)
    parser.add_argument(
        "--run-dir",
        type=Path,
        help="run directory (default: runs/<config>-s<seed>-<timestamp>; <config>-<core> if --set chose another core)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --run-dir (default: the newest run of this config and seed) from its last checkpoint",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (also off when not a TTY)")
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help="on --resume, also load pickled objects outside rlgru's allow-list from the run's model "
        "and statistics files (can run code from them: only for files you trust)",
    )


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.overrides)
    print(describe_extractor(config, args.config))
    name = run_name(args.config, config)
    if args.resume:
        run_dir = RunDir(args.run_dir) if args.run_dir else latest_run_dir(DEFAULT_RUNS_ROOT, name, config.seed)
        if run_dir is None:
            raise HarnessError(
                f"no run of {name} with seed {config.seed} under {DEFAULT_RUNS_ROOT}/ to resume; pass --run-dir",
                where="--resume",
            )
        config = prepare_resume(run_dir, config)
    elif args.run_dir is not None:
        run_dir = RunDir(args.run_dir)  # train() claims it, and refuses it if it already holds a run
    else:
        run_dir = new_run_dir(DEFAULT_RUNS_ROOT, name, config.seed)
    train(
        config,
        run_dir,
        resume=args.resume,
        progress=show_progress(args.no_progress),
        source=args.config,
        trust_pickle=args.trust_pickle,
    )
    return 0


def run_name(path: Path, config: RunConfig) -> str:
    """The config's file name, plus the core when ``--set policy.core=...`` chose another than the file's own: the
    GRU and LSTM runs of one task config are told apart, and ``--resume`` finds the newest run of the same core."""
    shipped = load_config(path).policy.core
    return path.stem if config.policy.core == shipped else f"{path.stem}-{config.policy.core}"


def describe_extractor(config: RunConfig, source: Path) -> str:
    """The first line of training: the features extractor the policy gets, and why (``policy.extractor: auto``
    decides by the env's observations, read off one env built here); an observation no extractor reads is the
    one-line ``HarnessError`` it would be when the agent is built."""
    try:
        space = check_env_spec(EnvSpec.from_config(config.env))
        return extractor_choice(config.policy, space).describe(config.policy.features_extractor_kwargs)
    except HarnessError as error:
        raise error.within(source) from None
