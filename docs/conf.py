"""Sphinx configuration of rlgru's documentation site: Markdown pages (MyST), the furo theme, the API from docstrings.

Build it strictly, as CI does: ``python -m sphinx -W --keep-going -b html docs docs/_build/html``.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
# Document this checkout's rlgru (not another installed copy), and find the site's own extension.
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS / "_ext"))

import rlgru  # noqa: E402

project = "rlgru"
author = "rlgru maintainers"
copyright = "rlgru maintainers"
release = version = rlgru.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "rlgru_docs",  # docs/_ext/rlgru_docs.py: `rlgru <command> --help` blocks, checks of repository paths
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "Thumbs.db", ".DS_Store"]

# MyST: `[text](page.md#a-heading)` links resolve to headings down to ###
myst_heading_anchors = 3

# Unresolved Python cross-references (SB3 and torch types in signatures) are not errors.
nitpicky = False

# Docstrings use Sphinx's own `:param x:` fields and ``literals``: autodoc alone, no napoleon.
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_class_signature = "separated"

html_theme = "furo"
html_title = f"rlgru {release}"
