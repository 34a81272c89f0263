"""The ``rlgru`` command: parse arguments, dispatch to a command module, turn bad input into ``exit 2``.

Each subcommand is a module under ``rlgru.cli.commands`` with ``add_arguments(parser)`` and
``run(args) -> int``; its docstring's first line is its help. Adding a command is adding a line to ``COMMANDS``.
Only the command being run is imported (the others' help is read from their source), so ``rlgru --help`` and
``rlgru envs`` do not pay for torch, SB3 and every other command's imports.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import os
import sys
from collections.abc import Sequence

from rlgru.harness.errors import USAGE_ERROR, HarnessError

#: subcommand -> module defining add_arguments(parser) and run(args) -> int
COMMANDS: dict[str, str] = {
    "train": "rlgru.cli.commands.train",
    "eval": "rlgru.cli.commands.evaluate",
    "envs": "rlgru.cli.commands.envs",
    "cores": "rlgru.cli.commands.cores",
    "tune": "rlgru.cli.commands.tune",
    "bench": "rlgru.cli.commands.bench",
    "report": "rlgru.cli.commands.report",
    "export": "rlgru.cli.commands.export",
}


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser; only the command named in ``argv`` (if any) is imported to add its arguments."""
    parser = argparse.ArgumentParser(
        prog="rlgru",
        description="Train, evaluate and probe recurrent PPO agents (GRU, LSTM, minGRU, LRU, ...) on memory tasks.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    for name, module_name in COMMANDS.items():
        summary = _summary(module_name)
        command_parser = subparsers.add_parser(name, help=summary, description=summary)
        if name == chosen:
            module = importlib.import_module(module_name)
            module.add_arguments(command_parser)
            command_parser.set_defaults(handler=module.run)
    return parser


def _summary(module_name: str) -> str | None:
    """First line of a module's docstring, read from its source without importing it."""
    spec = importlib.util.find_spec(module_name)
    if spec is None or spec.origin is None:
        return None
    with open(spec.origin, encoding="utf-8") as handle:
        docstring = ast.get_docstring(ast.parse(handle.read()))
    return docstring.strip().splitlines()[0] if docstring else None


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (0 ok, 2 bad input, 130 interrupted) instead of exiting."""
    # `module:Class` in a config (an env, a wrapper, a memory core) finds modules in the working directory, as
    # `python -m` would; the console script alone would only see installed packages.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_request:  # --help, or argparse's own usage errors (already printed)
        code = exit_request.code
        return code if isinstance(code, int) else (0 if code is None else USAGE_ERROR)
    try:
        return int(args.handler(args) or 0)
    except HarnessError as error:
        print(f"rlgru {args.command}: error: {error}", file=sys.stderr)
        return error.exit_status
    except KeyboardInterrupt:
        print(f"rlgru {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `rlgru envs | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141

