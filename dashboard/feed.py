"""The bus side of the dashboard: replay the swarm's public record, then follow it live.

Every message goes through ``DashboardState.apply`` and its deltas straight to ``publish`` (the
hub), in the callback that received it: nothing polls for scores, posts or flags. What a KV bucket
holds (tasks, leaderboards, presence) comes from watchers. Only two things run on a timer: the work
queue's counts (consumer info, which has no change events) and the presence time-out (the bucket
expires entries without telling watchers).

Everything here is readable with the observer's credentials (``bus.auth.GRANTS[Role.OBSERVER]``):
no labels, no baselines, no verdicts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, cast

import nats.errors
import nats.js.errors

from bus import Bus, BusError, Consumer, Delivery, Kind, StartAt, streams
from bus.store import TypedKV
from dashboard.queue import QueueWatch
from dashboard.state import DashboardState, Delta
from schemas import Envelope, ExperimentRequest, Message

log = logging.getLogger("aar.dashboard")

Publish = Callable[[Sequence[Delta]], None]


@dataclass(frozen=True, slots=True)
class FeedConfig:
    """How much history to replay and how often to refresh what has no change events.

    Attributes:
        catch_up_s: the longest ``start`` waits for the stored history before serving anyway.
        progress_window_s: progress heartbeats replayed (older ones say nothing about now).
        results_window_s: results replayed, for the queue's recently finished requests.
        queue_every_s: the work queue's counts are refreshed at least this often (and soon after
            any request, progress or result).
        prune_every_s: how often presence entries that stopped beating are timed out.
    """

    catch_up_s: float = 15.0
    progress_window_s: float = 600.0
    results_window_s: float = 3600.0
    queue_every_s: float = 2.0
    prune_every_s: float = 5.0


# Replayed in full: the public record. Progress and results only for a recent window.
_FULL_HISTORY = (Kind.SCORES, Kind.FORUM, Kind.FLAGS, Kind.BUDGET, Kind.USAGE)
_BUCKETS = (streams.tasks_bucket, streams.leaderboard_bucket, streams.presence_bucket)


class Feed:
    """Keeps a DashboardState up to date from the bus and hands every change to ``publish``."""

    def __init__(
        self, bus: Bus, swarm: str, state: DashboardState, publish: Publish, config: FeedConfig | None = None
    ) -> None:
        self._bus, self._swarm, self._state, self._publish = bus, swarm, state, publish
        self._cfg = config or FeedConfig()
        self._consumers: list[Consumer] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._queue = QueueWatch(bus, swarm, self._on_request, backlog=state.limits.requests)
        self._queue_changed = asyncio.Event()
        # Stream kind -> the last sequence stored when we started; removed once delivered.
        self._behind: dict[Kind, int] = {}
        self._caught_up = asyncio.Event()

    async def start(self) -> None:
        """Load the buckets, replay the streams (up to ``catch_up_s``), then follow everything.

        Raises:
            BusError: the swarm has no streams or buckets on this server.
        """
        for bucket in _BUCKETS:
            kv = await self._open(bucket(self._swarm))
            for value in (await kv.items()).values():
                self._apply(value)
            self._spawn(self._watch(kv), f"dashboard:watch:{kv.bucket}")
        now = time.time()
        for kind in _FULL_HISTORY:
            await self._follow(kind, StartAt.all())
        await self._follow(Kind.RESULTS, StartAt.at_time(now - self._cfg.results_window_s))
        await self._follow(Kind.PROGRESS, StartAt.at_time(now - self._cfg.progress_window_s))
        await self._queue.start()
        self._spawn(self._refresh_queue(), "dashboard:queue")
        self._spawn(self._prune(), "dashboard:presence")
        if not self._behind:
            self._caught_up.set()
        try:
            async with asyncio.timeout(self._cfg.catch_up_s):
                await self._caught_up.wait()
        except TimeoutError:
            log.warning(
                "history not replayed in time; serving what is loaded", extra={"behind": dict(self._behind)}
            )
        log.info("dashboard feed live", extra={"swarm": self._swarm, "totals": self._state.totals})

    async def close(self) -> None:
        """Stop every consumer, watcher and timer. Safe to call twice."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        consumers, self._consumers = self._consumers, []
        for consumer in consumers:
            await consumer.close(grace_s=2.0)
        await self._queue.close()

    # -- streams -------------------------------------------------------------------------------

    async def _follow(self, kind: Kind, start: StartAt) -> None:
        stream = streams.stream_name(self._swarm, kind)
        try:
            await self._subscribe(kind, start)
        except nats.js.errors.NotFoundError as e:
            raise BusError(f"stream {stream} does not exist: is swarm {self._swarm!r} set up?") from e
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError) as e:
            raise BusError(f"no answer reading {stream}: these credentials may not read it") from e

    async def _subscribe(self, kind: Kind, start: StartAt) -> None:
        if start.policy is StartAt.all().policy:
            info = await self._bus.js.stream_info(streams.stream_name(self._swarm, kind))
            if info.state.messages:
                self._behind[kind] = info.state.last_seq

        async def handle(msg: Envelope, delivery: Delivery) -> None:
            self._apply(cast(Message, msg))  # decoding only ever yields members of Message
            if kind in self._behind and (delivery.stream_seq or 0) >= self._behind[kind]:
                del self._behind[kind]
                if not self._behind:
                    self._caught_up.set()
            if kind in (Kind.PROGRESS, Kind.RESULTS):
                self._queue_changed.set()

        # durable=None: an ordered, ack-less consumer that watches without taking anything away.
        consumer = await self._bus.subscribe(self._swarm, kind, handle, expect=Envelope, start=start)
        self._consumers.append(consumer)

    async def _on_request(self, request: ExperimentRequest) -> None:
        self._apply(request)
        self._queue_changed.set()

    def _apply(self, msg: Message) -> None:
        # A bug in the model must not stop the feed, nor dead-letter a message the swarm is fine with.
        try:
            deltas = self._state.apply(msg)
        except Exception:
            log.exception("dashboard could not apply a message", extra={"kind": type(msg).__name__})
            return
        self._publish(deltas)

    # -- buckets -------------------------------------------------------------------------------

    async def _open(self, bucket: str) -> TypedKV:
        try:
            return await self._bus.kv(bucket)
        except nats.js.errors.BucketNotFoundError as e:
            raise BusError(f"no bucket {bucket}: is swarm {self._swarm!r} set up on this server?") from e
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError) as e:
            # The server answers a request its permissions refuse with silence.
            raise BusError(
                f"no answer opening bucket {bucket}: swarm {self._swarm!r} is not set up, or these "
                "credentials may not read it (the observer's are enough)"
            ) from e

    async def _watch(self, kv: TypedKV) -> None:
        presence = kv.bucket == streams.presence_bucket(self._swarm)
        while True:
            try:
                async for key, value in kv.watch(history=True):
                    if value is not None:
                        self._apply(value)
                    elif presence:
                        self._publish(self._state.forget_presence(key))
            except (nats.errors.Error, nats.js.errors.Error, OSError) as e:
                log.warning("bucket watch failed; restarting", extra={"bucket": kv.bucket, "error": repr(e)})
            await asyncio.sleep(1.0)

    # -- timers --------------------------------------------------------------------------------

    async def _refresh_queue(self) -> None:
        while True:
            try:
                self._publish(self._state.set_queue(await self._queue.stats()))
            except (nats.errors.Error, nats.js.errors.Error, OSError) as e:
                log.debug("queue counts not read", extra={"error": repr(e)})
            # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel that arrives as the
            # event is set, and this loop would never end.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._cfg.queue_every_s):
                    await self._queue_changed.wait()
            self._queue_changed.clear()
            await asyncio.sleep(0.05)  # one refresh for a burst of requests

    async def _prune(self) -> None:
        while True:
            await asyncio.sleep(self._cfg.prune_every_s)
            self._publish(self._state.prune())

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(_log_crash)
        self._tasks.append(task)


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("dashboard task crashed", exc_info=exc, extra={"task": task.get_name()})
