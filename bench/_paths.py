"""The measured paths of ``bench.bus``: raw nats-py and the aar Bus side by side, one run each.

Every function returns a figure for one run; set-up (building messages, purging and filling streams)
happens before the clock starts, teardown after it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Sequence

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from bus import Bus, Delivery, Kind, StartAt, streams, subjects
from bus.connection import MSG_ID_HEADER
from schemas import ExperimentRequest, Hypothesis, Message, Presence, encode

# Equal lengths: the swarm name is inside every payload, so raw and aar payloads have equal sizes.
RAW, AAR, SYN = "b-raw", "b-aar", "b-syn"
SENDER = "agent-1"
FETCH_BATCH = 256
# A path that makes no progress for this long has lost messages (or the server is stuck).
STALL_S = 15.0


class BenchError(RuntimeError):
    """A measurement could not complete (messages lost, a duplicate where none was expected)."""


# -- messages: realistic small aar messages ------------------------------------------------------


def presence(swarm: str) -> Presence:
    """Live-only traffic, the kind that goes over core NATS (its subject no stream captures)."""
    return Presence(swarm=swarm, sender=SENDER, role="researcher", name=SENDER, host="bench", pid=4242)


def hypothesis(swarm: str, i: int = 0) -> Hypothesis:
    """Stored traffic (JetStream publish, push consumers, request/reply); a fresh id per call."""
    return Hypothesis(swarm=swarm, sender=SENDER, title=f"Calibrated loss beats vanilla #{i:06d}", task="rt")


def request(swarm: str, i: int = 0) -> ExperimentRequest:
    """Work-queue traffic, what ``Bus.work`` hands to GPU workers."""
    return ExperimentRequest(swarm=swarm, sender=SENDER, task="rt", method="vanilla", seed=i % 7)


# -- helpers ---------------------------------------------------------------------------------------


class Arrivals:
    """Counts deliveries and notes when the last expected one arrived."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self.last = 0.0
        self.done = asyncio.Event()

    def hit(self) -> None:
        self.count += 1
        if self.count == self.expected:
            self.last = time.perf_counter()
            self.done.set()

    async def wait(self, what: str) -> None:
        """Return once all arrived; raise if a whole STALL_S passes without one more arriving."""
        while not self.done.is_set():
            before = self.count
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.done.wait(), STALL_S)
            if self.count == before and not self.done.is_set():
                raise BenchError(f"{what}: only {self.count} of {self.expected} messages arrived")


def settle() -> None:
    """Collect garbage from the untimed set-up so neither side pays for the other's allocations."""
    gc.collect()


async def fill(js: JetStreamContext, msgs: Sequence[Message]) -> int:
    """Store ``msgs`` (untimed set-up of a consume run); returns the first one's stream sequence."""
    futures = [
        await js.publish_async(subjects.subject_for(m), encode(m), headers={MSG_ID_HEADER: m.id})
        for m in msgs
    ]
    acks = await asyncio.gather(*futures)
    return acks[0].seq


async def purge(js: JetStreamContext, swarm: str, kind: Kind) -> None:
    """Empty a stream between runs, so every run starts from the same stream state."""
    await js.purge_stream(streams.stream_name(swarm, kind))


def check_acks(acks: Sequence[api.PubAck], n: int, what: str) -> None:
    """A duplicate ack means a reused message id: the server stored nothing and the figure is void."""
    dups = sum(1 for a in acks if a.duplicate)
    if len(acks) != n or dups:
        raise BenchError(f"{what}: {len(acks)} acks for {n} messages, {dups} duplicates")


async def js_pipelined(js: JetStreamContext, swarm: str, n: int) -> float:
    """Raw nats-py: ``publish_async`` every message with its id header, then await every ack."""
    msgs = [hypothesis(swarm, i) for i in range(n)]
    subject = subjects.subject_for(msgs[0])
    work = [(encode(m), m.id) for m in msgs]
    await purge(js, swarm, Kind.HYPOTHESES)
    settle()
    t0 = time.perf_counter()
    # The header dict is built per call, as in Bus.publish_many; only the bytes are made in advance.
    futures = [await js.publish_async(subject, data, headers={MSG_ID_HEADER: mid}) for data, mid in work]
    acks = await asyncio.gather(*futures)
    elapsed = time.perf_counter() - t0
    check_acks(acks, n, "raw publish_async")
    return n / elapsed


async def js_awaited(js: JetStreamContext, swarm: str, n: int) -> float:
    """Raw nats-py: one ``js.publish`` at a time, each waiting for its ack (no pipelining)."""
    msgs = [hypothesis(swarm, i) for i in range(n)]
    subject = subjects.subject_for(msgs[0])
    work = [(encode(m), m.id) for m in msgs]
    await purge(js, swarm, Kind.HYPOTHESES)
    settle()
    t0 = time.perf_counter()
    acks = [await js.publish(subject, data, headers={MSG_ID_HEADER: mid}) for data, mid in work]
    elapsed = time.perf_counter() - t0
    check_acks(acks, n, "raw publish")
    return n / elapsed


