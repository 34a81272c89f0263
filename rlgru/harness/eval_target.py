"""Find what ``rlgru eval`` needs from a run directory or a bare model zip: the model, its env, its statistics.

A run directory has everything. A bare ``model.zip`` gets its env from a ``config.yaml`` beside it (or one level
up, for ``checkpoints/model_<N>_steps.zip``), otherwise from ``--env``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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

    @property
    def default_output(self) -> Path:
        return self.run.memory_probe if self.run is not None else self.model.parent / "memory_probe"


def resolve_target(target: Path, env_id: str | None = None) -> EvalTarget:
    target = Path(target)
    if target.is_dir():
        run = RunDir(target)
        model = run.model
        if not model.is_file():
            checkpoint = run.latest_checkpoint()
            if checkpoint is None:
                raise HarnessError("no model.zip and no checkpoints: not a run directory", where=target)
            model = checkpoint.model
    elif target.is_file():
        model = target
        run = next((RunDir(d) for d in (target.parent, target.parent.parent) if (d / "config.yaml").is_file()), None)
    else:
        raise HarnessError("no such run directory or model file", where=target)

    config = validate_config(read_yaml_mapping(run.config), where=run.config) if run is not None else None
    if env_id is not None:
        return EvalTarget(model, config, EnvConfig(id=env_id, n_envs=1), None, run)
    if config is None:
        raise HarnessError("no config.yaml beside this model to say which env it plays; pass --env ID", where=model)
    vecnormalize = None
    if config.env.normalize is not None:
        vecnormalize = checkpoint_vecnormalize(model) or (run.vecnormalize if model == run.model else None)
        if vecnormalize is None or not vecnormalize.is_file():
            raise HarnessError("the run normalises observations but no VecNormalize statistics match this model",
                               where=model)
    return EvalTarget(model, config, config.env, vecnormalize, run)


__all__ = ["EvalTarget", "resolve_target"]
