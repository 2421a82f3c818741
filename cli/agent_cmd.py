"""``aar agent run ROLE`` and ``aar agent list``: run a role against a swarm; see roles and live agents."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Sequence

import nats.js.errors

from bus import BusError
from bus.store import TypedKV
from bus.streams import presence_bucket
from cli.errors import CliError
from cli.format import short
from cli.options import (
    add_connection_flags,
    add_logging_flags,
    add_swarm_flag,
    bus_config,
    open_bus,
    parse_duration,
    swarm_name,
)
from cli.signals import stop_on_signals, wait_for_stop
from schemas import Presence, to_builtins
from swarm import AgentError, RoleEntry, describe, load_config, load_role

_EXIT_CRASHED = 1


def add_agent_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    agent = sub.add_parser("agent", help="run an agent role against a swarm, or list roles and live agents")
    asub = agent.add_subparsers(title="agent commands", metavar="ACTION", required=True)
    run = asub.add_parser(
        "run",
        help="run one agent until Ctrl-C or SIGTERM",
        description="Join the swarm as an agent of ROLE: a registered role name (see `aar agent list`), "
        "package.module:Class or path/to/file.py:Class. A restart under the same --name resumes where "
        "the last run stopped. Ctrl-C or SIGTERM lets the handlers in hand finish first.",
    )
    run.add_argument("role", metavar="ROLE", help="role name, module:Class or file.py:Class")
    run.add_argument(
        "--name", type=swarm_name, default=None, help="agent name (default <role>-<host>; keep it to resume)"
    )
    run.add_argument("--config", metavar="FILE", help="the role's settings, a TOML or JSON file")
    run.add_argument(
        "--grace",
        type=parse_duration,
        default=30.0,
        metavar="S",
        help="how long handlers in flight may run on at stop (default 30s)",
    )
    listing = asub.add_parser("list", help="registered roles, and the agents present in the swarm")
    listing.add_argument("--json", action="store_true", help="print one JSON document")
    for p, command, level in ((run, "agent-run", "info"), (listing, "agent-list", "warning")):
        add_swarm_flag(p)
        add_connection_flags(p)
        add_logging_flags(p)
        p.set_defaults(command=command, default_log_level=level)


async def run_agent(args: argparse.Namespace) -> int:
    """Run one agent until Ctrl-C or SIGTERM; exit 1 if its run loop crashed."""
    try:
        role = load_role(args.role)
        config = load_config(role.config_type, args.config)
    except AgentError as e:
        raise CliError(str(e)) from e
    config_name = f"aar-agent-{args.name or role.role}"
    async with open_bus(bus_config(args, name=config_name, one_shot=False)) as bus:
        with stop_on_signals() as stop:
            try:
                async with role(bus, args.swarm, name=args.name, config=config) as agent:
                    print(f"aar: agent {agent.name} ({role.role}) joined swarm {args.swarm!r}", flush=True)
                    await wait_for_stop(stop, also=[agent.crashed])
                    crashed = agent.crashed
                    await agent.close(args.grace)
            except (AgentError, BusError) as e:
                raise CliError(str(e)) from e
    if crashed.done():
        print(f"aar: error: agent {agent.name}: run() crashed: {crashed.result()!r}", file=sys.stderr)
        return _EXIT_CRASHED
    print(f"aar: agent {agent.name} stopped", flush=True)
    return 0


async def run_agent_list(args: argparse.Namespace) -> int:
    """Print the registered roles, then the agents present in the swarm (when a server answers)."""
    roles = describe()
    agents: list[Presence] | None = None
    unavailable = ""
    try:
        async with open_bus(bus_config(args, name="aar-agent-list", one_shot=True)) as bus:
            kv: TypedKV | None = None
            with contextlib.suppress(nats.js.errors.NotFoundError):  # no such swarm on this server
                kv = await bus.kv(presence_bucket(args.swarm))
            values = (await kv.items()).values() if kv is not None else []
            agents = [p for p in values if isinstance(p, Presence) and "agent" in p.capabilities]
    except CliError as e:
        unavailable = str(e)
    if args.json:
        doc = {
            "roles": [{"name": r.name, "spec": r.spec, "doc": r.doc} for r in roles],
            "agents": None if agents is None else [to_builtins(p) for p in agents],
        }
        print(json.dumps(doc, indent=2))
    else:
        print("\n".join(_render(roles, agents, args.swarm)))
    if agents is None:
        print(f"aar: live agents not shown: {unavailable}", file=sys.stderr)
    return 0


def _render(roles: list[RoleEntry], agents: list[Presence] | None, swarm: str) -> list[str]:
    out = ["roles:"]
    out += _columns(("ROLE", "DESCRIPTION", "FROM"), [(r.name, short(r.doc, 80), r.spec) for r in roles])
    if agents is None:
        return out
    if not agents:
        return [*out, f"no agents present in swarm {swarm}"]
    now = time.time()
    out.append(f"agents present in swarm {swarm}:")
    rows = [
        (
            p.role,
            p.name,
            p.host,
            str(p.pid),
            p.state,
            f"{max(0.0, now - p.last_seen):.0f}s ago",
            p.info.get("budget", "-"),
            p.info.get("handled", "-"),
        )
        for p in sorted(agents, key=lambda p: (p.role, p.name))
    ]
    return out + _columns(("ROLE", "NAME", "HOST", "PID", "STATE", "SEEN", "BUDGET", "HANDLED"), rows)


def _columns(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]
    ]
