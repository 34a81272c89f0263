"""Memory suites that rlgru configs use but does not ship: MiniGrid's Memory tasks and Memory Gym's grid tasks.

One record per suite says which package provides it, how to install that package, which env ids belong to it and
which of them ``rlgru envs`` lists, so a config naming a suite that is not installed fails with the line to run.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import gymnasium as gym

#: Memory Gym 1.0.2 pins gymnasium==0.29.0 and pygame==2.4.0, yet runs on gymnasium 1.x with pygame-ce (the pygame
#: fork MiniGrid installs): its pins are skipped and its one other runtime import supplied (docs/memory_suites.md)
MEMORY_GYM_INSTALL = "pip install 'pygame-ce>=2.4' && pip install --no-deps memory-gym==1.0.2"


@dataclass(frozen=True)
class Suite:
    """A third-party suite of memory tasks and how to get it."""

    name: str
    package: str  # the module a config's env id imports: "minigrid" in "minigrid:MiniGrid-MemoryS7-v0"
    install: str  # the command that installs it
    id_prefixes: tuple[str, ...]  # Gymnasium ids of the suite start so (a config may omit the "package:" part)
    lists: Callable[[str], bool]  # which of its registered ids ``rlgru envs`` lists: the memory tasks
    configs: str  # where rlgru's configs for it are
    summary: str
    #: environment variables set (unless already set) before its envs are built
    environment: dict[str, str] = field(default_factory=dict)
    #: its envs' ``close`` ends pygame for the whole process, so the env factory defers it to the last one
    close_ends_process_display: bool = False

    @property
    def installed(self) -> bool:
        return importlib.util.find_spec(self.package) is not None

    def missing(self) -> str:
        """The one-line reason a config of this suite cannot run here."""
        return f"{self.name} needs the {self.package!r} package, which is not installed: {self.install}"

    def prepare(self) -> None:
        """Set the suite's environment variables (pygame's audio off, its greeting hidden) before an env is built."""
        for name, value in self.environment.items():
            os.environ.setdefault(name, value)

    def tasks(self) -> list[str]:
        """The ids ``rlgru envs`` lists, as configs name them (``package:Id``); imports the package."""
        self.prepare()
        importlib.import_module(self.package)  # registers its ids
        ids = sorted((env_id for env_id in gym.registry if self.lists(env_id)), key=natural_order)
        return [f"{self.package}:{env_id}" for env_id in ids]


#: pygame, which both suites draw with, greets on import and opens an audio device that a server has not got
_PYGAME_QUIET = {"PYGAME_HIDE_SUPPORT_PROMPT": "1", "SDL_AUDIODRIVER": "dummy"}

SUITES: tuple[Suite, ...] = (
    Suite(
        name="MiniGrid",
        package="minigrid",
        install="pip install 'rlgru[minigrid]'",
        id_prefixes=("MiniGrid-", "BabyAI-"),
        lists=lambda env_id: env_id.startswith("MiniGrid-Memory"),
        configs="configs/minigrid/",
        summary="see an object at the start of a corridor, then pick the matching one of two at its end; a 7x7 "
        "symbolic view (object, colour, state indices) with env.wrappers: [minigrid.wrappers:ImgObsWrapper]",
        environment=_PYGAME_QUIET,
    ),
    Suite(
        name="Memory Gym",
        package="memory_gym",
        install=MEMORY_GYM_INSTALL,
        id_prefixes=("MortarMayhem", "MysteryPath", "SearingSpotlights", "Endless-"),
        lists=lambda env_id: env_id.endswith("-Grid-v0"),
        configs="configs/memory_gym/",
        summary="grid versions of Mortar Mayhem (remember a sequence of commands shown one by one, then carry it "
        "out) and Mystery Path (find and remember an invisible path); 84x84 RGB images; difficulty knobs are reset "
        "options (env.wrappers: rlgru.env_plumbing.suite_wrappers:ResetOptions)",
        environment=_PYGAME_QUIET,
        close_ends_process_display=True,
    ),
)


def natural_order(text: str) -> tuple[int | str, ...]:
    """Sort key comparing the numbers in names as numbers: MemoryS9 before MemoryS11, RepeatFirst-8 before -32."""
    return tuple(int(part) if index % 2 else part for index, part in enumerate(re.split(r"(\d+)", text)))


def suite_of(name: str) -> Suite | None:
    """The suite an env id (``minigrid:MiniGrid-MemoryS7-v0``, ``MiniGrid-MemoryS7-v0``), a module or a
    ``module:Class`` path belongs to, if any."""
    module, _, rest = name.partition(":")
    bare = rest if rest else name
    for suite in SUITES:
        if module.split(".")[0] == suite.package or bare.startswith(suite.id_prefixes):
            return suite
    return None


__all__ = ["MEMORY_GYM_INSTALL", "SUITES", "Suite", "natural_order", "suite_of"]
