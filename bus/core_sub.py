"""Core (at-most-once) subscriptions with a direct delivery path.

nats-py hands every message of a callback subscription through a ``Msg`` object, its headers
coroutine and an ``asyncio.Queue`` read by a task: about 2.8 us a message here, more than aar's
validated decode (~1 us). ``DirectClient`` is nats-py's client with one method overridden, so that
a message for an aar core subscription goes straight from the parser into that subscription's deque
(its payload, subject and reply, no Msg), which one task drains in order.

The nats-py subscription underneath stays as it is (its sid, re-subscription after a reconnect,
UNSUB, drain) and keeps a callback that does the same work on a ``Msg``: if a nats-py release stops
calling the overridden method, messages still arrive, by the slower path. ``CoreSubscription.direct``
counts what came the direct way, and a test asserts it is not zero.

Semantics kept from nats-py: per-subscription order, at most once, a pending limit past which
messages are dropped (counted, logged) rather than memory growing without bound, ``unsubscribe``
dropping what is pending, ``drain`` delivering it. Headers are not read: aar core messages carry
none, and their payload is the message.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from schemas import Envelope, decoder_for
from schemas.codec import unsized_decoder_for
from schemas.messages import MAX_MESSAGE_BYTES

log = logging.getLogger("aar.bus")

M = TypeVar("M", bound=Envelope)
DeadLetter = Callable[[Msg, BaseException], Awaitable[None]]

# nats-py's defaults for a subscription's pending messages, kept for the direct path.
PENDING_MSGS_LIMIT = 512 * 1024
PENDING_BYTES_LIMIT = 128 * 1024 * 1024


class DirectClient(Client):
    """nats-py's Client; messages for a registered core subscription skip its generic dispatch."""

    def __init__(self) -> None:
        super().__init__()
        self._direct: dict[int, CoreSubscription[Any]] = {}

    async def _process_msg(self, sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes) -> None:
        # Called by nats-py's parser for every MSG/HMSG (nats-py 2.16; pinned in pyproject).
        target = self._direct.get(sid)
        if target is None:
            await super()._process_msg(sid, subject, reply, data, headers)
            return
        stats = self.stats
        stats["in_msgs"] += 1
        stats["in_bytes"] += len(data)
        target.put(subject, reply, data)


