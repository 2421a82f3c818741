"""The one error type a command raises to stop with a clear message instead of a traceback."""

from __future__ import annotations

from schemas import AarError

EXIT_USAGE = 2


class CliError(AarError):
    """A failure the user can act on: printed as ``aar: error: <message>``, then exit ``exit_code``.

    Attributes:
        exit_code: the process exit status (2, like argparse, for bad input or an unreachable server).
    """

    def __init__(self, message: str, *, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code
