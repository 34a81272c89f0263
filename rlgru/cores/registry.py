"""The one list of memory cores: names, how to find a user's own core, and each core's typed settings.

Configs, policy classes (``Mlp<Name>Policy``), benchmark suites, reports, ``rlgru cores`` and the test matrices all
read this module, so adding a core is its file plus one line in ``BUILTIN_CORES``. A user's core needs no line at
all: ``register_core("name", MyCore)``, or ``"package.module:MyCore"`` wherever a core name is accepted.
"""

from __future__ import annotations

import difflib
import inspect
import typing
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import ConfigDict, ValidationError, create_model

from rlgru.cores.base import MemoryCore
from rlgru.runtime.object_paths import import_object

#: name -> "module:Class", imported on first use; the order is the order of tables and plots
BUILTIN_CORES: dict[str, str] = {
    "gru": "rlgru.cores.gru:GRUCore",
    "lstm": "rlgru.cores.lstm:LSTMCore",
    "rnn": "rlgru.cores.rnn:RNNCore",
    "mingru": "rlgru.cores.mingru:MinGRUCore",
    "lru": "rlgru.cores.lru:LRUCore",
    "memoryless": "rlgru.cores.memoryless:MemorylessCore",  # the baseline: the same policy with no recurrence
}

_user_cores: dict[str, type[MemoryCore]] = {}
#: the constructor arguments every core has; anything after them (keyword-only) is a setting
_CORE_ARGUMENTS = ("self", "input_size", "hidden_size", "n_layers")

#: what names a core wherever one is asked for: a registered name, "module:Class", or the class
CoreSpec = str | type[MemoryCore]


def core_names() -> list[str]:
    """Every registered name: built-in cores first, in ``BUILTIN_CORES`` order, then users' in registration order."""
    return [*BUILTIN_CORES, *(name for name in _user_cores if name not in BUILTIN_CORES)]


def register_core(name: str, core_class: type[MemoryCore] | None = None) -> Any:
    """Make ``core_class`` available as ``name`` (configs, suites, ``policy_kwargs``); usable as a decorator.

    Built-in names cannot be taken over: a run that says ``gru`` always means rlgru's GRU.
    """

    def register(cls: type[MemoryCore]) -> type[MemoryCore]:
        _check_core_class(cls, name)
        if name in BUILTIN_CORES:
            raise ValueError(f"core name {name!r} is built in; register yours under another name")
        if not name or not name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"core names are letters, digits, '-' and '_', got {name!r}")
        _user_cores[name] = cls
        return cls

    return register if core_class is None else register(core_class)


def resolve_core(spec: CoreSpec) -> type[MemoryCore]:
    """A core class from a registered name, a ``"module:Class"`` path, or the class itself."""
    if isinstance(spec, type):
        _check_core_class(spec, spec.__name__)
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"a core is a registered name, 'module:Class' or a MemoryCore subclass, got {spec!r}")
    if spec in _user_cores:
        return _user_cores[spec]
    if spec in BUILTIN_CORES:
        return _import_core(BUILTIN_CORES[spec], spec)
    if ":" in spec:
        return _import_core(spec, spec)
    raise ValueError(f"unknown core {spec!r}; choose one of {core_names()} or give 'module:Class'")


def core_spec(core_class: type[MemoryCore]) -> str:
    """What to write in a config or a saved model for ``core_class``: its registered name, else ``module:Class``."""
    for name in core_names():
        if resolve_core(name) is core_class:
            return name
    return f"{core_class.__module__}:{core_class.__qualname__}"


def core_label(core_class: type[MemoryCore]) -> str:
    """The ``<Name>`` of ``Mlp<Name>Policy``: the class's ``policy_name``, else derived from its class name."""
    return core_class.policy_name or core_class.__name__.removesuffix("Core")


