"""Turning Ctrl-C and SIGTERM into an asyncio.Event, so commands shut down in order."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterable, Iterator
from typing import Any


@contextlib.contextmanager
def stop_on_signals() -> Iterator[asyncio.Event]:
    """An event set by SIGINT or SIGTERM while the block runs.

    Leaving the block restores the previous handlers, so a second Ctrl-C during shutdown falls back
    to asyncio's default (cancel the main task) instead of being swallowed. Outside the main thread
    (tests call ``main`` from a thread) no handler can be installed and the event is only set by
    the caller.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (RuntimeError, ValueError, NotImplementedError):
            continue  # not the main thread, or a platform without signal support
        installed.append(sig)
    try:
        yield stop
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def wait_for_stop(
    stop: asyncio.Event, *, timeout_s: float | None = None, also: Iterable[asyncio.Future[Any]] = ()
) -> None:
    """Wait until ``stop`` is set, ``timeout_s`` passes, or any of ``also`` finishes."""
    waiter: asyncio.Task[bool] = asyncio.create_task(stop.wait(), name="aar:stop")
    try:
        await asyncio.wait({waiter, *also}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter
