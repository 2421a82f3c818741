"""The root of aar's exceptions and the one error raised for a bad message."""

from __future__ import annotations


class AarError(Exception):
    """Root of every error aar raises on purpose."""


class SchemaError(AarError, ValueError):
    """A payload is not a valid aar message: bad JSON, wrong types, unknown kind or too large.

    Attributes:
        reason: a one-line, human-readable reason, also the exception's message.
        size: the payload's size in bytes, when known.
    """

    def __init__(self, reason: str, *, size: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.size = size
