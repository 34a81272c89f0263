"""Progress shown to a person: the training bar counts the steps that really run; the memory probe says where it is."""

from __future__ import annotations

from pathlib import Path

import pytest
from stable_baselines3.common.env_util import make_vec_env

from rlgru import RecurrentPPO
from rlgru.harness.memory_probe import memory_horizon
from rlgru.harness.progress import TrainingProgressBar, steps_to_run


def test_the_bar_ends_at_the_steps_that_really_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert steps_to_run(100_000, 256) == 100_096 and steps_to_run(512, 256) == 512
    model = RecurrentPPO(
        "MlpGruPolicy",
        make_vec_env("rlgru/TMaze-Easy-v0", n_envs=2, seed=0),
        n_steps=16,
        batch_size=32,
        n_epochs=1,
        policy_kwargs={"hidden_size": 4},
    )
    bar = TrainingProgressBar(steps_to_run(100, 32))
    model.learn(100, callback=bar)
    err = capsys.readouterr().err
    assert "128/128" in err and "/100" not in err, "no 128/100 overshoot"
    assert bar.bar is None, "closed at the end"


def test_the_memory_probe_reports_every_point(tmp_path: Path) -> None:
    env = make_vec_env("rlgru/TMaze-Easy-v0", n_envs=2, seed=0)
    model = RecurrentPPO("MlpGruPolicy", env, n_steps=8, batch_size=16, policy_kwargs={"hidden_size": 4})
    lines: list[str] = []
    memory_horizon(model, env, 2, seed=0, k_values=[1, 4], report=lines.append)
    assert len(lines) == 3 and lines[0].startswith("memory probe: carried state")
    assert lines[1].startswith("memory probe: k=1: ") and "(2/2," in lines[2]
