"""Small test utilities: collect what handlers receive and wait on it without sleeping blindly."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from bus import Delivery
from schemas import Envelope

M = TypeVar("M", bound=Envelope)


class Collector(Generic[M]):
    """A handler that records every message and lets a test wait for a count."""

    def __init__(self) -> None:
        self.messages: list[M] = []
        self.deliveries: list[int] = []
        self._changed = asyncio.Event()

    async def __call__(self, msg: M, delivery: Delivery) -> None:
        self.messages.append(msg)
        self.deliveries.append(delivery.deliveries)
        self._changed.set()

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[M]:
        async with asyncio.timeout(timeout):
            while len(self.messages) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.messages


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0, interval: float = 0.05
) -> None:
    """Wait until ``check()`` is true, polling state the test cannot await directly."""
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if await result if inspect.isawaitable(result) else result:
                return
            await asyncio.sleep(interval)
