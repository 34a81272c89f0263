"""A benchmark suite (YAML) and its expansion into runs: tasks × cores × seeds × budgets, plus a reference row.

Every run is an ordinary ``rlgru train`` config (``rlgru.harness.config.RunConfig``), built by deep-merging the
suite's ``base`` section, the task's env and ``overrides``, and the run's core, seed and budget. So a sweep trains
through exactly the code path users train with, and any run can be reproduced alone from its ``config.yaml``.

::

    name: memory
    base: {algorithm: {...}, policy: {hidden_size: 64}, training: {checkpoint_freq: 0}, evaluation: {freq: 10000}}
    tasks:
      - name: TMaze-40
        env: {id: rlgru/TMaze-v0, env_kwargs: {length: 40}}
        budgets: [150000]
        horizon: long
        overrides: {algorithm: {gamma: 0.99}}
    cores: [gru, lstm, rnn]
    seeds: [0, 1, 2, 3, 4]
    reference: {seeds: [0, 1, 2]}   # sb3-contrib's LSTM RecurrentPPO on the same configs; omit to skip

A task with ``lengths`` stands for one task per value of a difficulty knob (``RepeatFirst-8``, ``RepeatFirst-16``,
...): the horizon curves of the report are read from them. ``equal_parameters: {match: lstm}`` adds, beside each
core at the suite's hidden size, the same core at the hidden size that gives it the matched core's recurrent
parameter count, so every comparison can be read at equal width and at equal parameters. A task's own ``seeds``
replace the suite's for that task (more seeds where one task's intervals are wide).
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field, ValidationError, model_validator

from rlgru.bench.sizing import core_input_size, matching_hidden_size
from rlgru.cores import core_names, resolve_core
from rlgru.harness.config import RunConfig, StrictModel, describe_error, read_yaml_mapping, validate_config
from rlgru.harness.errors import HarnessError
from rlgru.harness.tune_space import apply_params

#: the name the sb3-contrib reference row goes by in results, next to the cores
REFERENCE_CORE = "sb3-contrib-lstm"


def _known_core(core: str) -> str:
    if core == REFERENCE_CORE:
        raise ValueError(f"{REFERENCE_CORE!r} is the reference row: ask for it under 'reference'")
    resolve_core(core)  # raises naming the registered cores
    return core


class LengthSweep(StrictModel):
    """One task at several memory lengths: each value of ``knob`` (an env kwarg) becomes a task ``<name>-<value>``."""

    knob: Annotated[str, Field(min_length=1)]
    values: list[Annotated[int, Field(gt=0)]] = Field(min_length=2)
    long_from: int | None = Field(
        default=None, description="values from this one on are the 'long' horizon of the report's verdicts"
    )

    @model_validator(mode="after")
    def _increasing(self) -> LengthSweep:
        if any(later <= earlier for earlier, later in zip(self.values, self.values[1:], strict=False)):
            raise ValueError(f"lengths.values must increase, got {self.values}")
        return self


class EqualParameters(StrictModel):
    """Also run each core at the hidden size that matches ``match``'s recurrent parameter count."""

    match: str = "lstm"
    cores: list[str] | None = Field(default=None, description="which cores get a matched run; None: all but match")


class SuiteTask(StrictModel):
    """One task of the suite: an env (as in a run config), its budgets and any per-task config changes."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    env: dict[str, Any]
    budgets: list[Annotated[int, Field(gt=0)]] | None = Field(
        default=None, description="total_timesteps values; None: base.training.total_timesteps"
    )
    horizon: str | None = Field(
        default=None,
        description="how long the memory must last; 'long' marks the tasks the report uses to judge gradient flow",
    )
    overrides: dict[str, Any] = Field(default_factory=dict)
    lengths: LengthSweep | None = None
    seeds: list[Annotated[int, Field(ge=0)]] | None = Field(
        default=None,
        description="this task's seeds, for more where its intervals are wide; None: the suite's seeds",
        min_length=1,
    )

    @model_validator(mode="after")
    def _one_horizon_source(self) -> SuiteTask:
        if self.lengths is not None and self.horizon is not None:
            raise ValueError("give either horizon or lengths.long_from, not both")
        if self.lengths is not None and self.lengths.knob in self.env.get("env_kwargs", {}):
            raise ValueError(f"env_kwargs.{self.lengths.knob} is set by lengths.values; remove it from env_kwargs")
        return self

    def concrete(self) -> list[SuiteTask]:
        """The tasks this entry stands for: itself, or one per length (named ``<name>-<value>``)."""
        if self.lengths is None:
            return [self]
        sweep, tasks = self.lengths, []
        for value in sweep.values:
            env = deep_merge(self.env, {"env_kwargs": {sweep.knob: value}})
            horizon = None if sweep.long_from is None else ("long" if value >= sweep.long_from else "short")
            tasks.append(self.model_copy(update={"name": f"{self.name}-{value}", "env": env, "horizon": horizon}))
        return tasks

    def length_of(self, concrete_name: str) -> int | None:
        if self.lengths is None:
            return None
        return int(concrete_name.rsplit("-", 1)[1])


class ReferenceConfig(StrictModel):
    """Which runs also get sb3-contrib's RecurrentPPO (LSTM), the external reference; None fields mean all."""

    tasks: list[str] | None = None
    seeds: list[Annotated[int, Field(ge=0)]] | None = None


