"""Fan-out of deltas to the pages connected to ``/events``, each at its own pace.

Publishing never waits: each subscriber has a bounded queue of encoded server-sent-event frames.
A subscriber that falls ``max_queued`` frames behind loses its queue and is sent a fresh snapshot
instead, so a slow page costs memory for one snapshot, never the others' latency.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from dashboard.state import Delta

_encode = msgspec.json.Encoder().encode


def frame(event: str, data: Any) -> bytes:
    """One server-sent event; the JSON is compact, so ``data`` is a single line."""
    return b"event: " + event.encode() + b"\ndata: " + _encode(data) + b"\n\n"


class Subscriber:
    """One connected page: frames waiting to be written, or a note that it needs a snapshot."""

    def __init__(self, max_queued: int) -> None:
        self._frames: deque[bytes] = deque()
        self._max = max_queued
        self._ready = asyncio.Event()
        self.resync = True  # the first thing a page gets is the whole picture
        self.closed = False
        self.resyncs = 0  # snapshots sent because the page fell behind
        self._ready.set()

    def push(self, data: bytes) -> None:
        if self.resync:
            return  # the snapshot it is about to get includes this
        if len(self._frames) >= self._max:
            self._frames.clear()
            self.resync = True
            self.resyncs += 1
        else:
            self._frames.append(data)
        self._ready.set()

    def close(self) -> None:
        self.closed = True
        self._ready.set()

    async def take(self, snapshot: Callable[[], bytes], timeout_s: float) -> list[bytes]:
        """The frames to write next; [] when nothing came within ``timeout_s`` (time for a ping).

        The snapshot is built in the same step that empties the queue, with no await between:
        every delta is either in it or queued after it.
        """
        with contextlib.suppress(TimeoutError):  # not wait_for, which can swallow a cancel on 3.11
            async with asyncio.timeout(timeout_s):
                await self._ready.wait()
        self._ready.clear()
        if self.closed:
            return []
        if self.resync:
            self.resync = False
            self._frames.clear()
            return [snapshot()]
        out = list(self._frames)
        self._frames.clear()
        return out


class Hub:
    """The set of connected pages."""

    def __init__(self, *, max_queued: int = 512) -> None:
        self._max_queued = max_queued
        self._subscribers: set[Subscriber] = set()
        self._closed = False
        self.published = 0

    def __len__(self) -> int:
        return len(self._subscribers)

    def subscribe(self) -> Subscriber:
        sub = Subscriber(self._max_queued)
        if self._closed:
            sub.close()  # the server is stopping: the stream ends at once
        else:
            self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)
        sub.close()

    def publish(self, deltas: Sequence[Delta]) -> None:
        """Queue the deltas of one message for every page, encoded once, as one event."""
        if not deltas:
            return
        self.published += 1
        if not self._subscribers:
            return
        data = frame("delta", [d.as_json() for d in deltas])
        for sub in self._subscribers:
            sub.push(data)

    def close(self) -> None:
        """Tell every page's writer to finish (the server is stopping)."""
        self._closed = True
        for sub in list(self._subscribers):
            self.unsubscribe(sub)
