"""Running ``aar`` in-process: ``main`` owns its event loop, so tests call it from a thread."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from cli.main import main


@dataclass(frozen=True, slots=True)
class CliResult:
    rc: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


RunCli = Callable[..., Coroutine[Any, Any, CliResult]]


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    # main() installs a stderr handler bound to this test's captured stderr; drop it afterwards
    # so later tests do not log into a closed capture stream.
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    for h in root.handlers:
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> RunCli:
    """``await run_cli("status", "--nats", url)``: exit status and captured stdout/stderr."""

    async def run(*argv: str) -> CliResult:
        capsys.readouterr()  # start from empty buffers
        rc = await asyncio.to_thread(main, list(argv))
        captured = capsys.readouterr()
        return CliResult(rc, captured.out, captured.err)

    return run