class TunedComparison(StrictModel):
    """Also compare every core at its own tuned settings: an equal ``rlgru tune`` budget per core and task (same
    trials, steps per trial, seeds, space), then each tuned config trained on the suite's (fresh) seeds."""

    trials: Annotated[int, Field(ge=1)] = 16
    budget_fraction: Annotated[float, Field(gt=0, le=1)] = Field(
        default=1.0, description="steps per trial, as a fraction of the task's budget"
    )
    seed: Annotated[int, Field(ge=0)] = Field(
        default=1000, description="first tuning seed; tuning seeds must not be evaluation seeds"
    )
    seeds_per_trial: Annotated[int, Field(ge=1)] = 1
    sampler: str = "tpe"
    pruner: str = "median"
    evaluations: Annotated[int, Field(ge=1)] = 4
    space: dict[str, Any] | None = Field(default=None, description="as a config's tune.space; None: the default")

    def tuning_seeds(self) -> list[int]:
        return list(range(self.seed, self.seed + self.seeds_per_trial))


class SuiteConfig(StrictModel):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")] = "suite"
    description: str = ""
    base: dict[str, Any] = Field(default_factory=dict)
    tasks: list[SuiteTask] = Field(min_length=1)
    cores: list[Annotated[str, AfterValidator(_known_core)]] = Field(
        default_factory=core_names,
        min_length=1,
        description="registered core names or module:Class paths; default: every registered core",
    )
    seeds: list[Annotated[int, Field(ge=0)]] = Field(default_factory=lambda: [0, 1, 2, 3, 4], min_length=1)
    reference: ReferenceConfig | None = None
    equal_parameters: EqualParameters | None = None
    tuned: TunedComparison | None = None

    @model_validator(mode="after")
    def _unique_and_known(self) -> SuiteConfig:
        names = [concrete.name for task in self.tasks for concrete in task.concrete()]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(f"task names must be unique, repeated: {', '.join(duplicated)}")
        seed_lists = [self.seeds, *(task.seeds for task in self.tasks if task.seeds is not None)]
        if any(len(set(seeds)) != len(seeds) for seeds in seed_lists) or len(set(self.cores)) != len(self.cores):
            raise ValueError("seeds and cores must not repeat")
        if self.reference is not None and self.reference.tasks is not None:
            unknown = sorted(set(self.reference.tasks) - set(names))
            if unknown:
                raise ValueError(f"reference.tasks names tasks not in the suite: {', '.join(unknown)}")
        matched = self.equal_parameters
        if matched is not None:
            if matched.match not in self.cores:
                raise ValueError(f"equal_parameters.match {matched.match!r} is not one of the suite's cores")
            unknown = sorted(set(matched.cores or []) - set(self.cores))
            if unknown:
                raise ValueError(f"equal_parameters.cores names cores not in the suite: {', '.join(unknown)}")
        if self.tuned is not None:
            shared = sorted(set(self.tuned.tuning_seeds()) & {seed for seeds in seed_lists for seed in seeds})
            if shared:
                raise ValueError(
                    f"tuned: tuning seeds {shared} are also evaluation seeds; evaluate tuned settings on fresh seeds "
                    "(raise tuned.seed)"
                )
        return self

    def matched_cores(self) -> list[str]:
        """The cores that also run at the matched parameter count (none without ``equal_parameters``)."""
        if self.equal_parameters is None:
            return []
        chosen = self.equal_parameters.cores or self.cores
        return [core for core in chosen if core != self.equal_parameters.match]


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: where it goes and the full config it trains."""

    run_id: str
    task: str
    core: str
    seed: int
    budget: int
    horizon: str | None
    config: RunConfig
    #: "hidden": the suite's hidden size; "params": sized to the matched core's recurrent parameter count
    sizing: str = "hidden"
    #: for tasks expanded from ``lengths``: the entry's name and this task's knob value
    family: str | None = None
    memory_length: int | None = None
    #: "shared": the suite's settings; "tuned": this core's own tuned settings for this task
    setting: str = "shared"

    def as_dict(self) -> dict[str, Any]:
        """Plain data, so a run can be shipped to a worker process or a Ray node."""
        return {
            "run_id": self.run_id,
            "task": self.task,
            "core": self.core,
            "seed": self.seed,
            "budget": self.budget,
            "horizon": self.horizon,
            "config": self.config.model_dump(mode="json"),
            "sizing": self.sizing,
            "family": self.family,
            "memory_length": self.memory_length,
            "setting": self.setting,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSpec:
        return cls(**{**data, "config": RunConfig.model_validate(data["config"])})


def load_suite(path: str | Path) -> SuiteConfig:
    """Read and validate a suite file; errors name the file and the key path, as config errors do."""
    data = read_yaml_mapping(Path(path))
    try:
        return SuiteConfig.model_validate(data)
    except ValidationError as error:
        lines = [describe_error(item, SuiteConfig) for item in error.errors()]
        message = lines[0] if len(lines) == 1 else "\n  ".join(["invalid suite:", *lines])
        raise HarnessError(message, where=path) from None


def expand(
    suite: SuiteConfig, where: str | Path = "suite", tuned: Mapping[tuple[str, str], dict[str, Any]] | None = None
) -> list[RunSpec]:
    """Every run of the suite, in a stable order (task, budget, seed, core): a sweep is resumable by run id.

    ``tuned`` maps (task, core) to that pair's tuned parameters (config key path -> value); each pair found there
    also runs at them, on every seed, beside its shared-setting run (run ids ending ``-tuned-s<seed>``).
    """
    runs: list[RunSpec] = []
    for entry in suite.tasks:
        for task in entry.concrete():
            length = entry.length_of(task.name)
            family = entry.name if entry.lengths is not None else None
            budgets = task.budgets or [None]
            for budget in budgets:
                for seed in task.seeds or suite.seeds:
                    cores = [*suite.cores, *([REFERENCE_CORE] if _has_reference(suite, task, seed) else [])]
                    variants = [(core, "hidden") for core in cores] + [(c, "params") for c in suite.matched_cores()]
                    for core, sizing in variants:
                        config = _run_config(suite, task, core, seed, budget, where)
                        if sizing == "params":
                            config = _matched_size(suite, config, core, where)
                        label = (
                            task.name if len(budgets) == 1 else f"{task.name}@{_short(config.training.total_timesteps)}"
                        )
                        size_tag = f"-eqp{config.policy.hidden_size}" if sizing == "params" else ""
                        runs.append(
                            RunSpec(
                                f"{label}-{run_label(core)}{size_tag}-s{seed}",
                                label,
                                core,
                                seed,
                                config.training.total_timesteps,
                                task.horizon,
                                config,
                                sizing,
                                family,
                                length,
                            )
                        )
                        params = (tuned or {}).get((task.name, core))
                        if params is not None and sizing == "hidden":
                            runs.append(_tuned_run(runs[-1], params, where))
    return runs


def _tuned_run(shared: RunSpec, params: Mapping[str, Any], where: str | Path) -> RunSpec:
    """The shared-setting run with the pair's tuned parameters set (same task, seed, budget and evaluation)."""
    data = apply_params(shared.config.model_dump(mode="json"), dict(params))  # as the tuning trials did
    try:
        config = validate_config(data, where=f"tuned settings of {shared.run_id}")
    except HarnessError as error:
        raise error.within(where) from None
    run_id = shared.run_id.removesuffix(f"-s{shared.seed}") + f"-tuned-s{shared.seed}"
    return dataclasses.replace(shared, run_id=run_id, config=config, setting="tuned")


