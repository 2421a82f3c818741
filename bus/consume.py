"""Typed consumers: durable push subscriptions and the experiment work queue.

Failure policy, the same for both:
- a payload that does not decode (SchemaError) is dead-lettered at once: redelivery cannot fix it;
- a handler that raises ``HandlerError(retryable=False)`` is dead-lettered at once;
- any other handler error is redelivered with backoff, and dead-lettered on its last delivery;
- the consumer keeps running through all of these.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import api

from bus import streams, subjects
from bus.errors import BusError, HandlerError
from schemas import Envelope, SchemaError, decode_as, new_id

if TYPE_CHECKING:
    from nats.js.client import JetStreamContext

    from bus.connection import Bus

log = logging.getLogger("aar.bus")

M = TypeVar("M", bound=Envelope)


@dataclass(slots=True)
class Delivery:
    """Where a message came from and how often it was delivered; lets long handlers say they live."""

    raw: Msg

    @property
    def subject(self) -> str:
        return self.raw.subject

    @property
    def stream_seq(self) -> int | None:
        return self.raw.metadata.sequence.stream if self.raw.reply else None

    @property
    def deliveries(self) -> int:
        return self.raw.metadata.num_delivered if self.raw.reply else 1

    async def in_progress(self) -> None:
        """Reset the ack timer so the server does not redeliver a message still being worked on."""
        if self.raw.reply:
            await self.raw.in_progress()


Handler = Callable[[M, Delivery], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class StartAt:
    """Where a new consumer starts reading a stream."""

    policy: api.DeliverPolicy
    seq: int | None = None
    time: datetime | None = None

    @classmethod
    def new(cls) -> StartAt:
        return cls(api.DeliverPolicy.NEW)

    @classmethod
    def all(cls) -> StartAt:
        return cls(api.DeliverPolicy.ALL)

    @classmethod
    def last(cls) -> StartAt:
        return cls(api.DeliverPolicy.LAST)

    @classmethod
    def at_seq(cls, seq: int) -> StartAt:
        return cls(api.DeliverPolicy.BY_START_SEQUENCE, seq=max(1, seq))

    @classmethod
    def at_time(cls, when: datetime | float) -> StartAt:
        if isinstance(when, float | int):
            when = datetime.fromtimestamp(when, tz=UTC)
        return cls(api.DeliverPolicy.BY_START_TIME, time=when.astimezone(UTC))

    def apply(self, config: api.ConsumerConfig) -> api.ConsumerConfig:
        config.deliver_policy = self.policy
        config.opt_start_seq = self.seq
        config.opt_start_time = self.time
        return config


class _Dispatcher:
    """Decode, run the handler, then ack, nak or dead-letter: shared by both consumer kinds."""

    def __init__(
        self,
        bus: Bus,
        swarm: str,
        name: str,
        handler: Handler[M],
        expect: type[M],
        *,
        acks: bool,
        retry: streams.RetryPolicy,
    ) -> None:
        self.bus, self.swarm, self.name = bus, swarm, name
        self._handler: Handler[Envelope] = handler  # type: ignore[assignment]
        self._expect: type[Envelope] = expect
        self._acks = acks
        self.retry = retry
        self.handled = 0
        self.failed = 0
        # The last stream sequence delivered, decodable or not; parsed only when asked for (replay).
        self.track_seq = False
        self.last_seq = 0

    async def dispatch(self, raw: Msg) -> None:
        if self.track_seq:
            with contextlib.suppress(Exception):
                self.last_seq = raw.metadata.sequence.stream
        try:
            msg = decode_as(raw.data, self._expect)
        except SchemaError as e:
            if not self._acks:
                # A watcher replays history: dead-lettering here would file a new letter on every
                # replay. The durable consumers of record dead-letter it once.
                log.warning(
                    "skipped undecodable message",
                    extra={"consumer": self.name, "subject": raw.subject, "reason": e.reason},
                )
                return
            await self._give_up(raw, e, deliveries=None)
            return
        delivery = Delivery(raw)
        try:
            await self._handler(msg, delivery)
        except asyncio.CancelledError:
            if self._acks:
                with contextlib.suppress(Exception):
                    await raw.nak()  # let another consumer take it now, not after ack_wait
            raise
        except Exception as e:
            await self._failed(raw, delivery, e)
            return
        self.handled += 1
        if self._acks:
            await raw.ack()

    async def _failed(self, raw: Msg, delivery: Delivery, error: Exception) -> None:
        self.failed += 1
        retryable = error.retryable if isinstance(error, HandlerError) else True
        deliveries = delivery.deliveries if self._acks else 1
        max_deliver = self.retry.max_deliver
        if retryable and self._acks and (max_deliver <= 0 or deliveries < max_deliver):
            delay = self.retry.delay_after(deliveries)
            log.warning(
                "handler failed; will redeliver",
                extra={
                    "consumer": self.name,
                    "deliveries": deliveries,
                    "delay_s": delay,
                    "error": repr(error),
                },
            )
            await raw.nak(delay=delay)
            return
        if not isinstance(error, HandlerError):
            log.error("handler failed for good", exc_info=error, extra={"consumer": self.name})
        await self._give_up(raw, error, deliveries=deliveries)

    async def _give_up(self, raw: Msg, error: BaseException, *, deliveries: int | None) -> None:
        try:
            await self.bus.dead_letter(
                swarm=self.swarm, consumer=self.name, raw=raw, error=error, deliveries=deliveries
            )
        except BusError:
            # Not stored: leave the message unacknowledged so it comes back rather than vanishing.
            log.exception(
                "dead-letter publish failed; message left for redelivery", extra={"consumer": self.name}
            )
            return
        if self._acks:
            await raw.term()


class Consumer:
    """A typed push subscription to one kind of a swarm's traffic (see ``Bus.subscribe``)."""

    def __init__(
        self,
        bus: Bus,
        swarm: str,
        kind: subjects.Kind,
        handler: Handler[M],
        *,
        expect: type[M],
        key: str,
        durable: str | None,
        start: StartAt | None,
        retry: streams.RetryPolicy = streams.DEFAULT_RETRY,
        concurrency: int = 1,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.bus, self.swarm, self.kind = bus, swarm, kind
        self.durable = subjects.token(durable) if durable else None
        self.name = self.durable or f"watch-{new_id()}"
        self._filter = subjects.kind_filter(swarm, kind, key)
        self._start = start or StartAt.new()
        self._dispatch = _Dispatcher(
            bus, swarm, self.name, handler, expect, acks=self.durable is not None, retry=retry
        )
        self._sub: nats.js.JetStreamContext.PushSubscription | None = None
        self._slots = asyncio.Semaphore(concurrency) if concurrency > 1 else None
        self._running: set[asyncio.Task[None]] = set()

    @property
    def handled(self) -> int:
        return self._dispatch.handled

    @property
    def last_seq(self) -> int:
        """The stream sequence of the last message delivered (tracked only for ``replay``)."""
        return self._dispatch.last_seq

    async def _dispatch_concurrently(self, raw: Msg) -> None:
        # nats-py runs a subscription's callback one message at a time: hand each message to a
        # task and return, so up to ``concurrency`` handlers overlap (acks stay per message).
        assert self._slots is not None
        await self._slots.acquire()
        task = asyncio.create_task(self._dispatch.dispatch(raw))
        self._running.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        assert self._slots is not None
        self._slots.release()
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("handler task crashed", exc_info=exc, extra={"consumer": self.name})

    async def start(self) -> None:
        stream = streams.stream_name(self.swarm, self.kind)
        retry = self._dispatch.retry
        config = self._start.apply(
            api.ConsumerConfig(
                filter_subject=self._filter,
                ack_policy=api.AckPolicy.EXPLICIT if self.durable else api.AckPolicy.NONE,
                ack_wait=retry.ack_wait_s if self.durable else None,
                max_deliver=retry.max_deliver if self.durable else None,
                max_ack_pending=10_000 if self.durable else None,
                description=f"aar {self.swarm}: {self.name}",
            )
        )
        js: JetStreamContext = self.bus.js
        try:
            self._sub = await js.subscribe(
                self._filter,
                stream=stream,
                durable=self.durable,
                config=config,
                cb=self._dispatch.dispatch if self._slots is None else self._dispatch_concurrently,
                manual_ack=True,
                ordered_consumer=self.durable is None,
                idle_heartbeat=5.0,
                flow_control=True,
            )
        except nats.js.errors.NotFoundError as e:
            raise BusError(
                f"stream {stream} does not exist: run `aar server` / ensure_swarm({self.swarm!r})"
            ) from e
        log.info("consumer started", extra={"consumer": self.name, "filter": self._filter})

    async def close(self, grace_s: float = 10.0) -> None:
        """Stop taking new messages; the one in hand finishes or is cancelled after ``grace_s``."""
        sub, self._sub = self._sub, None
        if sub is None:
            return
        self.bus.forget(self)
        try:
            await asyncio.wait_for(sub.drain(), grace_s)  # type: ignore[no-untyped-call]
        except (TimeoutError, nats.errors.Error):
            with contextlib.suppress(nats.errors.Error):
                await sub.unsubscribe()
        if self._running:
            _, pending = await asyncio.wait(set(self._running), timeout=grace_s)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending)


