"""Every import the README and the docs show a user still works (the package's wings moved modules around)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
IMPORT = re.compile(r"^\s*(from (rlgru[\w.]*) import ([\w, ()]+)|import (rlgru[\w.]*))", re.MULTILINE)


def _shown_imports() -> list[tuple[str, str, list[str]]]:
    found = []
    for page in PAGES:
        for block in re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.DOTALL):
            for match in IMPORT.finditer(block):
                module = match.group(2) or match.group(4)
                names = [n.strip() for n in (match.group(3) or "").strip("()").split(",") if n.strip()]
                found.append((page.name, module, names))
    return found


SHOWN = _shown_imports()


def test_the_pages_show_imports() -> None:
    assert any(module == "rlgru" and "RecurrentPPO" in names for _, module, names in SHOWN)


@pytest.mark.parametrize("page,module,names", SHOWN, ids=[f"{p}:{m}" for p, m, _ in SHOWN])
def test_a_shown_import_works(page: str, module: str, names: list[str]) -> None:
    imported = importlib.import_module(module)
    for name in names:
        assert hasattr(imported, name.split(" as ")[0].strip()), f"{page}: {module} has no {name}"
