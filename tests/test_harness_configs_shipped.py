"""Every config in configs/ validates, names an env that exists, and builds its agent; the suite is covered."""

from __future__ import annotations

from pathlib import Path

import pytest

import envs
from rlgru.harness.agent import build_agent
from rlgru.harness.config import load_config
from rlgru.harness.env_factory import make_env, normalize_env

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))
#: configs/tuned/: what `rlgru tune` found for a task and core (benchmarks/ship_tuned_configs.py)
TUNED = sorted((Path(__file__).resolve().parents[1] / "configs" / "tuned").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS + TUNED, ids=[f"{p.parent.name}/{p.stem}" for p in CONFIGS + TUNED])
def test_config_builds_its_agent(path: Path) -> None:
    config = load_config(path, ["env.vec_env=dummy"])
    env = normalize_env(make_env(config.env, seed=0), config.env, config.algorithm.gamma)
    try:
        model = build_agent(config, env, tensorboard_log=None, where=path)
        assert model.policy.core_type == config.policy.core
        assert model.hidden_reset == config.policy.hidden_reset
    finally:
        env.close()


def test_gru_and_lstm_config_for_every_task() -> None:
    tasks = {load_config(path).env.id.split("/")[1].split("-")[0]: path for path in CONFIGS}
    assert set(envs.TASKS) <= set(tasks), f"tasks without a config: {set(envs.TASKS) - set(tasks)}"
    names = {path.stem for path in CONFIGS}
    for path in CONFIGS:
        if path.stem.endswith("_gru"):
            assert f"{path.stem[:-4]}_lstm" in names


def test_quickstart_is_a_memory_task_within_budget() -> None:
    config = load_config(CONFIGS[0].parent / "quickstart.yaml")
    assert config.env.id.startswith("rlgru/") and config.training.total_timesteps <= 200_000
