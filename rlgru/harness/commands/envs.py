"""List the registered memory tasks, their difficulty knobs and presets."""

from __future__ import annotations

import argparse
import json

from rlgru.harness.task_list import TaskRow, registered_tasks


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    rows = registered_tasks()
    if args.json:
        print(json.dumps([row.as_dict() for row in rows], indent=2))
        return 0
    print(f"{len(rows)} tasks: gym.make(ID, KNOB=value), or a preset id; in a config: env.id and env.env_kwargs\n")
    for row in rows:
        print(_describe(row))
    return 0


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
