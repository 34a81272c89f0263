"""Which features extractor reads an observation space: built-in names, a user's ``module:Class``, and ``auto``.

Each built-in extractor answers ``unfit_reasons(name, space)``; ``auto`` takes the first candidate with none (SB3's
``NatureCNN`` for images it fits, ``GridCNN`` for smaller ones, ...), and when none fits the error gives every
candidate's reasons, so a user can see why and what to change.
"""

from __future__ import annotations

import difflib
import inspect
import typing
from dataclasses import dataclass
from typing import Any

from gymnasium import spaces
from pydantic import ConfigDict, ValidationError, create_model
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from rlgru.algorithm.extractors import NATURE_CNN_MIN_SIDE, image_layout, resolved_encoding
from rlgru.runtime.object_paths import import_object

#: built-in name -> "module:Class"
BUILTIN_EXTRACTORS: dict[str, str] = {
    "mlp": "stable_baselines3.common.torch_layers:FlattenExtractor",
    "cnn": "stable_baselines3.common.torch_layers:NatureCNN",
    "grid_cnn": "rlgru.algorithm.extractors:GridCNN",
    "multi_input": "stable_baselines3.common.torch_layers:CombinedExtractor",
}
AUTO = "auto"
#: the names ``policy.extractor`` takes besides ``module:Class``
EXTRACTOR_NAMES: tuple[str, ...] = (AUTO, *BUILTIN_EXTRACTORS)
#: built-in name -> the SB3 policy alias prefix whose default extractor it is (``Cnn`` + GridCNN: a CNN policy)
POLICY_PREFIX = {"mlp": "Mlp", "cnn": "Cnn", "grid_cnn": "Cnn", "multi_input": "MultiInput"}
#: the spaces SB3 flattens (one-hot for the discrete ones)
FLAT_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)


class ExtractorMismatch(ValueError):
    """No features extractor (or not the one asked for) reads this observation space; the message says why."""


@dataclass(frozen=True)
class ExtractorChoice:
    """The extractor a policy gets, and why."""

    setting: str  # what was asked for: "auto", a built-in name or "module:Class"
    name: str  # what was chosen: a built-in name or "module:Class"
    extractor_class: type[BaseFeaturesExtractor]
    policy_prefix: str  # Mlp, Cnn or MultiInput: the SB3 policy alias to build
    reason: str = ""
    encoding: str = ""  # GridCNN's encoding once "auto" is resolved for the space

    @property
    def builtin_default(self) -> bool:
        """Whether the policy alias ``<prefix>Policy`` has this extractor already (no class needs passing)."""
        return self.name in ("mlp", "cnn", "multi_input")

    def describe(self, kwargs: dict[str, Any] | None = None) -> str:
        """One line: ``features extractor: GridCNN (rlgru.algorithm.extractors; encoding embedding);
        policy.extractor auto: a 7x7 image, ...``."""
        settings = dict(kwargs or {})
        if self.name == "grid_cnn" and settings.get("encoding", "auto") == "auto":
            settings["encoding"] = self.encoding
        details = "; ".join([self.extractor_class.__module__, *(f"{key} {value}" for key, value in settings.items())])
        why = f": {self.reason}" if self.reason else ""
        return f"features extractor: {self.extractor_class.__name__} ({details}); policy.extractor {self.setting}{why}"


def resolve_extractor(setting: str) -> type[BaseFeaturesExtractor]:
    """The class behind a built-in name or ``module:Class``; ``ValueError`` (one line) when there is none."""
    path = BUILTIN_EXTRACTORS.get(setting, setting)
    if ":" not in path:
        close = difflib.get_close_matches(setting, EXTRACTOR_NAMES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"unknown extractor {setting!r}{hint}; choose one of {', '.join(EXTRACTOR_NAMES)} or give "
            "'module:Class' naming a stable_baselines3 BaseFeaturesExtractor subclass"
        )
    target = import_object(path)  # the config names the key: policy.extractor
    if not (isinstance(target, type) and issubclass(target, BaseFeaturesExtractor)):
        raise ValueError(f"{setting!r} is {target!r}, not a subclass of stable_baselines3's BaseFeaturesExtractor")
    return target