def _matched_size(suite: SuiteConfig, config: RunConfig, core: str, where: str | Path) -> RunConfig:
    """``config`` with the hidden size at which ``core`` has the matched core's recurrent parameter count."""
    assert suite.equal_parameters is not None
    try:
        hidden = matching_hidden_size(
            core,
            suite.equal_parameters.match,
            config.policy.hidden_size,
            input_size=core_input_size(config),
            n_layers=config.policy.n_layers,
            settings=config.policy.core_kwargs or {},
        )
    except ValueError as error:
        raise HarnessError(f"equal_parameters: {error}", where=where) from None
    return config.model_copy(update={"policy": config.policy.model_copy(update={"hidden_size": hidden})})


def _has_reference(suite: SuiteConfig, task: SuiteTask, seed: int) -> bool:
    reference = suite.reference
    if reference is None:
        return False
    return (reference.tasks is None or task.name in reference.tasks) and (
        reference.seeds is None or seed in reference.seeds
    )


def _run_config(
    suite: SuiteConfig, task: SuiteTask, core: str, seed: int, budget: int | None, where: str | Path
) -> RunConfig:
    data = deep_merge(suite.base, {"env": task.env})
    data = deep_merge(data, task.overrides)
    run_part: dict[str, Any] = {"seed": seed, "policy": {"core": "lstm" if core == REFERENCE_CORE else core}}
    if core == REFERENCE_CORE:
        run_part["algorithm"] = {"implementation": "sb3-contrib"}
    if budget is not None:
        run_part["training"] = {"total_timesteps": budget}
    data = deep_merge(data, run_part)
    try:
        return validate_config(data, where=f"task {task.name}")
    except HarnessError as error:
        raise error.within(where) from None


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``update`` merged in: nested mappings merge key by key, anything else is replaced."""
    merged = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _short(steps: int) -> str:
    return f"{steps // 1000}k" if steps % 1000 == 0 else str(steps)


def run_label(core: str) -> str:
    """A core as run ids and file names show it: ``mymodule:MyCore`` becomes ``MyCore``."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", core.rsplit(":", 1)[-1].rsplit(".", 1)[-1])


__all__ = [
    "REFERENCE_CORE",
    "EqualParameters",
    "LengthSweep",
    "run_label",
    "ReferenceConfig",
    "RunSpec",
    "SuiteConfig",
    "SuiteTask",
    "TunedComparison",
    "deep_merge",
    "expand",
    "load_suite",
]
