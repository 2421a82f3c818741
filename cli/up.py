"""``aar up``: bring a whole swarm up on one machine, as an ordered list of services.

Services start in order and stop in reverse order (an AsyncExitStack), so the bus outlives
everything that uses it and the embedded server outlives the bus. In-process: the embedded
nats-server, the operator's bus, task preparation and the progress lines. As separate, supervised
``aar`` processes (restarted when they crash): the scorer, the workers, the reviewer, the
researchers and the dashboard.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path

from bus import Bus, NatsServer, ensure_swarm
from bus.auth import Role
from bus.creds import ServerAuth
from bus.natsd import default_data_dir, free_port
from cli.children import supervised
from cli.errors import CliError
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
from cli.up_children import Connection, child_specs, claude_available, passthrough_flags
from cli.up_progress import report_progress
from cli.up_tasks import DEFAULT_TASKS, ensure_tasks

log = logging.getLogger("aar.cli")


@dataclass(slots=True)
class UpContext:
    """What the services started so far have made available to the next ones."""

    args: argparse.Namespace
    swarm: str
    began: float = field(default_factory=time.time)
    urls: list[str] = field(default_factory=list)
    embedded: bool = False
    server: NatsServer | None = None
    auth: ServerAuth | None = None  # the embedded server's users; None when attached or --no-auth
    bus: Bus | None = None
    tasks: list[str] = field(default_factory=list)
    dashboard_url: str | None = None
    notes: list[str] = field(default_factory=list)  # extra lines for the banner

    @property
    def data_dir(self) -> Path:
        if self.server is not None:
            return self.server.config.data_dir
        data_dir: Path | None = self.args.data_dir
        return (data_dir or default_data_dir()).expanduser().resolve()

    @property
    def run_dir(self) -> Path:
        """Per-swarm files of ``aar up``: agent settings and the children's logs."""
        return self.data_dir / "up" / self.swarm


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
async def _tasks(ctx: UpContext) -> AsyncIterator[None]:
    assert ctx.bus is not None
    ctx.tasks = await ensure_tasks(ctx.bus, ctx.swarm, ctx.args.task or list(DEFAULT_TASKS))
    yield


@contextlib.asynccontextmanager
async def _report(ctx: UpContext) -> AsyncIterator[None]:
    """On the way out (after every child has stopped), write the report of a demo run."""
    yield
    if ctx.args.demo_minutes is None or ctx.bus is None:
        return
    from dashboard.report import write_report

    out = ctx.args.report_dir or ctx.run_dir / "report"
    print(f"aar: writing the report to {out}", flush=True)
    index = await write_report(ctx.bus, ctx.swarm, Path(out))
    print(f"aar: report: {index}", flush=True)


@contextlib.asynccontextmanager
async def _progress(ctx: UpContext) -> AsyncIterator[None]:
    assert ctx.bus is not None
    async with report_progress(ctx.bus, ctx.swarm, ctx.began, every_s=ctx.args.progress_every) as progress:
        yield
    if progress.scores:
        print(progress.summary(), flush=True)


@contextlib.asynccontextmanager
async def _children(ctx: UpContext) -> AsyncIterator[None]:
    args = ctx.args
    passthrough = [] if ctx.embedded else passthrough_flags(args)
    conn = Connection(urls=ctx.urls, auth=ctx.auth, passthrough=passthrough)
    if args.dashboard:
        args.dashboard_port = dashboard_port(args.host, args.dashboard_port)
        host = _outward_address() if args.host in _WILDCARDS else args.host
        ctx.dashboard_url = f"http://{_url_host(host)}:{args.dashboard_port}/"
    specs = child_specs(args, conn, ctx.swarm, ctx.tasks, ctx.run_dir)
    logs = ctx.run_dir / "logs"
    async with supervised(specs, logs, _print_child_line) as children:
        names = ", ".join(c.spec.name for c in children)
        ctx.notes.append(f"processes: {names or 'none'} (logs in {logs}; restarted if they crash)")
        yield


def _print_child_line(name: str, line: str) -> None:
    print(f"[{name}] {line}", flush=True)


def dashboard_port(host: str, wanted: int) -> int:
    """``wanted`` when it is free on ``host`` (0 or taken: a free port, said in the log)."""
    if wanted:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, wanted))
                return wanted
            except OSError as e:
                if e.errno != errno.EADDRINUSE:
                    raise CliError(f"cannot serve the dashboard on {host}:{wanted}: {e.strerror}") from e
        log.warning("dashboard port taken; using a free one", extra={"port": wanted})
    return free_port()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def uses_embedded_server(args: argparse.Namespace) -> bool:
    """True when neither ``--nats`` nor AAR_NATS_URL names a server to attach to."""
    return servers_from(args.nats) is None and not os.environ.get("AAR_NATS_URL")


