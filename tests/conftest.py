"""Shared fixtures: one real nats-server with JetStream per test session; one swarm name per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bus import Bus, BusConfig, NatsServer, ServerConfig, ensure_swarm
from bus.natsd import free_port
from bus.streams import RetryPolicy

# Short enough that redelivery tests finish in seconds, long enough for a loaded 2-core machine.
TEST_RETRY = RetryPolicy(ack_wait_s=2.0, max_deliver=3, backoff_s=(0.1, 0.2))


def server_config(data_dir: Path, *, sync_always: bool = True) -> ServerConfig:
    """A config for a server on free loopback ports."""
    return ServerConfig(
        data_dir=data_dir, port=free_port(), monitor_port=free_port(), sync_always=sync_always
    )


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def nats_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[NatsServer]:
    async with NatsServer(server_config(tmp_path_factory.mktemp("natsd"))) as server:
        yield server


@pytest.fixture(scope="session")
def nats_url(nats_server: NatsServer) -> str:
    return nats_server.config.client_url


@pytest.fixture
def swarm() -> str:
    """A fresh swarm name: its own subjects, streams, durables and buckets."""
    return f"t{uuid.uuid4().hex[:12]}"


def bus_config(url: str, **overrides: object) -> BusConfig:
    fields: dict[str, object] = {
        "servers": [url],
        "name": "aar-test",
        "publish_timeout_s": 10.0,
        "connect_attempts": 1,
    }
    fields.update(overrides)
    return BusConfig(**fields)  # type: ignore[arg-type]


@pytest_asyncio.fixture(loop_scope="session")
async def bus(nats_url: str, swarm: str) -> AsyncIterator[Bus]:
    """A connected Bus whose swarm has all its streams, with short retry timings."""
    async with Bus.connect(bus_config(nats_url)) as connected:
        await ensure_swarm(connected, swarm, work_retry=TEST_RETRY)
        yield connected
