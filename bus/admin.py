"""Creating a swarm's JetStream resources and reading their state (for ``aar status``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import nats.js.errors
from nats.js import api

from bus import streams, subjects
from bus.auth import lists_consumers, visible_kinds
from bus.connection import Bus
from schemas import Presence

log = logging.getLogger("aar.bus")


async def ensure_swarm(
    bus: Bus, swarm: str, *, replicas: int = 1, work_retry: streams.RetryPolicy = streams.DEFAULT_RETRY
) -> None:
    """Create, or bring up to date, every stream, bucket and store of ``swarm``. Idempotent.

    Args:
        bus: a connected bus with the rights to create streams (the operator's).
        swarm: the swarm's name.
        replicas: stream replicas (3 on a cluster tolerates one lost node).
        work_retry: ack wait and deliveries of the experiment work queue.
    """
    js = bus.js
    for spec in streams.STREAMS.values():
        config = spec.config(swarm, replicas=replicas)
        try:
            await js.add_stream(config)
        except nats.js.errors.BadRequestError:
            # It exists with another config (an older aar, or edited limits): update it in place.
            await js.update_stream(config)
    work = streams.work_queue_consumer(swarm, retry=work_retry)
    await js.add_consumer(streams.stream_name(swarm, subjects.Kind.REQUESTS), work)
    for kv in streams.key_values(swarm):
        try:
            await js.key_value(kv.bucket)
        except nats.js.errors.BucketNotFoundError:
            await js.create_key_value(
                api.KeyValueConfig(
                    bucket=kv.bucket,
                    description=kv.description,
                    ttl=kv.ttl_s,
                    history=kv.history,
                    storage=api.StorageType.FILE,
                    replicas=replicas,
                )
            )
    for obs in streams.object_stores(swarm):
        try:
            await js.object_store(obs.bucket)
        except nats.js.errors.NotFoundError:
            await js.create_object_store(
                obs.bucket,
                api.ObjectStoreConfig(
                    bucket=obs.bucket,
                    description=obs.description,
                    storage=api.StorageType.FILE,
                    replicas=replicas,
                ),
            )
    log.info("swarm ready", extra={"swarm": swarm})


@dataclass(slots=True)
class StreamState:
    name: str
    messages: int
    bytes: int
    consumers: int
    first_seq: int
    last_seq: int


@dataclass(slots=True)
class ConsumerState:
    stream: str
    name: str
    pending: int
    ack_pending: int
    redelivered: int
    waiting: int


@dataclass(slots=True)
class SwarmState:
    swarm: str
    streams: list[StreamState] = field(default_factory=list)
    consumers: list[ConsumerState] = field(default_factory=list)
    presence: list[Presence] = field(default_factory=list)


async def list_swarms(bus: Bus) -> list[str]:
    """Every swarm that has streams on this server."""
    found: set[str] = set()
    offset = 0
    while True:  # the server lists at most 256 streams a page
        page = await bus.js.streams_info(offset)
        if not page:
            break
        offset += len(page)
        for info in page:
            name = info.config.name or ""
            if name.startswith("AAR_"):
                found.add(name[4:].rsplit("_", 1)[0])
    return sorted(found)


async def swarm_exists(bus: Bus, swarm: str) -> bool:
    """Whether ``swarm``'s streams exist (one lookup, whatever the number of swarms)."""
    try:
        await bus.js.stream_info(streams.stream_name(swarm, subjects.Kind.HYPOTHESES))
    except nats.js.errors.NotFoundError:
        return False
    return True


async def swarm_state(bus: Bus, swarm: str) -> SwarmState:
    """Streams with message counts, consumers with pending work, and who is present.

    Only what the bus's role may look at is listed (``bus.auth.visible_kinds``, ``lists_consumers``).
    """
    state = SwarmState(swarm)
    js = bus.js
    creds = bus.config.credentials()
    role = creds.role if creds else None
    visible, with_consumers = visible_kinds(role), lists_consumers(role)
    for kind in streams.STREAMS:
        if kind not in visible:
            continue  # the server refuses this role a look (and refusals answer only by timing out)
        name = streams.stream_name(swarm, kind)
        try:
            info = await js.stream_info(name)
        except nats.js.errors.NotFoundError:
            continue
        s = info.state
        state.streams.append(
            StreamState(name, s.messages, s.bytes, s.consumer_count, s.first_seq, s.last_seq)
        )
        for c in await js.consumers_info(name) if with_consumers else []:
            state.consumers.append(
                ConsumerState(
                    name,
                    c.name,
                    c.num_pending or 0,
                    c.num_ack_pending or 0,
                    c.num_redelivered or 0,
                    c.num_waiting or 0,
                )
            )
    try:
        bucket = await bus.kv(streams.presence_bucket(swarm))
    except nats.js.errors.BucketNotFoundError:
        return state
    state.presence = [p for p in (await bucket.items()).values() if isinstance(p, Presence)]
    return state