def plan(args: argparse.Namespace) -> list[Service]:
    """The services to run, in start order."""
    services = [Service("nats", _nats)] if uses_embedded_server(args) else []
    services.append(Service("bus", _bus))
    if args.prepare:
        services.append(Service("tasks", _tasks))
    services += [Service("report", _report), Service("progress", _progress), Service("children", _children)]
    return services


def check_args(args: argparse.Namespace) -> None:
    """Refuse what cannot work, before anything starts."""
    for flag in ("workers", "agents", "claude"):
        if getattr(args, flag) < 0:
            raise CliError(f"--{flag} cannot be negative")
    if args.claude and not claude_available():
        raise CliError("--claude needs ANTHROPIC_API_KEY in the environment (offline researchers need none)")
    if args.demo_minutes is not None and args.demo_minutes <= 0:
        raise CliError("--demo-minutes must be positive")


def fresh_swarm(swarm: str, now: float | None = None) -> str:
    """``<swarm>-YYYYmmdd-HHMMSS``: a new, empty swarm on the same server."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if now is None else now))
    return f"{swarm[: 64 - len(stamp) - 1]}-{stamp}"


_WILDCARDS = ("0.0.0.0", "::", "")


def reachable_urls(ctx: UpContext) -> str:
    """The server URLs as another machine would use them: a wildcard bind becomes this host's address."""
    if ctx.server is not None and ctx.server.config.host in _WILDCARDS:
        return f"nats://{_outward_address()}:{ctx.server.config.port}"
    return ",".join(redact(u) for u in ctx.urls)


def _outward_address() -> str:
    """The address of the interface this host reaches others through (its hostname if unknown)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: picks a route, sends nothing
            address: str = probe.getsockname()[0]
        except OSError:
            return socket.gethostname()
    return address


def banner(ctx: UpContext) -> str:
    """How to attach to the running swarm."""
    url = reachable_urls(ctx)
    swarm = f"--nats {url} --swarm {ctx.swarm}"

    def creds(role: Role) -> str:
        return f" --creds {ctx.auth.creds_path(role)}" if ctx.auth else ""

    lines = [
        f"aar: NATS ready at {url}",
        *(f"aar: {n}" for n in ctx.notes),
        *(creds_lines(ctx.auth) if ctx.embedded else []),
    ]
    if ctx.dashboard_url:
        lines.append(f"aar: dashboard at {ctx.dashboard_url}")
    if ctx.tasks:
        lines.append(f"aar: tasks: {', '.join(ctx.tasks)}")
    lines += [
        f"aar: swarm {ctx.swarm!r} is up. Attach from another terminal or machine with:",
        f"  aar agent run offline-researcher --name NAME {swarm}{creds(Role.AGENT)}  # another agent",
        f"  aar worker {swarm}{creds(Role.WORKER)}  # run experiments there",
        f"  aar tail {swarm}{creds(Role.OBSERVER)}",
        f"  aar status {swarm}{creds(Role.OBSERVER)}",
        f"  aar tasks prepare rt {swarm}{creds(Role.ADMIN)}  # operator: add a task",
        f"  aar report {swarm}{creds(Role.ADMIN)}  # operator: write the report",
    ]
    if ctx.embedded and ctx.args.host in ("127.0.0.1", "localhost", "::1"):
        lines.append("aar: (the server listens on this machine only; --host 0.0.0.0 lets others attach)")
    lines.append("aar: Ctrl-C to stop (the swarm resumes on the next `aar up`)")
    return "\n".join(lines)


async def run_up(args: argparse.Namespace) -> int:
    """Start every service in order, print how to attach, wait, stop them in reverse order."""
    check_args(args)
    ctx = UpContext(args=args, swarm=fresh_swarm(args.swarm) if args.fresh else args.swarm)
    stop_after = args.demo_seconds
    if args.demo_minutes is not None:
        stop_after = args.demo_minutes * 60
    async with contextlib.AsyncExitStack() as stack:
        for service in plan(args):
            log.info("starting", extra={"service": service.name})
            await stack.enter_async_context(service.start(ctx))
        print(banner(ctx), flush=True)
        # Signal handlers cover only the wait: a second Ctrl-C during shutdown interrupts it.
        with stop_on_signals() as stop:
            await wait_for_stop(stop, timeout_s=stop_after)
        print("aar: stopping (Ctrl-C again to stop at once)", flush=True)
    print("aar: stopped; stream data kept (run `aar up` again to resume)", flush=True)
    return 0
