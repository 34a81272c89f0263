"""The ``rlgru`` command starts fast: only the command being run is imported, and listing needs no torch."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("argv", [["--help"], ["envs", "--json"], ["train", "--help"]])
def test_the_command_imports_only_what_it_runs(argv: list[str]) -> None:
    script = (
        "import sys; from rlgru.cli import main\n"
        "try:\n    code = main(sys.argv[1:])\nexcept SystemExit as exit:\n    code = exit.code\n"
        "print(sorted(m for m in ('torch', 'stable_baselines3', 'rlgru.cli.commands.bench') "
        "if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, check=True)
    imported = result.stdout.strip().splitlines()[-1]
    if argv[0] == "train":  # its own module (config, training: torch) but no other command's
        assert "rlgru.cli.commands.bench" not in imported
    else:
        assert imported == "[]", result.stdout[-500:]
