"""The agent's side of budgets: what it has spent, and which budget level is in force for it.

Levels come from two places, and the highest one wins:
- BudgetEvents on the swarm's budget stream that name this agent (scope "agent", target = its name)
  or the whole swarm (scope "swarm"). The latest event per (scope, resource) sets that pair's level,
  so a later, lower level lifts an earlier one (the operator raised a limit);
- the agent's own caps in its config (``max_requests``, ``max_tokens``, ``max_usd``), checked
  against its usage counters: "throttle" from ``throttle_at`` of a cap, "stop" at the cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from schemas import BudgetEvent
from swarm.config import AgentConfig
from swarm.errors import AgentError, BudgetExhaustedError

log = logging.getLogger("aar.agent")

Level = Literal["ok", "info", "warn", "throttle", "stop"]
_RANK: dict[str, int] = {"ok": 0, "info": 1, "warn": 2, "throttle": 3, "stop": 4}


@dataclass(slots=True)
class Usage:
    """What one agent process has spent since it started."""

    requests: int = 0
    posts: int = 0
    hypotheses: int = 0
    tokens: int = 0
    usd: float = 0.0


@dataclass(frozen=True, slots=True)
class Limit:
    """One budget level in force: where it came from and the figures it was announced with."""

    scope: str
    resource: str
    level: Level
    used: float
    limit: float
    seq: int = 0


class BudgetState:
    """The budget levels that apply to one agent."""

    def __init__(self, name: str, config: AgentConfig) -> None:
        self._name, self._config = name, config
        self._limits: dict[tuple[str, str], Limit] = {}

    def applies(self, event: BudgetEvent) -> bool:
        """Whether ``event`` is about this agent or its whole swarm."""
        return event.scope == "swarm" or event.target == self._name

    def apply(self, event: BudgetEvent, seq: int | None) -> bool:
        """Take in a BudgetEvent (``seq``: its stream sequence); True when the level in force changed.

        The same event may arrive twice (the budget watcher and an ``on_budget`` feed), and an older
        one after a newer one: the stream sequence keeps only the newest per (scope, resource).
        """
        if not self.applies(event):
            return False
        key = (event.scope, event.resource)
        old = self._limits.get(key)
        if old is not None and seq is not None and seq <= old.seq:
            return False
        before = self.level
        self._limits[key] = Limit(
            event.scope, event.resource, event.level, event.used, event.limit, seq if seq is not None else 0
        )
        return self.level != before

    def account(self, usage: Usage) -> bool:
        """Check ``usage`` against the local caps; True when the level in force changed."""
        before = self.level
        caps: tuple[tuple[str, float, float | None], ...] = (
            ("requests", usage.requests, self._config.max_requests),
            ("tokens", usage.tokens, self._config.max_tokens),
            ("usd", usage.usd, self._config.max_usd),
        )
        for resource, used, cap in caps:
            key = ("local", resource)
            level: Level | None = None
            if cap is not None and used >= cap:
                level = "stop"
            elif cap is not None and used >= cap * self._config.throttle_at:
                level = "throttle"
            if level is None:
                self._limits.pop(key, None)
            else:
                self._limits[key] = Limit("local", resource, level, float(used), float(cap or 0))
        return self.level != before

    @property
    def binding(self) -> Limit | None:
        """The limit with the highest level (the one in force), or None when none applies."""
        return max(self._limits.values(), key=lambda lim: _RANK[lim.level], default=None)

    @property
    def level(self) -> Level:
        """``ok``, ``info``, ``warn``, ``throttle`` or ``stop``."""
        binding = self.binding
        return "ok" if binding is None else binding.level


class BudgetGate:
    """What an agent obeys: the level in force, and the pace of its experiment requests.

    ``on_change(before, after)`` is called (synchronously) whenever the level in force changes.
    """

    def __init__(self, name: str, config: AgentConfig, on_change: Callable[[Level, Level], None]) -> None:
        self.usage = Usage()
        self._name, self._config, self._on_change = name, config, on_change
        self._state = BudgetState(name, config)
        self._changed = asyncio.Event()
        self._gate = asyncio.Lock()
        self._last_request = float("-inf")
        self._closed = False

    @property
    def level(self) -> Level:
        return self._state.level

    @property
    def binding(self) -> Limit | None:
        return self._state.binding

    def apply(self, event: BudgetEvent, seq: int | None) -> None:
        """Take in a BudgetEvent from the bus (``seq``: its stream sequence)."""
        before = self._state.level
        if self._state.apply(event, seq):
            self._changed_from(before)

    def account(self) -> None:
        """Check the usage counters against the agent's own caps (after they changed)."""
        before = self._state.level
        if self._state.account(self.usage):
            self._changed_from(before)

    def check(self) -> None:
        """Raise BudgetExhaustedError when the level in force is "stop"."""
        if (b := self._state.binding) is not None and b.level == "stop":
            raise BudgetExhaustedError(scope=b.scope, resource=b.resource, used=b.used, limit=b.limit)

    async def admit_request(self) -> None:
        """Return when one more experiment request may go out.

        Under "throttle", requests leave at least ``throttle_interval_s`` apart (waiters queue, and
        are let go at once if the level is lifted).

        Raises:
            BudgetExhaustedError: the level is, or becomes while waiting, "stop".
            AgentError: the agent is stopping.
        """
        loop = asyncio.get_running_loop()
        async with self._gate:
            while True:
                if self._closed:
                    raise AgentError(f"agent {self._name} is stopping")
                self.check()
                wait = self._last_request + self._config.throttle_interval_s - loop.time()
                if self._state.level != "throttle" or wait <= 0:
                    break
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), wait)
            self._last_request = loop.time()

    def close(self) -> None:
        """Refuse further requests and wake those waiting."""
        self._closed = True
        self._changed.set()

    def _changed_from(self, before: Level) -> None:
        after, b = self._state.level, self._state.binding
        extra: dict[str, object] = {"agent": self._name, "level": after, "was": before}
        if b is not None:
            extra |= {"scope": b.scope, "resource": b.resource, "used": b.used, "limit": b.limit}
        log.warning("budget level changed", extra=extra)
        self._changed.set()
        self._on_change(before, after)