def validate_extractor_settings(extractor_class: type[BaseFeaturesExtractor], settings: dict[str, Any]) -> dict:
    """``settings`` checked against the extractor's constructor (names, and types where it annotates them);
    ``ValueError`` naming the setting. Arguments after ``observation_space`` are its settings."""
    model = _settings_model(extractor_class)
    try:
        validated = model.model_validate(dict(settings))
    except ValidationError as error:
        first = error.errors()[0]
        name = ".".join(str(part) for part in first["loc"])
        known = [key for key in model.model_fields]
        if first["type"] == "extra_forbidden":
            close = difflib.get_close_matches(name, known, n=1)
            reason = f"unknown setting{f' (did you mean {close[0]!r}?)' if close else ''}"
        elif first["type"] == "missing":
            reason = "required setting is missing"
        else:
            reason = f"{first['msg']} (got {first.get('input')!r})"
        takes = ", ".join(known) if known else "no settings"
        raise ValueError(f"{name}: {reason}; {extractor_class.__name__} takes {takes}") from None
    return {key: getattr(validated, key, value) for key, value in settings.items()}


def unfit_reasons(name: str, space: spaces.Space) -> list[str]:
    """Why the built-in extractor ``name`` cannot read ``space`` (empty: it can). A user's class is trusted."""
    if name == "mlp":
        if isinstance(space, FLAT_SPACES):
            return []
        return [f"FlattenExtractor reads Box, Discrete, MultiDiscrete and MultiBinary spaces, not {_kind(space)}"]
    if name == "cnn":
        return _nature_cnn_reasons(space)
    if name == "grid_cnn":
        if isinstance(space, spaces.Box) and len(space.shape) in (2, 3):
            return []
        return [f"GridCNN reads images (a Box of 2 or 3 dimensions), not {summarize_space(space)}"]
    if name == "multi_input":
        if not isinstance(space, spaces.Dict):
            return [f"CombinedExtractor reads Dict spaces, not {_kind(space)}"]
        reasons = []
        for key, part in space.spaces.items():
            if is_image_space(part):
                reasons += _nature_cnn_reasons(
                    part, f"key {key!r} (SB3's CombinedExtractor reads images with NatureCNN): "
                )
            elif not isinstance(part, FLAT_SPACES):
                reasons.append(f"key {key!r} is {_kind(part)}, which SB3 cannot batch or flatten")
        return reasons
    return []


def choose_extractor(setting: str, space: spaces.Space) -> ExtractorChoice:
    """The extractor for ``setting`` (``auto``, a built-in name or ``module:Class``) on ``space``.

    ``auto``: a Dict goes to ``multi_input``; an image (SB3's test: uint8, 3 dimensions, 0..255) to ``cnn`` when
    NatureCNN fits it, else to ``grid_cnn``; anything else to ``mlp``. Raises ``ExtractorMismatch`` when the chosen
    or named built-in cannot read ``space``.
    """
    if setting != AUTO:
        extractor_class = resolve_extractor(setting)
        if setting in BUILTIN_EXTRACTORS:
            reasons = unfit_reasons(setting, space)
            if reasons:
                raise ExtractorMismatch(f"{setting} does not fit {summarize_space(space)}: {'; '.join(reasons)}")
            return ExtractorChoice(setting, setting, extractor_class, POLICY_PREFIX[setting], "", _encoding(space))
        prefix = "MultiInput" if isinstance(space, spaces.Dict) else ("Cnn" if is_image_space(space) else "Mlp")
        return ExtractorChoice(setting, setting, extractor_class, prefix)
    if isinstance(space, spaces.Dict):
        candidates = ["multi_input"]
    elif is_image_space(space):
        candidates = ["cnn", "grid_cnn"]
    else:
        candidates = ["mlp"]
    tried = []
    for name in candidates:
        reasons = unfit_reasons(name, space)
        if not reasons:
            reason = _why(name, space)
            return ExtractorChoice(AUTO, name, resolve_extractor(name), POLICY_PREFIX[name], reason, _encoding(space))
        tried.append(f"{name}: {'; '.join(reasons)}")
    raise ExtractorMismatch(
        f"auto finds no features extractor for {summarize_space(space)} ({'; '.join(tried)}); wrap the env so it "
        "observes what one reads (a MiniGrid env: minigrid.wrappers:ImgObsWrapper), or give 'module:Class' naming "
        "your own BaseFeaturesExtractor"
    )


