"""The one exception type the CLI turns into a clean ``exit 2`` message.

Bad user input (a config key, a file, an env id) is not a bug: it deserves one line that names what to fix,
not a traceback. Anything else that goes wrong is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path

#: exit status for bad input, as argparse uses for bad arguments
USAGE_ERROR = 2
#: exit status of a run stopped by the divergence guard (``training.guard``)
DIVERGED = 3


class HarnessError(Exception):
    """Bad user input; ``str(error)`` is the whole message the user sees."""

    exit_status = USAGE_ERROR

    def __init__(self, message: str, *, where: str | Path | None = None) -> None:
        self.where = str(where) if where is not None else None
        self.message = message
        super().__init__(f"{self.where}: {message}" if self.where else message)

    def within(self, source: str | Path) -> HarnessError:
        """The same error, placed in a file: ``env.id: ...`` becomes ``configs/x.yaml: env.id: ...``."""
        return HarnessError(str(self), where=source)


class UntrustedFileError(HarnessError):
    """A model or statistics file holds pickled objects that are only loaded with ``--trust-pickle``."""


class RunDivergedError(HarnessError):
    """The divergence guard stopped training; the message names the env, step, quantity and the checkpoint kept."""

    exit_status = DIVERGED


__all__ = ["DIVERGED", "USAGE_ERROR", "HarnessError", "RunDivergedError", "UntrustedFileError"]
