"""Messages as the scorer and other agents would publish them, and what consumers the server holds."""

from __future__ import annotations

from typing import Literal

from bus import Bus, Kind, streams
from schemas import BudgetEvent, ForumPost, Lineage, ScoreEvent


def score(
    swarm: str,
    request_id: str,
    *,
    agent: str = "someone",
    status: Literal["accepted", "rejected"] = "accepted",
    pgr: float | None = 0.5,
    reason: str | None = None,
) -> ScoreEvent:
    return ScoreEvent(
        swarm=swarm,
        sender="scorer",
        task="tiny",
        method="naive",
        status=status,
        pgr=pgr if status == "accepted" else None,
        reason=reason,
        agent=agent,
        lineage=Lineage(request_id=request_id, result_id=f"r-{request_id}"),
    )


def forum(swarm: str, body: str, *, sender: str = "alice", title: str = "") -> ForumPost:
    return ForumPost(swarm=swarm, sender=sender, body=body, title=title)


def budget(
    swarm: str,
    level: Literal["info", "warn", "throttle", "stop"],
    *,
    target: str,
    scope: Literal["agent", "swarm"] = "agent",
) -> BudgetEvent:
    return BudgetEvent(
        swarm=swarm,
        sender="accountant",
        scope=scope,
        target=target,
        resource="dev_queries",
        used=90.0,
        limit=100.0,
        level=level,
    )


async def consumer_names(bus: Bus, swarm: str, kind: Kind) -> set[str]:
    return {c.name for c in await bus.js.consumers_info(streams.stream_name(swarm, kind))}
