"""Errors the W2S engine raises; all derive from aar's root ``AarError``."""

from __future__ import annotations

from schemas.errors import AarError


class GpuWorkerError(AarError):
    """Root of every error the GPU worker raises on purpose."""


class TaskFailedError(GpuWorkerError):
    """An experiment could not run.

    Attributes:
        reason: a one-line, human-readable reason, also the exception's message.
        retryable: whether running the same request again (maybe on another worker) could succeed.
    """

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class UnknownNameError(TaskFailedError, KeyError):
    """A task, model or method name is not registered."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        super().__init__(f"unknown {kind} {name!r}; known: {', '.join(sorted(known))}", retryable=False)
        self.kind = kind
        self.name = name

    def __str__(self) -> str:
        # KeyError would repr() the message; keep it readable.
        return self.reason


class BadParamsError(TaskFailedError, ValueError):
    """A method's parameters do not decode into its params Struct."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, retryable=False)


class DataError(TaskFailedError):
    """A dataset could not be fetched, verified or parsed."""


class ChecksumError(DataError):
    """A downloaded file does not match its pinned sha256."""

    def __init__(self, path: str, expected: str, actual: str) -> None:
        super().__init__(
            f"sha256 mismatch for {path}: expected {expected}, got {actual}; the file was removed",
            retryable=False,
        )
        self.path = path
        self.expected = expected
        self.actual = actual
