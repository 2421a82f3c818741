"""Helpers for the dashboard tests: a server-sent-events reader and results with a chosen accuracy."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

import aiohttp
import numpy as np

from bus import Bus
from schemas import ExperimentResult
from scorer.synthetic import SyntheticTask, submit


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    data: Any
    at: float  # time.time() when the last line of the event was read

    def deltas(self, kind: str) -> list[dict[str, Any]]:
        """The rows of ``kind`` in a ``delta`` event."""
        if self.name != "delta":
            return []
        return [d["d"] for d in self.data if d["t"] == kind]


class EventStream:
    """``GET /events`` read line by line, as a browser's EventSource would."""

    def __init__(self, url: str) -> None:
        self._url = url.rstrip("/") + "/events"
        self._http: aiohttp.ClientSession | None = None
        self._response: aiohttp.ClientResponse | None = None
        self.pings = 0

    async def __aenter__(self) -> Self:
        self._http = aiohttp.ClientSession()
        self._response = await self._http.get(self._url)
        assert self._response.status == 200
        assert self._response.headers["Content-Type"].startswith("text/event-stream")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._response is not None:
            self._response.close()
        if self._http is not None:
            await self._http.close()

    async def next(self, timeout: float = 10.0) -> Event:
        """The next event (comments and ``retry:`` lines are skipped, pings counted)."""
        assert self._response is not None
        name, data = "message", list[str]()
        async with asyncio.timeout(timeout):
            while True:
                raw = await self._response.content.readline()
                if not raw:
                    raise EOFError("the event stream ended")
                line = raw.decode().rstrip("\n")
                if not line:
                    if data:
                        return Event(name, json.loads("\n".join(data)), time.time())
                    continue
                if line.startswith(":"):
                    self.pings += 1
                elif line.startswith("event: "):
                    name = line[len("event: ") :]
                elif line.startswith("data: "):
                    data.append(line[len("data: ") :])

    async def until(self, found: Callable[[Event], Any], timeout: float = 10.0) -> tuple[Event, Any]:
        """Read events until ``found(event)`` is truthy; returns the event and that value."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self.next(timeout)
                if value := found(event):
                    return event, value

    async def all_of(self, timeout: float = 10.0, **matchers: Matcher) -> dict[str, Any]:
        """Read events until every matcher has matched one (in any order); returns what each found.

        Different streams (scores, flags, the leaderboard bucket) reach the page in no fixed order.
        """
        found: dict[str, Any] = {}

        def check(event: Event) -> bool:
            for name, match in matchers.items():
                if name not in found and (value := match(event)):
                    found[name] = value
            return len(found) == len(matchers)

        await self.until(check, timeout)
        return found


Matcher = Callable[[Event], Any]


def row(kind: str, where: Callable[[dict[str, Any]], bool]) -> Matcher:
    """A matcher for the first ``kind`` row of a delta event for which ``where`` holds."""

    def match(event: Event) -> dict[str, Any] | None:
        return next((r for r in event.deltas(kind) if where(r)), None)

    return match


def score_for(result_id: str) -> Matcher:
    """A matcher for the ``score`` delta of one result."""
    return row("score", lambda s: bool(s["result_id"] == result_id))


async def submit_at(
    bus: Bus, swarm: str, synth: SyntheticTask, accuracy: float, *, seed: int = 0, **fields: Any
) -> ExperimentResult:
    """Publish a result whose dev and final predictions are right on ``accuracy`` of the examples."""
    rng = np.random.default_rng(seed + int(accuracy * 1000))
    dev, final = synth.with_accuracy("dev", accuracy, rng), synth.with_accuracy("final", accuracy, rng)
    return await submit(bus, swarm, synth, dev=dev, final=final, seed=seed, **fields)
