"""End to end: the scorer's budget stops a Claude researcher that keeps spending.

A real Scorer sums the UsageReports a real ClaudeResearcher publishes for each call to a local fake of
the Messages API, whose model never ends its turn; the scorer's "stop" BudgetEvent must end the
researcher's run loop before it makes more than the call already in flight.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from bus import Bus, Kind, StartAt
from schemas import BudgetEvent
from scorer import Scorer, ScorerConfig
from scorer.spending import SpendLimits
from swarm import BudgetExhaustedError
from swarm.roles.claude_researcher import ClaudeResearcher, ClaudeResearcherConfig
from tests.helpers import Collector, eventually
from tests.swarm.test_claude_researcher import USAGE, _tool_use

MODEL = "claude-haiku-4-5"
# What one call with the fake's USAGE costs at claude-haiku-4-5's prices (in, out, cache read, write).
PER_CALL_USD = (100 * 1.0 + 20 * 5.0 + 900 * 0.1 + 50 * 1.25) / 1e6
# Warn at 80% (call 8), throttle at 90% (call 9), stop at 100% (call 10).
LIMIT_USD = 9.95 * PER_CALL_USD
# How long the fake model takes to answer: long enough that a stop arrives during a call, as with
# a real model, so "one call in flight" is the allowance.
LATENCY_S = 0.1


class EndlessModel:
    """POST /v1/messages: a model that asks for one more read_forum or list_methods, forever."""

    def __init__(self) -> None:
        self.arrived: list[float] = []  # time.time() of each request, the clock BudgetEvent.ts uses

    async def handle(self, request: web.Request) -> web.Response:
        self.arrived.append(time.time())
        body = await request.json()
        n = len(self.arrived)
        tool = ("read_forum", {"limit": 3}) if n % 2 else ("list_methods", {})
        await asyncio.sleep(LATENCY_S)
        return web.json_response(
            {
                "id": f"msg_{n}",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": _tool_use(n, *tool),
                "stop_reason": "tool_use",
                "stop_sequence": None,
                "usage": USAGE,
            }
        )


@pytest_asyncio.fixture(loop_scope="session")
async def endless_api() -> AsyncIterator[tuple[EndlessModel, str]]:
    fake = EndlessModel()
    app = web.Application()
    app.router.add_post("/v1/messages", fake.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield fake, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def test_the_scorer_stops_a_researcher_that_overspends(
    bus: Bus, swarm: str, endless_api: tuple[EndlessModel, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = endless_api
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    events: Collector[BudgetEvent] = Collector()
    await bus.subscribe(swarm, Kind.BUDGET, events, expect=BudgetEvent, start=StartAt.all())
    limits = SpendLimits(agent_usd=LIMIT_USD, agent_tokens=0, swarm_tokens=0, swarm_usd=0)
    config = ClaudeResearcherConfig(
        base_url=url, model=MODEL, max_retries=0, backoff_s=0.01, max_calls=1000, pause_s=0.0
    )
    async with (
        Scorer(bus, swarm, ScorerConfig(spending=limits)) as scorer,
        ClaudeResearcher(bus, swarm, name="cr1", config=config) as agent,
    ):
        await eventually(lambda: any(e.level == "stop" for e in events.messages))
        stop = next(e for e in events.messages if e.level == "stop")
        run = agent._run_task
        assert run is not None
        await asyncio.wait({run}, timeout=5)
        assert run.done() and not agent.crashed.done()  # ended by the stop, not by a crash
        assert agent.budget_level == "stop"
        with pytest.raises(BudgetExhaustedError):
            agent.check_budget()
        spent = scorer.spending.by_agent["usd"]["cr1"]

    assert [(e.level, e.scope, e.target, e.resource) for e in events.messages] == [
        ("warn", "agent", "cr1", "usd"),
        ("throttle", "agent", "cr1", "usd"),
        ("stop", "agent", "cr1", "usd"),
    ]
    assert [e.used for e in events.messages] == pytest.approx(
        [8 * PER_CALL_USD, 9 * PER_CALL_USD, 10 * PER_CALL_USD], abs=1e-6
    )
    assert spent >= LIMIT_USD and agent.usage.usd >= LIMIT_USD
    # At most the call in flight when the stop was published; never the 1000 max_calls allows.
    after_stop = [t for t in fake.arrived if t > stop.ts]
    assert len(after_stop) <= 1, f"{len(after_stop)} calls after the stop"
    assert 10 <= len(fake.arrived) <= 12
