"""``aar tail``: follow a swarm's traffic live, optionally replaying what is stored."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from typing import cast

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from bus import Bus, Delivery, Kind, StartAt, list_swarms, peek_stored, streams, subjects
from bus.admin import swarm_exists
from bus.auth import readable_kinds
from cli import format as fmt
from cli.errors import CliError
from cli.options import bus_config, open_bus
from cli.signals import stop_on_signals, wait_for_stop
from schemas import Envelope, Message, SchemaError, decode, encode

log = logging.getLogger("aar.cli")

PRESENCE = "presence"
STORED_KINDS: tuple[Kind, ...] = tuple(k for k in Kind if k in streams.STREAMS)
CHOICES: tuple[str, ...] = (*(k.value for k in STORED_KINDS), PRESENCE)


def use_colour() -> bool:
    """Colour only for a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


@dataclass(slots=True)
class Printer:
    """Writes one line per message and says when ``--count`` has been reached."""

    as_json: bool
    colour: bool
    limit: int | None
    printed: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def message(self, msg: Message) -> None:
        self._write(encode(msg).decode() if self.as_json else fmt.line(msg, colour=self.colour))

    def gone(self, key: str) -> None:
        # JSON output carries wire messages only, and a deletion is not one.
        if not self.as_json:
            self._write(fmt.gone_line(key, colour=self.colour))

    def _write(self, text: str) -> None:
        if self.done.is_set():
            return
        # Flush per line: tail is read by people and by pipes (`| jq`), both want lines now.
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        self.printed += 1
        if self.limit is not None and self.printed >= self.limit:
            self.done.set()


def _start_at(args: argparse.Namespace) -> tuple[StartAt, float | None]:
    if args.all:
        return StartAt.all(), 0.0
    if args.since is not None:
        since = time.time() - args.since
        return StartAt.at_time(since), since
    return StartAt.new(), None


async def _follow_stored(bus: Bus, swarm: str, kind: Kind, printer: Printer, start: StartAt) -> None:
    async def handle(msg: Envelope, delivery: Delivery) -> None:
        printer.message(cast(Message, msg))  # decode only ever yields members of Message

    # durable=None: an ordered, ack-less consumer that watches without taking anything away.
    await bus.subscribe(swarm, kind, handle, expect=Envelope, durable=None, start=start)


def _decode_or_warn(data: bytes, subject: str) -> Message | None:
    try:
        return decode(data)
    except SchemaError as e:
        log.warning(
            "undecodable message (left for its consumer to dead-letter)",
            extra={"subject": subject, "reason": e.reason[:200]},
        )
        return None


async def _follow_requests(bus: Bus, swarm: str, printer: Printer, since: float | None) -> Subscription:
    """Watch the work queue without consuming it.

    A work-queue stream admits only its workers' consumer, so live requests come from a plain
    subscription on the same subjects, and stored ones from direct reads by sequence, which do not
    remove anything. Live messages that arrive while history is read wait, then skip those already
    printed.
    """
    filter_subject = subjects.kind_filter(swarm, Kind.REQUESTS)
    seen: set[str] = set()
    held: list[Msg] | None = []

    def show(data: bytes, subject: str) -> None:
        if (msg := _decode_or_warn(data, subject)) is not None and msg.id not in seen:
            seen.add(msg.id)
            printer.message(msg)

    async def on_live(raw: Msg) -> None:
        if held is not None:
            held.append(raw)
        else:
            show(raw.data, raw.subject)

    sub = await bus.nc.subscribe(filter_subject, cb=on_live)
    await bus.nc.flush()  # the server knows our interest before history is read: no gap
    if since is not None:
        async for stored in peek_stored(bus, swarm, Kind.REQUESTS):
            if stored.time is not None and stored.time.timestamp() < since:
                continue
            show(stored.data or b"", stored.subject or filter_subject)
    backlog, held = held or [], None
    for live in backlog:
        show(live.data, live.subject)
    return sub


async def _follow_presence(bus: Bus, swarm: str, printer: Printer, replay: bool) -> None:
    try:
        kv = await bus.js.key_value(streams.presence_bucket(swarm))
    except nats.js.errors.BucketNotFoundError as e:
        raise CliError(f"swarm {swarm!r} has no presence bucket on this server") from e
    watcher = await kv.watchall()
    initial = True  # the watcher sends the current values, then None, then changes
    try:
        async for entry in watcher:
            if entry is None:
                initial = False
                continue
            if initial and not replay:
                continue
            if entry.operation in ("DEL", "PURGE") or not entry.value:
                printer.gone(entry.key)
            elif (msg := _decode_or_warn(entry.value, entry.key)) is not None:
                printer.message(msg)
    finally:
        with contextlib.suppress(nats.errors.Error):
            await watcher.stop()  # type: ignore[no-untyped-call]


async def _check_swarm(bus: Bus, swarm: str) -> None:
    if await swarm_exists(bus, swarm):
        return
    known = await list_swarms(bus)
    if swarm not in known:
        hint = f"known swarms: {', '.join(known)}" if known else "no swarms on this server yet"
        raise CliError(f"swarm {swarm!r} has no streams on this server ({hint})")


async def run_tail(args: argparse.Namespace) -> int:
    """Follow the chosen kinds until Ctrl-C, ``--count`` messages, or ``--timeout`` seconds.

    Returns:
        0, or 1 when ``--timeout`` passed before ``--count`` messages arrived.

    Raises:
        CliError: the server cannot be reached or the swarm does not exist.
    """
    start, since = _start_at(args)
    printer = Printer(as_json=args.json, colour=use_colour(), limit=args.count)
    tasks: list[asyncio.Task[None]] = []
    interrupted = False
    config = bus_config(args, name="aar-tail", one_shot=True)
    async with open_bus(config) as bus:
        # By default, what these credentials may read (an observer is not shown the verdicts).
        role = creds.role if (creds := config.credentials()) else None
        readable = readable_kinds(role)
        kinds = list(dict.fromkeys(args.kinds)) or [k.value for k in STORED_KINDS if k in readable]
        await _check_swarm(bus, args.swarm)
        core_sub: Subscription | None = None
        try:
            with stop_on_signals() as stop:
                for name in kinds:
                    if name == PRESENCE:
                        watch = _follow_presence(bus, args.swarm, printer, since is not None)
                        tasks.append(asyncio.create_task(watch, name="tail:presence"))
                    elif (kind := Kind(name)) is Kind.REQUESTS:
                        core_sub = await _follow_requests(bus, args.swarm, printer, since)
                    else:
                        await _follow_stored(bus, args.swarm, kind, printer, start)
                done = asyncio.create_task(printer.done.wait(), name="tail:count")
                await wait_for_stop(stop, timeout_s=args.timeout, also={done, *tasks})
                done.cancel()
                interrupted = stop.is_set()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task  # re-raises a CliError from a presence watch
            if core_sub is not None:
                with contextlib.suppress(nats.errors.Error):
                    await core_sub.unsubscribe()
    # Ctrl-C is a normal way to stop; running out of --timeout before --count is not.
    return 1 if args.count is not None and printer.printed < args.count and not interrupted else 0
