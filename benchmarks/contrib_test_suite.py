"""Run sb3-contrib's own RecurrentPPO tests against rlgru, with only the import changed.

The drop-in claim, checked by the anchor's tests rather than ours. sb3-contrib's test file is not shipped with
rlgru (it is theirs): point this script at a checkout of the stable-baselines3-contrib repository (or at its
``tests/test_lstm.py``), and it copies the file to a scratch folder, replaces ``from sb3_contrib import
RecurrentPPO`` by ``from rlgru import RecurrentPPO`` (refusing to run if that line is not there exactly once), runs
pytest on it, slow tests included, and prints the counts.

    python benchmarks/contrib_test_suite.py ~/src/stable-baselines3-contrib
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ORIGINAL_IMPORT = "from sb3_contrib import RecurrentPPO"
RLGRU_IMPORT = "from rlgru import RecurrentPPO"


def switched_test_file(source: Path) -> str:
    """The test file's text with the one import changed; raises if it is not there exactly once."""
    text = source.read_text()
    count = len(re.findall(rf"^{re.escape(ORIGINAL_IMPORT)}$", text, flags=re.MULTILINE))
    if count != 1:
        raise SystemExit(f"{source}: expected the line {ORIGINAL_IMPORT!r} once, found it {count} times")
    return re.sub(rf"^{re.escape(ORIGINAL_IMPORT)}$", RLGRU_IMPORT, text, flags=re.MULTILINE)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("contrib", type=Path, help="sb3-contrib checkout, or its tests/test_lstm.py")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (e.g. -k performance)")
    args = parser.parse_args()
    source = args.contrib / "tests" / "test_lstm.py" if args.contrib.is_dir() else args.contrib
    if not source.is_file():
        raise SystemExit(f"{source}: no such file")
    with tempfile.TemporaryDirectory(prefix="contrib-tests-") as scratch:
        target = Path(scratch) / "test_lstm.py"
        target.write_text(switched_test_file(source))
        (Path(scratch) / "pytest.ini").write_text("[pytest]\nmarkers =\n    slow: slow tests\n")
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(target), *args.pytest_args]
        print(f"running sb3-contrib's {source} against rlgru ({RLGRU_IMPORT!r})", flush=True)
        return subprocess.call(command, cwd=scratch)


if __name__ == "__main__":
    sys.exit(main())
