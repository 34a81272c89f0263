"""The run configuration: typed pydantic models, YAML loading and ``--set key.path=value`` overrides.

Every model forbids unknown keys, so a typo fails loudly (with a suggestion) instead of silently training with a
default. Validation errors are turned into ``HarnessError`` lines that name the key path, e.g.
``algorithm.n_steps: Input should be a valid integer``.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from rlgru._moved_modules import current_object_path
from rlgru.algorithm.extractor_choice import AUTO, resolve_extractor, validate_extractor_settings
from rlgru.cores.registry import resolve_core, validate_core_settings
from rlgru.harness.config_base import StrictModel
from rlgru.harness.errors import HarnessError
from rlgru.harness.tune_space import TuneConfig, set_path
from rlgru.runtime.files import atomic_write_text

LINEAR_PREFIX = "lin_"


# ------------------------------------------------------------------------------------------------ schedules
def _parse_schedule(value: Any) -> float | str:
    """A positive number, or ``"lin_<number>"`` (rl-zoo3's linear decay from that number to 0)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a positive number or '{LINEAR_PREFIX}<number>', got {value!r}")
    text = value.strip() if isinstance(value, str) else value
    linear = isinstance(text, str) and text.startswith(LINEAR_PREFIX)
    try:
        number = float(text[len(LINEAR_PREFIX) :] if linear else text)
    except (TypeError, ValueError):
        raise ValueError(f"expected a positive number or '{LINEAR_PREFIX}<number>', got {value!r}") from None
    if not number > 0:
        raise ValueError(f"must be positive, got {value!r}")
    return f"{LINEAR_PREFIX}{number:g}" if linear else number


#: a constant or an rl-zoo3 style linear schedule string; ``rlgru.harness.agent.to_schedule`` makes it callable
ScheduleValue = Annotated[float | str, BeforeValidator(_parse_schedule)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
UnitInterval = Annotated[float, Field(ge=0.0, le=1.0)]


# ------------------------------------------------------------------------------------------------ sections
class WrapperConfig(StrictModel):
    """A Gymnasium wrapper applied to each env: a short name from ``envs.wrappers`` or ``module:Class``."""

    name: Annotated[str, AfterValidator(current_object_path)]  # rlgru modules under their current names
    kwargs: dict[str, Any] = Field(default_factory=dict)


def _wrapper_shorthand(value: Any) -> Any:
    """Accept rl-zoo3's forms too: ``"module:Class"`` or ``{"module:Class": {kwargs}}``."""
    if isinstance(value, str):
        return {"name": value}
    if isinstance(value, dict) and len(value) == 1 and not {"name", "kwargs"} & set(value):
        ((name, kwargs),) = value.items()
        return {"name": name, "kwargs": {} if kwargs is None else kwargs}
    return value


class VecNormalizeConfig(StrictModel):
    """``VecNormalize`` arguments; its ``gamma`` is always ``algorithm.gamma`` (as rl-zoo3 does)."""

    norm_obs: bool = True
    norm_reward: bool = True
    clip_obs: Annotated[float, Field(gt=0)] = 10.0
    clip_reward: Annotated[float, Field(gt=0)] = 10.0
    epsilon: Annotated[float, Field(gt=0)] = 1e-8
    norm_obs_keys: list[str] | None = None


def _normalize_shorthand(value: Any) -> Any:
    """``normalize: true`` means default VecNormalize arguments, ``false`` means none."""
    if value is True:
        return {}
    if value is False:
        return None
    return value


class EnvConfig(StrictModel):
    """Which env to train on and how to vectorise it."""

    id: str = Field(description="Gymnasium id (ours under rlgru/ or any installed one) or a module:Class entry point")
    env_kwargs: dict[str, Any] = Field(default_factory=dict)
    wrappers: list[Annotated[WrapperConfig, BeforeValidator(_wrapper_shorthand)]] = Field(default_factory=list)
    n_envs: PositiveInt = 8
    vec_env: Literal["dummy", "subprocess", "batched"] = Field(
        default="dummy", description="batched: the task's natively batched version (envs.batched), no per-env loop"
    )
    normalize: Annotated[VecNormalizeConfig | None, BeforeValidator(_normalize_shorthand)] = None


IMPLEMENTATIONS = ("rlgru", "sb3-contrib")


class AlgorithmConfig(StrictModel):
    """``RecurrentPPO`` hyper-parameters (same names and defaults as sb3-contrib's RecurrentPPO)."""

    implementation: Literal["rlgru", "sb3-contrib"] = Field(
        default="rlgru", description="sb3-contrib: its LSTM RecurrentPPO, as a reference to compare against"
    )
    learning_rate: ScheduleValue = 3e-4
    n_steps: PositiveInt = 128
    batch_size: Annotated[int, Field(ge=2)] = 128
    n_epochs: PositiveInt = 10
    gamma: UnitInterval = 0.99
    gae_lambda: UnitInterval = 0.95
    clip_range: ScheduleValue = 0.2
    clip_range_vf: ScheduleValue | None = None
    normalize_advantage: bool = True
    ent_coef: Annotated[float, Field(ge=0)] = 0.0
    vf_coef: Annotated[float, Field(ge=0)] = 0.5
    max_grad_norm: Annotated[float, Field(gt=0)] = 0.5
    use_sde: bool = False
    sde_sample_freq: int = -1
    target_kl: Annotated[float, Field(gt=0)] | None = None
    max_seq_len: PositiveInt | None = Field(
        default=None, description="truncated-BPTT length; None: min(n_steps, batch_size)"
    )
    fast_paths: bool = Field(
        default=True,
        description="false: the definition only (autograd, PyTorch cores), as RLGRU_NO_FAST_PATHS=1 does for a process",
    )


class NetArchConfig(StrictModel):
    """Separate actor (``pi``) and critic (``vf``) MLP heads after the memory core."""

    pi: list[PositiveInt] = Field(default_factory=list)
    vf: list[PositiveInt] = Field(default_factory=list)


ACTIVATIONS = ("tanh", "relu", "elu", "leaky_relu", "gelu", "silu")


class PolicyConfig(StrictModel):
    """The recurrent policy: memory core, when its state is reset, and the MLP heads after it."""

    core: str = Field(default="gru", description="a registered core name (rlgru cores) or module:Class")
    core_kwargs: dict[str, Any] = Field(default_factory=dict, description="the core's own settings")
    hidden_size: PositiveInt = 256
    n_layers: PositiveInt = 1
    shared_core: bool = False
    critic_core: bool = True
    critic_trains_core: bool = Field(
        default=True, description="with shared_core: the value loss trains the shared core too (sb3-contrib: no)"
    )
    hidden_reset: Literal["episode", "trial", "never"] = "episode"
    net_arch: list[PositiveInt] | NetArchConfig | None = None
    activation: Literal["tanh", "relu", "elu", "leaky_relu", "gelu", "silu"] = "tanh"
    ortho_init: bool = True
    extractor: str = Field(
        default="auto",
        description="features extractor: auto (multi_input for Dict, cnn for images NatureCNN fits, grid_cnn for "
        "smaller ones, else mlp), one of those names, or module:Class naming a BaseFeaturesExtractor subclass",
    )
    features_extractor_kwargs: dict[str, Any] = Field(default_factory=dict, description="the extractor's settings")
    log_std_init: float = 0.0

    @field_validator("core")
    @classmethod
    def _core_exists(cls, core: str) -> str:
        resolve_core(core)  # raises ValueError naming the registered cores
        return core

    @field_validator("extractor")
    @classmethod
    def _extractor_exists(cls, extractor: str) -> str:
        if extractor != AUTO:
            resolve_extractor(extractor)  # imports a module:Class, so a saved model naming it loads safely later
        return extractor

    @field_validator("features_extractor_kwargs")
    @classmethod
    def _extractor_settings_are_valid(cls, settings: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        extractor = info.data.get("extractor", AUTO)  # absent: the extractor itself was wrong, the error to show
        if extractor == AUTO:  # the class depends on the env's observations: checked when the agent is built
            return settings
        return validate_extractor_settings(resolve_extractor(extractor), settings)

    @field_validator("core_kwargs")
    @classmethod
    def _core_settings_are_valid(cls, settings: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if "core" in info.data:  # else the core itself was wrong, and that is the error to show
            return validate_core_settings(info.data["core"], settings)
        return settings


class GuardConfig(StrictModel):
    """When a run counts as diverged and stops (exit 3, its last good checkpoint kept): see
    ``rlgru.runtime.divergence``."""

    finite: bool = Field(default=True, description="stop on a non-finite reward, observation, loss or weight")
    max_weight_growth: Annotated[float, Field(gt=1)] | None = Field(
        default=100.0,
        description="stop when the weights' norm grows this many times over its value at the start; None: never",
    )


class TrainingConfig(StrictModel):
    """Budget, logging and checkpoints. Frequencies count env steps summed over all envs."""

    total_timesteps: PositiveInt
    checkpoint_freq: NonNegativeInt = Field(default=50_000, description="0 disables periodic checkpoints")
    log_interval: PositiveInt = 1
    device: str = Field(default="cpu", description="small recurrent nets run faster on CPU than on a GPU")
    torch_threads: PositiveInt | None = Field(
        default=1,
        description="torch intra-op threads; 1 is fastest for policies this size (benchmarks/training_speed.py "
        "--threads: two OpenMP threads were slower for rlgru and SB3 alike); None: torch's default",
    )
    verbose: Annotated[int, Field(ge=0, le=2)] = 0
    guard: GuardConfig = Field(default_factory=GuardConfig)


class EvaluationConfig(StrictModel):
    """Evaluation during training (every ``freq`` steps, 0: never) and at the end (``eval.json``)."""

    episodes: PositiveInt = 100
    freq: NonNegativeInt = 0
    deterministic: bool = True
    n_envs: PositiveInt | None = Field(default=None, description="None: as many as env.n_envs")


class RunConfig(StrictModel):
    """A whole training run: everything ``rlgru train`` needs, and what it writes to ``config.yaml``."""

    seed: NonNegativeInt = 0
    env: EnvConfig
    algorithm: AlgorithmConfig = Field(default_factory=AlgorithmConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    training: TrainingConfig
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    tune: TuneConfig | None = Field(default=None, description="what `rlgru tune` searches; `rlgru train` ignores it")

    @field_validator("env")
    @classmethod
    def _env_id_not_empty(cls, env: EnvConfig) -> EnvConfig:
        if not env.id.strip():
            raise ValueError("env.id must not be empty")
        return env

    @model_validator(mode="after")
    def _batch_fits_in_a_rollout(self) -> RunConfig:
        """PPO's minibatches are cut from one rollout: a larger batch_size would be shrunk without a word."""
        rollout = self.env.n_envs * self.algorithm.n_steps
        if self.algorithm.batch_size > rollout:
            raise ValueError(
                f"algorithm.batch_size {self.algorithm.batch_size} is larger than a rollout (env.n_envs "
                f"{self.env.n_envs} x algorithm.n_steps {self.algorithm.n_steps} = {rollout}); lower it "
                "or collect longer rollouts"
            )
        return self

    @model_validator(mode="after")
    def _reference_is_plain_lstm(self) -> RunConfig:
        """sb3-contrib's RecurrentPPO has one LSTM core kind, episode resets, no sequence-length knob, and a shared
        LSTM that only the policy loss trains."""
        if self.algorithm.implementation != "sb3-contrib":
            return self
        wrong = [
            f"{key} is {value!r}"
            for key, value, allowed in (
                ("policy.core", self.policy.core, "lstm"),
                ("policy.hidden_reset", self.policy.hidden_reset, "episode"),
                ("algorithm.max_seq_len", self.algorithm.max_seq_len, None),
            )
            if value != allowed
        ]
        if self.policy.shared_core and self.policy.critic_trains_core:
            wrong.append("policy.critic_trains_core is True with policy.shared_core")
        if wrong:
            raise ValueError(
                "algorithm.implementation sb3-contrib needs policy.core lstm, policy.hidden_reset "
                "episode, no algorithm.max_seq_len and, with policy.shared_core, policy.critic_trains_core"
                f" false (its shared LSTM is not trained by the value loss); here {', '.join(wrong)}"
            )
        return self

    @model_validator(mode="after")
    def _tune_space_names_settings(self) -> RunConfig:
        """Every searched key path names a setting, and every bound (each choice) is a value that setting takes."""
        if self.tune is None or self.tune.space is None:
            return self
        base = self.model_dump(mode="json", exclude={"tune"})
        for key_path, distribution in self.tune.space.items():
            problem = _unknown_setting(key_path)
            if problem:
                raise ValueError(f"tune.space.{key_path}: {problem}")
            for value in distribution.endpoints():
                trial = copy.deepcopy(base)
                set_path(trial, key_path, value)
                try:
                    RunConfig.model_validate(trial)
                except ValidationError as error:
                    own = [item for item in error.errors() if _format_location(item["loc"]) == key_path]
                    if own:
                        message = own[0]["msg"].removeprefix("Value error, ")
                        raise ValueError(
                            f"tune.space.{key_path}: {distribution.kind} value {value!r} is not allowed: {message}"
                        ) from None
        return self


def _unknown_setting(key_path: str) -> str | None:
    """Why ``key_path`` names no setting of a run config (``None``: it does)."""
    model: Any = RunConfig
    keys = key_path.split(".")
    for depth, key in enumerate(keys):
        fields = getattr(model, "model_fields", {})
        if key not in fields or (depth == 0 and key in ("tune", "seed")):
            where = ".".join(keys[:depth]) or "a run config"
            close = difflib.get_close_matches(key, [name for name in fields if name != "tune"], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            return f"unknown parameter: {where} has no setting {key!r}{hint}"
        inner = _model_in(fields[key].annotation)
        if depth < len(keys) - 1:
            if inner is None:
                return f"{'.'.join(keys[: depth + 1])} is a setting, not a section"
            model = inner
        elif inner is not None and key != "net_arch":
            return "is a section: name one of its settings"
    return None


# --------------------------------------------------------------------------------------------------- YAML
class _ConfigLoader(yaml.SafeLoader):
    """Safe YAML that also reads ``1e6`` and ``3e-4`` as floats (YAML 1.1 wants a dot: ``3.0e-4``)."""


_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str, where: str | Path) -> Any:
    try:
        return yaml.load(text, Loader=_ConfigLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise HarnessError(f"invalid YAML{at}: {problem}", where=where) from None


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """The top-level mapping of a YAML file; a missing, unreadable or non-mapping file is a ``HarnessError``."""
    path = Path(path)
    if not path.exists():
        raise HarnessError("no such file", where=path)
    if path.is_dir():
        raise HarnessError("is a directory, expected a YAML file", where=path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise HarnessError(f"cannot read: {error}", where=path) from None
    data = parse_yaml(text, path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise HarnessError(
            f"expected a mapping of config sections at the top level, got {type(data).__name__}", where=path
        )
    return data


# ------------------------------------------------------------------------------------------------ overrides
def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply one ``key.path=value`` in place; the value is parsed as YAML (``[64, 64]``, ``true``, ``lin_1e-3``)."""
    key_path, sep, raw_value = assignment.partition("=")
    keys = key_path.strip().split(".")
    if not sep or not all(keys):
        raise HarnessError(f"expected key.path=value, got {assignment!r}", where="--set")
    set_path(data, ".".join(keys), parse_yaml(raw_value, f"--set {key_path}"))


# ------------------------------------------------------------------------------------------------ loading
def load_config(path: str | Path, overrides: Sequence[str] = ()) -> RunConfig:
    """Read a YAML config, apply ``--set`` overrides in order, validate. Errors name the file and key path."""
    data = read_yaml_mapping(Path(path))
    for assignment in overrides:
        apply_override(data, assignment)
    return validate_config(data, where=path)


def validate_config(data: dict[str, Any], where: str | Path) -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as error:
        lines = [describe_error(item) for item in error.errors()]
        message = lines[0] if len(lines) == 1 else "\n  ".join(["invalid config:", *lines])
        raise HarnessError(message, where=where) from None


def config_to_dict(config: RunConfig) -> dict[str, Any]:
    """Plain data (JSON types only), as written to a run's ``config.yaml``."""
    return config.model_dump(mode="json")


def dump_config(config: RunConfig, path: Path) -> None:
    atomic_write_text(path, yaml.safe_dump(config_to_dict(config), sort_keys=False))


#: settings that change how a run executes, not what it learns: a resume may differ in them (a run started when the
#: thread default was torch's own resumes under today's default of one thread)
#: settings that change how a run executes, not what it computes (fast paths: the same training up to rounding)
EXECUTION_ONLY_KEYS = frozenset({"training.torch_threads", "training.verbose", "algorithm.fast_paths"})


def _current_names(value: Any) -> Any:
    """``value`` with every ``rlgru.<old module>:Name`` string under its current module (configs saved before the
    package's wings name the same objects by their old modules)."""
    if isinstance(value, str):
        return current_object_path(value)
    if isinstance(value, list):
        return [_current_names(item) for item in value]
    if isinstance(value, dict):
        return {key: _current_names(item) for key, item in value.items()}
    return value


def differing_keys(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Key paths whose values differ between two config dicts (used to guard ``--resume``), execution-only
    settings left out."""
    keys: list[str] = []
    for key in sorted(set(old) | set(new)):
        path = f"{prefix}{key}"
        if path in EXECUTION_ONLY_KEYS:
            continue
        a, b = _current_names(old.get(key)), _current_names(new.get(key))
        if isinstance(a, dict) and isinstance(b, dict):
            keys.extend(differing_keys(a, b, f"{path}."))
        elif a != b:
            keys.append(path)
    return keys


# ------------------------------------------------------------------------------------------------ messages
def _format_location(location: Iterable[int | str]) -> str:
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _is_union_tag(part):
            continue  # pydantic names union members in the path (list[int], NetArchConfig): not a user key
        else:
            text += f".{part}" if text else part
    return text or "(top level)"


def _is_union_tag(part: str) -> bool:
    return part.endswith("]") or part[:1].isupper() or part.startswith("function-")


def describe_error(error: Any, root: type[BaseModel] | None = None) -> str:
    """One line for one pydantic error: the key path, what is wrong, a "did you mean" for misspelt keys."""
    location = tuple(error["loc"])
    path = _format_location(location)
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{path}: unknown key{_suggestion(location, root or RunConfig)}"
    message = error["msg"].removeprefix("Value error, ")
    if kind == "missing":
        return f"{path}: required key is missing"
    value = error.get("input")
    if kind != "value_error" and not isinstance(value, dict | list):
        message += f" (got {value!r})"
    if kind == "value_error" and not location:
        return message  # a check across sections (ours): its message starts with the key paths it is about
    setting = re.match(r"^(\w+): (.*)$", message, re.DOTALL)
    if kind == "value_error" and location[-1:] == ("core_kwargs",) and setting:
        return f"{path}.{setting[1]}: {setting[2]}"  # a core setting's error names that setting's key path
    return f"{path}: {message}"


def _suggestion(location: tuple[int | str, ...], root: type[BaseModel]) -> str:
    """'did you mean' for a misspelt key, from the fields of the model that holds it."""
    model: Any = root
    for part in location[:-1]:
        if isinstance(part, int) or _is_union_tag(str(part)):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return ""
        model = _model_in(field.annotation)
        if model is None:
            return ""
    names = list(getattr(model, "model_fields", {}))
    close = difflib.get_close_matches(str(location[-1]), names, n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f"; allowed keys: {', '.join(names)}" if names else ""


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as ``list[Annotated[WrapperConfig, ...]] | None``."""
    if isinstance(annotation, type) and not get_args(annotation) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


__all__ = [
    "ACTIVATIONS",
    "IMPLEMENTATIONS",
    "LINEAR_PREFIX",
    "AlgorithmConfig",
    "EnvConfig",
    "EvaluationConfig",
    "GuardConfig",
    "NetArchConfig",
    "PolicyConfig",
    "RunConfig",
    "ScheduleValue",
    "TrainingConfig",
    "VecNormalizeConfig",
    "WrapperConfig",
    "apply_override",
    "config_to_dict",
    "describe_error",
    "differing_keys",
    "dump_config",
    "load_config",
    "parse_yaml",
    "read_yaml_mapping",
    "validate_config",
]
