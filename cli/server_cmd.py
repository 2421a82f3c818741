"""``aar server``: run the embedded nats-server with the swarm's streams until Ctrl-C.

Authorization is on unless ``--no-auth``: every role gets an nkey and a credentials file, and the
server enforces the permissions in ``bus.auth`` on the swarms it serves (those named, those in
the store, and each one created while it runs).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import nats.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from bus import Bus, BusConfig, BusError, NatsServer, ServerConfig, ServerError, ensure_swarm, list_swarms
from bus.auth import JS_STREAM_CREATED, Role
from bus.creds import ServerAuth
from bus.natsd import default_data_dir
from cli.errors import CliError
from cli.options import ONE_SHOT_CONNECT_TIMEOUT_S, open_bus, swarms_from
from cli.signals import stop_on_signals, wait_for_stop

log = logging.getLogger("aar.cli")

NO_SYNC_HELP = (
    "do not fsync every JetStream write (sync_interval: always); the server then flushes every ~2 "
    "minutes, which is faster but can lose the last ~2 minutes of acknowledged messages (results, "
    "scores, requests) if the machine crashes or loses power"
)


def add_server_flags(parser: argparse.ArgumentParser) -> None:
    """Flags describing the embedded server (shared by ``aar server`` and ``aar up``)."""
    group = parser.add_argument_group("embedded server")
    group.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the JetStream store, config and log live (env AAR_DATA_DIR; "
        f"default {default_data_dir()})",
    )
    group.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    group.add_argument("--port", type=int, default=4222, help="client port (default %(default)s)")
    group.add_argument(
        "--monitor-port", type=int, default=8222, help="HTTP monitoring port (default %(default)s)"
    )
    group.add_argument("--no-sync-always", dest="sync_always", action="store_false", help=NO_SYNC_HELP)
    group.add_argument(
        "--no-auth",
        dest="auth",
        action="store_false",
        help="run without authorization: any client may do anything, labels included (for a "
        "private machine only; by default each role gets credentials and the server enforces them)",
    )


def server_config(args: argparse.Namespace) -> ServerConfig:
    """The ServerConfig the flags describe."""
    data_dir: Path = args.data_dir if args.data_dir is not None else default_data_dir()
    return ServerConfig(
        data_dir=data_dir.expanduser().resolve(),
        host=args.host,
        port=args.port,
        monitor_port=args.monitor_port,
        sync_always=args.sync_always,
    )


def check_ports_free(config: ServerConfig) -> None:
    """Fail early, in one line, when a port is taken (the server's own error is buried in its log).

    Raises:
        CliError: a port is in use or cannot be bound.
    """
    ports = ((config.port, "client", "--port"), (config.monitor_port, "monitor", "--monitor-port"))
    for port, what, flag in ports:
        try:
            infos = socket.getaddrinfo(config.host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as e:
            raise CliError(f"cannot resolve --host {config.host!r}: {e}") from e
        family, _, _, _, addr = infos[0]
        with socket.socket(family, socket.SOCK_STREAM) as s:
            # nats-server (Go) binds with SO_REUSEADDR, so a port in TIME_WAIT is not "busy" for it either.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(addr)
            except OSError as e:
                if e.errno == errno.EADDRINUSE:
                    raise CliError(
                        f"{what} port {port} on {config.host} is already in use (another "
                        f"nats-server? pick another with {flag}, or attach to it with --nats)"
                    ) from e
                raise CliError(f"cannot listen on {config.host}:{port}: {e.strerror}") from e


@contextlib.asynccontextmanager
async def embedded_server(config: ServerConfig) -> AsyncIterator[NatsServer]:
    """A started, healthy nats-server; stopped gracefully when the block exits.

    Raises:
        CliError: a port is busy or the server did not start.
    """
    check_ports_free(config)
    server = NatsServer(config)
    try:
        await server.start()
    except ServerError as e:
        raise CliError(str(e)) from e
    try:
        yield server
    finally:
        await server.stop()


def enable_auth(args: argparse.Namespace, config: ServerConfig, swarms: list[str]) -> ServerAuth | None:
    """Unless ``--no-auth``: keys, credentials and the authorization file for ``swarms``.

    Adds the authorization file to ``config.include``. None when authorization is off.
    """
    if not args.auth:
        return None
    auth = ServerAuth(config.data_dir)
    auth.write(swarms)
    config.include.append(auth.include_path)
    return auth


def admin_bus_config(config: ServerConfig, auth: ServerAuth | None, *, name: str) -> BusConfig:
    """How aar's own processes reach the embedded server: as the operator."""
    return BusConfig(
        servers=[config.client_url],
        name=name,
        creds_file=str(auth.creds_path(Role.ADMIN)) if auth else None,
        connect_timeout_s=ONE_SHOT_CONNECT_TIMEOUT_S,
        connect_attempts=1,
    )


async def keep_swarms_authorized(bus: Bus, server: NatsServer, auth: ServerAuth) -> Subscription:
    """Authorize every swarm that has streams now, and each one created from now on.

    A swarm created after the server started (``aar up --nats URL --fresh``, ``ensure_swarm``)
    has stream names no permission lists yet; each stream-created advisory rereads the swarms and
    reloads the server when there are new ones.

    Args:
        bus: the operator's connection (it lists streams and reads advisories).
        server: the running server to reload.
        auth: its users and authorization file.

    Returns:
        The advisory subscription; unsubscribe (or close the bus) to stop following.
    """
    lock = asyncio.Lock()

    async def refresh() -> None:
        async with lock:
            if auth.write(await list_swarms(bus)):
                await server.reload()
                log.info("swarms authorized", extra={"swarms": sorted(auth.swarms)})

    async def on_stream_created(msg: Msg) -> None:
        try:
            await refresh()
        except (BusError, nats.errors.Error, OSError) as e:
            log.warning("could not authorize a new swarm", extra={"error": repr(e)})

    sub = await bus.nc.subscribe(JS_STREAM_CREATED, cb=on_stream_created)
    await refresh()
    return sub


# What each role's credentials are for, in the order people need them.
_ROLE_USE: dict[Role, str] = {
    Role.ADMIN: "operator: aar tasks prepare, aar baselines, aar up --nats",
    Role.SCORER: "aar scorer",
    Role.WORKER: "aar worker",
    Role.AGENT: "agents",
    Role.OBSERVER: "aar tail, aar status, dashboards (read only)",
}


def creds_lines(auth: ServerAuth | None) -> list[str]:
    """Where each role's credentials are, for the banner; says so when authorization is off."""
    if auth is None:
        return ["aar: authorization off (--no-auth): any client may do anything"]
    lines = [f"aar: roles enforced; credentials in {auth.creds_path(Role.ADMIN).parent} (keep them secret):"]
    paths = {role: str(auth.creds_path(role)) for role in _ROLE_USE}
    width = max(map(len, paths.values()))
    lines += [f"  --creds {paths[role].ljust(width)}  # {use}" for role, use in _ROLE_USE.items()]
    return lines


def ready_line(config: ServerConfig) -> str:
    """What ``aar server`` prints once the server takes clients."""
    return f"aar: NATS ready at {config.client_url} (monitor {config.monitor_url}, data {config.data_dir})"


async def run_server(args: argparse.Namespace) -> int:
    """Start the server, create the swarms, print the URL and credentials, wait for Ctrl-C or SIGTERM."""
    config = server_config(args)
    swarms = swarms_from(args)
    auth = enable_auth(args, config, swarms)
    async with (
        embedded_server(config) as server,
        open_bus(admin_bus_config(config, auth, name="aar-server")) as bus,
    ):
        for swarm in swarms:
            await ensure_swarm(bus, swarm)
        if auth is not None:
            await keep_swarms_authorized(bus, server, auth)
        print(ready_line(config), flush=True)
        for line in creds_lines(auth):
            print(line, flush=True)
        names = ", ".join(repr(s) for s in swarms)
        print(f"aar: swarm{'s' if len(swarms) > 1 else ''} {names} ready; Ctrl-C to stop", flush=True)
        exited = asyncio.create_task(server.wait(), name="aar:nats-server")
        try:
            with stop_on_signals() as stop:
                await wait_for_stop(stop, also={exited})
        finally:
            exited.cancel()
        if exited.done() and not exited.cancelled():
            raise CliError(
                f"nats-server exited unexpectedly (rc {exited.result()}); see {config.log_path}", exit_code=1
            )
    print("aar: NATS stopped", flush=True)
    return 0
