"""Find what ``rlgru eval`` needs from a run directory or a bare model zip: the model, its env, its statistics.

A run directory has everything. A bare ``model.zip`` gets its env from a ``config.yaml`` beside it (or one level
up, for ``checkpoints/model_<N>_steps.zip``), otherwise from ``--env``. For a run directory whose ``model.zip`` is
missing or damaged, the newest checkpoint that reads back whole stands in, and ``skipped`` says what was passed over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rlgru.harness.checkpoints import Skipped, model_file_problem, readable_checkpoints
from rlgru.harness.config import EnvConfig, RunConfig, read_yaml_mapping, validate_config
from rlgru.harness.errors import HarnessError
from rlgru.harness.run_dir import RunDir, checkpoint_vecnormalize


@dataclass(frozen=True)
class EvalTarget:
    model: Path
    config: RunConfig | None
    env: EnvConfig
    vecnormalize: Path | None
    run: RunDir | None  # the run the model belongs to, if any: the probe's default output goes there
    skipped: tuple[Skipped, ...] = field(default=())  # damaged model files passed over, newest first

    @property
    def default_output(self) -> Path:
        return self.run.memory_probe if self.run is not None else self.model.parent / "memory_probe"


def resolve_target(target: Path, env_id: str | None = None) -> EvalTarget:
    target = Path(target)
    skipped: list[Skipped] = []
    if target.is_dir():
        run = RunDir(target)
        config = _run_config(run)
        model = run.model
        problem = model_file_problem(model) if model.is_file() else None
        if problem is not None or not model.is_file():
            if problem is not None:
                skipped.append(Skipped(model, problem))
            normalizes = config is not None and config.env.normalize is not None and env_id is None
            checkpoints, passed_over = readable_checkpoints(run, with_statistics=normalizes)
            skipped += passed_over
            if not checkpoints:
                what = "no readable model.zip" if problem is not None else "no model.zip"
                raise HarnessError(
                    f"{what} and no readable checkpoint: nothing to evaluate"
                    + "".join(f"; {skip}" for skip in skipped),
                    where=target,
                )
            model = checkpoints[0].model
    elif target.is_file():
        model = target
        run = next((RunDir(d) for d in (target.parent, target.parent.parent) if (d / "config.yaml").is_file()), None)
        config = _run_config(run) if run is not None else None
    else:
        raise HarnessError("no such run directory or model file", where=target)

    if env_id is not None:
        return EvalTarget(model, config, EnvConfig(id=env_id, n_envs=1), None, run, tuple(skipped))
    if config is None:
        raise HarnessError("no config.yaml beside this model to say which env it plays; pass --env ID", where=model)
    vecnormalize = None
    if config.env.normalize is not None:
        assert run is not None
        vecnormalize = checkpoint_vecnormalize(model) or (run.vecnormalize if model == run.model else None)
        if vecnormalize is None or not vecnormalize.is_file():
            raise HarnessError(
                "the run normalises observations but no VecNormalize statistics match this model", where=model
            )
    return EvalTarget(model, config, config.env, vecnormalize, run, tuple(skipped))


def _run_config(run: RunDir) -> RunConfig | None:
    if not run.config.is_file():
        return None
    return validate_config(read_yaml_mapping(run.config), where=run.config)


__all__ = ["EvalTarget", "resolve_target"]
