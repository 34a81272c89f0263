"""Every config in configs/ validates, names an env that exists, and builds its agent (a task's config with either
core); the suite is covered."""

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
#: configs/<task>.yaml trains the GRU as shipped, the LSTM with --set policy.core=lstm; a file named for its core
#: (<task>_lstm.yaml) holds settings that core needs of its own, as tuned/ does
NAMED_FOR_A_CORE = ("_gru", "_lstm")
LSTM = [path for path in CONFIGS if path.name != "quickstart.yaml" and not path.stem.endswith(NAMED_FOR_A_CORE)]
CASES = [(path, []) for path in CONFIGS + TUNED] + [(path, ["policy.core=lstm"]) for path in LSTM]


@pytest.mark.parametrize(
    ("path", "overrides"), CASES, ids=[f"{p.parent.name}/{p.stem}" + ("+lstm" if o else "") for p, o in CASES]
)
def test_config_builds_its_agent(path: Path, overrides: list[str]) -> None:
    config = load_config(path, ["env.vec_env=dummy", *overrides])
    env = normalize_env(make_env(config.env, seed=0), config.env, config.algorithm.gamma)
    try:
        model = build_agent(config, env, tensorboard_log=None, where=path)
        assert model.policy.core_type == config.policy.core
        assert model.hidden_reset == config.policy.hidden_reset
    finally:
        env.close()


def test_a_config_for_every_task_with_the_gru_unless_named_for_its_core() -> None:
    tasks = {load_config(path).env.id.split("/")[1].split("-")[0] for path in CONFIGS}
    assert set(envs.TASKS) <= tasks, f"tasks without a config: {set(envs.TASKS) - tasks}"
    for path in CONFIGS:
        named = path.stem.rpartition("_")[2] if path.stem.endswith(NAMED_FOR_A_CORE) else "gru"
        assert load_config(path).policy.core == named, path.name


def test_quickstart_is_a_memory_task_within_budget() -> None:
    config = load_config(CONFIGS[0].parent / "quickstart.yaml")
    assert config.env.id.startswith("rlgru/") and config.training.total_timesteps <= 200_000


@pytest.mark.parametrize("suite", sorted((Path(__file__).resolve().parents[1] / "configs" / "bench").glob("*.yaml")),
                         ids=lambda path: path.name)
def test_every_shipped_suite_loads_and_expands(suite: Path) -> None:
    from rlgru.bench.suite import expand, load_suite

    runs = expand(load_suite(suite))
    assert runs and len({run.run_id for run in runs}) == len(runs)
