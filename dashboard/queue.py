"""The experiment work queue, watched without taking anything from it.

A work-queue stream admits only the workers' consumer, so queued requests are read with direct
gets by sequence (which remove nothing), new ones arrive on a plain subscription to the same
subjects, and the counts come from the workers' consumer info. The observer role may do all three
(``bus.auth``: ``watch_requests``, ``list_consumers``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from bus import Bus, Kind, peek_stored, streams, subjects
from dashboard.state import QueueStats
from schemas import ExperimentRequest, SchemaError, decode_as

log = logging.getLogger("aar.dashboard")

OnRequest = Callable[[ExperimentRequest], Awaitable[None]]


class QueueWatch:
    """Requests as they are queued, and the queue's counts on demand."""

    def __init__(self, bus: Bus, swarm: str, on_request: OnRequest, *, backlog: int = 300) -> None:
        self._bus, self._swarm, self._on_request = bus, swarm, on_request
        self._backlog = backlog
        self._stream = streams.stream_name(swarm, Kind.REQUESTS)
        self._filter = subjects.kind_filter(swarm, Kind.REQUESTS)
        self._durable = streams.work_queue_consumer(swarm).durable_name or "workers"
        self._sub: Subscription | None = None

    async def start(self) -> None:
        """Subscribe to new requests, then read the ones stored (queued or being worked on)."""
        held: list[Msg] | None = []

        async def on_live(raw: Msg) -> None:
            if held is not None:
                held.append(raw)  # until the stored ones are read, so the order stays
            else:
                await self._deliver(raw.data, raw.subject)

        self._sub = await self._bus.nc.subscribe(self._filter, cb=on_live)
        await self._bus.nc.flush()  # the server knows our interest before history is read: no gap
        await self._read_stored()
        backlog, held = held or [], None
        for raw in backlog:
            await self._deliver(raw.data, raw.subject)

    async def _read_stored(self) -> None:
        async for stored in peek_stored(self._bus, self._swarm, Kind.REQUESTS, newest=self._backlog):
            await self._deliver(stored.data or b"", stored.subject or self._filter)

    async def _deliver(self, data: bytes, subject: str) -> None:
        try:
            request = decode_as(data, ExperimentRequest)
        except SchemaError as e:
            log.warning("undecodable request skipped", extra={"subject": subject, "reason": e.reason[:200]})
            return
        await self._on_request(request)

    async def stats(self) -> QueueStats:
        """What the workers' consumer reports (the stream's count when it does not exist yet).

        Raises:
            nats.errors.Error: the server did not answer (the caller retries later).
        """
        try:
            info = await self._bus.js.consumer_info(self._stream, self._durable)
        except nats.js.errors.NotFoundError:
            stream = await self._bus.js.stream_info(self._stream)
            return QueueStats(pending=stream.state.messages, in_flight=0)
        return QueueStats(
            pending=info.num_pending or 0,
            in_flight=info.num_ack_pending or 0,
            redelivered=info.num_redelivered or 0,
            waiting=info.num_waiting or 0,
        )

    async def close(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(nats.errors.Error):
                await sub.unsubscribe()
