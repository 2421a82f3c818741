"""``Dashboard``: the live page over HTTP, fed from the bus through server-sent events.

Routes:
    GET /               the page (``static/index.html``)
    GET /static/...     its script and style sheet
    GET /events         ``text/event-stream``: a ``snapshot`` event, then a ``delta`` event (a JSON
                        list of ``{"t": type, "d": row}``) for each message the bus delivers, and a
                        comment line as a keep-alive when nothing happens
    GET /api/snapshot   the same snapshot as one JSON document (for scripts; the page never polls it)
"""

from __future__ import annotations

import asyncio
import logging
from importlib import resources
from pathlib import Path
from typing import Self

from aiohttp import web

from bus import Bus
from dashboard.feed import Feed, FeedConfig
from dashboard.hub import Hub, frame
from dashboard.state import DashboardState, Limits

log = logging.getLogger("aar.dashboard")

STATIC_DIR = Path(str(resources.files("dashboard") / "static"))
_NO_CACHE = {"Cache-Control": "no-cache"}
# The page shows text agents wrote. It is only ever set as text, and this policy would stop a script
# smuggled in anyway: nothing runs but our own file, and nothing is fetched from elsewhere.
_PAGE_HEADERS = {
    **_NO_CACHE,
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class Dashboard:
    """Serve one swarm's dashboard on ``host:port`` (port 0: a free one; see ``url``).

    Use ``async with Dashboard(bus, swarm) as dash:``. Entering replays the swarm's history and
    starts listening; leaving ends every open event stream, stops the HTTP server, then the feed.
    """

    def __init__(
        self,
        bus: Bus,
        swarm: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        feed: FeedConfig | None = None,
        limits: Limits | None = None,
        heartbeat_s: float = 15.0,
        write_timeout_s: float = 30.0,
        max_queued: int = 512,
    ) -> None:
        self._bus, self.swarm = bus, swarm
        self._host, self._port = host, port
        self._heartbeat_s, self._write_timeout_s = heartbeat_s, write_timeout_s
        self.state = DashboardState(swarm, limits=limits)
        self.hub = Hub(max_queued=max_queued)
        self._feed = Feed(bus, swarm, self.state, self.hub.publish, feed)
        self._runner: web.AppRunner | None = None
        self._bound: tuple[str, int] | None = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def url(self) -> str:
        """``http://host:port/`` as bound (the real port when 0 was asked for)."""
        if self._bound is None:
            raise RuntimeError("the dashboard is not serving (use `async with Dashboard(...)`)")
        host, port = self._bound
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"

    async def start(self) -> None:
        """Replay and follow the bus, then listen.

        Raises:
            BusError: the swarm is not on this server.
            OSError: the address cannot be bound (the port is in use).
        """
        try:
            await self._feed.start()
        except BaseException:
            await self._feed.close()
            raise
        app = web.Application()
        app.router.add_get("/", self._index)
        app.router.add_get("/events", self._events)
        app.router.add_get("/api/snapshot", self._snapshot)
        app.router.add_static("/static/", STATIC_DIR)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            await self._feed.close()
            raise
        self._runner = runner
        address = runner.addresses[0]
        self._bound = (self._host, int(address[1]))
        log.info("dashboard serving", extra={"swarm": self.swarm, "url": self.url})

    async def close(self) -> None:
        """End the event streams, stop serving, stop following the bus. Safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self.hub.close()  # each stream's writer returns, so the server's shutdown need not wait
        try:
            await runner.cleanup()
        finally:
            await self._feed.close()
        log.info("dashboard stopped", extra={"swarm": self.swarm})

    # -- handlers ------------------------------------------------------------------------------

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html", headers=_PAGE_HEADERS)

    async def _snapshot(self, request: web.Request) -> web.Response:
        return web.json_response(self.state.snapshot(), headers=_NO_CACHE)

    def _snapshot_frame(self) -> bytes:
        return frame("snapshot", self.state.snapshot())

    async def _events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",  # a proxy in front must not hold events back
            }
        )
        await response.prepare(request)
        sub = self.hub.subscribe()
        log.debug("event stream opened", extra={"peer": request.remote, "streams": len(self.hub)})
        try:
            await response.write(b"retry: 1000\n\n")  # reconnect quickly; a new stream resyncs
            while True:
                frames = await sub.take(self._snapshot_frame, self._heartbeat_s)
                if sub.closed:
                    break
                # A stalled reader would hold this handler forever; drop it instead.
                async with asyncio.timeout(self._write_timeout_s):
                    await response.write(b"".join(frames) if frames else b": ping\n\n")
        except (ConnectionResetError, TimeoutError) as e:
            log.debug("event stream dropped", extra={"peer": request.remote, "error": repr(e)})
        finally:
            self.hub.unsubscribe(sub)
        return response
