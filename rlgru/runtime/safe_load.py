"""Load SB3 model zips and VecNormalize statistics without running code that a file carries.

An SB3 ``model.zip`` stores some attributes (spaces, schedules, the policy class) as cloudpickled bytes, and
``vecnormalize.pkl`` is a pickle: unpickling either can call any importable function with arguments chosen by
whoever wrote the file. Here pickles are read by an unpickler that may only *build* plain data (numpy arrays and
generators, Gymnasium spaces, SB3 schedules and normalisation statistics, builtin containers) and may only *name*
(never call) the classes a model refers to: policies, features extractors, activations and optimizers of rlgru,
SB3, sb3-contrib and torch, and a user's own memory core or features extractor once its module is imported.
Everything rlgru writes loads this way; anything else is refused with ``UntrustedPickleError`` unless the caller
passes ``trust_pickle=True`` (``--trust-pickle`` on the command line), as ``torch.load(weights_only=False)`` would.
"""

from __future__ import annotations

import base64
import functools
import importlib
import inspect
import io
import json
import pickle
import sys
import types
import zipfile
from collections import OrderedDict, deque
from pathlib import Path
from typing import IO, Any

#: top-level packages whose modules may be imported to resolve a pickled name (importing others could run code)
TRUSTED_PACKAGES = frozenset(
    {"builtins", "collections", "numpy", "gymnasium", "torch", "stable_baselines3", "sb3_contrib", "rlgru", "envs"}
)
#: functions and classes a pickle may call to build data: ``(module, name)``
CONSTRUCTORS = frozenset(
    {
        *(
            ("builtins", name)
            for name in (
                "set",
                "frozenset",
                "complex",
                "slice",
                "range",
                "bytearray",
                "list",
                "dict",
                "tuple",
                "int",
                "float",
                "bool",
                "str",
                "bytes",
            )
        ),
        ("collections", "deque"),
        ("collections", "OrderedDict"),
        *((f"numpy.{core}.multiarray", name) for core in ("core", "_core") for name in ("_reconstruct", "scalar")),
        *((f"numpy.{core}.numeric", "_frombuffer") for core in ("core", "_core")),
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        *(
            ("numpy.random._pickle", name)
            for name in ("__generator_ctor", "__bit_generator_ctor", "__randomstate_ctor")
        ),
        ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
        ("numpy.random._generator", "Generator"),
        ("numpy.random.mtrand", "RandomState"),
        ("stable_baselines3.common.utils", "FloatSchedule"),
        ("stable_baselines3.common.utils", "LinearSchedule"),
        ("stable_baselines3.common.utils", "ConstantSchedule"),
        ("stable_baselines3.common.running_mean_std", "RunningMeanStd"),
        ("stable_baselines3.common.vec_env.vec_normalize", "VecNormalize"),
    }
)
_CONTAINERS = (list, dict, set, deque, OrderedDict)
_NOT_DATA = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType, functools.partial)

TRUST_HINT = (
    "loading it could run code from the file; if you made this file or trust whoever did, pass "
    "--trust-pickle (Python: trust_pickle=True)"
)


class UntrustedPickleError(ValueError):
    """A file holds a pickled object that rlgru will not build without ``trust_pickle=True``."""


def restricted_loads(data: bytes, where: str = "pickle") -> Any:
    """Unpickle ``data`` building only allow-listed objects; ``UntrustedPickleError`` names what was refused."""
    return _RestrictedUnpickler(io.BytesIO(data), where).load()


