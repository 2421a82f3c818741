"""Supervised ``aar`` child processes: started, restarted when they exit unasked, stopped in order.

``aar up`` runs the scorer, workers, agents and the dashboard each as its own ``aar`` process, so
that a crash in one (a worker out of memory, an agent's bug) takes down nothing else. A child that
exits without being asked to is reported and started again after a back-off that doubles up to
``max_backoff_s`` (and starts over once a run has lasted ``stable_after_s``). Its stderr (its logs)
goes to a file per child; its stdout lines (the ``aar: ...`` lines people read) are passed on.

Children run in their own session so that a Ctrl-C in the terminal reaches ``aar up`` alone, which
then stops them in reverse start order. On Linux each child also gets SIGTERM if ``aar up`` dies
without stopping it (``PR_SET_PDEATHSIG``), so none is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("aar.up")

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """One ``aar`` command to keep running.

    Attributes:
        name: how the child is named in output and in its log file name.
        argv: the ``aar`` arguments (``["worker", "--nats", url, ...]``).
        env: extra environment variables.
        grace_s: how long it may take to stop after SIGTERM before it is killed.
    """

    name: str
    argv: Sequence[str]
    env: dict[str, str] = field(default_factory=dict)
    grace_s: float = 15.0


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Child:
    """Keeps one ``aar`` process running until ``stop``.

    Args:
        spec: what to run.
        log_dir: where ``<name>.log`` (the child's stderr, appended across restarts) goes.
        on_line: called with ``(name, line)`` for each line the child prints on stdout.
        first_backoff_s: the wait before the first restart.
        max_backoff_s: the longest wait before a restart.
        stable_after_s: a run at least this long resets the back-off.
    """

    def __init__(
        self,
        spec: ChildSpec,
        log_dir: Path,
        on_line: Callable[[str, str], None],
        *,
        first_backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        stable_after_s: float = 60.0,
    ) -> None:
        self.spec = spec
        self.log_path = log_dir / f"{spec.name}.log"
        self._on_line = on_line
        self._first_backoff_s = first_backoff_s
        self._max_backoff_s = max_backoff_s
        self._stable_after_s = stable_after_s
        self._proc: asyncio.subprocess.Process | None = None
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.returncode is None else None

    def start(self) -> None:
        """Start the process and the loop that restarts it."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._task = asyncio.create_task(self._supervise(), name=f"aar:child:{self.spec.name}")

    async def _spawn(self) -> asyncio.subprocess.Process:
        with self.log_path.open("ab") as err:
            return await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "cli",
                *self.spec.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                env={**os.environ, **self.spec.env, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )

    async def _pump(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            self._on_line(self.spec.name, line.decode(errors="replace").rstrip())

    async def _supervise(self) -> None:
        backoff = self._first_backoff_s
        while not self._stopping.is_set():
            began = time.monotonic()
            self._proc = proc = await self._spawn()
            log.info("child started", extra={"child": self.spec.name, "pid": proc.pid})
            await self._pump(proc)
            rc = await proc.wait()
            if self._stopping.is_set():
                break
            if time.monotonic() - began >= self._stable_after_s:
                backoff = self._first_backoff_s
            self.restarts += 1
            self._on_line(
                self.spec.name,
                f"aar: {self.spec.name} exited with status {rc}; restarting in {backoff:g}s "
                f"(restart {self.restarts}; log {self.log_path})",
            )
            log.warning(
                "child exited; restarting",
                extra={"child": self.spec.name, "rc": rc, "restart": self.restarts, "in_s": backoff},
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), backoff)
            backoff = min(backoff * 2, self._max_backoff_s)

    def kill(self) -> None:
        """Kill the process now (for a test that plays a crash, or a second Ctrl-C)."""
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()

    def abort(self) -> None:
        """Kill the process now and do not restart it."""
        self._stopping.set()
        self.kill()

    async def stop(self) -> int | None:
        """SIGTERM, wait up to ``grace_s``, then SIGKILL; no restart after. Returns the exit status."""
        self._stopping.set()
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), self.spec.grace_s)
            except TimeoutError:
                log.warning("child did not stop in time; killing", extra={"child": self.spec.name})
                proc.kill()
                await proc.wait()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        log.info("child stopped", extra={"child": self.spec.name, "rc": proc.returncode if proc else None})
        return proc.returncode if proc is not None else None


@contextlib.asynccontextmanager
async def supervised(
    specs: Sequence[ChildSpec], log_dir: Path, on_line: Callable[[str, str], None]
) -> AsyncIterator[list[Child]]:
    """Start ``specs`` in order; on exit stop them in reverse order (killed if that is cancelled)."""
    children: list[Child] = []
    try:
        for spec in specs:
            child = Child(spec, log_dir, on_line)
            child.start()
            children.append(child)
        yield children
    finally:
        try:
            for child in reversed(children):
                await child.stop()
        except BaseException:
            for child in children:
                child.abort()
            raise
