"""``aar up``: bring a whole swarm up on one machine, as an ordered list of services.

Services start in order and stop in reverse order (an AsyncExitStack), so the bus outlives
everything that uses it and the embedded server outlives the bus. Today the list is the embedded
nats-server, the swarm's bus and the scorer; workers, agents and the dashboard join it as further
services.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

import msgspec

from bus import Bus, NatsServer, ensure_swarm
from bus.auth import Role
from bus.creds import ServerAuth
from cli.options import bus_config, open_bus, redact, servers_from
from cli.server_cmd import (
    admin_bus_config,
    creds_lines,
    embedded_server,
    enable_auth,
    keep_swarms_authorized,
    server_config,
)
from cli.signals import stop_on_signals, wait_for_stop

log = logging.getLogger("aar.cli")


@dataclass(slots=True)
class UpContext:
    """What the services started so far have made available to the next ones."""

    args: argparse.Namespace
    swarm: str
    urls: list[str] = field(default_factory=list)
    embedded: bool = False
    server: NatsServer | None = None
    auth: ServerAuth | None = None  # the embedded server's users; None when attached or --no-auth
    bus: Bus | None = None
    notes: list[str] = field(default_factory=list)  # extra lines for the banner


@dataclass(frozen=True, slots=True)
class Service:
    """One thing ``aar up`` runs: ``start(ctx)`` is entered in order and exited in reverse."""

    name: str
    start: Callable[[UpContext], AbstractAsyncContextManager[None]]


@contextlib.asynccontextmanager
async def _nats(ctx: UpContext) -> AsyncIterator[None]:
    config = server_config(ctx.args)
    ctx.auth = enable_auth(ctx.args, config, [ctx.swarm])
    async with embedded_server(config) as server:
        ctx.urls, ctx.embedded, ctx.server = [config.client_url], True, server
        ctx.notes.append(f"embedded nats-server: monitor {config.monitor_url}, data {config.data_dir}")
        try:
            yield
        finally:
            ctx.server = None


@contextlib.asynccontextmanager
async def _bus(ctx: UpContext) -> AsyncIterator[None]:
    if ctx.server is not None:
        # Our own server, as its operator: the connection flags describe someone else's server.
        config = admin_bus_config(ctx.server.config, ctx.auth, name="aar-up")
    else:
        config = bus_config(ctx.args, name="aar-up", one_shot=True)
        ctx.urls = list(config.servers)
    async with open_bus(config) as bus:
        await ensure_swarm(bus, ctx.swarm)
        if ctx.server is not None and ctx.auth is not None:
            await keep_swarms_authorized(bus, ctx.server, ctx.auth)
        ctx.bus = bus
        try:
            yield
        finally:
            ctx.bus = None


@contextlib.asynccontextmanager
async def _scorer(ctx: UpContext) -> AsyncIterator[None]:
    from scorer import Scorer

    # Its own connection, with the scorer's rights: the only role that reads labels and scores.
    if ctx.server is not None:
        config = msgspec.structs.replace(
            admin_bus_config(ctx.server.config, ctx.auth, name="aar-scorer"),
            creds_file=str(ctx.auth.creds_path(Role.SCORER)) if ctx.auth else None,
            connect_attempts=3,
        )
    else:
        config = bus_config(ctx.args, name="aar-scorer", one_shot=True)
    async with open_bus(config) as bus, Scorer(bus, ctx.swarm):
        ctx.notes.append(
            f"scorer: scoring results of swarm {ctx.swarm!r} (aar leaderboard to see the boards)"
        )
        yield


def uses_embedded_server(args: argparse.Namespace) -> bool:
    """True when neither ``--nats`` nor AAR_NATS_URL names a server to attach to."""
    return servers_from(args.nats) is None and not os.environ.get("AAR_NATS_URL")


def plan(args: argparse.Namespace) -> list[Service]:
    """The services to run, in start order."""
    services = [Service("nats", _nats)] if uses_embedded_server(args) else []
    services.append(Service("bus", _bus))
    services.append(Service("scorer", _scorer))
    return services


def fresh_swarm(swarm: str, now: float | None = None) -> str:
    """``<swarm>-YYYYmmdd-HHMMSS``: a new, empty swarm on the same server."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if now is None else now))
    return f"{swarm[: 64 - len(stamp) - 1]}-{stamp}"


def banner(ctx: UpContext) -> str:
    """How to attach to the running swarm."""
    url = ",".join(redact(u) for u in ctx.urls)

    def creds(role: Role) -> str:
        return f" --creds {ctx.auth.creds_path(role)}" if ctx.auth else ""

    lines = [
        f"aar: NATS ready at {url}",
        *(f"aar: {n}" for n in ctx.notes),
        *(creds_lines(ctx.auth) if ctx.embedded else []),
        f"aar: swarm {ctx.swarm!r} is up. Attach from another terminal with:",
        f"  aar tail --nats {url} --swarm {ctx.swarm}{creds(Role.OBSERVER)}",
        f"  aar status --nats {url} --swarm {ctx.swarm}{creds(Role.OBSERVER)}",
        f"  aar tasks prepare rt --nats {url} --swarm {ctx.swarm}{creds(Role.ADMIN)}  # operator: add a task",
        f"  aar worker --nats {url} --swarm {ctx.swarm}{creds(Role.WORKER)}  # run experiments here",
        "aar: Ctrl-C to stop",
    ]
    return "\n".join(lines)


async def run_up(args: argparse.Namespace) -> int:
    """Start every service in order, print how to attach, wait, stop them in reverse order."""
    ctx = UpContext(args=args, swarm=fresh_swarm(args.swarm) if args.fresh else args.swarm)
    async with contextlib.AsyncExitStack() as stack:
        for service in plan(args):
            log.info("starting", extra={"service": service.name})
            await stack.enter_async_context(service.start(ctx))
        print(banner(ctx), flush=True)
        # Signal handlers cover only the wait: a second Ctrl-C during shutdown interrupts it.
        with stop_on_signals() as stop:
            await wait_for_stop(stop, timeout_s=args.demo_seconds)
        print("aar: stopping", flush=True)
    return 0
