"""What each agent spent (LLM usage, worker time) and for how long it was active."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass

from dashboard.report.collect import Snapshot
from schemas import ExperimentResult

# An agent seen only once has no span; count it as active for this long rather than divide by zero.
MIN_ACTIVE_S = 60.0
# Roles that serve the swarm rather than research in it (their names come from presence).
SERVICE_ROLES = frozenset({"worker", "scorer", "operator", "dashboard"})


@dataclass(frozen=True, slots=True)
class AgentCost:
    """What one agent spent and for how long it was active."""

    agent: str
    role: str | None
    first_ts: float
    last_ts: float
    usd: float
    tokens: int
    llm_calls: int
    worker_s: float
    results: int

    @property
    def hours(self) -> float:
        return max(self.last_ts - self.first_ts, MIN_ACTIVE_S) / 3600.0

    @property
    def usd_per_hour(self) -> float:
        return self.usd / self.hours

    @property
    def tokens_per_hour(self) -> float:
        return self.tokens / self.hours

    @property
    def worker_min_per_hour(self) -> float:
        return self.worker_s / 60.0 / self.hours


def agent_costs(snap: Snapshot, *, exclude: set[str]) -> tuple[AgentCost, ...]:
    """Spend and active span per agent; see the report's cost section for the rule."""
    seen: dict[str, list[float]] = defaultdict(list)
    roles: dict[str, str] = {}

    def saw(agent: str | None, *stamps: float) -> None:
        if agent and agent not in exclude:
            seen[agent].extend(stamps)

    for p in snap.presence:
        if p.role not in SERVICE_ROLES:
            roles[p.name] = p.role
            saw(p.name, p.ts, p.last_seen)
    for h in snap.hypotheses:
        saw(h.sender, h.ts)
    for post in snap.forum:
        saw(post.sender, post.ts)
    for q in snap.queued_requests:
        saw(q.sender, q.ts)
    for r in snap.results:
        saw(r.agent, r.ts)
    usd: defaultdict[str, float] = defaultdict(float)
    tokens: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    for u in snap.usage:
        saw(u.agent, u.ts)
        usd[u.agent] += u.usd
        tokens[u.agent] += u.input_tokens + u.output_tokens + u.cache_read_tokens + u.cache_write_tokens
        calls[u.agent] += u.requests
    worker_s: defaultdict[str, float] = defaultdict(float)
    results: Counter[str] = Counter()
    for r in snap.results:
        if r.agent:
            results[r.agent] += 1
            worker_s[r.agent] += worker_seconds(r)
    return tuple(
        AgentCost(
            agent=a,
            role=roles.get(a),
            first_ts=min(stamps),
            last_ts=max(stamps),
            usd=usd[a],
            tokens=tokens[a],
            llm_calls=calls[a],
            worker_s=worker_s[a],
            results=results[a],
        )
        for a, stamps in sorted(seen.items())
    )


def worker_seconds(result: ExperimentResult) -> float:
    """The worker time a result took: its ``total`` timing, else its stages (time queued excluded)."""
    t = result.timings
    if "total" in t:
        return t["total"]
    return math.fsum(v for k, v in t.items() if k != "queued")
