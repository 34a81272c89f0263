"""The base of every config section: unknown keys are errors and assignments are validated (one place, so the
run config and its ``tune:`` section share it)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Base of every config section: unknown keys are errors, assignments are validated too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


__all__ = ["StrictModel"]
