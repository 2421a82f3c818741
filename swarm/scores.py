"""Waiting for the score of one experiment request, resolved by the agent's score feed."""

from __future__ import annotations

import asyncio
import collections

from schemas import ScoreEvent
from swarm.errors import AgentError, ScoreTimeoutError

# Futures kept for scores nobody awaited yet; beyond this the oldest are dropped.
_KEPT = 4096


class ScoreWaiters:
    """One future per request id; a ScoreEvent whose ``lineage.request_id`` matches resolves it."""

    def __init__(self) -> None:
        self._futures: collections.OrderedDict[str, asyncio.Future[ScoreEvent]] = collections.OrderedDict()

    def expect(self, request_id: str) -> None:
        """Keep the score of ``request_id`` from now on, for an ``await_score`` that comes later."""
        if request_id in self._futures:
            return
        fut: asyncio.Future[ScoreEvent] = asyncio.get_running_loop().create_future()
        # Retrieving the exception marks it seen: a future nobody awaited does not log when collected.
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._futures[request_id] = fut
        while len(self._futures) > _KEPT:
            self._futures.popitem(last=False)[1].cancel()

    def forget(self, request_id: str) -> None:
        if (fut := self._futures.pop(request_id, None)) is not None:
            fut.cancel()

    def resolve(self, score: ScoreEvent) -> None:
        """Hand ``score`` to whoever waits for its request; scores of other requests are ignored."""
        request_id = score.lineage.request_id
        if request_id is not None and (fut := self._futures.get(request_id)) is not None and not fut.done():
            fut.set_result(score)

    async def wait(self, request_id: str, timeout_s: float) -> ScoreEvent:
        """The score of ``request_id``.

        Raises:
            ScoreTimeoutError: none within ``timeout_s``.
            AgentError: the agent stopped first.
        """
        self.expect(request_id)
        fut = self._futures[request_id]
        try:
            async with asyncio.timeout(timeout_s):
                # Shielded: a timed-out or cancelled wait leaves the future for a later one.
                score = await asyncio.shield(fut)
        except TimeoutError as e:
            raise ScoreTimeoutError(request_id, timeout_s) from e
        self._futures.pop(request_id, None)
        return score

    def fail_all(self, reason: str) -> None:
        """Wake every waiter with an AgentError (the agent is stopping)."""
        for fut in self._futures.values():
            if not fut.done():
                fut.set_exception(AgentError(reason))
        self._futures.clear()
