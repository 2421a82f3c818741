"""``aar server``: run the embedded nats-server with the swarm's streams until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import socket
from collections.abc import AsyncIterator
from pathlib import Path

from bus import BusConfig, NatsServer, ServerConfig, ServerError, ensure_swarm
from bus.natsd import default_data_dir
from cli.errors import CliError
from cli.options import ONE_SHOT_CONNECT_TIMEOUT_S, open_bus
from cli.signals import stop_on_signals, wait_for_stop

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


def ready_line(config: ServerConfig) -> str:
    """What ``aar server`` prints once the server takes clients."""
    return f"aar: NATS ready at {config.client_url} (monitor {config.monitor_url}, data {config.data_dir})"


async def ensure_swarm_at(url: str, swarm: str) -> None:
    """Create the swarm's streams, buckets and stores on the server at ``url``."""
    config = BusConfig(
        servers=[url],
        name="aar-server",
        connect_timeout_s=ONE_SHOT_CONNECT_TIMEOUT_S,
        connect_attempts=1,
    )
    async with open_bus(config) as bus:
        await ensure_swarm(bus, swarm)


async def run_server(args: argparse.Namespace) -> int:
    """Start the server, create the swarm, print the URL, then wait for Ctrl-C or SIGTERM."""
    config = server_config(args)
    async with embedded_server(config) as server:
        await ensure_swarm_at(config.client_url, args.swarm)
        print(ready_line(config), flush=True)
        print(f"aar: swarm {args.swarm!r} ready; Ctrl-C to stop", flush=True)
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
