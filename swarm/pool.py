"""Running one role handler on one delivery: a slot, a keep-alive, and a verdict for the bus."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable

import nats.errors

from bus import Delivery, HandlerError

log = logging.getLogger("aar.agent")

# Tells the server a message is still being handled, well inside the consumers' ack wait (30 s),
# so a handler that thinks for minutes (a model call) is not redelivered meanwhile.
KEEP_ALIVE_S = 10.0
_SEEN_MAX = 4096


class HandlerSlots:
    """At most ``limit`` role handlers at once across all of an agent's feeds.

    Verdicts, for the bus's dispatcher (see ``bus.consume``): a handler that returns acks its
    message; one that raises is logged and dead-lettered at once (``HandlerError`` with
    ``retryable=False``), unless it raised ``HandlerError(retryable=True)`` itself to ask for a
    redelivery. Once the agent stops taking work, a message goes back to the server for its next run.
    """

    def __init__(self, limit: int) -> None:
        self._slots = asyncio.Semaphore(limit)
        self._stopping = asyncio.Event()
        self._in_flight: set[str] = set()
        # Ids handled lately: a message redelivered because it waited past the ack wait in the
        # client's queue (all slots busy) is acknowledged again, not handled twice.
        self._done: collections.OrderedDict[str, None] = collections.OrderedDict()
        self.handled = 0
        self.failed = 0

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def stop_intake(self) -> None:
        """Refuse new work from now on; what is running goes on."""
        self._stopping.set()

    async def run(self, msg_id: str, call: Callable[[], Awaitable[None]], delivery: Delivery) -> None:
        """Run ``call`` in a free slot, keeping ``delivery`` alive meanwhile.

        Raises:
            HandlerError: the handler failed (dead-letter), or the agent is stopping (redeliver).
        """
        if msg_id in self._done or msg_id in self._in_flight:
            return
        keep_alive = asyncio.create_task(_keep_alive(delivery), name=f"agent:keep-alive:{msg_id}")
        try:
            async with self._slots:
                if self._stopping.is_set():
                    raise HandlerError("the agent is stopping; left for its next run", retryable=True)
                self._in_flight.add(msg_id)
                try:
                    await call()
                except HandlerError:
                    self.failed += 1
                    raise
                except Exception as e:
                    self.failed += 1
                    log.error("handler failed", exc_info=e, extra={"subject": delivery.subject})
                    raise HandlerError(f"{type(e).__name__}: {e}", retryable=False) from e
                finally:
                    self._in_flight.discard(msg_id)
        finally:
            keep_alive.cancel()
        self.handled += 1
        self._done[msg_id] = None
        if len(self._done) > _SEEN_MAX:
            self._done.popitem(last=False)


async def _keep_alive(delivery: Delivery) -> None:
    while True:
        await asyncio.sleep(KEEP_ALIVE_S)
        with contextlib.suppress(nats.errors.Error, OSError):
            await delivery.in_progress()
