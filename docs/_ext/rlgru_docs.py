"""The site's own Sphinx extension: ``rlgru --help`` text at build time, and checks that the pages name real files.

- ``{rlgru-help} COMMAND`` (no argument: the top-level help) renders ``rlgru COMMAND --help`` as the installed
  command prints it, so the CLI reference cannot drift from the parser; a command that no page renders is a warning.
- An inline literal that names a path in this repository (``results/training_speed.md``, ``rlgru/cores/csrc/``) or an
  rlgru module or object (``rlgru.cores.registry``) must exist: a file moved or renamed makes the strict build fail
  at the sentence that still names it. Silence one kind with ``suppress_warnings = ["rlgru.path"]`` (or
  ``"rlgru.module"``) in ``conf.py``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import os
import re
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
HELP_WIDTH = "100"  # argparse wraps at $COLUMNS: a fixed width keeps the pages the same on every machine
#: characters that make a literal a pattern or a placeholder rather than one path
PATTERN = re.compile(r"[*?<>{}\[\]|\s,;=()]")
MODULE_NAME = re.compile(r"^rlgru(\.[A-Za-z_]\w*)+(:[A-Za-z_]\w*)?$")
#: ``rlgru.json`` is a file name, not a module
FILE_SUFFIXES = {"json", "md", "yaml", "yml", "zip", "pkl", "pt", "onnx", "png", "csv", "html", "txt", "py"}


def rlgru_help(command: str | None) -> str:
    """What ``rlgru [COMMAND] --help`` prints, through the console script's own entry point."""
    from rlgru.cli import main  # the `rlgru` console script (pyproject.toml, [project.scripts])

    argv = [command, "--help"] if command else ["--help"]
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_WIDTH
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            status = main(argv)
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved
    if status != 0:
        raise RuntimeError(f"rlgru {' '.join(argv)} exited with status {status}")
    return out.getvalue().rstrip()


def commands_in_help(text: str) -> list[str]:
    """The subcommands listed under ``COMMAND`` in the top-level help."""
    listing = text.split("COMMAND\n", 1)[-1].split("\n\n", 1)[0]
    return re.findall(r"^ {4}(\w[\w-]*)", listing, flags=re.MULTILINE)


class RlgruHelp(SphinxDirective):
    """``rlgru [COMMAND] --help`` as a literal block."""

    optional_arguments = 1

    def run(self) -> list[nodes.Node]:
        command = self.arguments[0] if self.arguments else None
        try:
            text = rlgru_help(command)
        except Exception as error:  # noqa: BLE001 - any failure is the page's problem, reported where it is
            logger.warning("cannot render rlgru %s --help: %s", command or "", error, location=self.get_location(),
                           type="rlgru", subtype="cli")
            return []
        documented = self.env.__dict__.setdefault("rlgru_cli_documented", {})
        documented.setdefault(self.env.docname, set()).add(command or "")
        block = nodes.literal_block(text, text, language="text")
        self.set_source_info(block)
        return [block]


def _purge(app: Sphinx, env: Any, docname: str) -> None:
    env.__dict__.get("rlgru_cli_documented", {}).pop(docname, None)


def _merge(app: Sphinx, env: Any, docnames: set[str], other: Any) -> None:
    env.__dict__.setdefault("rlgru_cli_documented", {}).update(other.__dict__.get("rlgru_cli_documented", {}))


def _check_cli_coverage(app: Sphinx, env: Any) -> None:
    documented = set().union(*env.__dict__.get("rlgru_cli_documented", {}).values())
    if not documented:
        return
    missing = [name for name in commands_in_help(rlgru_help(None)) if name not in documented]
    if missing:
        logger.warning("the CLI reference has no {rlgru-help} block for: %s", ", ".join(missing),
                       type="rlgru", subtype="cli")


def _top_level_names() -> set[str]:
    return {entry.name for entry in ROOT.iterdir() if entry.name not in {".git", ".venv", "__pycache__"}}


def _names_a_repo_path(text: str, top: set[str]) -> bool:
    """A literal like ``results/x.md`` or ``rlgru/cores/csrc/``; not an env id (``rlgru/TMaze-Easy-v0``)."""
    if "/" not in text or PATTERN.search(text) or "://" in text:
        return False
    if text.split("/", 1)[0] not in top:
        return False
    return text.endswith("/") or "." in text.rsplit("/", 1)[-1]


def _resolves(name: str) -> bool:
    """Whether ``rlgru.a.b`` / ``rlgru.a:B`` / ``rlgru.a.B.c`` names an importable module or an attribute of one."""
    module_part, _, attribute = name.partition(":")
    parts = module_part.split(".")
    for split in range(len(parts), 0, -1):
        module_name = ".".join(parts[:split])
        try:
            if importlib.util.find_spec(module_name) is None:
                continue
            target: Any = importlib.import_module(module_name)
        except (ImportError, ValueError):
            continue
        for piece in [*parts[split:], *([attribute] if attribute else [])]:
            if not hasattr(target, piece):
                return False
            target = getattr(target, piece)
        return True
    return False


def _check_literals(app: Sphinx, doctree: nodes.document) -> None:
    top = _top_level_names()
    for literal in doctree.findall(nodes.literal):
        text = literal.astext().strip()
        if _names_a_repo_path(text, top):
            if not (ROOT / text).exists():
                logger.warning("%s: no such file or directory in the repository", text, location=literal,
                               type="rlgru", subtype="path")
        elif MODULE_NAME.match(text) and text.rsplit(".", 1)[-1] not in FILE_SUFFIXES and not _resolves(text):
            logger.warning("%s: no such module or object in rlgru", text, location=literal,
                           type="rlgru", subtype="module")


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("rlgru-help", RlgruHelp)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    app.connect("env-check-consistency", _check_cli_coverage)
    app.connect("doctree-read", _check_literals)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
