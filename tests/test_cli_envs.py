"""``rlgru envs``: every registered task with its knob and presets, from envs.TASKS or Gymnasium's registry."""

from __future__ import annotations

import json
import re

import gymnasium as gym
import pytest

import envs
from rlgru.cli import main
from rlgru.harness.task_list import registered_tasks


def test_lists_every_task_with_knob_and_presets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    for spec in envs.list_tasks():
        assert f"{spec.env_id}  knob: {spec.knob}" in out
        assert all(preset_id in out for preset_id in spec.ids)
    assert re.search(r"rlgru/TMaze-Easy-v0 +length=4 +optimal 1, memoryless 0.5\n", out)


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["envs", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(envs.TASKS) <= set(rows)
    tmaze = rows["TMaze"]
    assert tmaze["knob"] == "length" and tmaze["presets"]["Medium"] == {"length": 20}
    assert tmaze["references"]["Easy"] == {"optimal_return": 1.0, "memoryless_return": 0.5}


def test_falls_back_to_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(envs, "TASKS", {})
    gym.register("rlgru/Scratch-v0", entry_point="envs.tmaze:TMazeEnv", kwargs={"length": 2})
    try:
        rows = {row.env_id: row for row in registered_tasks()}
        assert "rlgru/TMaze-Easy-v0" in rows and rows["rlgru/Scratch-v0"].presets == {"registered": {"length": 2}}
    finally:
        del gym.registry["rlgru/Scratch-v0"]
