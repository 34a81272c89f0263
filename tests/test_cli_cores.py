"""``rlgru cores``: every registered core with the sizes it really has, and bad input as one line, exit 2."""

from __future__ import annotations

import json

import pytest

from rlgru.cli import main
from rlgru.cores import core_names, describe_core


def test_lists_every_registered_core_with_its_real_size(capsys: pytest.CaptureFixture) -> None:
    assert main(["cores", "--hidden-size", "16", "--input-size", "8", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert list(rows) == core_names()
    for name, row in rows.items():
        info = describe_core(name, 8, 16)
        assert (row["params"], row["state_size"], row["native_resets"]) == (info.params, info.state_size,
                                                                          info.native_resets)
    assert rows["lstm"]["state_size"] == 32 and rows["rnn"]["native_resets"] is False
    assert rows["lru"]["settings"]["r_max"] == 0.99


def test_table_names_each_core_and_what_runs_it(capsys: pytest.CaptureFixture) -> None:
    assert main(["cores"]) == 0
    out = capsys.readouterr().out
    assert all(f"\n{name} " in out for name in core_names())
    assert "dropout=0.0" in out and "in-loop" in out and "split" in out


@pytest.mark.parametrize("argv,fragment", [
    (["cores", "--core", "nosuch"], "unknown core 'nosuch'"),
    (["cores", "--core", "collections:OrderedDict"], "not a subclass of rlgru.cores.MemoryCore"),
    (["cores", "--hidden-size", "0"], "must be positive"),
])
def test_bad_input_exits_2_with_one_line(argv: list[str], fragment: str, capsys: pytest.CaptureFixture) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
