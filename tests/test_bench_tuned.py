"""Suites with a ``tuned:`` section: equal tuning budgets per core, tuned runs on fresh seeds beside the shared ones,
and the report's shared-vs-tuned section computed from what the runs and studies left."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlgru.bench.suite import SuiteConfig, expand
from rlgru.bench.tuned import study_dir, tuned_params, tuning_config, tuning_pairs
from rlgru.bench.tuned_report import tuned_section
from rlgru.harness.config import validate_config
from rlgru.harness.errors import HarnessError

SUITE: dict[str, Any] = {
    "name": "t",
    "base": {
        "env": {"n_envs": 4},
        "algorithm": {"n_steps": 16, "batch_size": 64},
        "policy": {"hidden_size": 8},
        "training": {"total_timesteps": 1000},
    },
    "tasks": [{"name": "tmaze", "env": {"id": "rlgru/TMaze-Easy-v0"}}],
    "cores": ["gru", "lstm"],
    "seeds": [0, 1],
    "tuned": {"trials": 4, "budget_fraction": 0.5, "seed": 100, "space": {"algorithm.n_steps": {"choice": [16, 64]}}},
}


def suite(**changes: Any) -> SuiteConfig:
    data = json.loads(json.dumps(SUITE))
    data.update(changes)
    return SuiteConfig.model_validate(data)


def test_tuning_seeds_must_not_be_evaluation_seeds() -> None:
    with pytest.raises(ValueError, match=r"tuning seeds \[100\] are also evaluation seeds"):
        suite(seeds=[0, 100])


def test_every_core_gets_the_same_tuning_budget() -> None:
    s = suite()
    pairs = tuning_pairs(s)
    assert [(task.name, core) for task, core in pairs] == [("tmaze", "gru"), ("tmaze", "lstm")]
    configs = [validate_config(tuning_config(s, task, core, "suite"), "suite") for task, core in pairs]
    for config, core in zip(configs, ["gru", "lstm"], strict=True):
        assert config.policy.core == core and config.seed == 100
        assert config.training.total_timesteps == 500, "budget_fraction of the task's budget"
        assert config.tune is not None and config.tune.evaluations == 4
        assert list(config.tune.search_space()) == ["algorithm.n_steps"]
    assert configs[0].model_dump(exclude={"policy"}) == configs[1].model_dump(exclude={"policy"})


def test_tuned_runs_join_the_shared_ones_on_the_same_seeds() -> None:
    s = suite()
    runs = expand(s, tuned={("tmaze", "lstm"): {"algorithm.n_steps": 64, "policy.hidden_size": 32}})
    ids = [run.run_id for run in runs]
    assert ids == [
        "tmaze-gru-s0",
        "tmaze-lstm-s0",
        "tmaze-lstm-tuned-s0",
        "tmaze-gru-s1",
        "tmaze-lstm-s1",
        "tmaze-lstm-tuned-s1",
    ]
    tuned = [run for run in runs if run.setting == "tuned"]
    shared = {run.seed: run for run in runs if run.core == "lstm" and run.setting == "shared"}
    for run in tuned:
        assert run.config.algorithm.n_steps == 64 and run.config.policy.hidden_size == 32
        assert run.config.seed == run.seed == shared[run.seed].config.seed
        assert run.config.training == shared[run.seed].config.training
    assert expand(s, tuned={("tmaze", "gru"): {"algorithm.n_steps": 4}})[0].config.algorithm.batch_size == 64
    cut = expand(s, tuned={("tmaze", "gru"): {"algorithm.n_steps": 4}})[1]
    assert cut.setting == "tuned" and cut.config.algorithm.batch_size == 16, "cut to the rollout, as in tuning"


def test_a_pair_counts_as_tuned_once_its_study_has_all_its_trials(tmp_path: Path) -> None:
    s = suite()
    directory = study_dir(tmp_path, "tmaze", "gru")
    directory.mkdir(parents=True)
    best = {"study": "x", "number": 2, "value": 0.5, "counted": 3, "params": {"algorithm.n_steps": 64}}
    (directory / "best_params.json").write_text(json.dumps(best))
    assert tuned_params(s, tmp_path) == {}, "3 of 4 trials: still tuning"
    (directory / "best_params.json").write_text(json.dumps({**best, "counted": 4}))
    assert tuned_params(s, tmp_path) == {("tmaze", "gru"): {"algorithm.n_steps": 64}}
    (directory / "best_params.json").write_text("{torn")
    with pytest.raises(HarnessError, match="unreadable"):
        tuned_params(s, tmp_path)


def _result(task: str, core: str, seed: int, setting: str, final: float) -> dict[str, Any]:
    return {
        "task": task,
        "core": core,
        "seed": seed,
        "setting": setting,
        "final_return": final,
        "status": "ok",
        "task_info": {"optimal_return": 1.0, "memoryless_return": 0.0},
    }


def _study(out: Path, task: str, core: str, values: list[float | None], wall: float) -> None:
    directory = study_dir(out, task, core)
    directory.mkdir(parents=True)
    rows = ["number,state,value,last_reported,seconds,pruned_at,retry_of,counted,run_dirs,error"]
    for number, value in enumerate(values):
        if value is None:  # pruned, its last evaluation 0.1
            rows.append(f"{number},pruned,,0.1,1,100,,yes,,")
        else:
            rows.append(f"{number},complete,{value},{value},1,,,yes,,")
    (directory / "trials.csv").write_text("\n".join(rows) + "\n")
    (directory / "study.json").write_text(json.dumps({"wall_seconds": wall, "machine": "test CPU"}))
    (directory / "config.yaml").write_text(yaml.safe_dump({"training": {"total_timesteps": 500}}))


def test_the_report_compares_the_cores_at_both_settings(tmp_path: Path) -> None:
    """Shared setting: LSTM ahead; tuned: GRU ahead. Each verdict is read off its own setting's runs."""
    results = []
    for seed in range(10):
        results += [
            _result("tmaze", "gru", seed, "shared", 0.2 + 0.01 * seed),
            _result("tmaze", "lstm", seed, "shared", 0.6 + 0.01 * seed),
            _result("tmaze", "gru", seed, "tuned", 0.9 + 0.005 * seed),
            _result("tmaze", "lstm", seed, "tuned", 0.7 + 0.01 * seed),
        ]
    _study(tmp_path, "tmaze", "gru", [0.9, 0.85, 0.8, None], wall=120)
    _study(tmp_path, "tmaze", "lstm", [0.4, None, None, 0.3], wall=240)
    text = "\n".join(tuned_section(tmp_path, results, n_resamples=200))
    row = next(line for line in text.splitlines() if line.startswith("| tmaze |"))
    assert "0.25 [" in row and "0.92 [" in row and "(n=10)" in row
    verdicts = next(line for line in text.splitlines() if line.startswith("| all tasks |"))
    assert verdicts.endswith("| LSTM better | GRU better |")
    assert "| tmaze × gru | 4 (3 / 1 / 0) | 500 | 2.0 min | 0.900 |" in text
    assert "Tuning took 0.10 h of wall time in all on test CPU." in text
    sensitivity = next(line for line in text.splitlines() if line.startswith("| tmaze | 0.825"))
    # trials gru [0.9, 0.85, 0.8, 0.1 (pruned)], lstm [0.4, 0.1, 0.1, 0.3]: near the best from 0.1 + 0.9 x 0.8
    assert "| 0.825, 2 of 4 | 0.2, 0 of 4 |" in sensitivity, sensitivity


def test_a_suite_without_tuned_runs_has_no_such_section(tmp_path: Path) -> None:
    assert tuned_section(tmp_path, [_result("tmaze", "gru", 0, "shared", 0.5)], n_resamples=10) == []
