"""The report's one error type."""

from __future__ import annotations

from schemas import AarError


class ReportError(AarError):
    """The report cannot be written: the swarm does not exist, or its records cannot be read."""
