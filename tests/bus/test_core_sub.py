"""Core subscriptions: the direct delivery path, its order, limits, unsubscribe, drain and restarts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
import pytest_asyncio
from nats.aio.msg import Msg

from bus import Bus, Kind, NatsServer
from bus import subjects as s
from bus.core_sub import CoreSubscription
from schemas import Presence, encode
from tests.conftest import bus_config, server_config
from tests.helpers import eventually


def presences(swarm: str, n: int) -> list[Presence]:
    return [Presence(swarm=swarm, sender="a", role="r", name="a", host="h", pid=i) for i in range(n)]


class Letters:
    """The dead-letter callback of a hand-built subscription: keeps each error for the test to check.

    (A callback that raised would not fail the test: the subscription logs a failed dead letter.)
    """

    def __init__(self) -> None:
        self.errors: list[BaseException] = []

    async def __call__(self, _raw: Msg, error: BaseException) -> None:
        self.errors.append(error)


async def test_messages_come_in_order_by_the_direct_path(bus: Bus, swarm: str) -> None:
    got: list[Presence] = []

    async def on_presence(msg: Presence) -> None:
        got.append(msg)

    sub = await bus.subscribe_core(
        s.kind_filter(swarm, Kind.EVENTS), on_presence, expect=Presence, swarm=swarm, name="order"
    )
    sent = presences(swarm, 500)
    for msg in sent:
        await bus.publish_core(msg)
    await eventually(lambda: len(got) == len(sent))
    assert got == sent
    # Every message came the direct way: nats-py's generic dispatch (Msg, queue, task) was skipped.
    assert sub.direct == len(sent) and sub.dropped == 0


async def test_a_plain_nats_client_still_delivers_by_the_slower_path(nats_url: str, swarm: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        got: list[Presence] = []

        async def on_presence(msg: Presence) -> None:
            got.append(msg)

        letters = Letters()
        sub = CoreSubscription(nc, name="plain", handler=on_presence, expect=Presence, dead_letter=letters)
        await sub.start(s.kind_filter(swarm, Kind.EVENTS), "")
        sent = presences(swarm, 20)
        for msg in sent:
            await nc.publish(s.subject_for(msg), encode(msg))
        await eventually(lambda: len(got) == len(sent))
        assert got == sent and sub.direct == 0 and letters.errors == []
        await sub.unsubscribe()
    finally:
        await nc.close()


async def test_past_the_pending_limit_messages_are_dropped_and_counted(bus: Bus, swarm: str) -> None:
    release = asyncio.Event()
    got: list[Presence] = []

    async def slow(msg: Presence) -> None:
        await release.wait()
        got.append(msg)

    letters = Letters()
    sub = CoreSubscription(
        bus.nc, name="slow", handler=slow, expect=Presence, dead_letter=letters, pending_msgs_limit=5
    )
    await sub.start(s.kind_filter(swarm, Kind.EVENTS), "")
    sent = presences(swarm, 20)
    await bus.publish_core(sent[0])
    await eventually(lambda: sub.direct == 1 and sub.pending == 0)  # the first is in the handler
    for msg in sent[1:]:
        await bus.nc.publish(s.subject_for(msg), encode(msg))
    await eventually(lambda: sub.direct + sub.dropped == len(sent))
    assert sub.dropped == 14 and sub.pending == 5
    release.set()
    await eventually(lambda: len(got) == 6)
    assert got == sent[:6] and letters.errors == []  # the first, then the five that fitted, in order
    await sub.unsubscribe()


async def test_unsubscribe_stops_delivery_and_drops_what_is_pending(bus: Bus, swarm: str) -> None:
    release = asyncio.Event()
    got: list[Presence] = []

    async def slow(msg: Presence) -> None:
        await release.wait()
        got.append(msg)

    sub = await bus.subscribe_core(
        s.kind_filter(swarm, Kind.EVENTS), slow, expect=Presence, swarm=swarm, name="gone"
    )
    sent = presences(swarm, 10)
    for msg in sent:
        await bus.publish_core(msg)
    await eventually(lambda: sub.direct == len(sent))
    await sub.unsubscribe()  # cancels the handler in hand; the rest are dropped
    release.set()
    for msg in presences(swarm, 3):
        await bus.publish_core(msg)
    await bus.nc.flush()
    await asyncio.sleep(0.1)
    assert got == [] and sub.direct == len(sent) and sub.pending == 0


async def test_closing_the_bus_handles_every_message_already_received(nats_url: str, swarm: str) -> None:
    got: list[Presence] = []
    start = asyncio.Event()

    async def slowish(msg: Presence) -> None:
        await start.wait()
        await asyncio.sleep(0.002)
        got.append(msg)

    sent = presences(swarm, 100)
    async with Bus.connect(bus_config(nats_url, name="publisher")) as pub:
        reader = Bus.connect(bus_config(nats_url, name="reader"))
        await reader.start()
        sub = await reader.subscribe_core(
            s.kind_filter(swarm, Kind.EVENTS), slowish, expect=Presence, swarm=swarm, name="drained"
        )
        await reader.nc.flush()
        for msg in sent:
            await pub.publish_core(msg)
        await pub.nc.flush()
        await eventually(lambda: sub.direct == len(sent))
        assert got == []
        start.set()  # ~0.2 s of handling left when close begins
        await reader.close()
    assert got == sent


@pytest_asyncio.fixture(loop_scope="session")
async def own_server(tmp_path: Path) -> AsyncIterator[NatsServer]:
    async with NatsServer(server_config(tmp_path / "natsd")) as server:
        yield server


async def test_a_core_subscription_resumes_after_the_server_restarts(
    own_server: NatsServer, swarm: str
) -> None:
    url = own_server.config.client_url
    got: list[Presence] = []

    async def on_presence(msg: Presence) -> None:
        got.append(msg)

    async with (
        Bus.connect(bus_config(url, name="pub")) as pub,
        Bus.connect(bus_config(url, name="sub")) as sub,
    ):
        watch = await sub.subscribe_core(
            s.kind_filter(swarm, Kind.EVENTS), on_presence, expect=Presence, swarm=swarm, name="resumed"
        )
        await sub.nc.flush()  # the server has the subscription before the other connection publishes
        before, after = presences(swarm, 5), presences(swarm, 5)
        for msg in before:
            await pub.publish_core(msg)
        await eventually(lambda: len(got) == 5)
        await own_server.stop()
        await asyncio.sleep(0.5)
        await own_server.start()
        await eventually(lambda: pub.connected and sub.connected, timeout=30)
        await sub.nc.flush()  # the re-subscription has reached the server
        for msg in after:
            await pub.publish_core(msg)
        await eventually(lambda: len(got) == 10)
        assert got == before + after and watch.direct == 10


@pytest.mark.parametrize("how", ["unsubscribe", "drain"])
async def test_a_handler_may_unsubscribe_or_drain_its_own_subscription(
    bus: Bus, swarm: str, how: str
) -> None:
    got: list[Presence] = []
    all_queued = asyncio.Event()

    async def stop_after_first(msg: Presence) -> None:
        got.append(msg)
        if len(got) == 1:
            await all_queued.wait()
            await (sub.unsubscribe() if how == "unsubscribe" else sub.drain())

    sub = await bus.subscribe_core(
        s.kind_filter(swarm, Kind.EVENTS), stop_after_first, expect=Presence, swarm=swarm, name=how
    )
    sent = presences(swarm, 5)
    for msg in sent:
        await bus.publish_core(msg)
    await eventually(lambda: sub.direct == len(sent))
    all_queued.set()
    # unsubscribe drops what was pending; drain hands it to the handler first
    expected = sent[:1] if how == "unsubscribe" else sent
    await eventually(lambda: got == expected)
    await asyncio.sleep(0.05)
    assert got == expected and sub.pending == 0 and sub not in bus._consumers


async def test_a_handler_error_is_dead_lettered_and_the_next_message_handled(bus: Bus, swarm: str) -> None:
    from bus import StartAt
    from schemas import DeadLetter
    from tests.helpers import Collector

    letters: Collector[DeadLetter] = Collector()
    await bus.subscribe(swarm, Kind.DLQ, letters, expect=DeadLetter, start=StartAt.all())
    got: list[Presence] = []

    async def picky(msg: Presence) -> None:
        if msg.pid == 1:
            raise ValueError("pid 1 is not welcome")
        got.append(msg)

    await bus.subscribe_core(
        s.kind_filter(swarm, Kind.EVENTS), picky, expect=Presence, swarm=swarm, name="picky"
    )
    sent = presences(swarm, 3)
    for msg in sent:
        await bus.publish_core(msg)
    [letter] = await letters.wait_for(1)
    assert letter.reason == "pid 1 is not welcome" and letter.error_type == "ValueError"
    assert letter.original == encode(sent[1]) and letter.consumer == "picky"
    await eventually(lambda: got == [sent[0], sent[2]])