class WorkQueue:
    """Pull loops over the swarm's experiment work queue (see ``Bus.work``)."""

    def __init__(
        self,
        bus: Bus,
        swarm: str,
        handler: Handler[M],
        *,
        expect: type[M],
        durable: str,
        concurrency: int,
        batch: int,
        heartbeat_s: float,
    ) -> None:
        if concurrency < 1 or batch < 1:
            raise ValueError("concurrency and batch must be at least 1")
        self.bus, self.swarm = bus, swarm
        self.name = subjects.token(durable)
        self._concurrency, self._batch, self._heartbeat_s = concurrency, batch, heartbeat_s
        self._dispatch = _Dispatcher(
            bus, swarm, self.name, handler, expect, acks=True, retry=streams.DEFAULT_RETRY
        )
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._in_flight: dict[int, tuple[Msg, float]] = {}
        self._subs: list[nats.js.JetStreamContext.PullSubscription] = []

    @property
    def handled(self) -> int:
        return self._dispatch.handled

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def start(self) -> None:
        js: JetStreamContext = self.bus.js
        stream = streams.stream_name(self.swarm, subjects.Kind.REQUESTS)
        config = streams.work_queue_consumer(self.swarm, durable=self.name)
        for i in range(self._concurrency):
            try:
                sub = await js.pull_subscribe(
                    config.filter_subject or "", durable=self.name, stream=stream, config=config
                )
            except nats.js.errors.NotFoundError as e:
                raise BusError(f"stream {stream} does not exist: run ensure_swarm({self.swarm!r})") from e
            self._subs.append(sub)
            self._tasks.append(asyncio.create_task(self._loop(sub), name=f"work:{self.name}:{i}"))
        # The server's consumer config is the truth (ensure_swarm set it): follow its limits.
        info = (await self._subs[0].consumer_info()).config
        self._dispatch.retry = streams.RetryPolicy(
            ack_wait_s=info.ack_wait or streams.DEFAULT_RETRY.ack_wait_s,
            max_deliver=info.max_deliver or streams.DEFAULT_RETRY.max_deliver,
            backoff_s=streams.DEFAULT_RETRY.backoff_s,
        )
        if self._heartbeat_s >= self._dispatch.retry.ack_wait_s:
            self._heartbeat_s = self._dispatch.retry.ack_wait_s / 2
        self._tasks.append(asyncio.create_task(self._heartbeat(), name=f"work:{self.name}:heartbeat"))
        log.info("work queue started", extra={"consumer": self.name, "concurrency": self._concurrency})

    async def close(self, grace_s: float = 10.0) -> None:
        """Finish the messages in hand (up to ``grace_s``), then unsubscribe. Safe to call twice."""
        tasks, self._tasks = self._tasks, []
        if not tasks:
            return
        self.bus.forget(self)
        self._stop.set()
        _, pending = await asyncio.wait(tasks, timeout=grace_s)
        for t in pending:
            t.cancel()
        await asyncio.wait(tasks)
        # Unsubscribe pull subscriptions before any drain: a drain can hang on a timed-out fetch.
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs.clear()
        for t in tasks:
            if not t.cancelled() and (exc := t.exception()) is not None:
                log.error("work loop crashed", exc_info=exc, extra={"consumer": self.name})

    async def _loop(self, sub: nats.js.JetStreamContext.PullSubscription) -> None:
        while not self._stop.is_set():
            try:
                batch = await sub.fetch(self._batch, timeout=1.0)
            except nats.errors.TimeoutError:
                continue
            except (nats.errors.Error, nats.js.errors.Error, OSError) as e:
                # Disconnected or the server is restarting: the client reconnects; try again soon.
                log.debug("fetch failed", extra={"consumer": self.name, "error": repr(e)})
                await asyncio.sleep(0.2)
                continue
            for raw in batch:
                if self._stop.is_set():
                    # Stopping: hand the rest of the batch back at once rather than after ack_wait.
                    with contextlib.suppress(nats.errors.Error, OSError):
                        await raw.nak()
                    continue
                key = id(raw)
                self._in_flight[key] = (raw, time.monotonic())
                try:
                    await self._dispatch.dispatch(raw)
                except (nats.errors.Error, OSError) as e:
                    log.warning(
                        "ack failed; the message will be redelivered",
                        extra={"consumer": self.name, "error": repr(e)},
                    )
                finally:
                    self._in_flight.pop(key, None)

    async def _heartbeat(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._heartbeat_s / 2)
            now = time.monotonic()
            for raw, started in list(self._in_flight.values()):
                if now - started >= self._heartbeat_s / 2:
                    with contextlib.suppress(nats.errors.Error, OSError):
                        await raw.in_progress()