def push_config(swarm: str, first_seq: int) -> api.ConsumerConfig:
    """The config ``Bus.subscribe(durable=...)`` gives a durable consumer, for the raw side too.

    The same limits (max_ack_pending above all) on both sides, so the ratio measures the client
    code rather than a different consumer setting.
    """
    return api.ConsumerConfig(
        filter_subject=subjects.kind_filter(swarm, Kind.HYPOTHESES),
        ack_policy=api.AckPolicy.EXPLICIT,
        ack_wait=30.0,
        max_deliver=5,
        max_ack_pending=10_000,
        deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=first_seq,
    )


# -- the paths -------------------------------------------------------------------------------------


class BusBench:
    """Raw clients and Buses on one server: a publishing and a subscribing connection per side.

    Separate publishing and subscribing connections, as separate processes would have; all four live
    on one event loop, as the publishers and subscribers of one aar process would.
    """

    def __init__(self, raw_pub: Client, raw_sub: Client, bus_pub: Bus, bus_sub: Bus) -> None:
        self.raw_pub, self.raw_sub = raw_pub, raw_sub
        self.bus_pub, self.bus_sub = bus_pub, bus_sub
        self.raw_js = raw_pub.jetstream()
        self.raw_sub_js = raw_sub.jetstream()
        self._runs = 0

    def _name(self, prefix: str) -> str:
        self._runs += 1
        return f"{prefix}{self._runs}"

    # 1. core publish -> subscribe

    async def core_raw(self, n: int) -> float:
        payloads = [encode(presence(RAW)) for _ in range(n)]
        subject = subjects.subject_for(presence(RAW))
        arrivals = Arrivals(n)

        async def on_msg(_: Msg) -> None:
            arrivals.hit()

        sub = await self.raw_sub.subscribe(subject, cb=on_msg)
        await self.raw_sub.flush()  # the server knows the subscription before the first publish
        settle()
        t0 = time.perf_counter()
        for data in payloads:
            await self.raw_pub.publish(subject, data)
        await arrivals.wait("raw core pub/sub")
        await sub.unsubscribe()
        return n / (arrivals.last - t0)

    async def core_aar(self, n: int) -> float:
        msgs = [presence(AAR) for _ in range(n)]
        subject = subjects.subject_for(msgs[0])
        arrivals = Arrivals(n)

        async def on_msg(msg: Presence) -> None:
            arrivals.hit()

        sub = await self.bus_sub.subscribe_core(subject, on_msg, expect=Presence, swarm=AAR, name="bench")
        await self.bus_sub.nc.flush()
        settle()
        t0 = time.perf_counter()
        for msg in msgs:
            await self.bus_pub.publish_core(msg)
        await arrivals.wait("aar core pub/sub")
        await sub.unsubscribe()
        return n / (arrivals.last - t0)

    # 2. request/reply

    async def rpc(self, n: int, warmup: int) -> tuple[list[float], list[float]]:
        """Round-trip times in microseconds, raw and aar requests alternating one by one."""
        raw_subject, aar_subject = subjects.rpc(RAW, "echo"), subjects.rpc(AAR, "echo")
        raw_payload, aar_msg = encode(hypothesis(RAW)), hypothesis(AAR)

        async def raw_echo(msg: Msg) -> None:
            await msg.respond(msg.data)

        async def aar_echo(msg: Message) -> Message:
            return msg

        # Same queue group as Bus.serve, so the server routes both the same way.
        raw_srv = await self.raw_sub.subscribe(raw_subject, queue="aar", cb=raw_echo)
        aar_srv = await self.bus_sub.serve(aar_subject, aar_echo, swarm=AAR, name="echo")
        await self.raw_sub.flush()
        await self.bus_sub.nc.flush()

        async def raw_once() -> float:
            t0 = time.perf_counter_ns()
            await self.raw_pub.request(raw_subject, raw_payload, timeout=5.0)
            return (time.perf_counter_ns() - t0) / 1000

        async def aar_once() -> float:
            t0 = time.perf_counter_ns()
            await self.bus_pub.request(aar_subject, aar_msg, timeout_s=5.0)
            return (time.perf_counter_ns() - t0) / 1000

        raw_us: list[float] = []
        aar_us: list[float] = []
        settle()
        for i in range(warmup + n):
            # Alternate which goes first, so neither always runs right after the other's reply.
            if i % 2:
                a, r = await aar_once(), await raw_once()
            else:
                r, a = await raw_once(), await aar_once()
            if i >= warmup:
                raw_us.append(r)
                aar_us.append(a)
        await raw_srv.unsubscribe()
        await aar_srv.unsubscribe()
        return raw_us, aar_us

    # 3. JetStream publish, pipelined acks

    async def js_publish_raw(self, n: int) -> float:
        return await js_pipelined(self.raw_js, RAW, n)

    async def js_publish_aar(self, n: int) -> float:
        msgs = [hypothesis(AAR, i) for i in range(n)]
        await purge(self.raw_js, AAR, Kind.HYPOTHESES)
        settle()
        t0 = time.perf_counter()
        acks = await self.bus_pub.publish_many(msgs)
        elapsed = time.perf_counter() - t0
        check_acks(acks, n, "aar publish_many")
        return n / elapsed

    # 4a. work queue: pull fetch + ack

    async def pull_raw(self, n: int) -> float:
        await purge(self.raw_js, RAW, Kind.REQUESTS)
        await fill(self.raw_js, [request(RAW, i) for i in range(n)])
        config = streams.work_queue_consumer(RAW)
        settle()
        t0 = time.perf_counter()
        # Bind to the consumer ensure_swarm made, as Bus.work does (a work queue allows only one).
        sub = await self.raw_sub_js.pull_subscribe(
            config.filter_subject or "",
            durable=config.durable_name,
            stream=streams.stream_name(RAW, Kind.REQUESTS),
        )
        got, idle_since = 0, time.monotonic()
        while got < n:
            try:
                batch = await sub.fetch(FETCH_BATCH, timeout=1.0)
            except nats.errors.TimeoutError:
                if time.monotonic() - idle_since > STALL_S:
                    raise BenchError(f"raw pull: only {got} of {n} messages arrived") from None
                continue
            idle_since = time.monotonic()
            for msg in batch:
                await msg.ack()
                got += 1
        elapsed = time.perf_counter() - t0
        await sub.unsubscribe()
        await self.raw_sub.flush()  # the last acks reach the server before the next purge
        return n / elapsed

    async def pull_aar(self, n: int) -> float:
        await purge(self.raw_js, AAR, Kind.REQUESTS)
        await fill(self.raw_js, [request(AAR, i) for i in range(n)])
        arrivals = Arrivals(n)

        async def handle(_: ExperimentRequest, __: Delivery) -> None:
            arrivals.hit()

        settle()
        t0 = time.perf_counter()
        wq = await self.bus_sub.work(AAR, handle, expect=ExperimentRequest, batch=FETCH_BATCH)
        try:
            await arrivals.wait("aar work queue")
        finally:
            await wq.close()  # waits out the idle fetch (up to its 1 s timeout); untimed
        await self.bus_sub.nc.flush()
        return n / (arrivals.last - t0)

    # 4b. durable push consumer + ack

    async def push_raw(self, n: int) -> float:
        await purge(self.raw_js, RAW, Kind.HYPOTHESES)
        first = await fill(self.raw_js, [hypothesis(RAW, i) for i in range(n)])
        durable, stream = self._name("push_raw_"), streams.stream_name(RAW, Kind.HYPOTHESES)
        arrivals = Arrivals(n)

        async def on_msg(msg: Msg) -> None:
            await msg.ack()
            arrivals.hit()

        settle()
        t0 = time.perf_counter()
        # The same flow control and heartbeat that Bus.subscribe asks for.
        sub = await self.raw_sub_js.subscribe(
            subjects.kind_filter(RAW, Kind.HYPOTHESES),
            stream=stream,
            durable=durable,
            config=push_config(RAW, first),
            cb=on_msg,
            manual_ack=True,
            idle_heartbeat=5.0,
            flow_control=True,
        )
        try:
            await arrivals.wait("raw push consumer")
        finally:
            await sub.unsubscribe()
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await self.raw_js.delete_consumer(stream, durable)
        return n / (arrivals.last - t0)

    async def push_aar(self, n: int) -> float:
        await purge(self.raw_js, AAR, Kind.HYPOTHESES)
        first = await fill(self.raw_js, [hypothesis(AAR, i) for i in range(n)])
        durable, stream = self._name("push_aar_"), streams.stream_name(AAR, Kind.HYPOTHESES)
        arrivals = Arrivals(n)

        async def handle(_: Hypothesis, __: Delivery) -> None:
            arrivals.hit()

        settle()
        t0 = time.perf_counter()
        consumer = await self.bus_sub.subscribe(
            AAR, Kind.HYPOTHESES, handle, expect=Hypothesis, durable=durable, start=StartAt.at_seq(first)
        )
        try:
            await arrivals.wait("aar push consumer")
        finally:
            await consumer.close()
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await self.raw_js.delete_consumer(stream, durable)
        return n / (arrivals.last - t0)
