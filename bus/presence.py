"""A process's heartbeat in its swarm's presence bucket (entries expire when the beats stop)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Literal, Self

from bus import streams
from schemas import Presence

if TYPE_CHECKING:
    from bus.connection import Bus
    from bus.store import TypedKV

log = logging.getLogger("aar.bus")

# Well inside the bucket's TTL (streams.PRESENCE_TTL_S), so one missed beat does not expire an entry.
BEAT_EVERY_S = 10.0

State = Literal["starting", "ready", "busy", "draining", "stopped"]


class Heartbeat:
    """Keeps ``name``'s Presence in the swarm's presence bucket fresh; deletes it on close.

    ``describe`` is called at every beat and returns what changes between beats: any of
    ``state``, ``capabilities`` and ``info`` (Presence fields).
    """

    def __init__(
        self,
        bus: Bus,
        swarm: str,
        *,
        name: str,
        role: str,
        every_s: float = BEAT_EVERY_S,
        describe: Callable[[], Mapping[str, object]] | None = None,
    ) -> None:
        self.bus, self.swarm, self.name, self.role = bus, swarm, name, role
        self._every_s = every_s
        self._describe = describe or dict
        self._kv: TypedKV | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        self._kv = await self.bus.kv(streams.presence_bucket(self.swarm))
        await self.beat()
        self._task = asyncio.create_task(self._loop(), name=f"presence:{self.name}")

    async def beat(self, state: State | None = None) -> None:
        """Publish the current presence now (``state`` overrides what ``describe`` says)."""
        if self._kv is None:
            return
        fields = dict(self._describe())
        if state is not None:
            fields["state"] = state
        await self._kv.put(
            self.name,
            Presence(
                swarm=self.swarm,
                sender=self.name,
                role=self.role,
                name=self.name,
                host=socket.gethostname(),
                pid=os.getpid(),
                **fields,  # type: ignore[arg-type]
            ),
        )

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._every_s)
            try:
                await self.beat()
            except Exception as e:  # a restarting server: try again next beat
                log.debug("presence update failed", extra={"name": self.name, "error": repr(e)})

    async def close(self) -> None:
        """Stop beating and remove the entry (best effort: it expires anyway)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._kv is not None:
            with contextlib.suppress(Exception):
                await self._kv.delete(self.name)
