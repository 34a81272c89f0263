"""List the memory cores: parameters and state width per layer, reset handling, what runs them, settings."""

from __future__ import annotations

import argparse
import dataclasses
import json

from rlgru.cores import core_names, describe_core


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hidden-size", type=int, default=64, help="hidden size the sizes are given at (64)")
    parser.add_argument("--input-size", type=int, default=64, help="features entering the core (64)")
    parser.add_argument(
        "--core",
        action="append",
        default=None,
        metavar="NAME_OR_PATH",
        help="describe these (names or module:Class; repeatable) instead of the registered ones",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    from rlgru.harness.errors import HarnessError

    if args.hidden_size < 1 or args.input_size < 1:
        raise HarnessError("--hidden-size and --input-size must be positive")
    try:
        rows = [describe_core(name, args.input_size, args.hidden_size) for name in (args.core or core_names())]
    except (ValueError, TypeError) as error:
        raise HarnessError(str(error)) from None
    if args.json:
        print(json.dumps([dataclasses.asdict(row) for row in rows], indent=2, default=str))
        return 0
    print(
        f"{len(rows)} cores, one layer at input {args.input_size}, hidden {args.hidden_size}; in a config: "
        "policy.core and policy.core_kwargs; in Python: policy_kwargs core and core_kwargs\n"
    )
    header = ("core", "params", "state", "resets", "runs on CPU in", "settings (defaults)")
    table = [header] + [
        (
            row.name,
            f"{row.params:,}",
            str(row.state_size),
            "in-loop" if row.native_resets else "split",
            row.engine,
            ", ".join(f"{key}={value!r}" for key, value in row.settings.items()) or "-",
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header) - 1)]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)) + "  " + line[-1])
    print()
    for row in rows:
        print(f"{row.name}: {row.summary}  [{row.class_path}]")
    return 0
