"""How a run's core shows in tables and plots: ``gru`` at the suite's width, ``gru-eqp`` at equal parameters.

Suites with ``equal_parameters`` run a core twice (see ``rlgru.bench.sizing``); the report keeps those apart as two
*variants* of the core, and orders them registered cores first, their equal-parameter runs next, the reference last.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rlgru.bench.suite import REFERENCE_CORE
from rlgru.cores.registry import core_names
from rlgru.harness.suites import natural_order

#: appended to a core's name for its runs sized to the matched core's parameter count
EQUAL_PARAMS_SUFFIX = "-eqp"


#: appended to a core's name for its runs at its own tuned settings (``tuned:`` suites)
TUNED_SUFFIX = "-tuned"


def variant_of(result: dict[str, Any]) -> str:
    """The column a result belongs to: its core, marked when it was sized to equal parameters or tuned."""
    core = str(result.get("core"))
    if result.get("setting") == "tuned":
        return f"{core}{TUNED_SUFFIX}"
    return f"{core}{EQUAL_PARAMS_SUFFIX}" if result.get("sizing") == "params" else core


def base_core(variant: str) -> str:
    return variant.removesuffix(EQUAL_PARAMS_SUFFIX)


def is_equal_params(variant: str) -> bool:
    return variant.endswith(EQUAL_PARAMS_SUFFIX)


def variant_rank(variant: str) -> tuple[int, int, str]:
    """Registered cores in registry order, their equal-parameter runs, other names (alphabetical), the reference."""
    registered = core_names()
    core = base_core(variant)
    if variant == REFERENCE_CORE:
        return (3, 0, "")
    if core in registered:
        return (1 if is_equal_params(variant) else 0, registered.index(core), "")
    return (2, 0, variant)


def order_variants(variants: Iterable[str]) -> list[str]:
    """The order of table columns, rows and plot legends."""
    return sorted(set(variants), key=variant_rank)


def task_order(task: str) -> tuple[str | int, ...]:
    """Tasks in the report's order: numbers compared as numbers (``MemoryS9`` before ``MemoryS11``, ``a@64`` before
    ``a@128``), as ``rlgru envs`` lists ids."""
    return natural_order(task)


__all__ = [
    "task_order",
    "EQUAL_PARAMS_SUFFIX",
    "TUNED_SUFFIX",
    "base_core",
    "is_equal_params",
    "order_variants",
    "variant_of",
    "variant_rank",
]
