"""Errors raised by the bus layer."""

from __future__ import annotations

from schemas.errors import AarError


class BusError(AarError):
    """Something went wrong talking to NATS."""


class InvalidSubjectError(BusError, ValueError):
    """A value cannot stand as a subject token (empty, or holds '.', '*', '>' or whitespace)."""

    def __init__(self, value: str) -> None:
        super().__init__(f"not a valid subject token: {value!r} (allowed: letters, digits, '_' and '-')")
        self.value = value


class PublishError(BusError):
    """A JetStream publish was not acknowledged in time, even after retries."""


class CredentialsError(BusError):
    """A credentials file cannot be read, is not of a kind aar knows, or the server refused it."""


class ServerError(BusError):
    """The embedded nats-server could not be configured, started or stopped."""


class HandlerError(AarError):
    """Raised by a message handler to say how its failure should be treated.

    Attributes:
        retryable: True when redelivery may succeed (a transient failure); False sends the message
            straight to the dead-letter stream.
    """

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class ConfigFileError(AarError, ValueError):
    """A settings file cannot be read, parsed, or does not fit its Struct."""

    def __init__(self, reason: str, *, path: str) -> None:
        super().__init__(f"bad config {path}: {reason}")
        self.reason, self.path = reason, path