def checked_custom_objects(
    source: str | Path | IO[bytes], custom_objects: dict[str, Any] | None = None, *, trust_pickle: bool = False
) -> dict[str, Any] | None:
    """SB3 ``custom_objects`` holding every pickled attribute of a model zip, unpickled by ``restricted_loads``.

    SB3's ``load`` takes an attribute from ``custom_objects`` instead of cloudpickle-loading it, so with this dict
    nothing in the file's ``data`` is ever cloudpickled. The caller's own ``custom_objects`` win; with
    ``trust_pickle`` the caller's dict comes back unchanged. A file that is not a zip with a ``data`` member is left
    for SB3 to reject in its own words.
    """
    if trust_pickle:
        return custom_objects
    name = getattr(source, "name", None) or str(source)
    try:
        data = json.loads(_read_member(source, "data"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return custom_objects
    objects = dict(custom_objects or {})
    for key, item in data.items():
        if key in objects or not (isinstance(item, dict) and ":serialized:" in item):
            continue
        where = f"{name}: data[{key!r}]"
        try:
            payload = base64.b64decode(item[":serialized:"].encode())
        except (AttributeError, ValueError) as error:
            raise UntrustedPickleError(f"{where}: not base64 ({error})") from None
        objects[key] = restricted_loads(payload, where)
    return objects


def load_algorithm(
    algorithm_class: Any,
    path: str | Path | IO[bytes],
    *,
    trust_pickle: bool = False,
    custom_objects: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """``algorithm_class.load(path, ...)`` for any SB3 algorithm (sb3-contrib's too), safely unless trusted."""
    custom_objects = checked_custom_objects(path, custom_objects, trust_pickle=trust_pickle)
    if "trust_pickle" in inspect.signature(algorithm_class.load).parameters:  # RecurrentPPO checks again itself
        kwargs["trust_pickle"] = trust_pickle
    return algorithm_class.load(path, custom_objects=custom_objects, **kwargs)


def load_vecnormalize(path: str | Path, venv: Any, *, trust_pickle: bool = False) -> Any:
    """``VecNormalize.load(path, venv)``, building only statistics and spaces unless ``trust_pickle``."""
    from stable_baselines3.common.vec_env import VecNormalize

    data = Path(path).read_bytes()
    statistics = pickle.loads(data) if trust_pickle else restricted_loads(data, str(path))  # noqa: S301
    if not isinstance(statistics, VecNormalize):
        raise ValueError(f"{path}: holds a {type(statistics).__name__}, not VecNormalize statistics")
    statistics.set_venv(venv)
    return statistics


def _read_member(source: str | Path | IO[bytes], member: str) -> bytes:
    if isinstance(source, (str, Path)):
        with zipfile.ZipFile(source) as archive:
            return archive.read(member)
    start = source.tell()
    try:
        with zipfile.ZipFile(source) as archive:
            return archive.read(member)
    finally:
        source.seek(start)  # SB3 reads the same handle next


def _is_constructor(module: str, name: str, obj: Any) -> bool:
    if (module, name) in CONSTRUCTORS:
        return True
    if not isinstance(obj, type):
        return False
    import numpy as np
    from gymnasium.spaces import Space

    # numpy scalar types (np.float32(...)) and bit generators; every Gymnasium space
    return (module.startswith("numpy") and (issubclass(obj, np.generic) or module.startswith("numpy.random"))) or (
        module.startswith("gymnasium.spaces") and issubclass(obj, Space)
    )


def _is_named_class(module: str, obj: Any) -> bool:
    """Classes a model may name but the unpickler never calls: networks, policies, optimizers."""
    if not isinstance(obj, type):
        return False
    import torch

    if module.startswith(("torch.nn.", "torch.optim.")) or module.split(".")[0] in (
        "rlgru",
        "stable_baselines3",
        "sb3_contrib",
        "envs",
    ):
        return issubclass(obj, (torch.nn.Module, torch.optim.Optimizer))
    return False


#: base classes whose subclasses a model may name from a user's own (already imported) module; the memory cores
#: add theirs (``rlgru.cores.base``), so this layer needs to know nothing of them
_EXTENSION_BASES: list[type] = []


def allow_user_subclasses_of(base: type) -> None:
    """Let a model name a user's subclass of ``base`` (a memory core, a features extractor) once its module is
    imported."""
    if base not in _EXTENSION_BASES:
        _EXTENSION_BASES.append(base)


def _user_extension(module: str, name: str) -> type | None:
    """A user's ``MemoryCore`` or SB3 features extractor, named by a model: allowed when its module is already
    imported (looking it up then runs nothing new), like ``torch.serialization.add_safe_globals``."""
    if module not in sys.modules:
        return None
    obj: Any = sys.modules[module]
    for part in name.split("."):
        obj = getattr(obj, part, None)
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

    bases = (*_EXTENSION_BASES, BaseFeaturesExtractor)
    return obj if isinstance(obj, type) and issubclass(obj, bases) else None


def _resolve(module: str, name: str, where: str) -> tuple[Any, bool]:
    """``(object, may be called)`` for a pickled global, or ``UntrustedPickleError``."""
    refused = UntrustedPickleError(
        f"{where}: refusing the pickled global {module}.{name}: it is not on rlgru's allow-list, and {TRUST_HINT}"
    )
    if module.split(".")[0] not in TRUSTED_PACKAGES:
        user_class = _user_extension(module, name)
        if user_class is None and name[:1].isupper():  # looks like a class: perhaps the user's own
            raise UntrustedPickleError(
                f"{refused}; a memory core or features extractor of your own is allowed once "
                f"its module is imported (import {module} before loading)"
            )
        if user_class is None:
            raise refused
        return user_class, False
    try:
        obj: Any = importlib.import_module(module)
        for part in name.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as error:
        raise pickle.UnpicklingError(f"{where}: cannot find {module}.{name} ({error})") from None
    if _is_constructor(module, name, obj):
        return obj, True
    if _is_named_class(module, obj):
        return obj, False
    raise refused


class _RestrictedUnpickler(pickle._Unpickler):  # the Python unpickler: its opcodes can be checked one by one
    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file: IO[bytes], where: str) -> None:
        super().__init__(file)
        self.where = where
        self._callable: set[int] = set()  # ids of globals that REDUCE/NEWOBJ may call

    def find_class(self, module: str, name: str) -> Any:
        obj, may_call = _resolve(module, name, self.where)
        if may_call:
            self._callable.add(id(obj))
        return obj

    def _check_call(self, target: Any) -> None:
        if id(target) not in self._callable:
            label = getattr(target, "__qualname__", type(target).__name__)
            raise UntrustedPickleError(f"{self.where}: refusing to call {label} while unpickling; {TRUST_HINT}")

    def _check_mutation(self, target: Any, containers_only: bool) -> None:
        bad = not isinstance(target, _CONTAINERS) if containers_only else isinstance(target, _NOT_DATA)
        if bad:
            raise UntrustedPickleError(
                f"{self.where}: refusing to modify {type(target).__name__} while unpickling; {TRUST_HINT}"
            )

    def load_reduce(self) -> None:
        self._check_call(self.stack[-2])
        super().load_reduce()

    def load_newobj(self) -> None:
        self._check_call(self.stack[-2])
        super().load_newobj()

    def load_newobj_ex(self) -> None:
        self._check_call(self.stack[-3])
        super().load_newobj_ex()

    def load_build(self) -> None:
        self._check_mutation(self.stack[-2], containers_only=False)
        super().load_build()

    def load_append(self) -> None:
        self._check_mutation(self.stack[-2], containers_only=True)
        super().load_append()

    def load_appends(self) -> None:
        self._check_mutation(self.metastack[-1][-1] if self.metastack else None, containers_only=True)
        super().load_appends()

    def load_setitem(self) -> None:
        self._check_mutation(self.stack[-3], containers_only=True)
        super().load_setitem()

    def load_setitems(self) -> None:
        self._check_mutation(self.metastack[-1][-1] if self.metastack else None, containers_only=True)
        super().load_setitems()

    def load_additems(self) -> None:
        self._check_mutation(self.metastack[-1][-1] if self.metastack else None, containers_only=True)
        super().load_additems()

    def _refuse(self) -> None:
        raise UntrustedPickleError(f"{self.where}: refusing an old-style pickle instruction; {TRUST_HINT}")

    # INST and OBJ call classes outside REDUCE's path; protocol 2+ pickles (all SB3 writes) never use them
    load_inst = load_obj = _refuse


for _opcode, _method in (
    (pickle.REDUCE, "load_reduce"),
    (pickle.NEWOBJ, "load_newobj"),
    (pickle.NEWOBJ_EX, "load_newobj_ex"),
    (pickle.BUILD, "load_build"),
    (pickle.APPEND, "load_append"),
    (pickle.APPENDS, "load_appends"),
    (pickle.SETITEM, "load_setitem"),
    (pickle.SETITEMS, "load_setitems"),
    (pickle.ADDITEMS, "load_additems"),
    (pickle.INST, "load_inst"),
    (pickle.OBJ, "load_obj"),
):
    _RestrictedUnpickler.dispatch[_opcode[0]] = getattr(_RestrictedUnpickler, _method)


__all__ = [
    "CONSTRUCTORS",
    "TRUSTED_PACKAGES",
    "TRUST_HINT",
    "UntrustedPickleError",
    "allow_user_subclasses_of",
    "checked_custom_objects",
    "load_algorithm",
    "load_vecnormalize",
    "restricted_loads",
]
