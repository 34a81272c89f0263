"""Write the report of a benchmark results directory: runs.csv, learning curves, README with statistics."""

from __future__ import annotations

import argparse
from pathlib import Path

from rlgru.bench.report import write_report
from rlgru.harness.errors import HarnessError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", type=Path, metavar="RESULTS_DIR", help="a directory written by `rlgru bench`")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples for the intervals")


def run(args: argparse.Namespace) -> int:
    if not (args.results / "runs").is_dir():
        raise HarnessError("no runs/ here: not a directory written by `rlgru bench`", where=args.results)
    try:
        readme = write_report(args.results, n_resamples=args.resamples)
    except FileNotFoundError as error:
        raise HarnessError(str(error), where=args.results) from None
    print(f"wrote {readme} (and runs.csv, learning_curves.csv, plots) in {args.results}")
    return 0