async def peek_stored(
    bus: Bus, swarm: str, kind: subjects.Kind, *, newest: int | None = None
) -> AsyncIterator[api.RawStreamMsg]:
    """The messages stored in ``kind``'s stream now, oldest first, by direct gets that take nothing.

    For the work queue, which admits no consumer but the workers' one (so ``replay`` cannot read
    it): what is queued or being worked on. ``newest`` keeps only the last that many sequences.
    """
    stream = streams.stream_name(swarm, kind)
    filter_subject = subjects.kind_filter(swarm, kind)
    state = (await bus.js.stream_info(stream)).state
    if not state.messages:
        return
    seq = state.first_seq if newest is None else max(state.first_seq, state.last_seq - newest + 1)
    while seq <= state.last_seq:
        try:
            stored = await bus.js.get_msg(stream, seq, subject=filter_subject, next=True)
        except nats.js.errors.NotFoundError:
            return  # nothing stored at or after seq
        if stored.seq is None or stored.seq > state.last_seq:
            return
        seq = stored.seq + 1
        yield stored


async def replay(
    bus: Bus, swarm: str, kind: subjects.Kind, expect: type[M], *, timeout_s: float = 60.0
) -> list[M]:
    """Every message of ``kind`` stored in ``swarm``'s stream now, oldest first (for rebuilding state).

    Undecodable messages are skipped with a warning (they were dead-lettered when first consumed).

    Raises:
        BusError: the stream does not exist, or the replay did not finish within ``timeout_s``.
    """
    stream = streams.stream_name(swarm, kind)
    try:
        info = await bus.js.stream_info(stream)
    except nats.js.errors.NotFoundError as e:
        raise BusError(f"stream {stream} does not exist: run ensure_swarm({swarm!r})") from e
    last = info.state.last_seq
    out: list[M] = []
    if info.state.messages == 0:
        return out
    done = asyncio.Event()

    async def collect(msg: M, delivery: Delivery) -> None:
        out.append(msg)
        if (delivery.stream_seq or 0) >= last:
            done.set()

    consumer = Consumer(bus, swarm, kind, collect, expect=expect, key="*", durable=None, start=StartAt.all())
    consumer._dispatch.track_seq = True
    await consumer.start()
    try:
        # An undecodable last message never reaches ``collect``: also stop when the consumer has
        # seen the last sequence by any route (checked on a short tick).
        deadline = time.monotonic() + timeout_s
        while not done.is_set():
            if time.monotonic() > deadline:
                raise BusError(f"replay of {stream} did not finish in {timeout_s}s ({len(out)} messages)")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 0.2)
            if consumer.last_seq >= last:
                break
    finally:
        await consumer.close()
    return out
