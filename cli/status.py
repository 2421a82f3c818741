"""``aar status``: streams, consumers and who is present, for one swarm or all of them."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from typing import Any

from bus import Bus, list_swarms, swarm_state
from bus.admin import SwarmState
from cli.errors import CliError
from cli.format import short
from cli.options import bus_config, open_bus, redact
from schemas import to_builtins


def human_bytes(n: int) -> str:
    """``1.2 MiB``-style sizes."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _table(header: tuple[str, ...], rows: list[tuple[object, ...]], *, right_from: int) -> list[str]:
    """Columns padded to width; columns from ``right_from`` on (the numbers) are right-aligned."""
    cells = [tuple(str(c) for c in r) for r in [header, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return [
        "  "
        + "  ".join(
            c.rjust(w) if i >= right_from else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in cells
    ]


def render(state: SwarmState, *, now: float | None = None) -> str:
    """The human-readable status of one swarm."""
    now = time.time() if now is None else now
    out = [f"swarm {state.swarm}"]
    out.append("streams:")
    out += _table(
        ("STREAM", "MSGS", "BYTES", "CONSUMERS", "FIRST", "LAST"),
        [
            (s.name, s.messages, human_bytes(s.bytes), s.consumers, s.first_seq, s.last_seq)
            for s in state.streams
        ],
        right_from=1,
    )
    if state.consumers:
        out.append("consumers:")
        out += _table(
            ("CONSUMER", "STREAM", "PENDING", "ACK-PENDING", "REDELIVERED", "WAITING"),
            [(c.name, c.stream, c.pending, c.ack_pending, c.redelivered, c.waiting) for c in state.consumers],
            right_from=2,
        )
    if state.presence:
        out.append("present:")
        out += _table(
            ("ROLE", "NAME", "HOST", "PID", "STATE", "SEEN", "CAPABILITIES"),
            [
                (
                    p.role,
                    p.name,
                    p.host,
                    p.pid,
                    p.state,
                    f"{max(0.0, now - p.last_seen):.0f}s ago",
                    short(",".join(p.capabilities), 60) or "-",
                )
                for p in sorted(state.presence, key=lambda p: (p.role, p.name))
            ],
            right_from=99,
        )
    else:
        out.append("present: no live agents or workers")
    return "\n".join(out)


def as_json(state: SwarmState) -> dict[str, Any]:
    """The status of one swarm as plain JSON-compatible objects."""
    return {
        "swarm": state.swarm,
        "streams": [dataclasses.asdict(s) for s in state.streams],
        "consumers": [dataclasses.asdict(c) for c in state.consumers],
        "presence": [to_builtins(p) for p in state.presence],
    }


async def _states(bus: Bus, args: argparse.Namespace) -> list[SwarmState]:
    known = await list_swarms(bus)
    if args.all_swarms:
        return [await swarm_state(bus, s) for s in known]
    state = await swarm_state(bus, args.swarm)
    if not state.streams:
        hint = f"known swarms: {', '.join(known)}" if known else "no swarms on this server yet"
        raise CliError(f"swarm {args.swarm!r} has no streams on this server ({hint})", exit_code=1)
    return [state]


async def run_status(args: argparse.Namespace) -> int:
    """Print the state of one swarm (``--swarm``) or every swarm (``--all-swarms``).

    Raises:
        CliError: the server cannot be reached (exit 2), or the swarm does not exist (exit 1).
    """
    config = bus_config(args, name="aar-status", one_shot=True)
    async with open_bus(config) as bus:
        states = await _states(bus, args)
    if args.json:
        doc = {"swarms": [as_json(s) for s in states]} if args.all_swarms else as_json(states[0])
        print(json.dumps(doc, separators=(",", ":")))
        return 0
    print(f"server {', '.join(redact(u) for u in config.servers)}")
    if not states:
        print("no swarms on this server yet (start one with `aar up` or `aar server`)")
    for state in states:
        print(render(state))
    return 0
