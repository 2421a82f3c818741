"""What agents spend (LLM tokens, dollars, worker minutes), summed per agent and per swarm.

Agents report tokens and dollars as UsageReports; worker minutes come from the results' timings.
When a sum crosses a level's share of its limit, the scorer publishes a BudgetEvent that every agent
obeys (warn, then throttle, then stop; see swarm.agent).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Annotated, Literal

import msgspec

Resource = Literal["tokens", "usd", "gpu_minutes"]
Level = Literal["warn", "throttle", "stop"]
LEVELS: tuple[tuple[Level, str], ...] = (
    ("warn", "warn_at"),
    ("throttle", "throttle_at"),
    ("stop", "stop_at"),
)


class SpendLimits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Limits per agent and per swarm (0 turns a limit off) and the shares that trigger each level."""

    agent_tokens: Annotated[int, msgspec.Meta(ge=0)] = 5_000_000
    agent_usd: Annotated[float, msgspec.Meta(ge=0)] = 25.0
    agent_gpu_minutes: Annotated[float, msgspec.Meta(ge=0)] = 600.0
    swarm_tokens: Annotated[int, msgspec.Meta(ge=0)] = 50_000_000
    swarm_usd: Annotated[float, msgspec.Meta(ge=0)] = 250.0
    swarm_gpu_minutes: Annotated[float, msgspec.Meta(ge=0)] = 6_000.0
    warn_at: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.8
    throttle_at: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.9
    stop_at: Annotated[float, msgspec.Meta(gt=0, le=1)] = 1.0

    def limit(self, scope: Literal["agent", "swarm"], resource: Resource) -> float:
        return float(getattr(self, f"{scope}_{resource}"))


Scope = Literal["agent", "swarm"]


@dataclass(frozen=True, slots=True)
class Crossing:
    scope: Scope
    target: str
    resource: Resource | Literal["dev_queries"]
    used: float
    limit: float
    level: Level


def crossings(
    scope: Scope,
    target: str,
    resource: Resource | Literal["dev_queries"],
    before: float,
    after: float,
    limit: float,
    shares: tuple[tuple[Level, float], ...],
) -> list[Crossing]:
    """The levels whose mark (``share * limit``) a sum passed going from ``before`` to ``after``."""
    if limit <= 0:
        return []
    return [
        Crossing(scope, target, resource, after, limit, level)
        for level, share in shares
        if before < share * limit <= after
    ]


class Spending:
    """Running sums; ``add`` returns the levels the addition crossed."""

    def __init__(self, limits: SpendLimits, swarm: str) -> None:
        self.limits, self.swarm = limits, swarm
        self.by_agent: dict[Resource, Counter[str]] = {r: Counter() for r in ("tokens", "usd", "gpu_minutes")}
        self.total: Counter[str] = Counter()

    def add(self, agent: str, resource: Resource, amount: float) -> list[Crossing]:
        if amount <= 0:
            return []
        before_agent, before_swarm = self.by_agent[resource][agent], self.total[resource]
        self.by_agent[resource][agent] += amount  # type: ignore[assignment]
        self.total[resource] += amount  # type: ignore[assignment]
        shares = tuple((level, float(getattr(self.limits, name))) for level, name in LEVELS)
        agent_limit, swarm_limit = self.limits.limit("agent", resource), self.limits.limit("swarm", resource)
        after_agent, after_swarm = self.by_agent[resource][agent], self.total[resource]
        return crossings(
            "agent", agent, resource, before_agent, after_agent, agent_limit, shares
        ) + crossings("swarm", self.swarm, resource, before_swarm, after_swarm, swarm_limit, shares)
