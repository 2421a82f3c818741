"""The agent's consumers: one durable feed per handler a role overrides, plus the budget watch."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import nats.errors

from bus import Bus, Consumer, Kind, StartAt, streams
from bus.consume import Handler
from schemas import BudgetEvent, Envelope, Flag, ForumPost, Hypothesis, ScoreEvent
from swarm.errors import AgentError

log = logging.getLogger("aar.agent")


@dataclass(frozen=True, slots=True)
class Feed:
    """A stream an agent may follow, the handler that takes it, and its consumer's purpose."""

    purpose: str
    kind: Kind
    expect: type[Envelope]
    method: str


SCORES = Feed("scores", Kind.SCORES, ScoreEvent, "on_score")
FEEDS = (
    SCORES,
    Feed("forum", Kind.FORUM, ForumPost, "on_forum"),
    Feed("hypotheses", Kind.HYPOTHESES, Hypothesis, "on_hypothesis"),
    Feed("budget", Kind.BUDGET, BudgetEvent, "on_budget"),
    Feed("flags", Kind.FLAGS, Flag, "on_flag"),
)
WATCH = "budget-watch"


class Feeds:
    """Starts each consumer once (a feed may be wanted first by a helper), closes them all."""

    def __init__(self, bus: Bus, swarm: str, role: str, name: str, concurrency: int) -> None:
        self._bus, self._swarm, self._role, self._name = bus, swarm, role, name
        self._concurrency = concurrency
        self._consumers: dict[str, Consumer] = {}
        self._lock = asyncio.Lock()

    def durable(self, feed: Feed) -> str:
        """``<role>_<name>_<purpose>``: the same name after a restart, so the feed resumes."""
        return streams.consumer_durable(self._role, self._name, feed.purpose)

    @property
    def started(self) -> list[str]:
        return sorted(k for k in self._consumers if k != WATCH)

    async def start(self, feed: Feed, handler: Handler[Any]) -> None:
        """Start ``feed``'s durable consumer unless it runs already; new ones start at new messages.

        Raises:
            AgentError: another agent holds the consumer (same role and name), or the swarm is missing.
        """
        async with self._lock:
            if feed.purpose not in self._consumers:
                self._consumers[feed.purpose] = await self._subscribe(
                    feed.kind, handler, feed.expect, self.durable(feed), StartAt.new()
                )

    async def watch_budget(self, handler: Handler[BudgetEvent]) -> None:
        """Follow the whole budget stream from its start (no durable: replayed at every start)."""
        async with self._lock:
            self._consumers[WATCH] = await self._subscribe(
                Kind.BUDGET, handler, BudgetEvent, None, StartAt.all()
            )

    async def close(self, grace_s: float) -> None:
        """Close the feeds (each lets its handlers in flight finish), then the budget watch."""
        for key in [*self.started, WATCH]:
            if (consumer := self._consumers.pop(key, None)) is None:
                continue
            try:
                await consumer.close(grace_s)
            except Exception:
                log.exception("consumer failed while closing", extra={"agent": self._name, "consumer": key})

    async def _subscribe(
        self, kind: Kind, handler: Handler[Any], expect: type[Envelope], durable: str | None, start: StartAt
    ) -> Consumer:
        try:
            return await self._bus.subscribe(
                self._swarm,
                kind,
                handler,
                expect=expect,
                durable=durable,
                start=start,
                # The watch keeps the stream's order: the latest event per limit wins.
                concurrency=self._concurrency if durable else 1,
            )
        except nats.errors.Error as e:
            raise AgentError(
                f"cannot start consumer {durable or WATCH} of agent {self._name}: {e} (is another "
                f"{self._role} agent named {self._name} running? give this one another --name)"
            ) from e
