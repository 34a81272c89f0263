"""A suite's tuned comparison: one ``rlgru tune`` study per (task, core) with an equal budget for every core, whose
best parameters then run on the suite's own seeds beside the shared-setting runs.

A verdict at one shared setting measures which core that setting suits as much as the cores; comparing each core at
its own best settings, found with the same tuning budget, takes the setting out. Studies live under
``<out>/tuning/<task>-<core>/`` and resume like any study; the tuning seeds are never evaluation seeds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from rlgru.bench.suite import SuiteConfig, SuiteTask, _run_config, run_label
from rlgru.harness.errors import HarnessError
from rlgru.runtime.files import atomic_write_text
from rlgru.tune.driver import TuneOptions, TuneOutcome, run_study
from rlgru.tune.outputs import BEST_PARAMS_FILE

TUNING_DIR = "tuning"
CONFIG_FILE = "tune.yaml"


def study_dir(out_dir: Path, task: str, core: str) -> Path:
    return Path(out_dir) / TUNING_DIR / f"{task}-{run_label(core)}"


def tuning_pairs(suite: SuiteConfig) -> list[tuple[SuiteTask, str]]:
    """Every (task, core) the suite tunes: each concrete task (lengths expanded) with each of the suite's cores."""
    return [(task, core) for entry in suite.tasks for task in entry.concrete() for core in suite.cores]


def tuning_config(suite: SuiteConfig, task: SuiteTask, core: str, where: str | Path) -> dict[str, Any]:
    """The study's config: the task's shared-setting run at the tuning seed, ``budget_fraction`` of its budget,
    with the suite's search space."""
    assert suite.tuned is not None
    budget = task.budgets[0] if task.budgets else None
    config = _run_config(suite, task, core, suite.tuned.seed, budget, where)
    data = config.model_dump(mode="json", exclude={"tune"})
    data["training"]["total_timesteps"] = max(round(config.training.total_timesteps * suite.tuned.budget_fraction), 1)
    tune: dict[str, Any] = {"evaluations": suite.tuned.evaluations}
    if suite.tuned.space is not None:
        tune["space"] = suite.tuned.space
    data["tune"] = tune
    return data


def tune_pairs(
    suite: SuiteConfig,
    out_dir: Path,
    *,
    where: str | Path,
    workers: int,
    backend: str = "local",
    address: str | None = None,
    report: Callable[[str], None] = print,
) -> list[TuneOutcome]:
    """Run (or resume) every pair's study to ``tuned.trials`` trials; each study's outputs land in its directory."""
    assert suite.tuned is not None
    outcomes = []
    for task, core in tuning_pairs(suite):
        directory = study_dir(out_dir, task.name, core)
        directory.mkdir(parents=True, exist_ok=True)
        config_path = directory / CONFIG_FILE
        atomic_write_text(config_path, yaml.safe_dump(tuning_config(suite, task, core, where), sort_keys=False))
        name = f"{task.name}-{run_label(core)}"
        options = TuneOptions(
            config=config_path,
            out_dir=directory,
            trials=suite.tuned.trials,
            workers=workers,
            study=name,
            sampler=suite.tuned.sampler,
            pruner=suite.tuned.pruner,
            seeds=suite.tuned.seeds_per_trial,
            backend=backend,
            address=address,
        )
        outcomes.append(run_study(options, report=lambda line, name=name: report(f"[tune {name}] {line}")))
    return outcomes


def tuned_params(suite: SuiteConfig, out_dir: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """(task, core) -> the best parameters of that pair's finished study; pairs not tuned yet are left out."""
    if suite.tuned is None:
        return {}
    found = {}
    for task, core in tuning_pairs(suite):
        path = study_dir(out_dir, task.name, core) / BEST_PARAMS_FILE
        if not path.is_file():
            continue
        try:
            best = json.loads(path.read_text())
        except (OSError, ValueError):
            raise HarnessError("unreadable; delete it and run the tuning again", where=path) from None
        if best.get("counted", 0) >= suite.tuned.trials:
            found[(task.name, core)] = best["params"]
    return found


__all__ = ["CONFIG_FILE", "TUNING_DIR", "study_dir", "tune_pairs", "tuned_params", "tuning_config", "tuning_pairs"]
