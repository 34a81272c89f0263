"""Whether to draw progress bars: only for a person watching a terminal."""

from __future__ import annotations

import sys


def show_progress(disabled: bool = False) -> bool:
    """Bars garble logs and captured output, so they are drawn only when stdout is a TTY (and not disabled)."""
    return not disabled and sys.stdout.isatty()


__all__ = ["show_progress"]