class CoreSubscription(Generic[M]):
    """A live subscription's handler, fed by ``DirectClient`` (or, failing that, by nats-py).

    Made by ``Bus.subscribe_core``. A payload that does not decode, or a handler that raises, goes
    to ``dead_letter``; the subscription goes on.
    """

    def __init__(
        self,
        nc: Client,
        *,
        name: str,
        handler: Callable[[M], Awaitable[None]],
        expect: type[M],
        dead_letter: DeadLetter,
        on_stop: Callable[[CoreSubscription[M]], None] | None = None,
        pending_msgs_limit: int = PENDING_MSGS_LIMIT,
        pending_bytes_limit: int = PENDING_BYTES_LIMIT,
    ) -> None:
        self.name = name
        self._nc = nc
        self._handler = handler
        self._decode_checked = decoder_for(expect)
        # msgspec's own method (no Python frame) for payloads within the limit; what it refuses
        # is decoded again by the checked decoder, for the SchemaError and its reason.
        self._decode_fast = unsized_decoder_for(expect) or self._decode_checked
        self._dead_letter = dead_letter
        self._on_stop = on_stop
        self._msgs_limit, self._bytes_limit = pending_msgs_limit, pending_bytes_limit
        self._queue: collections.deque[tuple[bytes, bytes, bytes]] = collections.deque()
        self._pending_bytes = 0
        self._wakeup: asyncio.Future[None] | None = None
        # Set while the task waits with nothing queued; cleared when a message wakes it.
        self._idle = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sub: Subscription | None = None
        self.direct = 0  # messages that came by the direct path
        self.dropped = 0  # messages dropped over the pending limit

    async def start(self, subject: str, queue: str) -> None:
        self._sub = await self._nc.subscribe(subject, queue=queue, cb=self._on_nats_msg)
        self._task = asyncio.create_task(self._run(), name=f"aar:core:{self.name}")
        if isinstance(self._nc, DirectClient):
            self._nc._direct[self._sub._id] = self

    @property
    def pending(self) -> int:
        """Messages received and not yet handled."""
        return len(self._queue)

    def put(self, subject: bytes, reply: bytes, data: bytes) -> None:
        """Queue one message (called by DirectClient for each message on this subscription)."""
        queue = self._queue
        if len(queue) >= self._msgs_limit or self._pending_bytes + len(data) > self._bytes_limit:
            self._drop(subject)
            return
        queue.append((subject, reply, data))
        self._pending_bytes += len(data)
        self.direct += 1
        if (wakeup := self._wakeup) is not None:
            self._wakeup = None
            self._idle.clear()
            if not wakeup.done():
                wakeup.set_result(None)

    def _drop(self, subject: bytes) -> None:
        self.dropped += 1
        if self.dropped == 1 or self.dropped % 10_000 == 0:
            log.warning(
                "slow core subscriber: messages dropped",
                extra={
                    "consumer": self.name,
                    "subject": subject.decode(errors="replace"),
                    "dropped": self.dropped,
                },
            )

    async def _run(self) -> None:
        queue, handler, loop = self._queue, self._handler, asyncio.get_running_loop()
        fast, checked, limit = self._decode_fast, self._decode_checked, MAX_MESSAGE_BYTES
        error = msgspec.DecodeError
        while True:
            while queue:
                subject, reply, data = queue.popleft()
                self._pending_bytes -= len(data)
                try:
                    try:
                        msg = fast(data) if len(data) <= limit else checked(data)
                    except error:
                        msg = checked(data)  # raises SchemaError, with the reason
                    await handler(msg)
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    raw = Msg(_client=self._nc, subject=subject.decode(), reply=reply.decode(), data=data)
                    await self._give_up(raw, e)
            if self._task is not asyncio.current_task():
                return  # stopped (or drained) from inside the handler
            self._wakeup = loop.create_future()
            self._idle.set()
            await self._wakeup

    async def _on_nats_msg(self, raw: Msg) -> None:
        """nats-py's path, used only for messages DirectClient did not take: the same handling."""
        try:
            msg = self._decode_checked(raw.data)
            await self._handler(msg)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            await self._give_up(raw, e)

    async def _give_up(self, raw: Msg, error: Exception) -> None:
        try:
            await self._dead_letter(raw, error)
        except Exception:
            log.exception("dead-letter publish failed", extra={"consumer": self.name})

    async def _stop(self, sub: Subscription | None, *, drop_pending: bool = True) -> None:
        if sub is not None and isinstance(self._nc, DirectClient):
            self._nc._direct.pop(sub._id, None)
        task, self._task = self._task, None
        if drop_pending:
            self._queue.clear()
            self._pending_bytes = 0
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # From inside the handler the task is not cancelled: it sees ``_task`` gone and returns
        # once its queue is empty (at once after an unsubscribe, which empties it).
        if self._on_stop is not None:
            self._on_stop(self)

    async def unsubscribe(self) -> None:
        """Stop now; what is pending is dropped (as nats-py's ``unsubscribe`` does).

        From inside the handler, the message in hand is finished first.
        """
        sub, self._sub = self._sub, None
        try:
            if sub is not None and not self._nc.is_closed:
                await sub.unsubscribe()
        finally:
            await self._stop(sub)

    async def drain(self) -> None:
        """Stop taking messages, then handle every one already received.

        From inside the handler, it returns at once and the rest is handled after the handler.
        """
        sub, self._sub = self._sub, None
        if sub is None:
            return
        inside = self._task is asyncio.current_task()
        try:
            if not (self._nc.is_closed or self._nc.is_draining):
                # UNSUB, then a round trip: every message sent before it has arrived.
                await sub.drain()  # type: ignore[no-untyped-call]
            if not inside:
                await self._idle.wait()  # set only once the queue is empty and no handler runs
        finally:
            await self._stop(sub, drop_pending=not inside)

    async def close(self, grace_s: float = 10.0) -> None:
        """Drain within ``grace_s``; past it, drop what is left."""
        try:
            await asyncio.wait_for(self.drain(), grace_s)
        except Exception as e:  # the drain's time ran out, or the connection is gone
            log.warning("core subscription did not drain", extra={"consumer": self.name, "error": repr(e)})
