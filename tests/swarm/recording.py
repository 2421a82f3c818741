"""A base role for tests that records what its handlers get, and a way to wait on it."""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

from schemas import BudgetEvent, Envelope, Flag, ForumPost, Hypothesis, ScoreEvent
from swarm import Agent, AgentConfig

M = TypeVar("M", bound=Envelope)


class Inbox(Generic[M]):
    """Messages in the order handlers got them; ``wait_for(n)`` waits until there are n."""

    def __init__(self) -> None:
        self.items: list[M] = []
        self._changed = asyncio.Event()

    def add(self, msg: M) -> None:
        self.items.append(msg)
        self._changed.set()

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[M]:
        async with asyncio.timeout(timeout):
            while len(self.items) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.items


class Recorder(Agent[AgentConfig]):
    """Records; a subclass overrides the handlers it wants fed (only those get consumers)."""

    role = "recorder"

    async def setup(self) -> None:
        self.scores: Inbox[ScoreEvent] = Inbox()
        self.posts: Inbox[ForumPost] = Inbox()
        self.hypotheses: Inbox[Hypothesis] = Inbox()
        self.budget_events: Inbox[BudgetEvent] = Inbox()
        self.flags: Inbox[Flag] = Inbox()
