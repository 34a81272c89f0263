"""A process killed inside torch's extension ``load`` leaves torch's build baton (a ``lock`` file) behind, on which
every later load would wait for ever; rlgru's loads take turns under an flock and clear such a baton."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest
from torch.utils import cpp_extension

from rlgru.cores._kernel_build import exclusive_build


def test_a_stale_baton_is_cleared_and_loads_take_turns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    directory = Path(cpp_extension._get_build_directory("rlgru_test_kernel", verbose=False))
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "lock").write_text("")  # left by a process killed mid-load
    with exclusive_build("rlgru_test_kernel"):
        assert not (directory / "lock").exists()
        other = os.open(directory / "rlgru.flock", os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):  # a second loader waits here while this one holds the build
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(other)
    again = os.open(directory / "rlgru.flock", os.O_RDWR)
    try:
        fcntl.flock(again, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released on the way out
    finally:
        os.close(again)
