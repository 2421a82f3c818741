"""A small Chrome DevTools Protocol client: headless Chromium driven over aiohttp's websocket.

No Playwright (its browser download needs the internet): Debian's ``chromium`` started with
``--remote-debugging-port=0`` writes the port it chose to ``<user-data-dir>/DevToolsActivePort``;
we attach to one page target with a flattened session and send ``Page``/``Runtime`` commands.

    async with Chromium() as browser:
        await browser.navigate(url)
        await browser.wait_for("document.querySelector('#scores tr') !== null")
        text = await browser.evaluate("document.title")

Leaving the block always kills the browser and removes its profile directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any, Self

import aiohttp

CHROMIUM = os.environ.get("AAR_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--mute-audio",
    "--remote-debugging-port=0",
)


def chromium_available() -> bool:
    return Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)


class CdpError(Exception):
    """The browser answered a command with an error, or a script threw."""


class Chromium:
    """One headless Chromium with one page, driven over the DevTools protocol."""

    def __init__(self, *, executable: str = CHROMIUM, start_timeout_s: float = 20.0) -> None:
        self._executable = executable
        self._start_timeout_s = start_timeout_s
        self._profile: tempfile.TemporaryDirectory[str] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._waiters: dict[str, list[asyncio.Future[dict[str, Any]]]] = {}
        self._session: str | None = None
        self.exceptions: list[dict[str, Any]] = []  # Runtime.exceptionThrown details
        self.console: list[tuple[str, str]] = []  # (level, text) from console.* calls
        self.log: list[tuple[str, str]] = []  # (level, text) the browser logged: failed loads, CSP

    async def __aenter__(self) -> Self:
        try:
            await self._start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _start(self) -> None:
        self._profile = tempfile.TemporaryDirectory(prefix="aar-chromium-")
        profile = Path(self._profile.name)
        self._proc = await asyncio.create_subprocess_exec(
            self._executable,
            *FLAGS,
            f"--user-data-dir={profile}",
            "about:blank",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,  # its helper processes form a group we can kill at once
        )
        port, path = await self._devtools_address(profile / "DevToolsActivePort")
        self._http = aiohttp.ClientSession()
        self._ws = await self._http.ws_connect(f"ws://127.0.0.1:{port}{path}", max_msg_size=0)
        self._reader = asyncio.create_task(self._read(), name="cdp:reader")
        target = await self.send("Target.createTarget", {"url": "about:blank"}, page=False)
        attached = await self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, page=False
        )
        self._session = attached["sessionId"]
        await self.send("Page.enable")
        await self.send("Runtime.enable")
        await self.send("Log.enable")

    async def _devtools_address(self, port_file: Path) -> tuple[int, str]:
        assert self._proc is not None
        deadline = time.monotonic() + self._start_timeout_s
        while time.monotonic() < deadline:
            if self._proc.returncode is not None:
                raise CdpError(f"chromium exited with status {self._proc.returncode} before listening")
            with contextlib.suppress(FileNotFoundError, ValueError):
                lines = (await asyncio.to_thread(port_file.read_text)).split()
                if len(lines) >= 2:
                    return int(lines[0]), lines[1]
            await asyncio.sleep(0.05)
        raise CdpError(f"chromium did not write {port_file} within {self._start_timeout_s}s")

    async def close(self) -> None:
        """Kill the browser (its whole process group) and remove the profile. Safe to call twice."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
            self._ws = None
        if self._http is not None:
            await self._http.close()
            self._http = None
        if (proc := self._proc) is not None:
            self._proc = None
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), 5)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    await proc.wait()
        if self._profile is not None:
            self._profile.cleanup()
            self._profile = None

    # -- the protocol --------------------------------------------------------------------------

    async def _read(self) -> None:
        assert self._ws is not None
        async for frame in self._ws:
            if frame.type is not aiohttp.WSMsgType.TEXT:
                continue
            msg = json.loads(frame.data)
            if (msg_id := msg.get("id")) is not None:
                if (fut := self._pending.pop(msg_id, None)) is not None and not fut.done():
                    fut.set_result(msg)
                continue
            method, params = msg.get("method", ""), msg.get("params", {})
            if method == "Runtime.exceptionThrown":
                self.exceptions.append(params.get("exceptionDetails", {}))
            elif method == "Log.entryAdded":
                entry = params.get("entry", {})
                self.log.append(
                    (entry.get("level", ""), f"{entry.get('text', '')} {entry.get('url', '')}".strip())
                )
            elif method == "Runtime.consoleAPICalled":
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
                self.console.append((params.get("type", ""), text))
            for fut in self._waiters.pop(method, []):
                if not fut.done():
                    fut.set_result(params)
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(CdpError("the browser closed the connection"))

    async def send(
        self, method: str, params: dict[str, Any] | None = None, *, page: bool = True, timeout_s: float = 10.0
    ) -> dict[str, Any]:
        """Send one command (to the page's session unless ``page`` is False) and return its result.

        Raises:
            CdpError: the browser answered with an error.
        """
        assert self._ws is not None
        msg_id = next(self._ids)
        command: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if page:
            command["sessionId"] = self._session
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = fut
        await self._ws.send_str(json.dumps(command))
        try:
            reply = await asyncio.wait_for(fut, timeout_s)
        finally:
            self._pending.pop(msg_id, None)
        if "error" in reply:
            raise CdpError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    def expect_event(self, method: str) -> asyncio.Future[dict[str, Any]]:
        """A future for the next ``method`` event; ask before doing what triggers it."""
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(method, []).append(fut)
        return fut

    # -- what tests use ------------------------------------------------------------------------

    async def navigate(self, url: str, *, timeout_s: float = 15.0) -> None:
        """Open ``url`` and wait for its load event."""
        loaded = self.expect_event("Page.loadEventFired")
        result = await self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise CdpError(f"navigating to {url}: {result['errorText']}")
        await asyncio.wait_for(loaded, timeout_s)

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises are awaited).

        Raises:
            CdpError: the expression threw.
        """
        result = await self.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        if (details := result.get("exceptionDetails")) is not None:
            raise CdpError(
                f"{expression!r} threw: {details.get('exception', {}).get('description', details)}"
            )
        return result.get("result", {}).get("value")

    async def wait_for(self, expression: str, *, timeout_s: float = 10.0, interval_s: float = 0.02) -> Any:
        """Evaluate ``expression`` until it is truthy; returns that value.

        Raises:
            TimeoutError: it stayed falsy for ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expression!r} still falsy after {timeout_s}s")
            await asyncio.sleep(interval_s)