def validate_core_settings(spec: CoreSpec, settings: dict[str, Any] | None) -> dict[str, Any]:
    """``settings`` checked against the core's keyword-only constructor arguments (types, ranges, unknown names).

    Raises ``ValueError`` whose message starts with the offending setting's name.
    """
    core_class = resolve_core(spec)
    model = _settings_model(core_class)
    try:
        validated = model.model_validate(dict(settings or {}))
    except ValidationError as error:
        first = error.errors()[0]
        name = ".".join(str(part) for part in first["loc"])
        known = list(model.model_fields)
        if first["type"] == "extra_forbidden":
            close = difflib.get_close_matches(name, known, n=1)
            reason = f"unknown setting{f' (did you mean {close[0]!r}?)' if close else ''}"
        else:
            reason = f"{first['msg']} (got {first.get('input')!r})"
        takes = ", ".join(known) if known else "no settings"
        raise ValueError(f"{name}: {reason}; core {core_spec(core_class)!r} takes {takes}") from None
    return {name: getattr(validated, name) for name in (settings or {})}


def core_settings(spec: CoreSpec) -> dict[str, tuple[Any, Any]]:
    """``{name: (type hint, default)}`` of a core's settings."""
    model = _settings_model(resolve_core(spec))
    return {name: (field.annotation, field.default) for name, field in model.model_fields.items()}


def make_core(spec: CoreSpec, input_size: int, hidden_size: int, n_layers: int = 1, **settings: Any) -> MemoryCore:
    """Build a core by name, path or class, with its settings validated."""
    core_class = resolve_core(spec)
    settings = validate_core_settings(core_class, settings)
    return core_class(int(input_size), int(hidden_size), int(n_layers), **settings)


@dataclass(frozen=True)
class CoreInfo:
    """One row of ``rlgru cores``: what a core costs at a given size."""

    name: str
    class_path: str
    params: int
    state_size: int
    native_resets: bool
    engine: str
    settings: dict[str, Any]
    summary: str


def describe_core(spec: CoreSpec, input_size: int = 64, hidden_size: int = 64, n_layers: int = 1) -> CoreInfo:
    """Parameters and state width of one layer stack at ``hidden_size``; on CPU, whether resets are native and what
    runs the recurrence."""
    core_class = resolve_core(spec)
    core = core_class(input_size, hidden_size, n_layers)
    doc = inspect.getdoc(core_class) or ""
    return CoreInfo(
        name=core_spec(core_class),
        class_path=f"{core_class.__module__}:{core_class.__qualname__}",
        params=sum(p.numel() for p in core.parameters()),
        state_size=core.state_size,
        native_resets=core.resets_natively("cpu"),
        engine=core.engine("cpu"),
        settings={name: default for name, (_, default) in core_settings(core_class).items()},
        summary=doc.splitlines()[0] if doc else "",
    )


# ------------------------------------------------------------------------------------------------- internals
def _import_core(path: str, what: str) -> type[MemoryCore]:
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"a core path is 'module:Class', got {what!r}")
    target = import_object(path, f"core {what!r}")
    _check_core_class(target, what)
    return target


def _check_core_class(candidate: Any, what: str) -> None:
    if not (isinstance(candidate, type) and issubclass(candidate, MemoryCore)):
        raise ValueError(f"core {what!r} is {candidate!r}, not a subclass of rlgru.cores.MemoryCore")


@cache
def _settings_model(core_class: type[MemoryCore]) -> Any:
    """A pydantic model of the core's settings: its keyword-only constructor arguments, with their hints."""
    signature = inspect.signature(core_class.__init__)
    try:
        hints = typing.get_type_hints(core_class.__init__, include_extras=True)
    except Exception:  # noqa: BLE001 - unresolvable hints: accept any value, let the constructor judge
        hints = {}
    fields: dict[str, Any] = {}
    for name, parameter in signature.parameters.items():
        if name in _CORE_ARGUMENTS or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if parameter.default is parameter.empty:
            raise TypeError(f"{core_class.__name__}: setting {name!r} needs a default (cores are built by name)")
        fields[name] = (hints.get(name, Any), parameter.default)
    return create_model(f"{core_class.__name__}Settings", __config__=ConfigDict(extra="forbid", strict=False), **fields)


__all__ = [
    "BUILTIN_CORES",
    "CoreInfo",
    "CoreSpec",
    "core_label",
    "core_names",
    "core_settings",
    "core_spec",
    "describe_core",
    "make_core",
    "register_core",
    "resolve_core",
    "validate_core_settings",
]
