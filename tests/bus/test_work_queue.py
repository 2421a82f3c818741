"""The experiment work queue: each request taken once, heartbeats, redelivery when a worker dies."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap

from bus import Bus, Delivery, HandlerError, Kind, StartAt
from bus.streams import stream_name
from schemas import DeadLetter, ExperimentRequest
from tests.conftest import TEST_RETRY
from tests.helpers import Collector, eventually


def request(swarm: str, method: str = "naive", seed: int = 0) -> ExperimentRequest:
    return ExperimentRequest(swarm=swarm, sender="agent-1", task="rt", method=method, seed=seed)


async def queued(bus: Bus, swarm: str) -> int:
    return (await bus.js.stream_info(stream_name(swarm, Kind.REQUESTS))).state.messages


async def test_each_request_is_taken_by_one_worker_and_removed_on_ack(bus: Bus, swarm: str) -> None:
    a: Collector[ExperimentRequest] = Collector()
    b: Collector[ExperimentRequest] = Collector()
    await bus.work(swarm, a, expect=ExperimentRequest, concurrency=2)
    await bus.work(swarm, b, expect=ExperimentRequest, concurrency=2)
    sent = [request(swarm, seed=i) for i in range(40)]
    await bus.publish_many(sent)
    await eventually(lambda: len(a.messages) + len(b.messages) == 40)
    assert sorted(m.seed for m in a.messages + b.messages) == list(range(40))

    async def drained() -> bool:
        return await queued(bus, swarm) == 0

    await eventually(drained)


async def test_a_killed_worker_s_job_is_redelivered_and_finished_once(
    nats_url: str, bus: Bus, swarm: str
) -> None:
    # A real worker process that takes the job and hangs, then dies without acking.
    script = textwrap.dedent(f"""
        import asyncio
        from bus import Bus, BusConfig
        from schemas import ExperimentRequest

        async def main() -> None:
            async with Bus.connect(BusConfig(servers=[{nats_url!r}])) as bus:
                async def hang(msg, delivery):
                    print("took", msg.id, flush=True)
                    await asyncio.Event().wait()
                await bus.work({swarm!r}, hang, expect=ExperimentRequest)
                await asyncio.Event().wait()

        asyncio.run(main())
    """)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE, cwd=os.getcwd()
    )
    try:
        job = request(swarm)
        await bus.publish(job)
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert line.decode().split() == ["took", job.id]
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()

    survivor: Collector[ExperimentRequest] = Collector()
    await bus.work(swarm, survivor, expect=ExperimentRequest)
    done = await survivor.wait_for(1, timeout=TEST_RETRY.ack_wait_s + 10)
    assert done[0].id == job.id and survivor.deliveries == [2]
    await asyncio.sleep(TEST_RETRY.ack_wait_s + 0.5)  # long enough for any stray redelivery
    assert len(survivor.messages) == 1
    assert await queued(bus, swarm) == 0


async def test_heartbeats_keep_a_long_job_from_being_redelivered(bus: Bus, swarm: str) -> None:
    deliveries: list[int] = []

    async def slow(msg: ExperimentRequest, delivery: Delivery) -> None:
        deliveries.append(delivery.deliveries)
        await asyncio.sleep(TEST_RETRY.ack_wait_s * 2.5)

    other: Collector[ExperimentRequest] = Collector()
    await bus.work(swarm, slow, expect=ExperimentRequest, heartbeat_s=0.5)
    await bus.publish(request(swarm))
    await eventually(lambda: deliveries == [1])
    await bus.work(swarm, other, expect=ExperimentRequest)  # would take a redelivery if one came

    async def drained() -> bool:
        return await queued(bus, swarm) == 0

    await eventually(drained, timeout=TEST_RETRY.ack_wait_s * 5)
    assert deliveries == [1] and other.messages == []


async def test_transient_failures_are_retried_and_hopeless_ones_dead_lettered(bus: Bus, swarm: str) -> None:
    attempts: dict[str, list[int]] = {}

    async def handler(msg: ExperimentRequest, delivery: Delivery) -> None:
        attempts.setdefault(msg.method, []).append(delivery.deliveries)
        if msg.method == "unknown":
            raise HandlerError("unknown method 'unknown'", retryable=False)
        if delivery.deliveries == 1:
            raise HandlerError("GPU busy", retryable=True)

    letters: Collector[DeadLetter] = Collector()
    await bus.subscribe(swarm, Kind.DLQ, letters, expect=DeadLetter, start=StartAt.all())
    await bus.work(swarm, handler, expect=ExperimentRequest)
    await bus.publish(request(swarm, method="flaky"))
    await bus.publish(request(swarm, method="unknown"))
    dead = await letters.wait_for(1)
    await eventually(lambda: attempts.get("flaky") == [1, 2])
    assert attempts["unknown"] == [1]
    assert dead[0].reason == "unknown method 'unknown'" and dead[0].consumer == "workers"


async def test_closing_finishes_the_job_in_hand(nats_url: str, bus: Bus, swarm: str) -> None:
    from tests.conftest import bus_config

    started, finished = asyncio.Event(), asyncio.Event()

    async def job(msg: ExperimentRequest, delivery: Delivery) -> None:
        started.set()
        await asyncio.sleep(0.5)
        finished.set()

    async with Bus.connect(bus_config(nats_url)) as worker_bus:
        await worker_bus.work(swarm, job, expect=ExperimentRequest)
        await bus.publish(request(swarm))
        await asyncio.wait_for(started.wait(), 10)
    assert finished.is_set()

    async def drained() -> bool:
        return await queued(bus, swarm) == 0

    await eventually(drained)
