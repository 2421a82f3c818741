"""A server restart or crash in the middle of a stream loses nothing that JetStream acknowledged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bus import Bus, Kind, NatsServer, StartAt, ensure_swarm
from bus.streams import stream_name
from schemas import ForumPost
from tests.conftest import bus_config, server_config
from tests.helpers import Collector

N = 300


@pytest_asyncio.fixture(loop_scope="session")
async def own_server(tmp_path: Path) -> AsyncIterator[NatsServer]:
    async with NatsServer(server_config(tmp_path / "natsd")) as server:
        yield server


@pytest.mark.parametrize("how", ["restart", "crash"])
async def test_nothing_is_lost_across_a_server_restart(own_server: NatsServer, swarm: str, how: str) -> None:
    url = own_server.config.client_url
    async with (
        Bus.connect(bus_config(url, name="publisher", publish_timeout_s=30.0)) as pub,
        Bus.connect(bus_config(url, name="reader")) as sub,
    ):
        await ensure_swarm(pub, swarm)
        got: Collector[ForumPost] = Collector()
        await sub.subscribe(swarm, Kind.FORUM, got, expect=ForumPost, durable="reader", start=StartAt.all())
        sent = [ForumPost(swarm=swarm, sender="agent-1", body=f"post {i}", thread_id="t") for i in range(N)]

        async def publish_all() -> None:
            for msg in sent:
                await pub.publish(msg)
                await asyncio.sleep(0.002)

        publishing = asyncio.create_task(publish_all())
        await got.wait_for(N // 3, timeout=30)
        if how == "crash":
            await own_server.kill()  # SIGKILL: only what reached the disk survives
        else:
            await own_server.stop()
        await asyncio.sleep(0.5)
        await own_server.start()
        await asyncio.wait_for(publishing, 60)

        await got.wait_for(N, timeout=60)
        await asyncio.sleep(0.5)  # give duplicate redeliveries, if any, a chance to show
        received = {m.id for m in got.messages}
        assert received == {m.id for m in sent}
        info = await pub.js.stream_info(stream_name(swarm, Kind.FORUM))
        assert info.state.messages == N  # retried publishes were stored once
        assert pub.nc.stats["reconnects"] >= 1 and sub.nc.stats["reconnects"] >= 1
