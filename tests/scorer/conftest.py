"""Fixtures for the scorer: a synthetic task with known truth, a registered worker, a running scorer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from bus import Bus, streams
from schemas import Presence
from scorer import HoldoutConfig, Scorer, ScorerConfig
from scorer.synthetic import SyntheticTask, publish_task
from tests.cli.conftest import _restore_logging, run_cli

__all__ = ["_restore_logging", "run_cli"]

WORKER = "synthetic-worker"
TEST_CONFIG = ScorerConfig(concurrency=8, leaderboard_every_s=0.05, holdout=HoldoutConfig(budget=1000))


async def register(bus: Bus, swarm: str, name: str, role: str) -> None:
    """Put a presence entry, as a live process of ``role`` would."""
    kv = await bus.kv(streams.presence_bucket(swarm))
    await kv.put(name, Presence(swarm=swarm, sender=name, role=role, name=name, host="test", pid=1))


@pytest_asyncio.fixture(loop_scope="session")
async def synth(bus: Bus, swarm: str) -> SyntheticTask:
    task = await publish_task(bus, swarm, n_eval=400)
    await register(bus, swarm, WORKER, "worker")
    return task


@pytest_asyncio.fixture(loop_scope="session")
async def scorer(bus: Bus, swarm: str, synth: SyntheticTask) -> AsyncIterator[Scorer]:
    async with Scorer(bus, swarm, TEST_CONFIG) as running:
        yield running
