"""List the registered memory tasks, their difficulty knobs and presets.

Then the memory tasks of suites rlgru has configs for but does not ship (MiniGrid, Memory Gym): listed when their
package is installed, else the line that installs it.
"""

from __future__ import annotations

import argparse
import json
import textwrap

from rlgru.harness.suites import SUITES, Suite
from rlgru.harness.task_list import TaskRow, registered_tasks


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    rows = registered_tasks()
    suites = [(suite, suite.tasks() if suite.installed else None) for suite in SUITES]
    if args.json:
        rows += [_suite_row(suite, env_id) for suite, tasks in suites for env_id in tasks or ()]
        print(json.dumps([row.as_dict() for row in rows], indent=2))
        return 0
    print(f"{len(rows)} tasks: gym.make(ID, KNOB=value), or a preset id; in a config: env.id and env.env_kwargs\n")
    for row in rows:
        print(_describe(row))
    for suite, tasks in suites:
        print(_describe_suite(suite, tasks))
    return 0


def _suite_row(suite: Suite, env_id: str) -> TaskRow:
    return TaskRow(env_id.partition(":")[2], env_id, None, category=suite.name, summary=suite.summary, exact=False)


def _describe_suite(suite: Suite, tasks: list[str] | None) -> str:
    """The suite's memory tasks (ids as a config's env.id names them), or how to install it."""
    if tasks is None:
        return f"{suite.name} memory tasks: not installed; {suite.install}\n"
    lines = [f"{suite.name} memory tasks ({len(tasks)}; configs in {suite.configs})"]
    lines += textwrap.wrap(suite.summary, width=116, initial_indent="    ", subsequent_indent="    ")
    lines += [f"    {env_id}" for env_id in tasks]
    return "\n".join(lines) + "\n"


def _describe(row: TaskRow) -> str:
    knob = f"knob: {row.knob}" if row.knob else "no knob recorded"
    lines = [f"{row.env_id}  {knob}{'  (' + row.category + ')' if row.category else ''}"]
    if row.summary:
        lines.append(f"    {row.summary}")
    base, _, version = row.env_id.rpartition("-")
    presets = {
        level: (
            f"{base}-{level}-{version}" if level in row.references else row.env_id,
            ", ".join(f"{key}={value}" for key, value in kwargs.items()),
        )
        for level, kwargs in row.presets.items()
    }
    id_width = max((len(preset_id) for preset_id, _ in presets.values()), default=0)
    kwargs_width = max((len(kwargs) for _, kwargs in presets.values()), default=0)
    for level, (preset_id, kwargs) in presets.items():
        reference = ""
        if level in row.references:
            optimal, memoryless = row.references[level]
            approx = "" if row.exact else "~"
            reference = f"  optimal {approx}{optimal:.4g}, memoryless {approx}{memoryless:.4g}"
        lines.append(f"    {preset_id:<{id_width}}  {kwargs:<{kwargs_width}}{reference}".rstrip())
    return "\n".join(lines) + "\n"