def summarize_space(space: spaces.Space) -> str:
    """A space in one short line: ``Box(7, 7, 3) uint8``, ``Dict(image: Box(7, 7, 3) uint8, mission: MissionSpace)``."""
    if isinstance(space, spaces.Box):
        return f"Box({', '.join(str(n) for n in space.shape)}) {space.dtype}"
    if isinstance(space, spaces.Dict):
        return f"Dict({', '.join(f'{key}: {summarize_space(part)}' for key, part in space.spaces.items())})"
    if isinstance(space, spaces.Tuple):
        return f"Tuple({', '.join(summarize_space(part) for part in space.spaces)})"
    if isinstance(space, FLAT_SPACES):
        return repr(space)
    return type(space).__name__


def _kind(space: spaces.Space) -> str:
    return f"a {type(space).__name__}" if not isinstance(space, spaces.Box) else summarize_space(space)


def _nature_cnn_reasons(space: spaces.Space, where: str = "") -> list[str]:
    """Why SB3's NatureCNN cannot read ``space``; ``where`` prefixes each reason (a Dict's key)."""
    if not is_image_space(space):
        return [f"{where}NatureCNN reads uint8 images of 3 dimensions with values 0..255, not {summarize_space(space)}"]
    _, height, width, _ = image_layout(space)  # type: ignore[arg-type]
    if min(height, width) < NATURE_CNN_MIN_SIDE:
        return [
            f"{where}NatureCNN needs images of at least {NATURE_CNN_MIN_SIDE}x{NATURE_CNN_MIN_SIDE} pixels (its first "
            f"convolution is 8x8 with stride 4), not {_shape(space)}"
        ]
    return []


def _shape(space: spaces.Space) -> str:
    return "x".join(str(n) for n in space.shape)


def _encoding(space: spaces.Space) -> str:
    """What GridCNN's ``encoding: auto`` becomes for ``space``."""
    return resolved_encoding(space, "auto") if isinstance(space, spaces.Box) else ""


def _why(name: str, space: spaces.Space) -> str:
    if name == "grid_cnn":
        return (
            f"a {_shape(space)} image, too small for NatureCNN (at least {NATURE_CNN_MIN_SIDE}x{NATURE_CNN_MIN_SIDE})"
        )
    if name == "cnn":
        return "an image NatureCNN fits"
    if name == "multi_input":
        return "a Dict observation"
    return "a flat observation"


def _settings_model(extractor_class: type[BaseFeaturesExtractor]) -> Any:
    """A pydantic model of the extractor's settings: its constructor arguments after ``observation_space``."""
    signature = inspect.signature(extractor_class.__init__)
    try:
        hints = typing.get_type_hints(extractor_class.__init__, include_extras=True)
    except Exception:  # noqa: BLE001 - unresolvable hints: accept any value, let the constructor judge
        hints = {}
    fields: dict[str, Any] = {}
    extra = "forbid"
    for position, (name, parameter) in enumerate(signature.parameters.items()):
        if position < 2:  # self, observation_space
            continue
        if parameter.kind is parameter.VAR_KEYWORD:
            extra = "allow"
            continue
        if parameter.kind is parameter.VAR_POSITIONAL:
            continue
        default = ... if parameter.default is parameter.empty else parameter.default
        fields[name] = (hints.get(name, Any), default)
    return create_model(
        f"{extractor_class.__name__}Settings",
        __config__=ConfigDict(extra=extra, strict=False, arbitrary_types_allowed=True),
        **fields,
    )


__all__ = [
    "AUTO",
    "BUILTIN_EXTRACTORS",
    "EXTRACTOR_NAMES",
    "ExtractorChoice",
    "ExtractorMismatch",
    "choose_extractor",
    "resolve_extractor",
    "summarize_space",
    "unfit_reasons",
    "validate_extractor_settings",
]
