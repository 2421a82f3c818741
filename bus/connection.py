"""The Bus: one NATS connection with typed, durable publishing and the helpers built on it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Self

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext, api
from nats.protocol.parser import AUTHORIZATION_VIOLATION

from bus import subjects
from bus.config import BusConfig
from bus.core_sub import CoreSubscription, DirectClient
from bus.errors import BusError, CredentialsError, PublishError
from bus.streams import STREAMS
from schemas import DeadLetter, Envelope, Message, RpcError, SchemaError, decode, encode
from schemas.messages import DEAD_LETTER_ORIGINAL_MAX

if TYPE_CHECKING:
    from bus.consume import Consumer, Handler, M, StartAt, WorkQueue
    from bus.store import Artifacts, TypedKV
    from bus.streams import RetryPolicy

log = logging.getLogger("aar.bus")

# Failures a retried publish (same Nats-Msg-Id) can outlive: a restart, a leader election.
_TRANSIENT_PUBLISH_ERRORS: tuple[type[BaseException], ...] = (
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.js.errors.NoStreamResponseError,
    nats.js.errors.ServiceUnavailableError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.StaleConnectionError,
    nats.errors.UnexpectedEOF,
    TimeoutError,
)
_FAILED_PIPELINED_PUBLISH: tuple[type[BaseException], ...] = (
    *_TRANSIENT_PUBLISH_ERRORS,
    nats.js.errors.APIError,
)
MSG_ID_HEADER = "Nats-Msg-Id"
_ATTEMPT_TIMEOUT_S = 2.0


class RemoteError(BusError):
    """A request/reply endpoint answered with an RpcError."""

    def __init__(self, reply: RpcError) -> None:
        super().__init__(f"{reply.error_type}: {reply.reason}")
        self.reply = reply


class Bus:
    """A connection to the aar bus.

    Use ``async with Bus.connect(config) as bus:``; leaving the block stops every consumer started
    from it (finishing the message in hand), then drains the connection so that nothing published
    is dropped.
    """

    def __init__(self, config: BusConfig) -> None:
        self.config = config
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._consumers: list[Consumer | WorkQueue | CoreSubscription[Any]] = []
        self._artifacts: dict[str, Artifacts] = {}
        self._closing = False
        self._login_refused = False

    @classmethod
    def connect(cls, config: BusConfig | None = None, **overrides: Any) -> Bus:
        """A not-yet-connected Bus; entering it connects. ``overrides`` patch ``BusConfig.from_env()``."""
        return cls(config or BusConfig.from_env(**overrides))

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (retrying while the server is not up yet when so configured).

        Raises:
            CredentialsError: the credentials file cannot be used, or the server refused it.
            BusError: no server answered within the connect timeout.
        """
        cfg = self.config
        auth = cfg.auth_options()  # credentials, and the inbox prefix their role may read
        try:
            # nats.connect, with the client that gives core subscriptions their direct path.
            nc = DirectClient()
            options: dict[str, Any] = dict(  # nats-py types its timeouts int; it takes floats
                servers=cfg.servers,
                name=cfg.name,
                **auth,
                user=cfg.user,
                password=cfg.password,
                tls=cfg.ssl_context(),
                connect_timeout=cfg.connect_timeout_s,
                reconnect_time_wait=cfg.reconnect_wait_s,
                # nats-py uses one option for both; the first connect gets its own count below.
                max_reconnect_attempts=cfg.connect_attempts,
                allow_reconnect=True,
                pending_size=cfg.pending_size,
                # Subjects are built from checked tokens (bus.subjects) and caller-given ones pass
                # subjects.check; nats-py's own regex per publish would check them again.
                skip_subject_validation=True,
                error_cb=self._on_error,
                disconnected_cb=self._on_disconnected,
                reconnected_cb=self._on_reconnected,
            )
            await nc.connect(**options)
        except (OSError, TimeoutError, nats.errors.Error) as e:
            if self._login_refused:
                raise CredentialsError(
                    f"NATS at {', '.join(cfg.servers)} refused the credentials "
                    f"({cfg.creds_file or 'none given'}): pass a role's file with --creds or "
                    "AAR_NATS_CREDS (`aar server` prints where they are)"
                ) from e
            raise BusError(f"cannot connect to NATS at {', '.join(cfg.servers)}: {e}") from e
        self._nc = nc
        # nats-py reads this option afresh at every reconnect, so this governs drops from now on.
        nc.options["max_reconnect_attempts"] = cfg.max_reconnect_attempts
        self._js = self._nc.jetstream(timeout=_ATTEMPT_TIMEOUT_S)
        log.info(
            "bus connected", extra={"url": self._nc.connected_url.geturl() if self._nc.connected_url else "?"}
        )

    async def close(self, grace_s: float = 10.0) -> None:
        """Stop consumers (each finishes what it holds), then drain and close. Safe to call twice."""
        nc, self._nc = self._nc, None
        if nc is None:
            return
        self._closing = True
        consumers, self._consumers = self._consumers, []
        # Reverse order: what started last depends on what started first.
        for c in reversed(consumers):
            try:
                await c.close(grace_s)
            except Exception:
                log.exception("consumer failed while closing", extra={"consumer": c.name})
        try:
            await asyncio.wait_for(nc.drain(), grace_s)
        except (TimeoutError, nats.errors.Error) as e:
            log.warning("drain did not finish; closing", extra={"error": repr(e)})
            try:
                await nc.close()
            except RuntimeError as close_error:
                # nats-py on uvloop, closed mid-reconnect: it flushes into a dead transport.
                log.debug("connection closed uncleanly", extra={"error": repr(close_error)})
        except RuntimeError as e:
            log.debug("connection closed uncleanly", extra={"error": repr(e)})
        log.info("bus closed")

    @property
    def nc(self) -> Client:
        """The nats-py client underneath, for what the Bus does not wrap.

        It does not check subjects itself (the Bus connects with ``skip_subject_validation``):
        build them with ``bus.subjects``, or pass one from elsewhere through ``subjects.check``.
        """
        if self._nc is None:
            raise BusError("the bus is not connected (use `async with Bus.connect(...)`)")
        return self._nc

    @property
    def js(self) -> JetStreamContext:
        if self._js is None or self._nc is None:
            raise BusError("the bus is not connected (use `async with Bus.connect(...)`)")
        return self._js

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    # -- publishing --------------------------------------------------------------------------

    async def publish(self, msg: Message, *, subject: str | None = None) -> api.PubAck:
        """Store a message durably, retrying with the same message id until acknowledged.

        The message id goes in ``Nats-Msg-Id``, so a retry after a lost ack is stored once.

        Raises:
            PublishError: not acknowledged within ``publish_timeout_s``, or refused by the server.
        """
        if subject is None and subjects.kind_for(msg) not in STREAMS:
            raise PublishError(f"{type(msg).__name__} is not stored in a stream; use publish_core or a reply")
        subject = subjects.subject_for(msg) if subject is None else subjects.check(subject)
        return await self._publish_data(subject, encode(msg), msg.id)

    async def publish_many(self, msgs: Sequence[Message]) -> list[api.PubAck]:
        """Publish many messages with pipelined acks; any that fail are retried one by one.

        Raises:
            PublishError: as ``publish``, for the first message that could not be stored.
        """
        js = self.js
        futures: list[asyncio.Future[api.PubAck] | None] = []
        for msg in msgs:
            try:
                fut = await js.publish_async(
                    subjects.subject_for(msg), encode(msg), headers={MSG_ID_HEADER: msg.id}
                )
            except _TRANSIENT_PUBLISH_ERRORS:
                fut = None
            futures.append(fut)
        # One wait for all acks: a wait_for per future costs more than the publish itself.
        live = [f for f in futures if f is not None]
        if live:
            _, late = await asyncio.wait(live, timeout=self.config.publish_timeout_s)
            for f in late:
                f.cancel()  # frees nats-py's pending slot; retried below under the same id
        acks: list[api.PubAck] = []
        for msg, fut in zip(msgs, futures, strict=True):
            ack: api.PubAck | None = None
            if fut is not None and not fut.cancelled():
                if (exc := fut.exception()) is None:
                    ack = fut.result()
                elif not isinstance(exc, _FAILED_PIPELINED_PUBLISH):
                    raise exc
            acks.append(ack or await self.publish(msg))
        return acks

    async def _publish_data(self, subject: str, data: bytes, msg_id: str) -> api.PubAck:
        js = self.js
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.publish_timeout_s
        delay = 0.05
        while True:
            remaining = deadline - loop.time()
            try:
                return await js.publish(
                    subject,
                    data,
                    timeout=max(0.1, min(_ATTEMPT_TIMEOUT_S, remaining)),
                    headers={MSG_ID_HEADER: msg_id},
                )
            except _TRANSIENT_PUBLISH_ERRORS as e:
                if self._nc is None or self._nc.is_closed:
                    raise PublishError(f"publish to {subject} failed: the bus is closed") from e
                if loop.time() + delay >= deadline:
                    raise PublishError(
                        f"publish to {subject} not acknowledged after {self.config.publish_timeout_s:.0f}s: "
                        f"{type(e).__name__} (is the server up, and does a stream cover the subject?)"
                    ) from e
                log.debug("publish retry", extra={"subject": subject, "error": type(e).__name__})
            except nats.js.errors.APIError as e:
                raise PublishError(f"publish to {subject} refused: {e}") from e
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    def publish_core(self, msg: Message, *, subject: str | None = None) -> Coroutine[Any, Any, None]:
        """Send a message at most once over core NATS (not stored; for live-only traffic).

        Await the result: ``await bus.publish_core(msg)``. The message is encoded when this is
        called, and the coroutine returned is nats-py's own publish, so the hot path (bench.bus,
        core pub/sub) has no coroutine frame of ours.
        """
        if (nc := self._nc) is None:
            nc = self.nc  # raises: not connected
        subject = subjects.subject_for(msg) if subject is None else subjects.check(subject)
        return nc.publish(subject, encode(msg))

    async def dead_letter(
        self, *, swarm: str, consumer: str, raw: Msg, error: BaseException, deliveries: int | None = None
    ) -> None:
        """Keep an undecodable or unhandleable message, with why, in the swarm's dead-letter stream."""
        seq: int | None = None
        with contextlib.suppress(Exception):
            if raw.reply:
                seq = raw.metadata.sequence.stream
        reason = error.reason if isinstance(error, SchemaError) else (str(error) or type(error).__name__)
        letter = DeadLetter(
            swarm=swarm,
            sender=subjects.token(consumer) if _is_token(consumer) else "bus",
            consumer=consumer if _is_token(consumer) else "unnamed",
            reason=reason[:60_000],
            error_type=type(error).__name__,
            original_subject=raw.subject[:1000],
            original=bytes(raw.data[:DEAD_LETTER_ORIGINAL_MAX]),
            stream_seq=seq,
            deliveries=deliveries,
            original_size=len(raw.data) if len(raw.data) > DEAD_LETTER_ORIGINAL_MAX else None,
        )
        log.warning(
            "dead-lettered",
            extra={
                "consumer": consumer,
                "subject": raw.subject,
                "error": letter.error_type,
                "reason": reason[:200],
            },
        )
        await self.publish(letter)

    # -- request / reply ---------------------------------------------------------------------

    async def request(self, subject: str, msg: Message, *, timeout_s: float = 5.0) -> Message:
        """Send a request and return the decoded reply.

        Raises:
            RemoteError: the endpoint answered with an RpcError.
            BusError: nobody answered in time, or the reply was not a valid message.
        """
        subjects.check(subject)
        try:
            reply = await self.nc.request(subject, encode(msg), timeout=timeout_s)
        except nats.errors.NoRespondersError as e:
            raise BusError(f"nobody serves {subject}") from e
        except nats.errors.TimeoutError as e:
            raise BusError(f"no reply from {subject} within {timeout_s}s") from e
        try:
            answer = decode(reply.data)
        except SchemaError as e:
            raise BusError(f"bad reply from {subject}: {e.reason}") from e
        if isinstance(answer, RpcError):
            raise RemoteError(answer)
        return answer

    async def subscribe_core(
        self,
        subject: str,
        handler: Callable[[M], Awaitable[None]],
        *,
        expect: type[M],
        swarm: str,
        name: str,
        queue: str | None = None,
    ) -> CoreSubscription[M]:
        """Live, at-most-once delivery of what is published on ``subject`` (nothing is replayed).

        A payload that does not decode, or a handler that raises, is dead-lettered; the
        subscription goes on. Messages are handled one at a time, in order. Closing the Bus drains
        the subscription first (every message already received is handled).
        """

        async def dead_letter(raw: Msg, error: BaseException) -> None:
            await self.dead_letter(swarm=swarm, consumer=name, raw=raw, error=error)

        sub = CoreSubscription(
            self.nc, name=name, handler=handler, expect=expect, dead_letter=dead_letter, on_stop=self.forget
        )
        await sub.start(subjects.check(subject, wildcards=True), subjects.check(queue) if queue else "")
        self._consumers.append(sub)
        return sub

    async def serve(
        self,
        subject: str,
        handler: Callable[[Message], Awaitable[Message]],
        *,
        swarm: str,
        name: str,
        queue: str = "aar",
    ) -> Subscription:
        """Answer requests on ``subject``; a handler error becomes an RpcError reply, never a crash."""

        async def on_request(raw: Msg) -> None:
            try:
                answer = await handler(decode(raw.data))
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("request failed", extra={"subject": subject, "error": repr(e)})
                answer = RpcError(
                    swarm=swarm, sender=name, reason=str(e) or type(e).__name__, error_type=type(e).__name__
                )
            if raw.reply:
                await self.nc.publish(raw.reply, encode(answer))

        return await self.nc.subscribe(
            subjects.check(subject, wildcards=True), queue=subjects.check(queue), cb=on_request
        )

    # -- consumers, stores (implemented in bus.consume and bus.store) -------------------------

    async def subscribe(
        self,
        swarm: str,
        kind: subjects.Kind,
        handler: Handler[M],
        *,
        expect: type[M],
        key: str = "*",
        durable: str | None = None,
        start: StartAt | None = None,
        retry: RetryPolicy | None = None,
        concurrency: int = 1,
    ) -> Consumer:
        """Deliver each stored message of ``kind`` to ``handler``, decoded and validated.

        Args:
            swarm: whose messages.
            kind: which stream.
            handler: ``async def handler(msg, delivery)``; raise to have it redelivered (with
                backoff) and, after the last delivery, dead-lettered.
            expect: the message type the handler takes (``Envelope`` for any).
            key: the subject's last token to filter on (``*`` for all).
            durable: a durable consumer name; a restart with the same name resumes where the last
                run stopped. ``None`` gives an ordered, ack-less consumer for watching.
            start: where a new consumer starts: ``StartAt.new()`` (default), ``.all()``,
                ``.at_time(t)``, ``.at_seq(n)``. Ignored when the durable consumer already exists.
            retry: ack wait, deliveries and backoff of a new durable consumer.
            concurrency: handlers run at once (each message is still acked on its own); 1 keeps
                the stream's order.
        """
        from bus.consume import Consumer
        from bus.streams import DEFAULT_RETRY

        consumer = Consumer(
            self,
            swarm,
            kind,
            handler,
            expect=expect,
            key=key,
            durable=durable,
            start=start,
            retry=retry or DEFAULT_RETRY,
            concurrency=concurrency,
        )
        await consumer.start()
        self._consumers.append(consumer)
        return consumer

    async def work(
        self,
        swarm: str,
        handler: Handler[M],
        *,
        expect: type[M],
        durable: str = "workers",
        concurrency: int = 1,
        batch: int = 1,
        heartbeat_s: float = 10.0,
    ) -> WorkQueue:
        """Pull experiment requests from the swarm's work queue and hand each to ``handler``.

        A message is acknowledged when the handler returns; while it runs the queue is told it is
        in progress every ``heartbeat_s``, so long jobs are not redelivered. See ``bus.consume``
        for how failures are treated.
        """
        from bus.consume import WorkQueue

        wq = WorkQueue(
            self,
            swarm,
            handler,
            expect=expect,
            durable=durable,
            concurrency=concurrency,
            batch=batch,
            heartbeat_s=heartbeat_s,
        )
        await wq.start()
        self._consumers.append(wq)
        return wq

    def forget(self, consumer: Consumer | WorkQueue | CoreSubscription[Any]) -> None:
        """Stop tracking a consumer that was closed on its own."""
        with contextlib.suppress(ValueError):
            self._consumers.remove(consumer)

    async def kv(self, bucket: str) -> TypedKV:
        """A typed view of a key-value bucket (see ``bus.streams`` for the swarm's buckets)."""
        from bus.store import TypedKV

        return TypedKV(await self.js.key_value(bucket), self.js, bucket)

    async def artifacts(self, swarm: str) -> Artifacts:
        """The swarm's object store, addressed by content hash (opened once per swarm)."""
        from bus.store import Artifacts

        if (store := self._artifacts.get(swarm)) is None:
            store = self._artifacts[swarm] = await Artifacts.open(self, swarm)
        return store

    # -- connection events -------------------------------------------------------------------

    async def _on_error(self, e: Exception) -> None:
        self._login_refused |= _refused_login(e)
        if not self._closing:
            log.warning("nats error", extra={"error": repr(e)})

    async def _on_disconnected(self) -> None:
        if not self._closing:
            log.warning("bus disconnected; reconnecting")

    async def _on_reconnected(self) -> None:
        url = self._nc.connected_url.geturl() if self._nc and self._nc.connected_url else "?"
        log.info("bus reconnected", extra={"url": url})


def _refused_login(error: Exception) -> bool:
    # nats-py hands a refused login to error_cb, as a plain Error holding the server's -ERR line,
    # then raises only "no servers available"; the protocol's error string is the only code.
    return isinstance(error, nats.errors.AuthorizationError) or AUTHORIZATION_VIOLATION in str(error).lower()


def _is_token(value: str) -> bool:
    try:
        subjects.token(value)
    except ValueError:
        return False
    return True


__all__ = ["Bus", "Envelope", "RemoteError"]
