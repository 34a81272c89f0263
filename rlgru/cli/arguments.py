"""Command-line arguments that several ``rlgru`` commands take, defined once so they read the same everywhere."""

from __future__ import annotations

import argparse


def add_overrides_argument(parser: argparse.ArgumentParser) -> None:
    """``--set key.path=value`` (repeatable), collected in ``args.overrides`` for ``load_config``."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a config value, e.g. --set algorithm.n_steps=64 (repeatable; YAML values)",
    )


__all__ = ["add_overrides_argument"]
