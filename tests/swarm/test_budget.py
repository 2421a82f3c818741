"""Budget obedience: stop, throttle, levels replayed at start, and the agent's own caps."""

from __future__ import annotations

import asyncio

import pytest

from bus import Bus
from schemas import BudgetEvent
from swarm import AgentConfig, AgentError, BudgetExhaustedError
from swarm.budget import BudgetState, Usage
from tests.helpers import eventually
from tests.swarm.helpers import budget
from tests.swarm.recording import Recorder


class Looper(Recorder):
    """Requests an experiment every 50 ms until its run loop is stopped."""

    async def setup(self) -> None:
        await super().setup()
        self.loops = 0
        self.running_loop = asyncio.Event()

    async def run(self) -> None:
        self.loops += 1
        self.running_loop.set()
        try:
            while True:
                await self.request_experiment("tiny", "naive")
                await asyncio.sleep(0.05)
        finally:
            self.running_loop.clear()

    async def on_budget(self, event: BudgetEvent) -> None:
        self.budget_events.add(event)


async def test_stop_ends_the_run_loop_and_refuses_requests_until_lifted(bus: Bus, swarm: str) -> None:
    async with Looper(bus, swarm, name="spender") as agent:
        await eventually(lambda: agent.usage.requests >= 2)
        await bus.publish(budget(swarm, "stop", target="someone-else"))
        await bus.publish(budget(swarm, "stop", target="spender"))
        await eventually(lambda: agent.budget_level == "stop")
        await eventually(lambda: not agent.running_loop.is_set())
        with pytest.raises(BudgetExhaustedError, match=r"agent dev_queries: 90 of 100"):
            await agent.request_experiment("tiny", "naive")
        with pytest.raises(BudgetExhaustedError):
            agent.check_budget()
        # on_budget sees every event, once the agent has obeyed those that concern it.
        assert [e.target for e in await agent.budget_events.wait_for(2)] == ["someone-else", "spender"]
        await bus.publish(budget(swarm, "info", target="spender"))
        await asyncio.wait_for(agent.running_loop.wait(), 5)
        assert agent.loops == 2 and agent.budget_level == "info"


async def test_a_swarm_wide_stop_reaches_every_agent(bus: Bus, swarm: str) -> None:
    async with Recorder(bus, swarm, name="a1") as a1, Recorder(bus, swarm, name="a2") as a2:
        await bus.publish(budget(swarm, "stop", target=swarm, scope="swarm"))
        await eventually(lambda: a1.budget_level == a2.budget_level == "stop")
        assert a1.budget_limit is not None and a1.budget_limit.scope == "swarm"


async def test_throttle_spaces_requests(bus: Bus, swarm: str) -> None:
    config = AgentConfig(throttle_interval_s=0.4)
    async with Recorder(bus, swarm, name="slowed", config=config) as agent:
        await bus.publish(budget(swarm, "throttle", target="slowed"))
        await eventually(lambda: agent.budget_level == "throttle")
        loop = asyncio.get_running_loop()
        started = loop.time()
        for _ in range(3):
            await agent.request_experiment("tiny", "naive")
        assert loop.time() - started >= 0.8  # the first goes at once, then one per interval
        # Lifting the throttle lets a waiting request go at once.
        waiting = asyncio.create_task(agent.request_experiment("tiny", "naive"))
        await asyncio.sleep(0.05)
        await bus.publish(budget(swarm, "warn", target="slowed"))
        await asyncio.wait_for(waiting, 0.3)


async def test_a_stop_published_before_start_is_obeyed_from_the_first_moment(bus: Bus, swarm: str) -> None:
    await bus.publish(budget(swarm, "stop", target="late"))
    await bus.publish(budget(swarm, "throttle", target="other"))
    async with Looper(bus, swarm, name="late") as agent:
        assert agent.budget_level == "stop"
        assert agent.loops == 0 and agent.usage.requests == 0
        with pytest.raises(BudgetExhaustedError):
            await agent.request_experiment("tiny", "naive")


async def test_local_caps_throttle_then_stop(bus: Bus, swarm: str) -> None:
    config = AgentConfig(max_requests=2, max_usd=1.0, throttle_at=0.5, throttle_interval_s=0)
    async with Recorder(bus, swarm, name="capped", config=config) as agent:
        agent.record_usage(tokens=1000, usd=0.6)
        levels = [agent.budget_level]
        await agent.request_experiment("tiny", "naive")
        await agent.request_experiment("tiny", "naive")
        levels.append(agent.budget_level)
        assert levels == ["throttle", "stop"] and agent.budget_limit is not None
        assert (agent.budget_limit.scope, agent.budget_limit.resource) == ("local", "requests")
        with pytest.raises(BudgetExhaustedError, match="local requests: 2 of 2"):
            await agent.request_experiment("tiny", "naive")
    with pytest.raises(AgentError, match="not running"):
        await agent.await_score("x")


def test_the_latest_event_per_limit_wins_and_older_ones_are_ignored() -> None:
    state = BudgetState("me", AgentConfig())
    stop, info = budget("s", "stop", target="me"), budget("s", "info", target="me")
    changed = [state.apply(stop, 5), state.apply(info, 4), state.apply(info, 6)]
    assert changed == [True, False, True]  # seq 4 is older than 5: a replay that came late
    levels = [state.level]
    assert not state.apply(budget("s", "stop", target="you"), 7)
    assert state.apply(budget("s", "throttle", target="s", scope="swarm"), 8)
    levels.append(state.level)
    assert levels == ["info", "throttle"]
    assert not state.account(Usage(requests=10**6))  # no local caps configured
